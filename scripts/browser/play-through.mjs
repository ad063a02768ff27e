// Plays live LL-HLS broadcasts with hls.js (lowLatencyMode) in headless Chromium, one page
// each and all at once, from when they are live until they end: what a viewer who stayed
// for the whole event saw. Prints one JSON line per URL: where playback started and
// stopped, where the stream's timeline ended, stalls, errors, whether `ended` fired and
// the greatest step back or forward of the playhead (a frozen or jumping player shows).
//
//   node play-through.mjs <seconds at most> <url> [<url>...]
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";

const [limit, ...urls] = process.argv.slice(2);
if (!limit || urls.length === 0) {
  console.error("usage: node play-through.mjs <seconds> <url> [<url>...]");
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"],
});

async function playThrough(src) {
  const page = await browser.newPage();
  await page.setContent('<video id="v" muted autoplay playsinline></video>');
  await page.addScriptTag({ path: path.join(here, "node_modules/hls.js/dist/hls.min.js") });
  const result = await page.evaluate(async ({ src, limit }) => {
    const video = document.getElementById("v");
    const report = { src, errors: [], fatal: false, stalls: 0, endedEvent: false, live: true,
      hevcSupported: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L60.90"') };
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_, d) => {
      report.errors.push(`${d.type}/${d.details}${d.fatal ? " (fatal)" : ""}`);
      if (d.fatal) report.fatal = true;
    });
    hls.on(Hls.Events.LEVEL_UPDATED, (_, d) => {
      report.live = d.details.live;
      report.timelineEnd = d.details.edge;
    });
    video.addEventListener("waiting", () => report.stalls++);
    video.addEventListener("ended", () => { report.endedEvent = true; });
    hls.loadSource(src);
    hls.attachMedia(video);
    video.play().catch(() => {});
    const until = performance.now() + limit * 1000;
    let last = null;
    let still = 0;
    report.maxStepBack = 0;
    report.maxStepForward = 0;
    while (performance.now() < until && !report.fatal) {
      await new Promise((r) => setTimeout(r, 250));
      const t = video.currentTime;
      if (report.start === undefined && t > 0) report.start = t;
      if (last !== null && last > 0) {
        report.maxStepBack = Math.max(report.maxStepBack, last - t);
        report.maxStepForward = Math.max(report.maxStepForward, t - last);
      }
      still = last !== null && t === last ? still + 1 : 0;
      last = t;
      if (report.endedEvent) break;
      // Ended without the event (hls.js issue #4463): the playlist says so and the
      // playhead has reached the end of what is buffered.
      const buffered = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
      if (!report.live && still >= 8 && buffered - t < 0.5) break;
    }
    report.end = video.currentTime;
    report.width = video.videoWidth;
    report.height = video.videoHeight;
    report.latencyAtEnd = hls.latency;
    hls.destroy();
    return report;
  }, { src, limit: Number(limit) });
  await page.close();
  return result;
}

try {
  const results = await Promise.all(urls.map(playThrough));
  for (const r of results) console.log(JSON.stringify(r));
} finally {
  await browser.close();
}
