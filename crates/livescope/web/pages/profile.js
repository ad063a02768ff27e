// A person's page (/u/<name>): follow or unfollow, followers and following (paged), and
// their recent broadcasts.
import { h, fill, api, userLink, ago } from "../lib.js";
import { grid } from "../cards.js";
import { session } from "../app.js";

export default async function profile(main, [name], ctx) {
  let p;
  try {
    p = await api(`/api/users/${encodeURIComponent(name)}`);
  } catch (e) {
    fill(main, h("section.page.narrow", {}, h("h1", {}, "No such person"), h("p", { role: "alert" }, e.status === 404 ? `Nobody is called ${name}.` : e.message)));
    return;
  }
  if (!ctx.alive()) return;
  document.title = `${p.username} · livescope`;
  const followers = h("strong#followers-count", {}, String(p.followers));
  const following = h("strong#following-count", {}, String(p.following));
  const msg = h("p.error", { role: "alert" });
  let follows = !!p.followed_by_me;
  const followBtn = h("button.btn", { type: "button", onclick: toggle });
  const showFollow = () => {
    followBtn.textContent = follows ? "Unfollow" : "Follow";
    followBtn.className = follows ? "btn" : "btn primary";
    followBtn.setAttribute("aria-pressed", String(follows));
  };
  showFollow();
  const me = session.user && session.user.toLowerCase() === p.username.toLowerCase();
  const listHead = h("h2#people-h");
  const people = h("ul.list", { "aria-labelledby": "people-h" });
  const more = h("button.btn.small", { type: "button", hidden: true }, "Load more");
  const peopleBox = h("section.section", { hidden: true }, listHead, people, h("div", {}, more));
  let next = null;
  let which = null;

  async function toggle() {
    msg.textContent = "";
    followBtn.disabled = true;
    try {
      await api(`/api/users/${encodeURIComponent(p.username)}/follow`, { method: follows ? "DELETE" : "PUT" });
      follows = !follows;
      followers.textContent = String(Number(followers.textContent) + (follows ? 1 : -1));
      showFollow();
    } catch (e) { msg.textContent = e.message; }
    followBtn.disabled = false;
  }

  async function load(kind, reset) {
    if (reset) { which = kind; next = null; fill(people); }
    peopleBox.hidden = false;
    listHead.textContent = kind === "followers" ? `People following ${p.username}` : `People ${p.username} follows`;
    try {
      const page = await api(`/api/users/${encodeURIComponent(p.username)}/${kind}?limit=50${next ? `&after=${encodeURIComponent(next)}` : ""}`);
      people.append(...page.users.map((u) => h("li", {}, userLink(u.username), h("span.muted.small", {}, `since ${ago(u.since)}`))));
      if (!people.children.length) people.append(h("li.muted", {}, "Nobody yet."));
      next = page.next || null;
      more.hidden = !next;
    } catch (e) { msg.textContent = e.message; }
  }
  more.onclick = () => load(which, false);

  fill(main, h("div.page", {},
    h("div.profile-head", {},
      h("span.avatar", { "aria-hidden": "true" }, p.username[0].toUpperCase()),
      h("div", {}, h("h1", {}, p.username), h("p.muted.small", {}, `joined ${ago(p.created_at)}`),
        h("div.counts", {},
          h("button", { type: "button", onclick: () => load("followers", true) }, followers, " followers"),
          h("button", { type: "button", onclick: () => load("following", true) }, following, " following"))),
      h("div", {}, me ? h("a.btn", { href: "/studio" }, "Go live") : session.user ? followBtn
        : h("a.btn.primary", { href: `/login?next=${encodeURIComponent(location.pathname)}` }, "Log in to follow"))),
    msg,
    h("section.section", { "aria-labelledby": "rb-h" }, h("h2#rb-h", {}, "Recent broadcasts"), grid(p.broadcasts, `${p.username} has not gone live yet.`)),
    keys(p),
    peopleBox));
}

// The keys that sign this person's broadcasts, with the fingerprints a viewer can pin
// (compare them with what the broadcaster tells you elsewhere).
function keys(p) {
  const list = p.signing_keys || [];
  if (!list.length) return "";
  return h("section.section#signing-keys", { "aria-labelledby": "keys-h" },
    h("h2#keys-h", {}, "Signing keys"),
    h("p.muted.small", {}, `Broadcasts signed with these keys are ${p.username}'s own, unchanged on the way to you.`),
    h("ul.list", {}, ...list.map((k) => h("li", {},
      h("code.fingerprint", { title: k.public_key }, k.fingerprint),
      h("span.muted.small", {}, ` added ${ago(k.created_at)}`)))));
}
