// Discover: live now (by viewers, most recent or shuffled), live from people I follow,
// and recent replays.
import { h, fill, api, every } from "../lib.js";
import { grid } from "../cards.js";
import { session } from "../app.js";

const SORTS = [["viewers", "Most watched"], ["recent", "Most recent"], ["random", "Shuffled"]];

export default async function discover(main, _params, ctx) {
  document.title = "livescope · live now";
  let sort = ctx.query.get("sort") || sessionStorage.getItem("sort") || "viewers";
  const select = h("select#sort", { "aria-label": "Sort live broadcasts", onchange: () => { sort = select.value; sessionStorage.setItem("sort", sort); load(); } },
    SORTS.map(([v, t]) => h("option", { value: v, selected: v === sort }, t)));
  const following = h("div");
  const live = h("div", { "aria-busy": "true" });
  const replays = h("div");
  const section = (title, body, extra) =>
    h("section.section", { "aria-label": title }, h("div.section-head", {}, h("h2", {}, title), extra), body);
  const followSec = section("Live from people you follow", following);
  followSec.hidden = !session.user;
  fill(
    main,
    h("div.page", {},
      h("div.hero", {}, h("h1", {}, "Live now"), h("p.muted", {}, "Watch, heart and comment as it happens: every viewer sits about a second behind live."),
        h("a.btn.primary", { href: "/studio" }, "Go live")),
      followSec,
      section("Live broadcasts", live, select),
      section("Recent replays", replays),
    ),
  );
  async function load() {
    const [l, r, f] = await Promise.allSettled([
      api(`/api/broadcasts?state=live&sort=${sort}&limit=24`),
      api("/api/broadcasts?state=ended&sort=recent&limit=12"),
      session.user ? api("/api/feed") : Promise.resolve(null),
    ]);
    if (!ctx.alive()) return;
    live.removeAttribute("aria-busy");
    fill(live, l.value ? grid(l.value.broadcasts, "Nobody is live right now. Be the first!") : h("p.error", {}, "Could not load live broadcasts."));
    fill(replays, r.value ? grid(r.value.broadcasts, "No replays yet.") : "");
    if (f.value) fill(following, grid(f.value.broadcasts, "None of the people you follow is live."));
  }
  await load();
  const stop = every(20000, load);
  addEventListener("livescope:started", load);
  return () => { stop(); removeEventListener("livescope:started", load); };
}
