// The web player, measured in a real browser (headless Chromium): a clock publisher
// (clock.mjs) goes live on livescope, and on a peer RTMP server in the same run when one is
// given; the watch page is opened cold and measured for
//   - time from opening the page to the first frame shown,
//   - camera-to-glass delay read from every frame shown, over --seconds, with LL-HLS
//     (the default) and with the "lowest delay" HTTP-FLV choice, and stalls,
//   - bytes transferred on a first visit, by kind (page and app code, player library,
//     API, media);
// and the peer's HLS is played by hls.js on a bare page with the same clock.
// Prints one JSON document.
//
//   node bench-webapp.mjs --base http://127.0.0.1:8080 --seconds 60 \
//       [--peer-rtmp rtmp://127.0.0.1:1936/live/bench --peer-hls http://127.0.0.1:8081/hls/bench.m3u8]
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import { publishClock, READER } from "./clock.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    seconds: { type: "string", default: "60" },
    "peer-rtmp": { type: "string" },
    "peer-hls": { type: "string" },
  },
});
const base = args.base;
const seconds = Number(args.seconds);

async function api(method, url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + url, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const percentile = (values, p) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const summary = (clock) => {
  const delays = clock.samples.map(([, d]) => d);
  return {
    frames: delays.length,
    unreadable: clock.unreadable,
    stalls: clock.stalls,
    delay_p50_ms: percentile(delays, 50),
    delay_p90_ms: percentile(delays, 90),
    delay_p99_ms: percentile(delays, 99),
    delay_max_ms: delays.length ? Math.max(...delays) : null,
    delay_mean_ms: delays.length ? Math.round(delays.reduce((a, b) => a + b, 0) / delays.length) : null,
  };
};

const name = `bench${Date.now() % 1e8}`;
await api("POST", "/api/users", { username: name, password: "bench password" });
const { token } = await api("POST", "/api/sessions", { username: name, password: "bench password" });
const created = await api("POST", "/api/broadcasts", { title: "clock" }, token);
const urls = [created.publish.rtmp];
if (args["peer-rtmp"]) urls.push(args["peer-rtmp"]);
const publisher = publishClock(urls);
for (let i = 0; i < 100; i++) {
  const b = await api("GET", `/api/broadcasts/${created.id}`);
  if (b.state === "live") break;
  await new Promise((r) => setTimeout(r, 100));
}
// Let the first segments exist, as they do for anyone who opens a page of a live broadcast.
await new Promise((r) => setTimeout(r, 3000));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});

/// What kind of bytes a URL is, for the page-weight table.
function kind(url) {
  const u = new URL(url);
  if (u.pathname.startsWith("/assets/")) return u.pathname.includes("/vendor/") ? "player_library" : "app_code";
  if (u.pathname.startsWith("/hls/") || u.pathname.startsWith("/live/")) return "media";
  if (u.pathname.startsWith("/api/")) return "api";
  return "page";
}

/// Opens the watch page in a fresh context (an empty cache: a first visit) and measures.
async function watch(mode) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const requests = new Map();
  const bytes = { page: 0, app_code: 0, player_library: 0, api: 0, media: 0 };
  cdp.on("Network.requestWillBeSent", (e) => requests.set(e.requestId, e.request.url));
  // WebSocket frames are not counted: the room's chatter is not page weight.
  // Media counts as it arrives (an HTTP-FLV body never finishes); the rest when loaded,
  // headers included.
  cdp.on("Network.loadingFinished", (e) => {
    const url = requests.get(e.requestId);
    if (url && url.startsWith("http") && kind(url) !== "media") bytes[kind(url)] += e.encodedDataLength;
  });
  cdp.on("Network.dataReceived", (e) => {
    const url = requests.get(e.requestId);
    if (url && kind(url) === "media") bytes.media += e.encodedDataLength;
  });
  await page.addInitScript(READER);
  const query = mode === "flv" ? "?mode=flv" : "";
  await page.goto(`${base}/b/${created.id}${query}`);
  if (mode === "flv") {
    // The page's own control, as a person would use it, when the URL did not choose already.
    const select = page.locator("#mode");
    if ((await select.count()) && (await select.evaluate((el) => el.tagName)) === "SELECT") {
      const current = await select.inputValue();
      if (!/flv|low/i.test(current)) {
        const options = await select.locator("option").evaluateAll((os) => os.map((o) => o.value));
        const choice = options.find((v) => /flv|low/i.test(v));
        if (choice) await select.selectOption(choice);
      }
    }
  }
  await page.waitForFunction(() => window.__clock && window.__clock.first !== null, null, { timeout: 20000 });
  const first = await page.evaluate(() => window.__clock.first);
  const firstFrameBytes = { ...bytes };
  // The delay over the run, from frames shown after the player settled at its live edge.
  await page.evaluate(() => { window.__clock.samples.length = 0; window.__clock.stalls = 0; window.__clock.unreadable = 0; });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const clock = await page.evaluate(() => window.__clock);
  const result = {
    mode,
    first_frame_ms: Math.round(first),
    bytes_until_first_frame: firstFrameBytes,
    bytes_after_run: { ...bytes },
    ...summary(clock),
  };
  await context.close();
  return result;
}

/// The peer's HLS, played by hls.js with its defaults on a bare page, measured the same way.
async function peer(src) {
  const page = await browser.newPage();
  await page.setContent('<video id="player" muted autoplay playsinline></video>');
  await page.evaluate(READER);
  await page.addScriptTag({ path: path.join(here, "node_modules/hls.js/dist/hls.min.js") });
  await page.evaluate((src) => {
    const hls = new Hls();
    hls.loadSource(src);
    hls.attachMedia(document.getElementById("player"));
    document.getElementById("player").play().catch(() => {});
  }, src);
  await page.waitForFunction(() => window.__clock.first !== null, null, { timeout: 30000 });
  await page.evaluate(() => { window.__clock.samples.length = 0; window.__clock.stalls = 0; });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const clock = await page.evaluate(() => window.__clock);
  await page.close();
  return { mode: "peer-hls (hls.js defaults)", ...summary(clock) };
}

try {
  const report = { seconds, runs: [] };
  report.runs.push(await watch("hls"));
  report.runs.push(await watch("flv"));
  if (args["peer-hls"]) report.runs.push(await peer(args["peer-hls"]));
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
  await publisher.stop();
}
