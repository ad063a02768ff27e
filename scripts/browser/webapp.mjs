// The web app, used the way people use it, in headless Chromium: people register and log in
// through the pages, a broadcaster creates a broadcast in the dashboard and goes live with
// the key it shows (ffmpeg publishes the clip in a loop), a follower is told, two viewers
// watch near the live edge, heart, comment and vote, the broadcaster moderates, the
// broadcast ends and its replay shows the comments at their moments. Also: a cross-origin
// form cannot create a broadcast with the session cookie, and axe-core finds no serious or
// critical accessibility violation on any page. Prints one JSON line of measurements.
//
//   node webapp.mjs --base http://127.0.0.1:8080 --clip clip.flv --out DIR [--viewport desktop|phone]
import { chromium } from "playwright-core";
import { generateKeyPairSync } from "node:crypto";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    clip: { type: "string" },
    out: { type: "string", default: "." },
    viewport: { type: "string", default: "desktop" },
    // Accepted for compatibility; the clip is looped and stopped when the flow is done.
    seconds: { type: "string" },
  },
});
if (!args.base || !args.clip) {
  console.error("usage: node webapp.mjs --base http://HOST:PORT --clip CLIP --out DIR [--viewport desktop|phone]");
  process.exit(2);
}
const base = args.base.replace(/\/$/, "");
const vp = args.viewport;
assert.ok(["desktop", "phone"].includes(vp), "--viewport is desktop or phone");
mkdirSync(args.out, { recursive: true });

const T = { short: 10_000, media: 25_000 };
const started = Date.now();
const report = { viewport: vp };
const suffix = Math.random().toString(36).slice(2, 7);
const users = { host: `host_${suffix}`, ann: `ann_${suffix}`, bob: `bob_${suffix}` };
const PASSWORD = "correct horse battery";
let step = "start";
let ffmpeg = null;
let browser = null;
let evil = null;
const pages = {};

const log = (msg) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
async function run(name, fn) {
  step = name;
  log(name);
  return fn();
}

async function fail(err) {
  console.error(`webapp flow (${vp}) failed at step "${step}": ${err?.stack || err}`);
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: path.join(args.out, `${vp}-failure-${name}.png`) }).catch(() => {});
  }
  await cleanup();
  process.exit(1);
}
async function cleanup() {
  if (ffmpeg && ffmpeg.exitCode === null) ffmpeg.kill("SIGKILL");
  evil?.close();
  await browser?.close().catch(() => {});
}
const watchdog = setTimeout(() => fail(new Error("the whole flow took over 240 s")), 240_000);

// A whole-page picture is taken from the top: scrolled, the sticky header would be drawn
// across the middle of it.
const shot = async (page, name) => {
  const fullPage = vp === "phone" || name === "dashboard";
  if (fullPage) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(args.out, `${vp}-${name}.png`), fullPage });
};

const axeSource = readFileSync(path.join(here, "node_modules/axe-core/axe.min.js"), "utf8");
async function axe(page, name) {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(`${axeSource};0`);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.axe ??= {};
  report.axe[name] = result.violations.map((v) => `${v.id}:${v.impact}`);
  assert.equal(bad.length, 0, `axe-core on the ${name} page: ${bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
}

async function register(page, name) {
  await page.goto(`${base}/register`);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account", exact: true }).click();
  await page.getByRole("button", { name: "Log out", exact: true }).waitFor({ timeout: T.short });
}

async function login(page, name) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in", exact: true }).click();
  await page.getByRole("button", { name: "Log out", exact: true }).waitFor({ timeout: T.short });
  assert.match(await page.locator("header").innerText(), new RegExp(name));
}

/** Waits for the player to advance by 1 s; returns the time it took from the call. */
async function playing(page, sel = "video#player") {
  const t0 = Date.now();
  const start = await page.locator(sel).evaluate((v) => v.currentTime);
  await page.waitForFunction(({ sel, start }) => {
    const v = document.querySelector(sel);
    return v && v.currentTime > start + 1 && v.readyState >= 2;
  }, { sel, start }, { timeout: T.media });
  return Date.now() - t0;
}

/** Waits until the latency badge shows a value under 2 s; returns it. */
async function nearLive(page) {
  await page.waitForFunction(() => {
    const el = document.querySelector("#latency");
    return el?.dataset.ms && Number(el.dataset.ms) < 2000 && /behind live/.test(el.textContent);
  }, null, { timeout: T.media });
  return Number(await page.locator("#latency").getAttribute("data-ms"));
}

const numberIn = (page, sel) => page.locator(sel).innerText().then((t) => Number(t.replace(/[^\d]/g, "")));
async function waitNumber(page, sel, atLeast) {
  await page.waitForFunction(({ sel, atLeast }) => Number(document.querySelector(sel)?.textContent.replace(/[^\d]/g, "")) >= atLeast, { sel, atLeast }, { timeout: T.short });
}

/** A second origin (another loopback port) whose page posts a form to the API. */
function evilOrigin(title) {
  const page = `<!doctype html><form id="f" method="POST" action="${base}/api/broadcasts" enctype="text/plain">
<input type="hidden" name='{"title":"${title}","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`;
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(page);
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
  });
  const options = vp === "phone"
    ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { viewport: { width: 1280, height: 800 } };
  const context = async (name, extra = {}) => {
    const ctx = await browser.newContext({ ...options, ...extra });
    const page = await ctx.newPage();
    page.setDefaultTimeout(T.short);
    page.on("pageerror", (e) => log(`${name}: page error: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && !/Failed to load resource/.test(m.text()) && log(`${name}: console: ${m.text()}`));
    pages[name] = page;
    return page;
  };
  const host = await context("host");
  // Ann has allowed browser notifications; the page's Notification is watched so the test
  // sees what she would see.
  const ann = await context("ann", { permissions: ["notifications"] });
  await ann.addInitScript(() => {
    const Real = window.Notification;
    window.__notifications = [];
    if (Real) {
      window.Notification = class extends Real {
        constructor(title, options) {
          super(title, options);
          window.__notifications.push(title);
        }
      };
    }
  });
  const bob = await context("bob");

  await run("register and log in through the pages", async () => {
    await register(host, users.host);
    await register(ann, users.ann);
    await register(bob, users.bob);
    await bob.getByRole("button", { name: "Log out", exact: true }).click();
    await bob.getByRole("link", { name: "Log in", exact: true }).first().waitFor();
    await login(bob, users.bob);
  });

  await run("the login and register pages", async () => {
    const anon = await context("anon");
    await anon.goto(`${base}/login`);
    await anon.getByLabel("Username").waitFor();
    await shot(anon, "login");
    await axe(anon, "login");
    await anon.goto(`${base}/register`);
    await anon.getByLabel("Password").waitFor();
    await shot(anon, "register");
  });

  await run("ann follows the broadcaster from the profile page, which shows the broadcaster's signing key", async () => {
    // The broadcaster registers an account key (made here as `livescope keygen` would).
    const { publicKey } = generateKeyPairSync("ed25519");
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64");
    const registered = await host.evaluate(async (key) => {
      const res = await fetch("/api/keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ public_key: key }) });
      return { status: res.status, body: await res.json() };
    }, raw);
    assert.equal(registered.status, 201, JSON.stringify(registered));
    await ann.goto(`${base}/u/${users.host}`);
    const shownKey = ann.locator("#signing-keys code.fingerprint");
    await shownKey.waitFor();
    assert.equal(await shownKey.innerText(), registered.body.fingerprint, "the profile shows the key's fingerprint");
    await ann.getByRole("button", { name: "Follow", exact: true }).click();
    await ann.getByRole("button", { name: "Unfollow", exact: true }).waitFor();
    assert.equal(await numberIn(ann, "#followers-count"), 1);
    await shot(ann, "profile");
    await axe(ann, "profile");
    await ann.goto(`${base}/`);
    await ann.getByRole("heading", { name: "Live now" }).waitFor();
  });

  let id;
  let publishUrl;
  await run("the broadcaster creates a broadcast in the dashboard", async () => {
    await host.goto(`${base}/studio`);
    await host.locator("#title").fill(`Web flow ${suffix} <b>not bold</b>`);
    await shot(host, "studio");
    await host.getByRole("button", { name: "Create broadcast", exact: true }).click();
    await host.waitForURL(/\/studio\/[A-Za-z0-9]+$/, { timeout: T.short });
    id = new URL(host.url()).pathname.split("/").pop();
    const key = await host.locator("#stream-key").inputValue();
    const server = await host.locator("#obs-server").inputValue();
    assert.match(key, /^live_/, "the dashboard shows the stream key");
    assert.match(server, /^rtmp:\/\/.+\/live$/, "the dashboard shows the OBS server");
    assert.ok((await host.locator("#ffmpeg-line").innerText()).includes(`${server}/${key}`), "the ffmpeg line publishes with the key");
    publishUrl = `${server}/${key}`;
    report.broadcast = id;
  });

  let liveAt;
  await run("ffmpeg publishes with the shown key; the follower is told", async () => {
    ffmpeg = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", args.clip, "-c", "copy", "-f", "flv", publishUrl], { stdio: ["ignore", "ignore", "pipe"] });
    let ffErr = "";
    ffmpeg.stderr.on("data", (d) => { ffErr += d; });
    ffmpeg.on("exit", (code) => code && log(`ffmpeg exited ${code}: ${ffErr.trim()}`));
    liveAt = Date.now();
    const notice = ann.locator("#notice");
    await notice.waitFor({ timeout: T.media });
    report.notice_ms = Date.now() - liveAt;
    assert.ok((await notice.innerText()).includes(users.host), "the notice names the broadcaster");
    assert.equal(await notice.getByRole("link", { name: "Watch", exact: true }).getAttribute("href"), `/b/${id}`);
    // Pictured once it has finished sliding in.
    await notice.evaluate((el) => Promise.all(el.getAnimations().map((a) => a.finished)));
    await shot(ann, "notice");
    const shown = await ann.evaluate(() => window.__notifications);
    assert.ok(shown.some((t) => t.includes(users.host)), `a browser notification names the broadcaster: ${JSON.stringify(shown)}`);
    await notice.getByRole("link", { name: "Watch", exact: true }).click();
    await ann.waitForURL(`${base}/b/${id}`);
    await bob.goto(`${base}/b/${id}`);
  });

  await run("both viewers play near the live edge", async () => {
    const [a, b] = await Promise.all([playing(ann), playing(bob)]);
    report.first_progress_ms = { ann: a, bob: b };
    report.latency_ms = { ann: await nearLive(ann), bob: await nearLive(bob) };
    report.time_to_play_ms = Date.now() - liveAt;
    await host.locator("#preview").evaluate((v) => v.currentTime > 0 || new Promise((r) => v.addEventListener("timeupdate", r, { once: true })));
  });

  const annText = `hello from ann ${suffix} <i>&amp;</i>`;
  await run("ann sends hearts and a comment; bob and the dashboard see them", async () => {
    // Late enough in the stream that the replay can start before the comment's moment.
    await ann.waitForFunction(() => Number(document.querySelector("video#player")?.dataset.streamMs) > 6000, null, { timeout: T.media });
    for (let i = 0; i < 5; i++) await ann.locator("#heart").click();
    await ann.locator("#comment-input").fill(annText);
    await ann.getByRole("button", { name: "Send", exact: true }).click();
    const onBob = bob.locator("#comments li.comment", { hasText: annText });
    await onBob.waitFor();
    assert.equal(await onBob.locator(".comment-user").innerText(), users.ann);
    assert.equal(await onBob.locator(".comment-text").innerText(), annText, "comment text is shown as text");
    await waitNumber(bob, "#hearts-total", 5);
    const onDash = host.locator("#dash-comments li.comment", { hasText: annText });
    await onDash.waitFor();
    await waitNumber(host, "#dash-hearts-total", 5);
    // The comment is placed on the stream time ann was watching: a little behind the live edge.
    const mediaTs = Number(await onDash.getAttribute("data-media-ts"));
    const b = await host.evaluate(async (id) => (await fetch(`/api/broadcasts/${id}`)).json(), id);
    const edge = Date.now() - Date.parse(b.started_at);
    report.comment_media_ts = mediaTs;
    report.comment_behind_estimated_edge_ms = edge - mediaTs;
    assert.ok(edge - mediaTs > -1500 && edge - mediaTs < 6000, `comment media_ts ${mediaTs} is near the live edge (${edge} ms since start)`);
    assert.match(await onDash.locator(".when").innerText(), /answered [\d.]+ s into the stream/);
    const hearts = host.locator("#dash-hearts li").first();
    const from = Number(await hearts.getAttribute("data-from"));
    assert.ok(Math.abs(from - mediaTs) < 15000, `hearts' media_ts ${from} is near the comment's ${mediaTs}`);
  });

  await run("the broadcaster opens a poll; both vote; totals and the result show", async () => {
    await host.locator("#poll-question").fill("Pineapple on pizza?");
    await host.locator("#poll-option-1").fill("Yes");
    await host.locator("#poll-option-2").fill("No");
    await host.locator("#poll-seconds").fill("6");
    await host.getByRole("button", { name: "Open poll", exact: true }).click();
    for (const page of [ann, bob]) await page.locator("#poll").getByRole("button", { name: "Yes", exact: true }).waitFor();
    await ann.locator("#poll").getByRole("button", { name: "Yes", exact: true }).click();
    await bob.locator("#poll").getByRole("button", { name: "No", exact: true }).click();
    const totals = (sel) => (page) => page.waitForFunction((sel) => {
      const t = [...document.querySelectorAll(`${sel} [data-total]`)].map((e) => Number(e.dataset.total));
      return t.length === 2 && t[0] === 1 && t[1] === 1;
    }, sel, { timeout: T.short });
    await Promise.all([totals("#poll")(ann), totals("#poll")(bob), totals("#dash-poll")(host)]);
    await ann.waitForFunction(() => document.querySelector("#poll")?.dataset.state !== "open", null, { timeout: T.short + 6000 });
    assert.match(await ann.locator("#poll").innerText(), /Clos/);
    await shot(ann, "watch");
    await shot(bob, "watch-bob");
  });

  await run("the broadcaster mutes bob; his next comment is refused", async () => {
    await bob.locator("#comment-input").fill(`bob was here ${suffix}`);
    await bob.getByRole("button", { name: "Send", exact: true }).click();
    const row = host.locator("#dash-comments li.comment", { hasText: `bob was here ${suffix}` });
    await row.waitFor();
    await shot(host, "dashboard");
    await row.getByRole("button", { name: `Mute ${users.bob}`, exact: true }).click();
    let refused = false;
    for (let i = 0; i < 4 && !refused; i++) {
      await bob.locator("#comment-input").fill(`still talking ${i}`);
      await bob.getByRole("button", { name: "Send", exact: true }).click();
      refused = await bob.locator("#room-error", { hasText: /muted/i }).waitFor({ timeout: 3000 }).then(() => true, () => false);
    }
    assert.ok(refused, "#room-error says bob is muted");
    assert.equal(await host.locator("#dash-comments li.comment", { hasText: "still talking" }).count(), 0, "the muted comment reached nobody");
  });

  await run("the broadcaster deletes a comment; it is gone for the viewers", async () => {
    const text = `bob was here ${suffix}`;
    await bob.locator("#comments li.comment", { hasText: text }).waitFor();
    await host.locator("#dash-comments li.comment", { hasText: text }).getByRole("button", { name: `Delete ${users.bob}'s comment`, exact: true }).click();
    await bob.locator("#comments li.comment", { hasText: text }).waitFor({ state: "detached" });
    await ann.locator("#comments li.comment", { hasText: text }).waitFor({ state: "detached" });
  });

  await run("bob chooses the lowest delay (HTTP-FLV) and plays closer to live", async () => {
    await bob.locator("#mode").selectOption("flv");
    await playing(bob);
    await bob.waitForFunction(() => {
      const el = document.querySelector("#latency");
      return el?.dataset.ms && Number(el.dataset.ms) < 1000;
    }, null, { timeout: T.media });
    report.flv_latency_ms = Number(await bob.locator("#latency").getAttribute("data-ms"));
  });

  await run("axe-core on the watch page, the dashboard and discover", async () => {
    await axe(bob, "watch");
    await axe(host, "dashboard");
    const anon = pages.anon;
    await anon.goto(`${base}/`);
    await anon.locator(".card", { hasText: `Web flow ${suffix}` }).waitFor({ timeout: T.short });
    await anon.locator(".card video").first().evaluate((v) => v.readyState >= 2 || new Promise((r) => { v.addEventListener("loadeddata", r, { once: true }); setTimeout(r, 5000); }));
    await shot(anon, "discover");
    await axe(anon, "discover");
  });

  await run("a cross-origin form post with the session cookie is refused", async () => {
    const title = `csrf-${suffix}`;
    evil = await evilOrigin(title);
    const port = evil.address().port;
    const page = await host.context().newPage();
    const answer = page.waitForResponse((r) => r.url() === `${base}/api/broadcasts` && r.request().method() === "POST", { timeout: T.short });
    await page.goto(`http://127.0.0.1:${port}/`);
    const res = await answer;
    report.cross_origin_status = res.status();
    assert.equal(res.status(), 403, "the cross-origin post is refused");
    await page.close();
    const mine = await host.evaluate(async () => (await fetch("/api/me/broadcasts")).json());
    assert.ok(!mine.broadcasts.some((b) => b.title === title), "no broadcast was created from the other origin");
  });

  await run("a private broadcast plays for its invited viewer and is refused to others", async () => {
    const studio = await host.context().newPage();
    await studio.goto(`${base}/studio`);
    await studio.locator("#title").fill(`Private ${suffix}`);
    await studio.locator("#private").check();
    await studio.locator("#allowed-viewers").fill(users.ann);
    await studio.getByRole("button", { name: "Create broadcast", exact: true }).click();
    await studio.waitForURL(/\/studio\/[A-Za-z0-9]+$/, { timeout: T.short });
    const pid = new URL(studio.url()).pathname.split("/").pop();
    const url = `${await studio.locator("#obs-server").inputValue()}/${await studio.locator("#stream-key").inputValue()}`;
    const privateFfmpeg = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", args.clip, "-c", "copy", "-f", "flv", url], { stdio: "ignore" });
    try {
      // Ann, invited, plays it (media and room carry the playback token) and comments.
      const annPrivate = await ann.context().newPage();
      await annPrivate.goto(`${base}/b/${pid}`);
      await playing(annPrivate);
      const text = `only for ann ${suffix}`;
      await annPrivate.locator("#comment-input").fill(text);
      await annPrivate.getByRole("button", { name: "Send", exact: true }).click();
      await studio.locator("#dash-comments li.comment", { hasText: text }).waitFor({ timeout: T.short });
      await annPrivate.close();
      // Bob, not invited, is told it is private; so is a stranger.
      const bobPrivate = await bob.context().newPage();
      await bobPrivate.goto(`${base}/b/${pid}`);
      await bobPrivate.getByText("This broadcast is private.").waitFor();
      await bobPrivate.close();
      await pages.anon.goto(`${base}/b/${pid}`);
      await pages.anon.getByText("This broadcast is private.").waitFor();
    } finally {
      privateFfmpeg.kill("SIGKILL");
      await studio.close();
    }
  });

  await run("ffmpeg stops; the watch page says the broadcast ended", async () => {
    ffmpeg.kill("SIGINT");
    const endedAt = Date.now();
    await ann.locator("#ended").waitFor({ state: "visible", timeout: T.media });
    report.ended_shown_ms = Date.now() - endedAt;
    assert.match(await ann.locator("#ended").innerText(), /This broadcast has ended/);
    await shot(ann, "ended");
  });

  await run("the replay plays with its comments at their moments", async () => {
    const mediaTs = report.comment_media_ts;
    await ann.getByRole("button", { name: "Watch the replay", exact: true }).click();
    await playing(ann);
    await ann.waitForFunction(() => document.querySelector("video#player")?.dataset.streamMs, null, { timeout: T.short });
    const at = async () => Number(await ann.locator("video#player").getAttribute("data-stream-ms"));
    const comment = ann.locator("#comments li.comment", { hasText: annText });
    // Seek to 3 s before the comment (paused, so a slow seek cannot overshoot): it is not
    // shown yet, then shows at its moment once playing.
    const seek = await ann.locator("video#player").evaluate((v, ms) => new Promise((resolve) => {
      v.pause();
      const from = { currentTime: v.currentTime, streamMs: v.dataset.streamMs };
      const to = Math.max(0, v.currentTime + (ms - 3000 - Number(v.dataset.streamMs)) / 1000);
      const done = () => resolve({ ...from, to, seekedTo: v.currentTime });
      v.addEventListener("seeked", done, { once: true });
      setTimeout(done, 5000);
      v.currentTime = to;
    }), mediaTs);
    log(`replay seek: ${JSON.stringify(seek)} for a comment at ${mediaTs}`);
    await ann.waitForFunction((ms) => {
      const t = Number(document.querySelector("video#player").dataset.streamMs);
      return t > ms - 5000 && t < ms - 1000;
    }, mediaTs, { timeout: T.short });
    assert.equal(await comment.count(), 0, "the comment is not shown before its moment");
    await ann.locator("video#player").evaluate((v) => v.play());
    await comment.waitFor({ timeout: T.short });
    const shownAt = await at();
    report.replay_comment_shown_at_ms = shownAt;
    assert.ok(shownAt >= mediaTs - 300 && shownAt < mediaTs + 2000, `the comment (at ${mediaTs}) showed at stream time ${shownAt}`);
    await waitNumber(ann, "#hearts-total", 5);
    await shot(ann, "replay");
    // At the end of the recording the poll shows as closed, with its result.
    await ann.locator("video#player").evaluate((v) => { v.currentTime = Math.max(0, v.duration - 1); });
    await ann.waitForFunction(() => document.querySelector("#poll")?.dataset.state === "closed", null, { timeout: T.short });
    // Seeking back before it takes it away again.
    await ann.locator("video#player").evaluate((v) => { v.currentTime = 0.1; });
    await comment.waitFor({ state: "detached", timeout: T.short });
  });

  await run("notifications page", async () => {
    await ann.goto(`${base}/notifications`);
    await ann.locator("li", { hasText: users.host }).first().waitFor();
    await shot(ann, "notifications");
    await axe(ann, "notifications");
  });

  report.total_ms = Date.now() - started;
  clearTimeout(watchdog);
  await cleanup();
  console.log(JSON.stringify(report));
} catch (e) {
  await fail(e);
}
