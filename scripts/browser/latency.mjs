// How far behind live hls.js plays, measured on the picture: a clock publisher
// (clock.mjs) sends the same frames to every RTMP URL given, and each HLS playlist is then
// played in turn by hls.js on a bare page in headless Chromium for --seconds. Reports,
// per playlist, camera-to-glass delay read from every frame shown (the whole chain:
// encoder, server, network, player), hls.js's own latency figure (distance from the
// playlist's live edge), stalls and errors. Prints one JSON document.
//
//   node latency.mjs --seconds 60 --rtmp rtmp://127.0.0.1:1935/live/KEY [--rtmp ...] \
//       --hls 'label=http://127.0.0.1:8080/hls/ID/index.m3u8' [--hls ...] \
//       [--defaults label]    # play that one with hls.js defaults (no lowLatencyMode)
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import { publishClock, READER } from "./clock.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    rtmp: { type: "string", multiple: true, default: [] },
    hls: { type: "string", multiple: true, default: [] },
    defaults: { type: "string", multiple: true, default: [] },
    gop: { type: "string", default: "30" },
  },
});
const seconds = Number(args.seconds);

const quantile = (sorted, q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null;
  return { mean, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted.at(-1) ?? null, n: sorted.length };
}

const publisher = publishClock(args.rtmp, { gop: Number(args.gop) });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});

async function measure(label, src, lowLatency) {
  const page = await browser.newPage();
  await page.setContent('<video id="player" muted autoplay playsinline></video>');
  await page.evaluate(READER);
  await page.addScriptTag({ path: path.join(here, "node_modules/hls.js/dist/hls.min.js") });
  await page.evaluate(({ src, lowLatency }) => {
    const hls = (window.__hls = new Hls({ lowLatencyMode: lowLatency }));
    window.__hlsLatency = [];
    window.__errors = [];
    hls.on(Hls.Events.ERROR, (_, d) => window.__errors.push(`${d.details}${d.fatal ? " (fatal)" : ""}`));
    hls.loadSource(src);
    hls.attachMedia(document.getElementById("player"));
    document.getElementById("player").play().catch(() => {});
  }, { src, lowLatency });
  await page.waitForFunction(() => window.__clock.first !== null, null, { timeout: 30000 });
  // Measure from five seconds after the first frame: the start-up catch-up is not the
  // steady state a viewer lives in.
  await new Promise((r) => setTimeout(r, 5000));
  await page.evaluate(() => {
    window.__clock.samples.length = 0;
    window.__clock.stalls = 0;
    window.__errors.length = 0;
    window.__timer = setInterval(() => {
      if (Number.isFinite(window.__hls.latency)) window.__hlsLatency.push(window.__hls.latency * 1000);
    }, 250);
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const result = await page.evaluate(() => ({
    delays: window.__clock.samples.map((s) => s[1]),
    stalls: window.__clock.stalls,
    unreadable: window.__clock.unreadable,
    hlsLatency: window.__hlsLatency,
    targetLatency: window.__hls.targetLatency,
    errors: window.__errors,
  }));
  await page.close();
  return {
    label,
    lowLatencyMode: lowLatency,
    camera_to_glass_ms: summary(result.delays),
    hls_js_latency_ms: summary(result.hlsLatency),
    target_latency_s: result.targetLatency,
    stalls: result.stalls,
    errors: result.errors,
  };
}

try {
  // Give the servers a few segments of the clock before the first viewer opens.
  await new Promise((r) => setTimeout(r, 6000));
  const runs = [];
  for (const entry of args.hls) {
    const at = entry.indexOf("=");
    const label = entry.slice(0, at);
    runs.push(await measure(label, entry.slice(at + 1), !args.defaults.includes(label)));
  }
  console.log(JSON.stringify({ seconds, runs }));
} finally {
  await browser.close();
  await publisher.stop();
}
