// Going live from the browser, the way a person does it, in headless Chromium with its
// fake camera (two of them) and microphone: the broadcaster logs in, creates a broadcast
// in the studio, turns the camera on, switches camera, presses Go live (WHIP); ffprobe
// reads the broadcast over RTMP, HTTP-FLV and LL-HLS; one viewer watches over WebRTC
// (WHEP), another over LL-HLS; hearts and a comment reach the studio; End broadcast
// (DELETE) ends it for everyone. Prints one JSON line of what it measured.
//
//   node golive.mjs --base http://127.0.0.1:8080 --out DIR [--viewport desktop|phone]
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    out: { type: "string", default: "." },
    viewport: { type: "string", default: "desktop" },
  },
});
if (!args.base) {
  console.error("usage: node golive.mjs --base http://HOST:PORT --out DIR [--viewport desktop|phone]");
  process.exit(2);
}
const base = args.base.replace(/\/$/, "");
const vp = args.viewport;
mkdirSync(args.out, { recursive: true });
const T = { short: 10_000, media: 30_000 };
const started = Date.now();
const report = { viewport: vp };
const suffix = Math.random().toString(36).slice(2, 7);
const users = { host: `live_${suffix}`, ann: `ann_${suffix}` };
const PASSWORD = "correct horse battery";
let step = "start";
let browser = null;
const pages = {};

const log = (msg) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
async function run(name, fn) {
  step = name;
  log(name);
  return fn();
}
async function fail(err) {
  console.error(`go-live flow (${vp}) failed at step "${step}": ${err?.stack || err}`);
  for (const [name, page] of Object.entries(pages)) {
    const videos = await page.evaluate(() => [...document.querySelectorAll("video")].map((v) => ({
      id: v.id, width: v.videoWidth, time: v.currentTime, ready: v.readyState, error: v.error?.message ?? null,
    }))).catch(() => []);
    console.error(`${name}: ${JSON.stringify(videos)}`);
    await page.screenshot({ path: path.join(args.out, `${vp}-golive-failure-${name}.png`), fullPage: true }).catch(() => {});
  }
  await browser?.close().catch(() => {});
  process.exit(1);
}
setTimeout(() => fail(new Error("the whole flow took over 180 s")), 180_000).unref();
const shot = (page, name) => page.screenshot({ path: path.join(args.out, `${vp}-${name}.png`), fullPage: vp === "phone" });

/** ffprobe's streams of a URL: [{codec_type, codec_name, ...}]. */
function probe(url) {
  return new Promise((resolve, reject) => {
    execFile("ffprobe", ["-v", "error", "-rw_timeout", "15000000", "-analyzeduration", "3000000", "-show_streams", "-of", "json", url],
      { timeout: 40_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`ffprobe ${url}: ${err.message} ${stderr}`));
        resolve(JSON.parse(stdout).streams);
      });
  });
}

/** The first audio tag header of the HTTP-FLV stream (read for a few seconds). */
async function flvAudioHeader(url) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 8000);
  let buf = Buffer.alloc(0);
  try {
    const res = await fetch(url, { signal: abort.signal });
    for await (const chunk of res.body) {
      buf = Buffer.concat([buf, chunk]);
      // FLV: a 9-byte header and a 4-byte size, then tags of 11 + size + 4 bytes.
      for (let at = 13; at + 11 <= buf.length;) {
        const size = buf.readUIntBE(at + 1, 3);
        if (buf[at] === 8 && at + 16 <= buf.length) return buf.subarray(at + 11, at + 16);
        at += 11 + size + 4;
      }
    }
  } catch { /* aborted: nothing found */ } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return null;
}

async function login(page, name) {
  // The account is made over the API (the web app's own flow tests the register page);
  // the login is the page's.
  const made = await fetch(`${base}/api/users`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: name, password: PASSWORD }) });
  assert.equal(made.status, 201);
  await page.goto(`${base}/login`);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in", exact: true }).click();
  await page.getByRole("button", { name: "Log out", exact: true }).waitFor({ timeout: T.short });
}

/** Waits until the <video> shows frames and moves on by `secs`. */
async function playing(page, sel, secs = 1) {
  const t0 = Date.now();
  await page.waitForFunction((sel) => document.querySelector(sel)?.videoWidth > 0, sel, { timeout: T.media });
  const start = await page.locator(sel).evaluate((v) => v.currentTime);
  await page.waitForFunction(({ sel, start, secs }) => document.querySelector(sel).currentTime > start + secs, { sel, start, secs }, { timeout: T.media });
  return Date.now() - t0;
}

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
      // Three fake cameras (so that switching has somewhere to go: Chromium's second one
      // is a depth camera, whose 16-bit frames no encoder takes) and a fake microphone,
      // allowed without asking; WebRTC over loopback, where the test runs.
      "--use-fake-device-for-media-stream=device-count=3", "--use-fake-ui-for-media-stream",
      "--allow-loopback-in-peer-connection"],
  });
  const options = vp === "phone"
    ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { viewport: { width: 1280, height: 800 } };
  const context = async (name) => {
    const ctx = await browser.newContext({ ...options, permissions: ["camera", "microphone"] });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => log(`${name}: page error ${e.message}`));
    pages[name] = page;
    return page;
  };
  const host = await context("host");
  const ann = await context("ann");
  const anon = await context("anon");

  let id;
  await run("the broadcaster creates a broadcast in the studio", async () => {
    await login(host, users.host);
    await host.goto(`${base}/studio`);
    await host.locator("#title").fill(`Live from my ${vp}`);
    await host.getByRole("button", { name: "Create broadcast", exact: true }).click();
    await host.waitForURL(/\/studio\/[^/]+$/, { timeout: T.short });
    id = decodeURIComponent(new URL(host.url()).pathname.split("/").pop());
  });

  const switchCamera = async () => {
    const before = await host.locator("video#camera").evaluate((v) => v.srcObject.getVideoTracks()[0].getSettings().deviceId);
    await host.locator("#camera-switch").click();
    await host.waitForFunction((before) => {
      const t = document.querySelector("video#camera").srcObject?.getVideoTracks()[0];
      return t && t.readyState === "live" && t.getSettings().deviceId !== before;
    }, before, { timeout: T.short });
    await playing(host, "video#camera", 0.3);
  };
  await run("turns the camera on and switches camera", async () => {
    await host.locator("#camera-on").click();
    await playing(host, "video#camera", 0.5);
    // To the depth camera and on to the third.
    await switchCamera();
    await switchCamera();
    await shot(host, "golive-camera");
  });

  let broadcast;
  await run("goes live over WHIP", async () => {
    const t0 = Date.now();
    await host.locator("#go-live").click();
    await host.locator("#camera-status", { hasText: "You are live from this browser" }).waitFor({ timeout: T.media });
    const res = await fetch(`${base}/api/broadcasts/${encodeURIComponent(id)}`);
    broadcast = await res.json();
    assert.equal(broadcast.state, "live");
    // The studio's own preview (LL-HLS, what viewers see) plays.
    report.studio_preview_ms = await playing(host, "video#preview");
    report.go_live_to_preview_ms = Date.now() - t0;
    await host.locator("#end-live").waitFor();
  });

  await run("ffprobe reads it over RTMP, HTTP-FLV and LL-HLS", async () => {
    const urls = { rtmp: broadcast.watch.rtmp, flv: broadcast.watch.flv, hls: broadcast.watch.hls };
    const [rtmp, flv, hls, flvAudio] = await Promise.all([probe(urls.rtmp), probe(urls.flv), probe(urls.hls), flvAudioHeader(urls.flv)]);
    for (const [name, streams] of Object.entries({ rtmp, flv, hls })) {
      const video = streams.find((s) => s.codec_type === "video");
      assert.equal(video?.codec_name, "h264", `${name}: H.264 video`);
      assert.ok(video.width > 0 && video.height > 0, `${name}: a picture size`);
      assert.ok(streams.some((s) => s.codec_type === "audio"), `${name}: an audio stream`);
    }
    // LL-HLS carries Opus in fMP4; RTMP and HTTP-FLV carry it as Enhanced RTMP (FourCC
    // Opus), which this ffprobe (Debian's 5.1) lists as audio without naming it.
    assert.equal(hls.find((s) => s.codec_type === "audio").codec_name, "opus");
    assert.ok(flvAudio, "HTTP-FLV has audio tags");
    assert.equal(flvAudio[0] >> 4, 9, "an Enhanced RTMP audio tag");
    assert.equal(flvAudio.subarray(1, 5).toString(), "Opus");
    report.probed = { rtmp: rtmp.map((s) => s.codec_name), flv: flv.map((s) => s.codec_name), hls: hls.map((s) => s.codec_name) };
  });

  await run("a viewer watches over WebRTC (WHEP), another over LL-HLS", async () => {
    await login(ann, users.ann);
    await ann.goto(`${base}/b/${encodeURIComponent(id)}?mode=webrtc`);
    report.whep_first_play_ms = await playing(ann, "video#player");
    assert.equal(await ann.locator("video#player").getAttribute("data-mode"), "webrtc");
    assert.equal(await ann.locator("#mode").inputValue(), "webrtc");
    await anon.goto(`${base}/b/${encodeURIComponent(id)}`);
    report.hls_first_play_ms = await playing(anon, "video#player");
    assert.equal(await anon.locator("video#player").getAttribute("data-mode"), "hls");
    // Both count in the audience.
    await host.waitForFunction(() => Number(document.querySelector("#dash-viewers")?.textContent) >= 2, null, { timeout: T.media });
    await shot(ann, "golive-watch-webrtc");
  });

  await run("switching camera while live keeps the WebRTC viewer playing", async () => {
    const decoded = () => ann.evaluate(() => document.querySelector("video#player").getVideoPlaybackQuality().totalVideoFrames);
    // From the third camera back to the first.
    await switchCamera();
    const before = await decoded();
    await ann.waitForFunction((before) => document.querySelector("video#player").getVideoPlaybackQuality().totalVideoFrames > before + 30, before, { timeout: T.media });
  });

  await run("hearts and a comment reach the studio", async () => {
    const text = `hello from WebRTC ${suffix}`;
    for (let i = 0; i < 3; i++) await ann.locator("#heart").click();
    await ann.locator("#comment-input").fill(text);
    await ann.getByRole("button", { name: "Send", exact: true }).click();
    await host.locator("#dash-comments li.comment", { hasText: text }).waitFor({ timeout: T.short });
    await host.waitForFunction(() => Number(document.querySelector("#dash-hearts-total")?.textContent) >= 3, null, { timeout: T.short });
    await anon.locator("#comments li.comment", { hasText: text }).waitFor({ timeout: T.short });
    await shot(host, "golive-studio");
  });

  await run("an ICE restart and trickled candidates (PATCH) keep another WHIP publisher connected", async () => {
    const r = await host.evaluate(async () => {
      const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
      const made = await fetch("/api/broadcasts", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ title: "restart" }) });
      const b = await made.json();
      const { publish } = await import(document.querySelector("script[type=module]").src.replace("app.js", "whip.js"));
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
      const s = await publish(new URL(b.publish.whip).pathname, stream);
      const until = async (f, ms = 10_000) => { const t = Date.now(); while (!(await f())) { if (Date.now() - t > ms) return false; await sleep(100); } return true; };
      const pair = async () => {
        let id = null, pairs = {};
        (await s.pc.getStats()).forEach((x) => { if (x.type === "transport") id = x.selectedCandidatePairId; if (x.type === "candidate-pair") pairs[x.id] = x; });
        return id ? pairs[id] : null;
      };
      const connectedFirst = await until(() => s.pc.connectionState === "connected");
      const before = await pair();
      const ufrag = (sdp) => sdp.match(/a=ice-ufrag:(.*)/)[1].trim();
      const serverBefore = ufrag(s.pc.remoteDescription.sdp);
      await s.restart();
      const serverAfter = ufrag(s.pc.remoteDescription.sdp);
      // The new pair answers the browser's checks with the server's new credentials.
      const moved = await until(async () => { const p = await pair(); return p && p.id !== before.id && p.responsesReceived > 0; });
      // A trickled candidate is taken (204); one that does not parse is refused (400).
      const [lufrag, lpwd] = [ufrag(s.pc.localDescription.sdp), s.pc.localDescription.sdp.match(/a=ice-pwd:(.*)/)[1].trim()];
      const trickle = (line) => fetch(s.resource, { method: "PATCH", headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
        body: `a=ice-ufrag:${lufrag}\r\na=ice-pwd:${lpwd}\r\na=${line}\r\n` }).then((res) => res.status);
      const trickled = await trickle("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host");
      const halfRestart = await fetch(s.resource, { method: "PATCH", headers: { "Content-Type": "application/trickle-ice-sdpfrag" }, body: "a=ice-ufrag:only\r\n" }).then((res) => res.status);
      await sleep(2000);
      const state = s.pc.connectionState;
      const live = (await (await fetch(`/api/broadcasts/${b.id}`)).json()).state;
      await s.stop();
      stream.getTracks().forEach((t) => t.stop());
      await until(async () => (await (await fetch(`/api/broadcasts/${b.id}`)).json()).state === "ended");
      const after = (await (await fetch(`/api/broadcasts/${b.id}`)).json()).state;
      return { serverBefore, serverAfter, connectedFirst, moved, state, live, after, trickled, halfRestart };
    });
    assert.notEqual(r.serverAfter, r.serverBefore, "the server answered with new credentials");
    assert.ok(r.moved, "checks on the new candidate pair were answered");
    assert.equal(r.state, "connected");
    assert.equal(r.live, "live");
    assert.equal(r.after, "ended", "DELETE ended it");
    assert.ok(r.connectedFirst, "the publisher connected");
    assert.equal(r.trickled, 204, "a trickled candidate is taken");
    assert.equal(r.halfRestart, 400, "a restart with half its credentials is refused");
  });

  await run("End broadcast ends it for everyone", async () => {
    await host.locator("#end-live").click();
    await host.locator("#camera-status", { hasText: "ended" }).waitFor({ timeout: T.short });
    const res = await fetch(`${base}/api/broadcasts/${encodeURIComponent(id)}`);
    assert.equal((await res.json()).state, "ended");
    await anon.locator("#ended").waitFor({ state: "visible", timeout: T.media });
    await ann.locator("#ended").waitFor({ state: "visible", timeout: T.media });
  });

  await run("the replay plays", async () => {
    await anon.getByRole("button", { name: "Watch the replay", exact: true }).click();
    report.replay_first_play_ms = await playing(anon, "video#player");
  });

  await browser.close();
  report.seconds = Math.round((Date.now() - started) / 1000);
  console.log(JSON.stringify(report));
} catch (e) {
  await fail(e);
}
