// Watch a broadcast (/b/<id>): live near the live edge (LL-HLS, or HTTP-FLV for the lowest
// delay) with the room's comments, hearts and polls; once it has ended, its replay from
// the start with everything said shown at the moment it was said (the timeline).
import { h, fill, api, every, clock, userLink, tokenQuery, secs, icon } from "../lib.js";
import { play, webrtcSupported } from "../player.js";
import { BroadcastCheck, supported as canVerify } from "../verify.js";
import { joinRoom } from "../room.js";
import { session } from "../app.js";
import { pollView } from "../poll.js";

const ERRORS = {
  muted: "You have been muted by the broadcaster: your comments, hearts and votes are not sent.",
  blocked: "The broadcaster blocked you from this room.",
  not_allowed: "The broadcaster no longer shares this broadcast with you.",
  login_required: "Log in to comment and vote.",
  rate_limited: "Slow down a little: too many messages at once.",
  already_voted: "You already voted in this poll.",
  poll_closed: "This poll is closed.",
};

export default async function watch(main, [id], ctx) {
  let b;
  try {
    b = await api(`/api/broadcasts/${encodeURIComponent(id)}`);
  } catch (e) {
    const msg = e.status === 403 ? "This broadcast is private." : e.status === 404 ? "There is no such broadcast." : e.message;
    fill(main, h("section.page.narrow", {}, h("h1", {}, "Cannot show this broadcast"), h("p", { role: "alert" }, msg),
      !session.user && e.status === 403 ? h("p", {}, h("a", { href: `/login?next=/b/${encodeURIComponent(id)}` }, "Log in to watch it")) : null));
    return;
  }
  if (!ctx.alive()) return;
  document.title = `${b.title || "Untitled broadcast"} · ${b.owner ?? ""} · livescope`;
  const token = tokenQuery(b.watch.hls);
  const modes = webrtcSupported() ? ["webrtc", "flv", "hls"] : ["flv", "hls"];
  let mode = modes.includes(ctx.query.get("mode")) ? ctx.query.get("mode") : "hls";
  let player = null;
  let room = null;
  let state = b.state;
  let replaying = false;
  let stopped = false;
  const stops = [];

  // --- the page ---
  const video = h("video#player", { controls: true, muted: true, autoplay: true, playsInline: true, "aria-label": "Broadcast video" });
  const heartsLayer = h("div.hearts-layer", { "aria-hidden": "true" });
  const waiting = h("div.overlay", { hidden: true }, h("p", {}, `Waiting for ${b.owner ?? "the broadcaster"} to go live…`));
  const replayBtn = h("button.btn.primary", { type: "button", onclick: () => startReplay() }, "Watch the replay");
  const ended = h("div.overlay#ended", { hidden: true, role: "status" }, h("p.ended-title", {}, "This broadcast has ended"), replayBtn);
  const latency = h("span.chip#latency", { title: "How far behind the live edge you are" }, "…");
  const viewers = h("span#viewers", {}, String(b.viewers));
  const badge = h("span.badge");
  const viewersChip = h("span.chip", {}, icon("eye"), viewers, h("span.label", {}, "watching"));
  const signatureChip = h("span.chip.signature#signature", { hidden: true, role: "status" });
  const modeLabels = { webrtc: "Lowest delay (WebRTC)", flv: "Low delay (HTTP-FLV)", hls: "LL-HLS" };
  const modeSel = h("select#mode", { "aria-label": "Playback mode", onchange: () => { mode = modeSel.value; history.replaceState(null, "", mode === "hls" ? location.pathname : `?mode=${mode}`); startLive(); } },
    [...modes].reverse().map((m) => h("option", { value: m, selected: mode === m }, modeLabels[m])));
  const heartsTotal = h("span#hearts-total", {}, "0");
  const heartBtn = h("button.heart-btn#heart", { type: "button", "aria-label": "Send a heart", onclick: sendHeart }, icon("heart"));
  const pollBox = h("section.poll#poll", { hidden: true, "aria-label": "Poll" });
  const comments = h("ul.comments#comments", { "aria-label": "Comments", "aria-live": "polite", "aria-relevant": "additions" });
  const roomError = h("p.room-error#room-error", { role: "alert" });
  const input = h("input#comment-input", { name: "comment", maxLength: 280, autocomplete: "off", placeholder: "Say something nice…", "aria-label": "Write a comment" });
  const composer = session.user
    ? h("form.composer", { onsubmit: sendComment }, input, h("button.btn.primary", { type: "submit" }, "Send"))
    : h("p.composer.muted", {}, h("a", { href: `/login?next=/b/${encodeURIComponent(id)}` }, "Log in to comment"), " and vote. Anyone can send hearts.");
  const chatNote = h("p.chat-note.muted");

  fill(main, h("div.watch", {},
    h("section.stage", { "aria-label": "Video" },
      h("div.video-wrap", {}, video, heartsLayer, waiting, ended),
      h("div.info", {},
        h("div.info-main", {},
          h("h1.title", {}, b.title || "Untitled broadcast"),
          h("p.byline", {}, userLink(b.owner), b.private ? h("span.badge.private", {}, "Private") : null)),
        h("div.stats", {},
          badge, signatureChip, latency,
          viewersChip,
          h("span.chip", {}, icon("heart"), heartsTotal, h("span.label", {}, "hearts")),
          modeSel,
          heartBtn)),
      pollBox),
    h("aside.chat", { "aria-label": "Chat" }, h("h2", {}, "Comments"), chatNote, comments, roomError, composer)));

  // --- signatures ---
  // A broadcaster with registered keys may sign; the player hands what it downloads to a
  // check in this page (verify.js), which tells the chip. Each player start gets a fresh
  // check; one found tampered keeps the chip red for the rest of the visit.
  let ownerKeys = null;
  let check = null;
  let tamperedSeen = null;
  async function signatureTap(live) {
    ownerKeys ??= await api(`/api/users/${encodeURIComponent(b.owner)}`).then((p) => p.signing_keys ?? [], () => []);
    if (!ownerKeys.length) return undefined;
    if (!(await canVerify())) {
      showSignature({ state: "unsupported" });
      return undefined;
    }
    if (check?.verdict.state === "tampered") tamperedSeen ??= check.verdict;
    const mine = new BroadcastCheck({
      keys: ownerKeys.map((k) => k.public_key), broadcast: b.id, live,
      onChange: (v) => mine === check && showSignature(tamperedSeen ?? v),
    });
    check = mine;
    showSignature(tamperedSeen ?? mine.verdict);
    return { fmp4: (bytes) => mine.fmp4(bytes), flvStart: () => mine.flvStart(), flv: (bytes) => mine.flv(bytes) };
  }

  function showSignature(v) {
    const keys = (ownerKeys ?? []).map((k) => k.fingerprint).join(", ");
    const [cls, glyph, text, title] = {
      verified: ["good", "shield", "Verified", `Signed with ${b.owner}'s key ${keys}; checked in your browser (${v.records} record${v.records === 1 ? "" : "s"} so far).`],
      not_yet_verified: ["", "shield", "Checking signature…", `${b.owner} signs broadcasts; the first whole record has not arrived yet.`],
      unsigned: ["", "warning", "Not signed", `${b.owner} has signing keys, but this stream carries no signatures.`],
      tampered: ["bad", "warning", "Tampered", `Changed after ${b.owner} signed it, at ${clock(v.atMs ?? 0)} of the stream: ${v.reason}.`],
      unsupported: ["", "shield", "Signed", "This browser cannot check signatures (it needs WebCrypto Ed25519 on https)."],
    }[v.state];
    signatureChip.className = `chip signature ${cls}`.trim();
    signatureChip.dataset.state = v.state;
    signatureChip.title = title;
    signatureChip.setAttribute("aria-label", `Signature: ${text}. ${title}`);
    fill(signatureChip, icon(glyph), h("span", {}, text));
    signatureChip.hidden = false;
  }

  // --- live ---
  // A player that gave up (a network error, an expired playback token) starts again with
  // fresh URLs, at most every 5 s.
  let lastRestart = 0;
  function restartAfterError(message) {
    console.warn(message);
    if (stopped || Date.now() - lastRestart < 5000) return;
    lastRestart = Date.now();
    refresh().then(() => state === "live" && startLive());
  }

  // Each start supersedes the one before: a mode change and a refresh may start at once,
  // and only the newest may keep its player.
  let starts = 0;
  async function startLive() {
    const mine = ++starts;
    player?.destroy();
    player = null;
    if (state !== "live" || stopped) return;
    // WebRTC falls back to HTTP-FLV, and HTTP-FLV to LL-HLS, where this browser or this
    // broadcast cannot take the lower delay.
    const tries = modes.slice(modes.indexOf(mode));
    for (const [i, m] of tries.entries()) {
      try {
        const p = await play(video, b.watch, { mode: m, live: true, onError: restartAfterError, tap: m === "webrtc" ? null : await signatureTap(true) });
        if (stopped || mine !== starts) return p.destroy();
        player = p;
        video.dataset.mode = m;
        if (m !== mode) roomError.textContent = `${modeLabels[mode]} is not available here: playing ${modeLabels[m]}.`;
        return;
      } catch (e) {
        if (stopped || mine !== starts) return;
        if (i === tries.length - 1) roomError.textContent = e.message;
      }
    }
  }

  function setState(s) {
    state = s;
    badge.className = "badge" + (s === "live" ? " live" : "");
    badge.textContent = replaying ? "Replay" : s === "live" ? "Live" : s === "ended" ? "Ended" : "Not live yet";
    waiting.hidden = s !== "created";
    latency.hidden = s === "created";
    modeSel.hidden = s !== "live";
    heartBtn.hidden = viewersChip.hidden = s === "ended";
    if (s === "ended") latency.classList.remove("good");
    if (composer.tagName === "FORM") composer.hidden = s === "ended";
    chatNote.textContent = s === "ended" ? "Replay: comments, hearts and polls appear at the moment they were sent." : "";
  }

  async function refresh() {
    try {
      const now = await api(`/api/broadcasts/${encodeURIComponent(id)}`);
      // Fresh URLs: a private broadcast's playback token lasts one to two hours.
      b.watch = now.watch;
      if (!room?.presence) viewers.textContent = String(now.viewers);
      if (now.state !== state) {
        if (now.state === "live") { setState("live"); startLive(); }
        else if (now.state === "ended") onEnded();
      }
      return now.state;
    } catch {
      return state;
    }
  }

  function onEnded() {
    if (state === "ended" && !ended.hidden) return;
    setState("ended");
    room?.stop();
    player?.destroy();
    player = null;
    latency.textContent = "Ended";
    delete latency.dataset.ms;
    ended.hidden = false;
    replayBtn.focus({ preventScroll: true });
  }

  function joinLive() {
    const r = joinRoom(id, () => tokenQuery(b.watch.hls), {
      on: onMessage,
      onState: (s) => {
        if (s === "open") roomError.textContent = "";
        if (s === "closed" && state !== "ended") roomError.textContent = roomError.textContent || "Disconnected from the room.";
      },
      shouldRetry: async () => (await refresh()) !== "ended" && !stopped,
    });
    room = { ...r, presence: false };
  }

  const seen = new Set();
  let localHearts = 0;
  let heartCount = 0;
  let poll = null;
  const myVotes = new Map();
  let pollState = null;
  let pollSig = "";

  function onMessage(m) {
    switch (m.type) {
      case "welcome":
        viewers.textContent = String(m.viewers);
        showPoll(m.poll);
        break;
      case "recent":
        m.comments.forEach(addComment);
        break;
      case "comment":
        addComment(m);
        break;
      case "comment_deleted":
        comments.querySelector(`li[data-id="${Number(m.comment)}"]`)?.remove();
        break;
      case "hearts": {
        heartCount += m.count;
        heartsTotal.textContent = String(heartCount);
        const mine = Math.min(localHearts, m.count);
        localHearts -= mine;
        floatHearts(m.count - mine);
        break;
      }
      case "poll":
        showPoll(m);
        break;
      case "lagged":
        showPoll(m.poll);
        break;
      case "presence":
        room.presence = true;
        viewers.textContent = String(m.viewers);
        break;
      case "error":
        roomError.textContent = ERRORS[m.code] || m.message;
        roomError.dataset.code = m.code;
        break;
    }
  }

  function commentItem(c) {
    return h("li.comment", { dataset: { id: c.id } },
      h("span.comment-head", {}, userLink(c.user, "comment-user"), c.media_ts != null ? h("span.comment-time", { title: "Stream time it answers" }, clock(c.media_ts)) : null),
      h("span.comment-text", {}, c.text));
  }

  function addComment(c) {
    if (seen.has(c.id)) return;
    seen.add(c.id);
    const stick = comments.scrollHeight - comments.scrollTop - comments.clientHeight < 60;
    comments.append(commentItem(c));
    while (comments.children.length > 200) comments.firstElementChild.remove();
    if (stick) comments.scrollTop = comments.scrollHeight;
  }

  function floatHearts(n) {
    for (let i = 0; i < Math.min(n, 12); i++) {
      setTimeout(() => {
        if (heartsLayer.childElementCount > 40) return;
        const el = h("span.float-heart", {}, icon("heart"));
        el.style.left = `${10 + Math.random() * 70}%`;
        el.style.setProperty("--drift", `${Math.round(Math.random() * 60 - 30)}px`);
        el.style.setProperty("--hue", `${330 + Math.round(Math.random() * 40)}`);
        el.addEventListener("animationend", () => el.remove());
        heartsLayer.append(el);
      }, i * 90);
    }
  }

  const mediaTs = () => player?.streamMs();

  function sendHeart() {
    if (room?.send({ type: "heart", media_ts: mediaTs() })) {
      localHearts++;
      floatHearts(1);
      heartBtn.classList.remove("pop");
      void heartBtn.offsetWidth;
      heartBtn.classList.add("pop");
    }
  }

  function sendComment(e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (room?.send({ type: "comment", text, media_ts: mediaTs() })) {
      input.value = "";
      roomError.textContent = "";
    } else roomError.textContent = "Not connected to the room; try again in a moment.";
  }

  // --- polls ---
  const pollStateText = (p, replay) => {
    if (replay) return p.state === "open" ? "Open" : "Closed · result";
    const left = Math.max(0, Math.round((p.closes_at - Date.now()) / 1000));
    return p.state === "open" ? `Open · ${left} s left` : p.state === "closing" ? "Closing…" : "Closed · result";
  };

  function showPoll(p, { replay = false, totals } = {}) {
    if (!p) return;
    const t = totals || p.totals;
    const voted = myVotes.get(p.id);
    const sig = JSON.stringify([p.id, p.state, t, voted, replay]);
    if (sig === pollSig) return;
    pollSig = sig;
    poll = p;
    const buttons = () => [...pollBox.querySelectorAll("button")];
    const focused = buttons().indexOf(document.activeElement);
    const open = p.state !== "closed";
    pollBox.hidden = false;
    pollBox.dataset.state = p.state;
    fill(pollBox, pollView(p, {
      totals: t, voted, state: pollStateText(p, replay), onVote: (i) => vote(p.id, i),
      disabled: replay || !open || voted !== undefined || !session.user,
    }), !session.user && open && !replay ? h("p.muted.small", {}, "Log in to vote.") : null);
    pollState = pollBox.querySelector(".poll-state");
    buttons()[focused]?.focus();
  }

  function vote(pollId, option) {
    if (room?.send({ type: "vote", poll: pollId, option, media_ts: mediaTs() })) {
      myVotes.set(pollId, option);
      showPoll(poll);
    }
  }

  // --- replay ---
  async function startReplay() {
    replaying = true;
    ended.hidden = true;
    setState("ended");
    fill(comments);
    seen.clear();
    player?.destroy();
    try {
      player = await play(video, b.watch, { mode: "hls", live: false, tap: await signatureTap(false) });
    } catch (e) {
      roomError.textContent = `The replay cannot play: ${e.message}`;
      return;
    }
    if (stopped) return player.destroy();
    video.play().catch(() => {});
    const W = 60000;
    const tl = { comments: [], hearts: [], polls: new Map(), votes: new Map(), windows: new Set() };
    const started = Date.parse(b.started_at || b.created_at);
    const at = (c) => c.media_ts ?? c.server_ts - started;
    const tq = token ? `&token=${encodeURIComponent(new URLSearchParams(token).get("token"))}` : "";
    async function ensure(w) {
      if (w < 0 || tl.windows.has(w)) return;
      tl.windows.add(w);
      try {
        const j = await api(`/api/broadcasts/${encodeURIComponent(id)}/timeline?from=${w * W}&to=${(w + 1) * W - 1}&limit=5000${tq}`);
        const have = new Set(tl.comments.map((c) => c.id));
        tl.comments.push(...j.comments.filter((c) => !have.has(c.id)));
        tl.comments.sort((x, y) => at(x) - at(y) || x.id - y.id);
        tl.hearts.push(...j.hearts.filter((s) => s.media_second != null && Math.floor((s.media_second * 1000) / W) === w));
        for (const p of j.polls) tl.polls.set(p.id, p);
        for (const v of j.votes) tl.votes.set(`${v.poll}/${v.user}`, v);
        shown = -1;
      } catch {
        tl.windows.delete(w);
      }
    }
    let shown = 0;
    let lastT = -1;
    video.addEventListener("seeking", () => { shown = -1; lastT = -1; });
    const tick = async () => {
      const t = player?.streamMs();
      if (t === undefined) return;
      video.dataset.streamMs = String(t);
      latency.textContent = `Replay · ${clock(t)}`;
      delete latency.dataset.ms;
      const w = Math.floor(t / W);
      ensure(w);
      if (t % W > W - 15000) ensure(w + 1);
      // comments said up to now, in stream order
      let n = 0;
      while (n < tl.comments.length && at(tl.comments[n]) <= t) n++;
      if (n !== shown) {
        if (shown >= 0 && n > shown) tl.comments.slice(shown, n).forEach(addComment);
        else { fill(comments); seen.clear(); tl.comments.slice(0, n).forEach(addComment); comments.scrollTop = comments.scrollHeight; }
        shown = n;
      }
      // hearts: their count so far, and the newest ones rising
      let total = 0;
      for (const s of tl.hearts) {
        const ms = s.media_second * 1000;
        if (ms <= t) total += s.count;
        if (lastT >= 0 && ms > lastT && ms <= t && t - lastT < 2000) floatHearts(s.count);
      }
      heartCount = total;
      heartsTotal.textContent = String(total);
      lastT = t;
      // the latest poll opened by now, with the votes cast by now
      const p = [...tl.polls.values()].filter((q) => (q.media_open_ts ?? Infinity) <= t).pop();
      if (p) {
        // A poll still in its late-vote window when the broadcast ended has no stream time
        // of its close yet: it closed as long after it opened as it was meant to run.
        const closeTs = p.media_close_ts ?? (p.media_open_ts != null ? p.media_open_ts + (p.closes_at - p.opened_at) : null);
        const closed = closeTs != null && t >= closeTs;
        const totals = p.options.map(() => 0);
        for (const v of tl.votes.values()) if (v.poll === p.id && (v.media_ts ?? p.media_open_ts) <= t) totals[v.option]++;
        showPoll({ ...p, state: closed ? "closed" : "open" }, { replay: true, totals: closed && p.result ? p.result : totals });
      } else pollBox.hidden = true;
    };
    await ensure(0);
    if (stopped) return;
    stops.push(every(250, tick));
  }

  // --- start ---
  setState(state);
  if (state === "ended") {
    startReplay();
  } else {
    joinLive();
    startLive();
    stops.push(every(3000, () => state !== "ended" && refresh()));
    stops.push(every(500, () => {
      if (replaying) return;
      const t = player?.streamMs();
      if (t !== undefined) video.dataset.streamMs = String(t);
      // The adaptive buffer policy's state, for whoever inspects the page (and the tests).
      const p = player?.playout?.();
      if (p) Object.assign(video.dataset, { aimMs: p.aimMs, aheadMs: p.aheadMs, rate: p.rate, stalls: p.stalls });
      const ms = player?.latencyMs();
      if (ms == null) return;
      latency.textContent = `${secs(ms)} behind live`;
      latency.dataset.ms = String(ms);
      latency.classList.toggle("good", ms < 2000);
    }));
    // How far behind live this player is (the studio's audience view, late votes) and
    // what it holds in its buffer (the broadcaster's delay breakdown).
    stops.push(every(2000, () => {
      const ms = player?.latencyMs();
      const buffer = player?.bufferMs?.();
      if (ms != null) room?.send({ type: "delay", ms, ...(buffer != null ? { buffer_ms: buffer } : {}) });
    }));
    stops.push(every(1000, () => {
      if (poll && poll.state === "open" && !replaying && pollState) pollState.textContent = pollStateText(poll, false);
    }));
    video.addEventListener("ended", () => refresh());
  }

  return () => {
    stopped = true;
    stops.forEach((s) => s());
    room?.stop();
    player?.destroy();
  };
}
