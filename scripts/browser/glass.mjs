// Glass to glass from a browser: a publisher page draws the clock of clock.mjs (the
// wall-clock time in blocks, a moving picture below) into a canvas, sends it with a tone
// over WHIP, and viewer pages read the time back from every frame they show, over WebRTC
// (WHEP), HTTP-FLV and LL-HLS, one path at a time; the same clock published by ffmpeg over
// RTMP and watched over HTTP-FLV is the reference in the same run. Then the server's CPU
// (from /proc, --pid): idle, with the WHIP publisher, with it and --viewers WHEP viewers,
// and the RTMP publisher with as many HTTP-FLV viewers for comparison.
// Prints one JSON document.
//
//   node glass.mjs --base http://127.0.0.1:8080 --pid PID [--seconds 20] [--viewers 4] [--out DIR]
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { publishClock, READER } from "./clock.mjs";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    pid: { type: "string" },
    seconds: { type: "string", default: "20" },
    viewers: { type: "string", default: "4" },
    out: { type: "string", default: "." },
  },
});
const base = args.base.replace(/\/$/, "");
const secs = Number(args.seconds);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (v) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] : null);
const pct = (v, p) => (v.length ? [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(v.length * p))] : null);

async function api(method, url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + url, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
async function waitLive(id) {
  for (let i = 0; i < 100; i++) {
    if ((await api("GET", `/api/broadcasts/${id}`)).state === "live") return;
    await sleep(100);
  }
  throw new Error(`${id} never went live`);
}
/** The server's CPU seconds so far (user + system). */
function cpuSeconds() {
  const stat = readFileSync(`/proc/${args.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
/** The server's mean CPU (% of one core) over `ms`. */
async function cpuOver(ms) {
  const c0 = cpuSeconds(), t0 = performance.now();
  await sleep(ms);
  return (100 * (cpuSeconds() - c0)) / ((performance.now() - t0) / 1000);
}

const name = `glass${Date.now() % 1e8}`;
await api("POST", "/api/users", { username: name, password: "glass password" });
const { token } = await api("POST", "/api/sessions", { username: name, password: "glass password" });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
    // Pages in the background keep their timers and frames at full rate.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"],
});
const report = { seconds: secs, viewers: Number(args.viewers) };

/** A browser publishing the clock over WHIP to a new broadcast; returns {id, page}. */
async function browserPublisher(title) {
  const b = await api("POST", "/api/broadcasts", { title }, token);
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.evaluate(async ({ whip }) => {
    const W = 640, H = 480, BLOCK = 40, COLUMNS = 16, BITS = 42, CHECK = 6;
    const canvas = Object.assign(document.createElement("canvas"), { width: W, height: H });
    const ctx = canvas.getContext("2d");
    let n = 0;
    const paint = () => {
      const ms = Date.now();
      for (let y = 3 * BLOCK; y < H; y += 16) {
        ctx.fillStyle = `hsl(${(n * 4 + y) % 360} 60% ${(y >> 4) & 1 ? 40 : 25}%)`;
        ctx.fillRect(0, y, W, 16);
      }
      const bits = [];
      for (let i = 0; i < BITS; i++) bits.push(Math.floor(ms / 2 ** i) % 2);
      const ones = bits.reduce((a, b) => a + b, 0);
      for (let i = 0; i < CHECK; i++) bits.push((ones >> i) & 1);
      bits.forEach((bit, i) => {
        ctx.fillStyle = bit ? "rgb(235,235,235)" : "rgb(16,16,16)";
        ctx.fillRect((i % COLUMNS) * BLOCK, Math.floor(i / COLUMNS) * BLOCK, BLOCK, BLOCK);
      });
      n++;
    };
    paint();
    setInterval(paint, 1000 / 30);
    const [video] = canvas.captureStream(30).getVideoTracks();
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const sink = audio.createMediaStreamDestination();
    tone.connect(sink);
    tone.start();
    const { publish } = await import(document.querySelector("script[type=module]").src.replace("app.js", "whip.js"));
    window.__whip = await publish(new URL(whip).pathname, new MediaStream([video, ...sink.stream.getAudioTracks()]));
  }, { whip: b.publish.whip });
  await waitLive(b.id);
  return { id: b.id, page, stop: () => page.evaluate(() => window.__whip.stop()).catch(() => {}) };
}

/** Camera to glass on the watch page of `id` in `mode`, over the second half of the run. */
async function glass(id, mode) {
  const page = await browser.newPage();
  await page.addInitScript(READER);
  const t0 = Date.now();
  await page.goto(`${base}/b/${encodeURIComponent(id)}${mode === "hls" ? "" : `?mode=${mode}`}`);
  await page.waitForFunction(() => window.__clock?.samples.length > 0, null, { timeout: 30_000 });
  const firstMs = Date.now() - t0;
  await sleep(secs * 1000);
  const clock = await page.evaluate(() => window.__clock);
  const actual = await page.locator("video#player").getAttribute("data-mode");
  await page.screenshot({ path: path.join(args.out, `glass-${mode}.png`) });
  await page.close();
  const end = clock.samples.at(-1)?.[0] ?? 0;
  const steady = clock.samples.filter(([at]) => at >= end - (secs * 1000) / 2).map(([, d]) => d);
  return { mode: actual, glass_ms: median(steady), glass_p90_ms: pct(steady, 0.9), frames: steady.length, unreadable: clock.unreadable, stalls: clock.stalls, first_frame_ms: firstMs };
}

/** `n` pages watching `id` in `mode` at once; returns a closer. */
async function audience(id, mode, n) {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage();
    await page.goto(`${base}/b/${encodeURIComponent(id)}?mode=${mode}`);
    pages.push(page);
  }
  for (const page of pages) {
    await page.waitForFunction(() => document.querySelector("video#player")?.videoWidth > 0, null, { timeout: 30_000 });
  }
  return () => Promise.all(pages.map((p) => p.close()));
}

try {
  report.idle_cpu_pct = await cpuOver(5000);
  // Browser to browser.
  const pub = await browserPublisher("glass: browser over WHIP");
  await sleep(2000);
  report.whip_publisher_cpu_pct = (await cpuOver(10_000)) - report.idle_cpu_pct;
  report.browser = {};
  for (const mode of ["webrtc", "flv", "hls"]) report.browser[mode] = await glass(pub.id, mode);
  const closeWhep = await audience(pub.id, "webrtc", report.viewers);
  await sleep(2000);
  report.whep_viewers_cpu_pct = (await cpuOver(10_000)) - report.idle_cpu_pct - report.whip_publisher_cpu_pct;
  report.whep_viewer_cpu_pct = report.whep_viewers_cpu_pct / report.viewers;
  await closeWhep();
  await pub.stop();
  await pub.page.close();

  // The reference in the same run: ffmpeg's clock over RTMP, watched over HTTP-FLV.
  const b = await api("POST", "/api/broadcasts", { title: "glass: ffmpeg over RTMP" }, token);
  const ffmpeg = publishClock([b.publish.rtmp], { fps: 30, gop: 30, kbps: 600 });
  await waitLive(b.id);
  await sleep(2000);
  report.rtmp_publisher_cpu_pct = (await cpuOver(10_000)) - report.idle_cpu_pct;
  report.rtmp = { flv: await glass(b.id, "flv") };
  const closeFlv = await audience(b.id, "flv", report.viewers);
  await sleep(2000);
  report.flv_viewers_cpu_pct = (await cpuOver(10_000)) - report.idle_cpu_pct - report.rtmp_publisher_cpu_pct;
  report.flv_viewer_cpu_pct = report.flv_viewers_cpu_pct / report.viewers;
  await closeFlv();
  await ffmpeg.stop();
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
