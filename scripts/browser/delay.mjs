// Where the delay goes, checked against what a viewer sees: a clock publisher (clock.mjs)
// goes live, the watch page plays it over LL-HLS in headless Chromium, and camera-to-glass
// is read from every frame shown. The server's stage breakdown
// (GET /api/broadcasts/<id>/delay, the player's own buffer reports included) is read at
// the start and the end of the same window (the second half of the run), to be compared
// with it (`window`: each stage's mean over the window). Last, the publisher's uplink is frozen for --freeze seconds (the
// study's bursty upload) to show the adaptive buffer policy at work: the viewer stalls,
// aims higher by the stall, and catches up again.
// Prints one JSON document; leaves a screenshot in --out.
//
//   node delay.mjs --base http://127.0.0.1:8080 --seconds 20 --freeze 2.5 --out DIR
import { chromium } from "playwright-core";
import path from "node:path";
import { parseArgs } from "node:util";
import { spawn } from "node:child_process";
import { publishClock, readClock, READER, WIDTH, HEIGHT } from "./clock.mjs";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    seconds: { type: "string", default: "20" },
    freeze: { type: "string", default: "2.5" },
    out: { type: "string", default: "." },
    // "hls" (LL-HLS) or "flv" (the page's lowest-delay choice) in the browser, or "rtmp":
    // ffmpeg plays RTMP (no buffer of its own: -fflags nobuffer) and the clock is read
    // from every frame it decodes.
    mode: { type: "string", default: "hls" },
    // LL-HLS through this HTTP cache (an nginx edge: http://HOST:PORT): the page's /hls/
    // requests go there instead of to the origin.
    "hls-via": { type: "string" },
  },
});
const base = args.base;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + url, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
};

const name = `delay${Date.now() % 1e8}`;
await api("POST", "/api/users", { username: name, password: "delay password" });
const { token } = await api("POST", "/api/sessions", { username: name, password: "delay password" });
const created = await api("POST", "/api/broadcasts", { title: "where the delay goes" }, token);
const publisher = publishClock([created.publish.rtmp]);
for (let i = 0; i < 100; i++) {
  if ((await api("GET", `/api/broadcasts/${created.id}`)).state === "live") break;
  await sleep(100);
}
await sleep(2000);

/// Each stage's mean over the window between two answers of the delay API (which keeps
/// counts and means since the broadcast began): {stage: {count, mean_ms}}.
function windowMeans(start, end) {
  const out = {};
  for (const [name, e] of Object.entries(end.stages)) {
    const s = start.stages[name] ?? { count: 0, mean_ms: 0 };
    const count = e.count - s.count;
    if (count > 0) out[name] = { count, mean_ms: (e.count * e.mean_ms - s.count * s.mean_ms) / count };
  }
  return out;
}

/// RTMP, played by ffmpeg: camera to decoded frame, for `seconds`; the second half counts.
async function rtmpGlass(url, seconds) {
  const ffmpeg = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay",
    "-i", url, "-an", "-f", "rawvideo", "-pix_fmt", "gray", "-s", `${WIDTH}x${HEIGHT}`, "pipe:1"], { stdio: ["ignore", "pipe", "inherit"] });
  const size = WIDTH * HEIGHT;
  const samples = [];
  let pending = Buffer.alloc(0);
  ffmpeg.stdout.on("data", (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= size) {
      const ms = readClock(pending.subarray(0, size));
      if (ms !== null) samples.push([Date.now(), Date.now() - ms]);
      pending = pending.subarray(size);
    }
  });
  await sleep(seconds * 1000);
  ffmpeg.kill("SIGKILL");
  const from = Date.now() - (seconds * 1000) / 2;
  return samples.filter(([at]) => at >= from).map(([, d]) => d);
}

if (args.mode === "rtmp") {
  const watch = created.watch ?? (await api("GET", `/api/broadcasts/${created.id}`)).watch;
  let atStart = null;
  setTimeout(async () => { atStart = await api("GET", `/api/broadcasts/${created.id}/delay`); }, (Number(args.seconds) * 1000) / 2);
  const steady = await rtmpGlass(watch.rtmp, Number(args.seconds));
  const report = { id: created.id, mode: "rtmp", glass_ms: median(steady), glass_frames: steady.length };
  report.delay = await api("GET", `/api/broadcasts/${created.id}/delay`);
  report.window = windowMeans(atStart ?? { stages: {} }, report.delay);
  await publisher.stop();
  console.log(JSON.stringify(report));
  process.exit(0);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required"],
});
const errors = [];
const report = { id: created.id };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  if (args["hls-via"]) {
    const via = new URL(args["hls-via"]);
    await page.route("**/hls/**", (route) => {
      const url = new URL(route.request().url());
      url.host = via.host;
      return route.continue({ url: url.href });
    });
  }
  await page.addInitScript(READER);
  await page.goto(`${base}/b/${created.id}${args.mode === "flv" ? "?mode=flv" : ""}`);
  await page.waitForFunction(() => window.__clock?.samples.length > 30, null, { timeout: 20_000 });
  // Settle, then measure: camera to glass over the second half of the run, and the
  // server's stages (which the page's buffer reports reach every 2 s).
  const seconds = Number(args.seconds);
  await sleep((seconds * 1000) / 2);
  const from = Date.now();
  const atStart = await api("GET", `/api/broadcasts/${created.id}/delay`);
  await sleep((seconds * 1000) / 2);
  const steady = await page.evaluate(
    (from) => window.__clock.samples.filter(([at]) => at >= from).map(([, d]) => d),
    from,
  );
  report.glass_ms = median(steady);
  report.glass_frames = steady.length;
  report.delay = await api("GET", `/api/broadcasts/${created.id}/delay`);
  report.window = windowMeans(atStart, report.delay);
  report.before = await page.$eval("video#player", (v) => ({ ...v.dataset }));
  await page.screenshot({ path: path.join(args.out, `delay-watch-${args.mode}.png`) });
  if (Number(args.freeze) <= 0) throw new Error("done");

  // The uplink freezes (the publisher's frames stop, then arrive in a burst).
  const stalledBefore = await page.evaluate(() => window.__clock.stalls);
  publisher.process.kill("SIGSTOP");
  await sleep(Number(args.freeze) * 1000);
  publisher.process.kill("SIGCONT");
  await sleep(3000);
  report.after_freeze = await page.$eval("video#player", (v) => ({ ...v.dataset }));
  report.stalls_in_freeze = (await page.evaluate(() => window.__clock.stalls)) - stalledBefore;
  // And catches up: the delay comes back towards the new aim.
  await sleep(8000);
  const since = Date.now() - 2000;
  report.glass_after_ms = median(
    await page.evaluate((since) => window.__clock.samples.filter(([at]) => at >= since).map(([, d]) => d), since),
  );
  report.settled = await page.$eval("video#player", (v) => ({ ...v.dataset }));
} catch (e) {
  if (e.message !== "done") throw e;
} finally {
  report.errors = errors;
  await browser.close();
  await publisher.stop();
}
console.log(JSON.stringify(report));
