// What checking a signed broadcast costs the web player: the page's own verify.js, in
// headless Chromium, over a recorded signed stream as each player would hand it over: the
// HTTP-FLV stream in 64 KiB chunks (mpegts.js's path) and the CMAF init segment and
// segments (hls.js's path). Reports, per second of media, the main thread's busy time
// (Chrome's TaskDuration) and the wall time, median of `--runs` runs. Prints one JSON line.
//
//   node bench-verify.mjs --flv signed.flv --cmaf DIR --key BASE64 --id ID --seconds N [--runs 5]
//
// DIR holds init.mp4 and seg0.m4s, seg1.m4s, ...
import { chromium } from "playwright-core";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    flv: { type: "string" },
    cmaf: { type: "string" },
    key: { type: "string" },
    id: { type: "string" },
    seconds: { type: "string" },
    runs: { type: "string", default: "5" },
  },
});
const verifyJs = readFileSync(path.join(here, "../../crates/livescope/web/verify.js"));
const segments = readdirSync(args.cmaf)
  .filter((f) => /^seg\d+\.m4s$/.test(f))
  .sort((a, b) => Number(a.slice(3, -4)) - Number(b.slice(3, -4)));
const files = {
  "/verify.js": [verifyJs, "text/javascript"],
  "/signed.flv": [readFileSync(args.flv), "video/x-flv"],
  "/init.mp4": [readFileSync(path.join(args.cmaf, "init.mp4")), "video/mp4"],
  "/": [Buffer.from("<!doctype html><title>bench</title>"), "text/html"],
};
segments.forEach((f, i) => { files[`/seg/${i}`] = [readFileSync(path.join(args.cmaf, f)), "video/iso.segment"]; });
const server = http.createServer((req, res) => {
  const file = files[req.url];
  if (!file) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { "content-type": file[1] });
  res.end(file[0]);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.goto(origin + "/");
const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable");
const taskSeconds = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;

// Load the media into the page first: what is measured is the check alone.
await page.evaluate(async ({ count }) => {
  const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
  window.media = { flv: await get("/signed.flv"), init: await get("/init.mp4"), segments: [] };
  for (let i = 0; i < count; i++) window.media.segments.push(await get(`/seg/${i}`));
  window.verify = await import("/verify.js");
}, { count: segments.length });

async function run(kind) {
  const before = await taskSeconds();
  const result = await page.evaluate(async ({ kind, key, id }) => {
    const { BroadcastCheck } = window.verify;
    let verdict = null;
    const check = new BroadcastCheck({ keys: [key], broadcast: id, live: false, onChange: (v) => { verdict = v; } });
    const t0 = performance.now();
    if (kind === "flv") {
      check.flvStart();
      const flv = window.media.flv;
      for (let at = 0; at < flv.length; at += 65536) check.flv(flv.subarray(at, at + 65536));
    } else {
      check.fmp4(window.media.init);
      for (const s of window.media.segments) check.fmp4(s);
    }
    // Everything queued has been checked once the queue is empty.
    let queue;
    do { queue = check.queue; await queue; } while (queue !== check.queue);
    return { ms: performance.now() - t0, verdict: check.verdict };
  }, { kind, key: args.key, id: args.id });
  const task = (await taskSeconds()) - before;
  return { wall_ms: result.ms, main_thread_ms: task * 1000, verdict: result.verdict };
}

const seconds = Number(args.seconds);
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const report = { seconds_of_media: seconds, runs: Number(args.runs), chromium: browser.version() };
for (const kind of ["flv", "cmaf"]) {
  const runs = [];
  for (let i = 0; i < Number(args.runs); i++) runs.push(await run(kind));
  const verdict = runs[0].verdict;
  report[kind] = {
    verdict: verdict.state,
    records: verdict.records,
    main_thread_ms_per_media_second: +(median(runs.map((r) => r.main_thread_ms)) / seconds).toFixed(3),
    wall_ms_per_media_second: +(median(runs.map((r) => r.wall_ms)) / seconds).toFixed(3),
  };
}
console.log(JSON.stringify(report));
await browser.close();
server.close();
