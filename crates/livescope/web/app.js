// The app shell: who is logged in, the header, client-side routing (History API) and the
// go-live notices from the event stream.
import { h, fill, api } from "./lib.js";

/** Who is logged in (username), or null. */
export const session = { user: null };

const routes = [
  [/^\/$/, () => import("./pages/discover.js")],
  [/^\/b\/([^/]+)\/?$/, () => import("./pages/watch.js")],
  [/^\/(login|register)\/?$/, () => import("./pages/auth.js")],
  [/^\/u\/([^/]+)\/?$/, () => import("./pages/profile.js")],
  [/^\/studio(?:\/([^/]+))?\/?$/, () => import("./pages/studio.js")],
  [/^\/notifications\/?$/, () => import("./pages/notifications.js")],
];

let cleanup = null;
let seq = 0;
let unseen = 0;

export function navigate(url, replace = false) {
  history[replace ? "replaceState" : "pushState"](null, "", url);
  render(true);
}

async function render(focus) {
  const my = ++seq;
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const main = document.getElementById("main");
  const path = location.pathname;
  const route = routes.find(([re]) => re.test(path));
  fill(main);
  header();
  if (!route) {
    document.title = "Not found · livescope";
    fill(main, h("section.page.narrow", {}, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/" }, "Back to live broadcasts"))));
    return;
  }
  try {
    // Inside the try: a malformed %-escape in a typed URL is an error to show, not a blank page.
    const params = path.match(route[0]).slice(1).map((p) => p && decodeURIComponent(p));
    const mod = await route[1]();
    if (my !== seq) return;
    const ctx = { alive: () => my === seq, query: new URLSearchParams(location.search) };
    const done = await mod.default(main, params, ctx);
    if (my === seq) cleanup = done || null;
    else if (done) done();
  } catch (e) {
    console.error(e);
    if (my === seq) fill(main, h("section.page.narrow", {}, h("h1", {}, "Something went wrong"), h("p.error", { role: "alert" }, e.message)));
  }
  if (focus && my === seq) main.focus({ preventScroll: true });
  if (focus) scrollTo(0, 0);
}

/** The header: brand, navigation, and who is logged in. */
function header() {
  const path = location.pathname;
  const link = (href, text, extra) =>
    h("a.nav-link", { href, "aria-current": (href === "/" ? path === "/" : path.startsWith(href)) ? "page" : null }, text, extra);
  const nav = h("nav.nav", { "aria-label": "Main" }, link("/", "Discover"), link("/studio", "Go live"));
  const who = h("div.who");
  if (session.user) {
    nav.append(link("/notifications", "Alerts", unseen ? h("span.count", { "aria-label": `${unseen} new` }, String(unseen)) : null));
    who.append(
      h("a.me", { href: `/u/${encodeURIComponent(session.user)}`, id: "me" }, h("span.avatar", { "aria-hidden": "true" }, session.user[0].toUpperCase()), h("span.me-name", {}, session.user)),
      h("button.btn.ghost.small", { type: "button", onclick: logout }, "Log out"),
    );
  } else {
    const next = path === "/login" || path === "/register" ? "" : `?next=${encodeURIComponent(path + location.search)}`;
    who.append(h("a.btn.ghost.small", { href: "/login" + next }, "Log in"), h("a.btn.primary.small", { href: "/register" + next }, "Create account"));
  }
  fill(
    document.getElementById("top"),
    h("a.brand", { href: "/", "aria-label": "livescope home" }, h("span.dot", { "aria-hidden": "true" }), "livescope"),
    nav,
    who,
  );
}

async function logout() {
  try { await api("/api/sessions", { method: "DELETE" }); } catch { /* already logged out */ }
  // Stream keys kept for this tab's dashboard leave with the person.
  for (const k of Object.keys(sessionStorage)) if (k.startsWith("livescope-key:")) sessionStorage.removeItem(k);
  setUser(null);
  navigate("/");
}

let events = null;

/** Sets who is logged in, and (re)opens the event stream for them. */
export function setUser(name) {
  session.user = name;
  if (events) events.close();
  events = null;
  if (name) {
    events = new EventSource("/api/me/events");
    events.addEventListener("broadcast_started", (e) => {
      try { started(JSON.parse(e.data)); } catch (err) { console.error(err); }
    });
  }
  header();
}

/** Someone this person follows went live: a notice in the page, and a browser
 * notification when they allowed them. */
function started(ev) {
  unseen++;
  dispatchEvent(new CustomEvent("livescope:started", { detail: ev }));
  header();
  const who = ev.owner || "Someone";
  const href = `/b/${encodeURIComponent(ev.broadcast_id)}`;
  if (location.pathname === href) return; // already watching it
  const area = document.getElementById("notice-area");
  const close = () => notice.remove();
  const notice = h(
    "div.notice#notice",
    { role: "status" },
    h("span.badge.live", {}, "Live"),
    h("p", {}, h("strong", {}, who), " is live", ev.title ? [": ", h("span.notice-title", {}, ev.title)] : ""),
    h("a.btn.primary.small", { href, onclick: close }, "Watch"),
    h("button.icon-btn", { type: "button", "aria-label": "Dismiss", onclick: close }, "×"),
  );
  document.getElementById("notice")?.remove();
  area.append(notice);
  // Transient: it covers the top of the page, and Alerts keeps the list.
  setTimeout(close, 15000);
  if ("Notification" in window && Notification.permission === "granted") {
    const n = new Notification(`${who} is live`, { body: ev.title || "", tag: ev.broadcast_id, icon: new URL("./icon.svg", import.meta.url).href });
    n.onclick = () => { window.focus(); navigate(href); n.close(); };
  }
}

export const seenAlerts = () => { unseen = 0; header(); };

document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || /^\/(api|hls|live|assets)\//.test(url.pathname)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
addEventListener("popstate", () => render(false));

try {
  const me = await api("/api/me");
  setUser(me.username);
} catch {
  setUser(null);
}
render(false);
