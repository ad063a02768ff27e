// What happened while I was away (/notifications), and the choice of browser
// notifications (asked for with a button, never on load).
import { h, fill, api, ago } from "../lib.js";
import { session, seenAlerts } from "../app.js";

export default async function notifications(main, _p, ctx) {
  document.title = "Alerts · livescope";
  if (!session.user) {
    fill(main, h("section.page.narrow", {}, h("h1", {}, "Alerts"), h("p", {}, h("a", { href: "/login?next=/notifications" }, "Log in"), " to be told when people you follow go live.")));
    return;
  }
  seenAlerts();
  const list = h("ul.list", { "aria-label": "Notifications" });
  const more = h("button.btn.small", { type: "button", hidden: true }, "Load more");
  const perm = h("p.muted.small", { role: "status" });
  const allow = h("button.btn", { type: "button", onclick: ask }, "Turn on browser notifications");
  function showPerm() {
    const supported = "Notification" in window;
    allow.hidden = !supported || Notification.permission !== "default";
    perm.textContent = !supported ? "This browser cannot show notifications."
      : Notification.permission === "granted" ? "Browser notifications are on: you are told when someone you follow goes live, even in another tab."
        : Notification.permission === "denied" ? "Browser notifications are blocked for this site (change it in the browser's site settings)."
          : "Get a browser notification when someone you follow goes live.";
  }
  async function ask() {
    await Notification.requestPermission();
    showPerm();
  }
  showPerm();
  let before = null;
  async function load() {
    const page = await api(`/api/me/notifications?limit=30${before ? `&before=${encodeURIComponent(before)}` : ""}`);
    if (!ctx.alive()) return;
    list.append(...page.notifications.map((n) => h("li", {},
      h("span", {}, h("strong", {}, n.owner || "Someone"), " went live", n.title ? [": ", n.title] : "", " · ", h("a", { href: `/b/${encodeURIComponent(n.broadcast_id)}` }, "watch")),
      h("span.muted.small", {}, ago(n.created_at)))));
    if (!list.children.length) list.append(h("li.muted", {}, "Nothing yet. Follow people to be told when they go live."));
    before = page.next || null;
    more.hidden = !before;
  }
  more.onclick = load;
  fill(main, h("div.page", {},
    h("div.hero", {}, h("h1", {}, "Alerts"), perm, allow),
    h("section.section", { "aria-label": "Missed" }, list, h("div", {}, more))));
  await load();
}
