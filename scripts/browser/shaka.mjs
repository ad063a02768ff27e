// The Shaka Player counterpart of play.mjs: plays an HLS playlist with Shaka Player (low
// latency streaming on) in headless Chromium for a few seconds and prints what a viewer
// would see as one JSON line: how far playback got, how far behind the live edge it
// sits, stalls, errors, the picture size and whether the video element fired `ended`.
//
//   node shaka.mjs http://127.0.0.1:8080/hls/<id>/index.m3u8 [seconds]
//   node shaka.mjs --vod http://127.0.0.1:8080/replay/<id>/index.m3u8 [seconds]
//   node shaka.mjs --config '{"streaming":{"liveSync":{"enabled":true}}}' <url> [seconds]
//
// Playback stops early when `ended` fires. With --vod, seconds is a time limit for playing
// the whole replay, and the exit status is 1 unless `ended` fired without a fatal error.
// --config is merged into Shaka's configuration and into the low latency overrides Shaka
// applies once it sees an LL-HLS playlist. `latency` is seekRange().end - currentTime (how
// far behind the point Shaka aims for, i.e. the live edge less PART-HOLD-BACK); `liveLatency`
// is Shaka's wall clock estimate from EXT-X-PROGRAM-DATE-TIME. `stalls` counts `waiting`
// events, the one before the first frame included; `buffered` and `mse` (appendBuffer and
// abort calls) show holes like shaka-player#10589. The page is served from the stream's own
// origin, so the server needs no CORS headers.
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";

const args = process.argv.slice(2);
let vod = false;
let extra = {};
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--vod") vod = true;
  else if (args[i] === "--config") extra = JSON.parse(args[++i]);
  else rest.push(args[i]);
}
const [src, seconds = vod ? "60" : "12"] = rest;
if (!src) {
  console.error("usage: node shaka.mjs [--vod] [--config JSON] <url> [seconds]");
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});
let result;
try {
  const page = await browser.newPage();
  const home = new URL("/__shaka_player__.html", src).href;
  await page.route(home, (route) => route.fulfill({
    contentType: "text/html",
    body: '<!doctype html><video id="v" muted autoplay playsinline></video>',
  }));
  await page.goto(home);
  await page.addScriptTag({ path: path.join(here, "node_modules/shaka-player/dist/shaka-player.compiled.js") });
  result = await page.evaluate(async ({ src, seconds, vod, extra }) => {
    const video = document.getElementById("v");
    shaka.polyfill.installAll();
    const report = {
      player: `shaka ${shaka.Player.version}`, supported: shaka.Player.isBrowserSupported(),
      errors: [], stalls: 0, ended: false, samples: [],
    };
    if (!report.supported) return report;
    // Count MSE operations: an abort() before an append makes the SourceBuffer drop media
    // up to the next keyframe (shaka-player#10589), so aborts ~ appends means trouble.
    const mse = { appends: 0, aborts: 0 };
    const sb = SourceBuffer.prototype;
    const { appendBuffer, abort } = sb;
    sb.appendBuffer = function (...a) { mse.appends++; return appendBuffer.apply(this, a); };
    sb.abort = function (...a) { mse.aborts++; return abort.apply(this, a); };
    const player = new shaka.Player();
    const fmt = (e) => e === undefined || e === null || e.code === undefined ? `not a Shaka error: ${String(e && (e.stack || e))}`.slice(0, 300) :
      `${e.code}${e.data && e.data.length ? ` ${JSON.stringify(e.data).slice(0, 200)}` : ""}` +
      `${e.severity === shaka.util.Error.Severity.CRITICAL ? " (fatal)" : ""}`;
    player.addEventListener("error", (ev) => report.errors.push(fmt(ev.detail)));
    video.addEventListener("waiting", () => report.stalls++);
    let endedAt = null;
    video.addEventListener("ended", () => { report.ended = true; endedAt = video.currentTime; });
    player.configure({ streaming: { lowLatencyMode: true } });
    player.configure(extra);
    // Once the manifest turns out to be low latency, Shaka applies its low latency defaults
    // (segmentPrefetchLimit 2, inaccurateManifestTolerance 0, ...) on top of the
    // configuration; make --config win over those too.
    const merge = (a, b) => {
      for (const [k, v] of Object.entries(b)) a[k] = v && typeof v === "object" && !Array.isArray(v) ? merge(a[k] || {}, v) : v;
      return a;
    };
    player.configurationForLowLatency(merge(player.getConfigurationForLowLatency(), extra));
    await player.attach(video);
    try {
      await player.load(src);
    } catch (e) {
      report.errors.push(`load: ${fmt(e)}`);
      report.fatal = true;
      await player.destroy();
      return report;
    }
    video.play().catch(() => {});
    const latency = () => (player.isLive() ? player.seekRange().end - video.currentTime : null);
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until && !report.ended) {
      await new Promise((r) => setTimeout(r, 500));
      report.samples.push({ t: video.currentTime, latency: latency() });
    }
    const stats = player.getStats();
    const streaming = player.getConfiguration().streaming;
    Object.assign(report, {
      currentTime: video.currentTime,
      endedAt,
      duration: video.duration,
      live: player.isLive(),
      latency: latency(),
      liveLatency: stats.liveLatency, // wall clock minus PROGRAM-DATE-TIME of what is shown
      seekRange: player.seekRange(),
      buffered: Array.from({ length: video.buffered.length }, (_, i) => [video.buffered.start(i), video.buffered.end(i)]),
      width: video.videoWidth,
      height: video.videoHeight,
      lowLatency: streaming.lowLatencyMode,
      segmentPrefetchLimit: streaming.segmentPrefetchLimit, // 2 once the low latency defaults apply
      stallsDetected: stats.stallsDetected,
      gapsJumped: stats.gapsJumped,
      bufferingTime: stats.bufferingTime,
      fatal: report.errors.some((e) => e.endsWith("(fatal)")),
      mse,
    });
    if (vod) report.expectEnded = true;
    await player.destroy();
    return report;
  }, { src, seconds: Number(seconds), vod, extra });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
if (vod && (!result.ended || result.fatal)) process.exit(1);
