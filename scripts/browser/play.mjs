// Plays an LL-HLS playlist with hls.js (lowLatencyMode) in headless Chromium for a few
// seconds and prints what a viewer would see: how far playback got, how far behind the
// live edge it sits, stalls and errors, as one JSON line.
//
//   node play.mjs http://127.0.0.1:8080/hls/<id>/index.m3u8 [seconds]
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";

const [src, seconds = "12"] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage();
  await page.setContent('<video id="v" muted autoplay playsinline></video>');
  await page.addScriptTag({ path: path.join(here, "node_modules/hls.js/dist/hls.min.js") });
  const result = await page.evaluate(async ({ src, seconds }) => {
    const video = document.getElementById("v");
    const report = { supported: Hls.isSupported(), errors: [], stalls: 0, samples: [] };
    if (!report.supported) return report;
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_, d) => report.errors.push(`${d.type}/${d.details}${d.fatal ? " (fatal)" : ""}`));
    video.addEventListener("waiting", () => report.stalls++);
    hls.loadSource(src);
    hls.attachMedia(video);
    video.play().catch(() => {});
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      report.samples.push({ t: video.currentTime, latency: hls.latency, target: hls.targetLatency });
    }
    report.currentTime = video.currentTime;
    report.latency = hls.latency;
    report.targetLatency = hls.targetLatency;
    report.width = video.videoWidth;
    report.height = video.videoHeight;
    report.lowLatency = hls.lowLatencyMode;
    hls.destroy();
    return report;
  }, { src, seconds: Number(seconds) });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
