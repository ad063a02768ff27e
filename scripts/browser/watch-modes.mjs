// Watches one live broadcast in the web app the way a viewer does, once per playback mode
// (WebRTC, LL-HLS, HTTP-FLV), in Debian's Chromium: how long the page took to show a first
// picture, its size, what the page says about the delay, and the frames decoded and
// dropped in the next 3 s. One JSON line per mode, and a screenshot of each page. Used to
// check a publisher this project cannot run in CI (bench/results/obs-whip.md):
//
//   node scripts/browser/watch-modes.mjs --base http://127.0.0.1:8080 --id <broadcast id> --out DIR
import { chromium } from "playwright-core";
import path from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    id: { type: "string" },
    out: { type: "string", default: "." },
    modes: { type: "string", default: "webrtc,hls,flv" },
  },
});
const base = args.base.replace(/\/$/, "");
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
try {
  for (const mode of args.modes.split(",")) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const opened = Date.now();
    await page.goto(`${base}/b/${encodeURIComponent(args.id)}?mode=${mode}`);
    let firstFrameMs = null;
    try {
      await page.waitForFunction(() => {
        const v = document.querySelector("#player");
        return v && v.readyState >= 2 && v.currentTime > 0;
      }, null, { timeout: 20000 });
      firstFrameMs = Date.now() - opened;
    } catch {
      // No picture in 20 s: reported as null.
    }
    const before = await page.evaluate(() => {
      const q = document.querySelector("#player").getVideoPlaybackQuality();
      return { decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    });
    await page.waitForTimeout(3000);
    const seen = await page.evaluate(() => {
      const v = document.querySelector("#player");
      const q = v.getVideoPlaybackQuality();
      return {
        mode: v.dataset.mode, width: v.videoWidth, height: v.videoHeight,
        decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames,
        delay: document.querySelector("#latency")?.textContent,
      };
    });
    console.log(JSON.stringify({
      asked: mode, played: seen.mode, first_frame_ms: firstFrameMs, width: seen.width, height: seen.height,
      frames_in_3s: seen.decoded - before.decoded, dropped_in_3s: seen.dropped - before.dropped,
      page_says: seen.delay,
    }));
    await page.screenshot({ path: path.join(args.out, `watch-${mode}.png`) });
    await page.close();
  }
} finally {
  await browser.close();
}
