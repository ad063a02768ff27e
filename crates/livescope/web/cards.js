// A broadcast as a card: its poster (the first frame of /hls/<id>/poster.mp4, not
// played), title, owner, viewers and how long it has been live.
import { h, duration, ago, userLink, tokenQuery } from "./lib.js";

// Posters already shown, by broadcast: a page that redraws its cards moves them into the
// new cards instead of downloading them again. A replay's poster never changes; a live
// one is taken anew after POSTER_FRESH_MS.
const posters = new Map();
const POSTER_FRESH_MS = 60000;

function posterVideo(b) {
  const now = Date.now();
  for (const [id, p] of posters) if (now - p.at > 5 * POSTER_FRESH_MS) posters.delete(id);
  const kept = posters.get(b.id);
  if (kept && kept.state === b.state && (b.state !== "live" || now - kept.at < POSTER_FRESH_MS)) return kept.el;
  const v = h("video", { muted: true, playsInline: true, preload: "auto", tabIndex: -1, "aria-hidden": "true" });
  v.muted = true;
  // No picture yet (a broadcast that just went live): the next redraw asks again.
  v.addEventListener("error", () => { v.remove(); posters.delete(b.id); });
  v.src = `/hls/${encodeURIComponent(b.id)}/poster.mp4${tokenQuery(b.watch.hls)}`;
  posters.set(b.id, { el: v, at: now, state: b.state });
  return v;
}

export function card(b) {
  const href = `/b/${encodeURIComponent(b.id)}`;
  const live = b.state === "live";
  const poster = h("div.poster");
  if (b.state !== "created") poster.append(posterVideo(b));
  const since = live && b.started_at ? `live for ${duration(Date.now() - Date.parse(b.started_at))}` : b.ended_at ? `ended ${ago(b.ended_at)}` : "not live yet";
  return h(
    "article.card",
    {},
    h(
      "a.card-media",
      { href, tabIndex: -1, "aria-hidden": "true" },
      poster,
      h("span.badge" + (live ? ".live" : ""), {}, live ? "Live" : b.state === "ended" ? "Replay" : "Soon"),
      live ? h("span.badge.viewers", {}, `${b.viewers} watching`) : null,
      b.private ? h("span.badge.private", {}, "Private") : null,
    ),
    h(
      "div.card-body",
      {},
      h("h3.card-title", {}, h("a", { href }, b.title || "Untitled broadcast")),
      h("p.card-meta", {}, userLink(b.owner), h("span", { "aria-hidden": "true" }, " · "), h("span", {}, since)),
    ),
  );
}

/** A grid of cards, or a quiet line when there are none. */
export const grid = (list, empty) =>
  list.length ? h("div.grid", {}, list.map(card)) : h("p.empty", {}, empty);
