// The web player's signature badge, in headless Chromium: a signed broadcast watched over
// LL-HLS (hls.js) and HTTP-FLV (mpegts.js), directly and through a man in the middle, an
// HTTP proxy between the server and the browser that passes the page, the API and the room
// as they are and changes one byte in the media it relays (in the mdat of LL-HLS parts and
// segments, in the last byte of video frames of the FLV stream), from `--after` seconds
// on. For each visit it follows the badge's state until it settles and saves a
// screenshot. Prints one JSON line: {visits: [{run, states, final, title}]}.
//
//   node signed.mjs --base http://127.0.0.1:8080 --id ID --out DIR
//       [--runs hls,flv,hls-tamper,flv-tamper,studio] [--viewport desktop|phone] [--after 4]
//       [--owner-token TOKEN]
//
// The "studio" run opens the owner's dashboard (logged in with the token), waits for the
// server's signature state there, and sets the policy to "end" (while live, "drop" cannot be
// chosen: it is offered disabled).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    id: { type: "string" },
    out: { type: "string", default: "." },
    runs: { type: "string", default: "hls,flv,hls-tamper,flv-tamper" },
    viewport: { type: "string", default: "desktop" },
    after: { type: "string", default: "4" },
    // For the "studio" run: the owner's session token.
    "owner-token": { type: "string" },
  },
});
if (!args.base || !args.id) {
  console.error("usage: node signed.mjs --base http://HOST:PORT --id ID --out DIR [--runs ...]");
  process.exit(2);
}
const base = new URL(args.base);
mkdirSync(args.out, { recursive: true });
const started = Date.now();
const log = (msg) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

// --- the man in the middle ---

/// Flips a byte a third of the way into each mdat of a CMAF response.
function tamperCmaf(body) {
  let at = 0;
  let flipped = 0;
  while (at + 8 <= body.length) {
    const size = body.readUInt32BE(at);
    if (size < 8 || at + size > body.length) break;
    if (body.toString("latin1", at + 4, at + 8) === "mdat" && size > 16) {
      body[at + 8 + Math.floor((size - 8) / 3)] ^= 0x01;
      flipped++;
    }
    at += size;
  }
  return flipped;
}

/// Passes an FLV stream on tag by tag, flipping the last byte of every 15th video frame once
/// `armed()` says so (and telling `flipped()` each time).
function tamperFlv(upstream, downstream, armed, flipped) {
  let buf = Buffer.alloc(0);
  let header = false;
  let frames = 0;
  upstream.on("data", (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    let at = 0;
    if (!header) {
      if (buf.length < 13) return;
      at = buf.readUInt32BE(5) + 4;
      header = true;
    }
    while (at + 11 <= buf.length) {
      const size = buf.readUIntBE(at + 1, 3);
      if (at + 11 + size + 4 > buf.length) break;
      const body = buf.subarray(at + 11, at + 11 + size);
      // A video frame: AVC NALU packet (legacy header), or Enhanced RTMP coded frames.
      const frame = (buf[at] & 0x1f) === 9 && size > 8 && (((body[0] & 0x0f) === 7 && body[1] === 1) || (body[0] & 0x80 && [1, 3].includes(body[0] & 0x0f)));
      if (frame && armed() && frames++ % 15 === 0) {
        body[size - 1] ^= 0x04;
        flipped();
      }
      at += 11 + size + 4;
    }
    if (at) {
      downstream.write(buf.subarray(0, at));
      buf = buf.subarray(at);
    }
  });
  upstream.on("end", () => downstream.end());
}

/// Starts the proxy; resolves to its origin and a counter of changed responses.
function manInTheMiddle() {
  const stats = { tampered: 0, armedAt: null };
  const armed = () => stats.armedAt !== null && Date.now() >= stats.armedAt;
  const server = http.createServer((req, res) => {
    const media = /\.(m4s|mp4)(\?|$)/.test(req.url) && !/init\.mp4/.test(req.url);
    const flv = /\.flv(\?|$)/.test(req.url);
    const up = http.request({ host: base.hostname, port: base.port, path: req.url, method: req.method, headers: { ...req.headers, host: base.host } }, (ur) => {
      if (media && ur.statusCode === 200 && armed()) {
        const chunks = [];
        ur.on("data", (c) => chunks.push(c));
        ur.on("end", () => {
          const body = Buffer.concat(chunks);
          stats.tampered += tamperCmaf(body) > 0 ? 1 : 0;
          const headers = { ...ur.headers, "content-length": body.length };
          delete headers["transfer-encoding"];
          res.writeHead(ur.statusCode, headers);
          res.end(body);
        });
      } else if (flv && ur.statusCode === 200) {
        res.writeHead(ur.statusCode, ur.headers);
        tamperFlv(ur, res, armed, () => stats.tampered++);
      } else {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      }
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  // The room's WebSocket passes untouched.
  server.on("upgrade", (req, socket, head) => {
    const up = net.connect(Number(base.port), base.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join("\r\n") + "\r\n\r\n");
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ origin: `http://127.0.0.1:${server.address().port}`, stats, server })));
}

// --- the visits ---

/// The owner's dashboard: the server's signature state, and the policy set to "end".
async function studio(options) {
  const ctx = await browser.newContext(options);
  await ctx.addCookies([{ name: "livescope_session", value: args["owner-token"], url: base.origin }]);
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base.origin}/studio/${encodeURIComponent(args.id)}`);
  const state = page.locator("#dash-signature");
  await page.waitForFunction(() => document.querySelector("#dash-signature")?.dataset.state === "verified", null, { timeout: 20_000 });
  const text = await state.textContent();
  // Where the delay goes: the stages measured by now (the watch visits reported their
  // player buffers over the room).
  await page.waitForFunction(() => document.querySelectorAll("#delay-breakdown rect").length >= 3, null, { timeout: 10_000 }).catch(() => {});
  const delayStages = await page.$$eval("#delay-legend li", (items) => items.map((li) => li.dataset.stage));
  const dropOffered = await page.locator('#signature-policy option[value="drop"]').isEnabled();
  await page.selectOption("#signature-policy", "end");
  await page.getByText("Saved", { exact: false }).waitFor();
  const saved = await page.locator("#signature-policy").evaluate((s) => s.closest(".panel").querySelector('p[role="status"].muted.small:last-child')?.textContent ?? "");
  await state.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(args.out, `signed-studio-${args.viewport}.png`) });
  await page.locator("#delay-breakdown").scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(args.out, `signed-studio-delay-${args.viewport}.png`) });
  await ctx.close();
  return { run: "studio", final: "verified", text, saved, drop_offered: dropOffered, delay_stages: delayStages, errors };
}

const visits = [];
let browser;
let mitm;
try {
  mitm = await manInTheMiddle();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const options = args.viewport === "phone"
    ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { viewport: { width: 1280, height: 800 } };
  for (const run of args.runs.split(",")) {
    if (run === "studio") {
      visits.push(await studio(options));
      continue;
    }
    const [mode, tamper] = run.split("-");
    const origin = tamper ? mitm.origin : base.origin;
    mitm.stats.armedAt = tamper ? Date.now() + Number(args.after) * 1000 : null;
    mitm.stats.tampered = 0; // what this visit's responses had changed
    const ctx = await browser.newContext(options);
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const url = `${origin}/b/${encodeURIComponent(args.id)}${mode === "flv" ? "?mode=flv" : ""}`;
    log(`${run}: ${url}`);
    await page.goto(url);
    // Follow the badge: every state it shows, until it says verified twice over (clean) or
    // tampered, or 30 s pass.
    const states = [];
    let last = null;
    const deadline = Date.now() + 30_000;
    let info = null;
    while (Date.now() < deadline) {
      info = await page.evaluate(() => {
        const chip = document.querySelector("#signature");
        const video = document.querySelector("video");
        return { state: chip && !chip.hidden ? chip.dataset.state : null, text: chip?.textContent, title: chip?.title ?? "", time: video?.currentTime ?? 0 };
      });
      if (info.state !== last) {
        states.push(info.state);
        last = info.state;
        log(`${run}: ${info.state} ${info.title}`);
      }
      const records = Number(/\((\d+) record/.exec(info.title)?.[1] ?? 0);
      if (info.state === "tampered" || (!tamper && info.state === "verified" && records >= 3 && info.time > 2)) break;
      await page.waitForTimeout(200);
    }
    await page.screenshot({ path: path.join(args.out, `signed-${run}-${args.viewport}.png`) });
    visits.push({ run, states, final: info?.state, text: info?.text, title: info?.title, playing: info?.time, errors, tampered_responses: tamper ? mitm.stats.tampered : 0 });
    await ctx.close();
  }
  console.log(JSON.stringify({ visits }));
} catch (e) {
  console.error(`signed badge check failed: ${e?.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser?.close();
  // The proxy's upstream streams last as long as the broadcast: leave them.
  process.exit(process.exitCode ?? 0);
}
