// A clock you can see: video frames that carry the wall-clock time they were made, and the
// in-page code that reads it back from each frame the browser shows. The difference is the
// delay from camera to glass (encoder, server, network and player together), measured the
// same way whatever the server or the player.
//
// Each 320x240 frame has 48 blocks of 20x20 pixels in its top three rows: 42 bits of
// Date.now() (least significant first) and a 6-bit count of the one bits, black or white.
// The rest of the picture moves, so the encoder works as it would on a real scene.

import { spawn } from "node:child_process";

export const WIDTH = 320;
export const HEIGHT = 240;
const BLOCK = 20;
const COLUMNS = WIDTH / BLOCK;
const BITS = 42;
const CHECK_BITS = 6;

function bitsOf(ms) {
  const bits = [];
  for (let i = 0; i < BITS; i++) bits.push(Math.floor(ms / 2 ** i) % 2);
  const ones = bits.reduce((a, b) => a + b, 0);
  for (let i = 0; i < CHECK_BITS; i++) bits.push((ones >> i) & 1);
  return bits;
}

function paint(frame, ms, n) {
  for (let y = 3 * BLOCK; y < HEIGHT; y++) {
    const band = (y >> 4) & 1 ? 48 : 0;
    for (let x = 0; x < WIDTH; x++) frame[y * WIDTH + x] = ((x + n * 4) & 255) ^ band;
  }
  bitsOf(ms).forEach((bit, i) => {
    const bx = (i % COLUMNS) * BLOCK;
    const by = Math.floor(i / COLUMNS) * BLOCK;
    const value = bit ? 235 : 16;
    for (let y = by; y < by + BLOCK; y++) frame.fill(value, y * WIDTH + bx, y * WIDTH + bx + BLOCK);
  });
}

/// Reads the clock of one gray frame (WIDTH x HEIGHT, one byte a pixel, as ffmpeg's
/// `-pix_fmt gray` gives it): the wall-clock ms it was made, or null when unreadable.
export function readClock(frame) {
  const bits = [];
  for (let i = 0; i < BITS + CHECK_BITS; i++) {
    const x = (i % COLUMNS) * BLOCK + BLOCK / 2, y = Math.floor(i / COLUMNS) * BLOCK + BLOCK / 2;
    bits.push(frame[y * WIDTH + x] > 128 ? 1 : 0);
  }
  let ms = 0, ones = 0, check = 0;
  for (let i = 0; i < BITS; i++) { ms += bits[i] * 2 ** i; ones += bits[i]; }
  for (let i = 0; i < CHECK_BITS; i++) check |= bits[BITS + i] << i;
  return (ones & 63) === check ? ms : null;
}

/// Publishes clock frames at `fps` in real time to every RTMP URL in `urls` (one encode,
/// the same frames to each) until `stop()` is called.
export function publishClock(urls, { fps = 30, gop = 30, kbps = 600 } = {}) {
  const outputs = urls.map((u) => `[f=flv:onfail=ignore]${u}`).join("|");
  const ffmpeg = spawn("ffmpeg", [
    "-hide_banner", "-loglevel", "error",
    "-f", "rawvideo", "-pix_fmt", "gray", "-s", `${WIDTH}x${HEIGHT}`, "-framerate", String(fps), "-i", "pipe:0",
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", String(gop),
    "-b:v", `${kbps}k`, "-pix_fmt", "yuv420p", "-flags", "+global_header",
    "-map", "0:v", "-f", "tee", outputs,
  ], { stdio: ["pipe", "ignore", "inherit"] });
  let running = true;
  const frame = Buffer.alloc(WIDTH * HEIGHT);
  (async () => {
    const start = performance.now();
    for (let n = 0; running; n++) {
      const due = start + (n * 1000) / fps;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      paint(frame, Date.now(), n);
      if (!ffmpeg.stdin.write(frame)) await new Promise((r) => ffmpeg.stdin.once("drain", r));
    }
    ffmpeg.stdin.end();
  })().catch(() => {});
  return {
    process: ffmpeg,
    stop: () =>
      new Promise((resolve) => {
        running = false;
        const timer = setTimeout(() => ffmpeg.kill("SIGKILL"), 5000);
        ffmpeg.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        if (ffmpeg.exitCode !== null) resolve();
      }),
  };
}

/// In-page code (an init script): finds the page's video, reads the clock of every frame
/// shown (requestVideoFrameCallback) and keeps `window.__clock`: when the first frame was
/// shown (ms since navigation start), delay samples, stalls after the first frame.
export const READER = `(() => {
  const W = ${WIDTH}, BLOCK = ${BLOCK}, COLUMNS = ${COLUMNS}, BITS = ${BITS}, CHECK = ${CHECK_BITS};
  const clock = (window.__clock = { first: null, samples: [], stalls: 0, unreadable: 0, video: null });
  const read = (px) => {
    const bits = [];
    for (let i = 0; i < BITS + CHECK; i++) {
      const x = (i % COLUMNS) * BLOCK + BLOCK / 2, y = Math.floor(i / COLUMNS) * BLOCK + BLOCK / 2;
      bits.push(px[(y * W + x) * 4] > 128 ? 1 : 0);
    }
    let ms = 0, ones = 0, check = 0;
    for (let i = 0; i < BITS; i++) { ms += bits[i] * 2 ** i; ones += bits[i]; }
    for (let i = 0; i < CHECK; i++) check |= bits[BITS + i] << i;
    return (ones & 63) === check ? ms : null;
  };
  const attach = (video) => {
    if (video.__clocked) return;
    video.__clocked = true;
    clock.video = video;
    const canvas = new OffscreenCanvas(W, 3 * BLOCK);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    video.addEventListener("waiting", () => { if (clock.first !== null) clock.stalls++; });
    const onFrame = (now) => {
      if (clock.first === null) clock.first = now;
      if (video.videoWidth) {
        ctx.drawImage(video, 0, 0, video.videoWidth, 3 * BLOCK * video.videoHeight / ${HEIGHT}, 0, 0, W, 3 * BLOCK);
        const ms = read(ctx.getImageData(0, 0, W, 3 * BLOCK).data);
        if (ms === null) clock.unreadable++;
        else clock.samples.push([Date.now(), Date.now() - ms]);
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  const look = () => document.querySelectorAll("video#player").forEach(attach);
  new MutationObserver(look).observe(document, { subtree: true, childList: true });
  look();
})();`;
