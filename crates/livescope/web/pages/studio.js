// The broadcaster's dashboard: /studio lists one's broadcasts and creates one; /studio/<id>
// shows how to go live (the stream key, once), a preview, the audience and its delay, the
// reactions on the moment they answer, moderation, polls, the key and who may watch.
import { h, fill, api, every, field, copy, svg, secs, ago, stateBadge, tokenQuery, duration, clock } from "../lib.js";
import { session, navigate } from "../app.js";
import { play } from "../player.js";
import { joinRoom } from "../room.js";
import { pollView } from "../poll.js";
import { publish } from "../whip.js";

const keyStore = (id) => `livescope-key:${id}`;
const names = (s) => s.split(/[\s,]+/).map((n) => n.trim()).filter(Boolean);

export default async function studio(main, [id], ctx) {
  document.title = "Studio · livescope";
  if (!session.user) {
    fill(main, h("section.page.narrow", {}, h("h1", {}, "Go live"),
      h("p", {}, "Log in to create broadcasts and stream from OBS, a phone app or ffmpeg."),
      h("div.row", {}, h("a.btn.primary", { href: `/login?next=${encodeURIComponent(location.pathname)}` }, "Log in"),
        h("a.btn", { href: `/register?next=${encodeURIComponent(location.pathname)}` }, "Create account"))));
    return;
  }
  return id ? dashboard(main, id, ctx) : list(main, ctx);
}

async function list(main, ctx) {
  const title = h("input#title", { name: "title", maxLength: 200, placeholder: "What are you streaming?" });
  const priv = h("input#private", { type: "checkbox", name: "private", onchange: () => { allowed.disabled = !priv.checked; } });
  const allowed = h("input#allowed-viewers", { name: "viewers", disabled: true, placeholder: "bo, cy", autocapitalize: "none" });
  const error = h("p.error", { role: "alert" });
  const submit = h("button.btn.primary", { type: "submit" }, "Create broadcast");
  const mine = h("div", { "aria-busy": "true" });
  fill(main, h("div.page", {},
    h("div.hero", {}, h("h1", {}, "Studio"), h("p.muted", {}, "Create a broadcast, then publish to it from OBS or ffmpeg with the stream key it shows.")),
    h("form.panel", { onsubmit: create, "aria-labelledby": "new-h" },
      h("h2#new-h", {}, "New broadcast"),
      field("Title", title),
      h("label.check", {}, priv, "Private: only the people I choose can watch"),
      field("Who may watch (usernames, comma-separated)", allowed, "Only for a private broadcast."),
      error, h("div", {}, submit)),
    h("section.section", { "aria-labelledby": "mine-h" }, h("h2#mine-h", {}, "Your broadcasts"), mine)));

  async function create(e) {
    e.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    const body = { title: title.value.trim() };
    if (priv.checked) body.viewers = names(allowed.value);
    try {
      const b = await api("/api/broadcasts", { method: "POST", body });
      sessionStorage.setItem(keyStore(b.id), JSON.stringify({ stream_key: b.stream_key, publish: b.publish }));
      navigate(`/studio/${encodeURIComponent(b.id)}`);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
    }
  }

  try {
    const { broadcasts } = await api("/api/me/broadcasts");
    if (!ctx.alive()) return;
    mine.removeAttribute("aria-busy");
    fill(mine, broadcasts.length
      ? h("ul.list", {}, broadcasts.map((b) => h("li", {},
        h("div", {}, h("a", { href: `/studio/${encodeURIComponent(b.id)}` }, b.title || "Untitled broadcast"), " ", stateBadge(b.state)),
        h("span.muted.small", {}, b.state === "live" ? `${b.viewers} watching` : ago(b.created_at)))))
      : h("p.empty", {}, "You have not created a broadcast yet."));
  } catch (err) {
    fill(mine, h("p.error", {}, err.message));
  }
}

async function dashboard(main, id, ctx) {
  let b;
  try {
    b = await api(`/api/broadcasts/${encodeURIComponent(id)}`);
  } catch (e) {
    fill(main, h("section.page.narrow", {}, h("h1", {}, "No such broadcast"), h("p", { role: "alert" }, e.message)));
    return;
  }
  if (!ctx.alive()) return;
  if (b.owner !== session.user) {
    fill(main, h("section.page.narrow", {}, h("h1", {}, "Not your broadcast"), h("p", {}, h("a", { href: `/b/${encodeURIComponent(id)}` }, "Watch it instead"))));
    return;
  }
  document.title = `Studio: ${b.title || "Untitled broadcast"} · livescope`;
  const stops = [];
  let stopped = false;
  let preview = null;
  let room = null;

  // --- going live: the key, OBS and ffmpeg ---
  const keyInput = h("input#stream-key", { readOnly: true, "aria-label": "Stream key" });
  const serverInput = h("input#obs-server", { readOnly: true, "aria-label": "OBS server" });
  const ffmpegLine = h("code#ffmpeg-line.line", { tabIndex: 0, "aria-label": "ffmpeg command" });
  const keyNote = h("p.warn-note");
  const keyMsg = h("p.muted.small", { role: "status" });
  const copyBtn = (label, get) => h("button.btn.small", { type: "button", "aria-label": label, onclick: async (e) => { e.currentTarget.textContent = (await copy(get())) ? "Copied" : "Select and copy"; } }, "Copy");
  function showKey() {
    const saved = JSON.parse(sessionStorage.getItem(keyStore(id)) || "null");
    const key = saved?.stream_key || "";
    // RTMPS when the server has a certificate: the key does not travel in clear.
    const rtmp = saved?.publish.rtmps || saved?.publish.rtmp || b.watch.rtmp.replace(/\/[^/?]+(\?.*)?$/, "/<stream key>");
    keyInput.value = key;
    keyInput.placeholder = key ? "" : "hidden: rotate the key to get a new one";
    serverInput.value = rtmp.slice(0, rtmp.lastIndexOf("/"));
    ffmpegLine.textContent = `ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -tune zerolatency -g 60 -c:a aac -f flv ${rtmp}`;
    keyNote.textContent = key
      ? "The server keeps only a hash of this key: it is shown in this tab until you log out, and nowhere else. Copy it into OBS or keep it somewhere safe; anyone who has it can go live as you."
      : "The stream key is shown only once, when the broadcast is created or the key is rotated. Rotate it to get a new one.";
  }
  // A new or revoked key ends the publishing session at once (and so a live broadcast).
  const endsLive = (what) => confirm(`${what} the key takes whoever publishes with the current one off the air at once; a live broadcast ends. Go on?`);
  async function rotate() {
    if (!endsLive("Rotating")) return;
    try {
      const k = await api(`/api/broadcasts/${encodeURIComponent(id)}/stream_key`, { method: "POST" });
      sessionStorage.setItem(keyStore(id), JSON.stringify(k));
      showKey();
      keyMsg.textContent = "New key: the old one no longer works.";
    } catch (e) { keyMsg.textContent = e.message; }
  }
  async function revoke() {
    if (!endsLive("Revoking")) return;
    try {
      await api(`/api/broadcasts/${encodeURIComponent(id)}/stream_key`, { method: "DELETE" });
      sessionStorage.removeItem(keyStore(id));
      showKey();
      keyMsg.textContent = "Key revoked: nobody can publish with it any more.";
    } catch (e) { keyMsg.textContent = e.message; }
  }
  showKey();

  // --- going live from this browser: camera, microphone, WHIP ---
  const camera = h("video#camera", { muted: true, autoplay: true, playsInline: true, "aria-label": "Your camera" });
  const camOverlay = h("div.overlay", {}, h("p", {}, "Turn on your camera to go live from this browser."));
  const camStatus = h("p#camera-status.small.muted", { role: "status" });
  const camOn = h("button.btn#camera-on", { type: "button", onclick: startCamera }, "Turn on camera");
  const camSwitch = h("button.btn#camera-switch", { type: "button", onclick: switchCamera, hidden: true }, "Switch camera");
  const goLive = h("button.btn.primary#go-live", { type: "button", onclick: goLiveNow, disabled: true }, "Go live");
  const endLive = h("button.btn.danger#end-live", { type: "button", onclick: endNow, hidden: true }, "End broadcast");
  let local = null; // the camera and microphone
  let whip = null; // the WHIP session, while live from here
  let facing = "user";
  const liveHere = () => whip !== null;
  function showCamera() {
    camOverlay.hidden = !!local;
    camSwitch.hidden = !local;
    camOn.hidden = !!local;
    goLive.hidden = liveHere() || b.state === "ended";
    goLive.disabled = !local || b.state !== "created";
    endLive.hidden = !liveHere();
  }
  async function cameraTrack(constraints) {
    const s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 }, ...constraints } });
    return s.getVideoTracks()[0];
  }
  async function startCamera() {
    if (!navigator.mediaDevices?.getUserMedia) { camStatus.textContent = "This browser cannot use a camera here (it needs HTTPS, or localhost)."; return; }
    try {
      local = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }, audio: true });
      camera.srcObject = local;
      camStatus.textContent = b.state === "created" ? "Ready: press Go live." : "";
    } catch (e) {
      camStatus.textContent = `No camera: ${e.message}`;
    }
    showCamera();
  }
  // The next camera: the next device where the browser lists several (a laptop and a USB
  // camera), else the other side of a phone.
  let switching = false;
  async function switchCamera() {
    const old = local?.getVideoTracks()[0];
    if (!old || switching) return;
    switching = camSwitch.disabled = true;
    const cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    const current = old.getSettings().deviceId;
    // Phones open one camera at a time: the old one stops first, and comes back if the
    // new one cannot open.
    let track;
    old.stop();
    try {
      if (cams.length > 1) {
        const next = cams[(cams.findIndex((c) => c.deviceId === current) + 1) % cams.length];
        track = await cameraTrack({ deviceId: { exact: next.deviceId } });
      } else {
        facing = facing === "user" ? "environment" : "user";
        track = await cameraTrack({ facingMode: facing });
      }
    } catch (e) {
      camStatus.textContent = `Cannot switch camera: ${e.message}`;
      try { track = await cameraTrack({ deviceId: { exact: current } }); } catch { track = null; }
    }
    switching = camSwitch.disabled = false;
    if (!track) return;
    local.removeTrack(old);
    local.addTrack(track);
    camera.srcObject = local;
    await whip?.replaceVideo(track);
    if (track.getSettings().deviceId !== current) camStatus.textContent = `${liveHere() ? "Live from this browser · " : ""}Camera: ${track.label || "switched"}`;
    camera.dataset.device = track.getSettings().deviceId || "";
  }
  async function goLiveNow() {
    const saved = JSON.parse(sessionStorage.getItem(keyStore(id)) || "null");
    if (!saved?.stream_key) { camStatus.textContent = "The stream key is hidden: rotate it to get a new one, then go live."; return; }
    goLive.disabled = true;
    camStatus.textContent = "Connecting…";
    try {
      whip = await publish(saved.publish?.whip ? new URL(saved.publish.whip).pathname : `/whip/${encodeURIComponent(saved.stream_key)}`, local);
      whip.pc.addEventListener("connectionstatechange", () => {
        const st = whip?.pc.connectionState;
        if (st === "connected") camStatus.textContent = "You are live from this browser. Keep this page open.";
        if (st === "failed") camStatus.textContent = "The connection to the server was lost.";
      });
      camStatus.textContent = "Live: connecting media…";
      poll();
    } catch (e) {
      camStatus.textContent = e.message;
      goLive.disabled = false;
    }
    showCamera();
  }
  async function endNow() {
    endLive.disabled = true;
    try { await whip?.stop(); } catch { /* the server ends it anyway when the connection goes */ }
    whip = null;
    local?.getTracks().forEach((t) => t.stop());
    local = null;
    camera.srcObject = null;
    camStatus.textContent = "The broadcast has ended.";
    await poll();
    showCamera();
  }
  showCamera();

  // --- preview and audience ---
  // Signatures, as the server checks them at ingest, and what to do if they do not match.
  const sigState = h("p#dash-signature.small", { role: "status" });
  const policyMsg = h("p.muted.small", { role: "status" });
  const policySel = h("select#signature-policy", { onchange: savePolicy },
    h("option", { value: "alert" }, "Alert me and the viewers"),
    h("option", { value: "drop" }, "Drop what does not match"),
    h("option", { value: "end" }, "End the broadcast"));
  policySel.value = b.signature_policy ?? "alert";
  async function savePolicy() {
    try {
      const nb = await api(`/api/broadcasts/${encodeURIComponent(id)}/signature_policy`, { method: "PUT", body: { signature_policy: policySel.value } });
      b = { ...b, ...nb };
      policyMsg.textContent = "Saved.";
    } catch (e) {
      policyMsg.textContent = e.message;
      policySel.value = b.signature_policy ?? "alert";
    }
  }
  function showSignature() {
    // Dropping is set up when publishing starts: chosen or left before going live.
    const live = b.state !== "created";
    for (const o of policySel.options) o.disabled = live && (o.value === "drop") !== (b.signature_policy === "drop");
    policySel.disabled = b.state === "ended";
    const s = b.signature;
    const text = !s ? "Checked from when you go live. Sign with livescope broadcast --key (see the README)."
      : s.state === "verified" ? `Verified: ${s.records} record${s.records === 1 ? "" : "s"} matched your key.`
      : s.state === "not_yet_verified" ? "Checking…"
      : s.state === "unsigned" ? "Not signed: OBS and plain ffmpeg do not sign; livescope broadcast --key does."
      : `Tampered with from ${clock(s.tampered_at_ms ?? 0)} of the stream: ${s.reason}.`;
    sigState.textContent = text;
    sigState.className = `small ${s?.state === "tampered" ? "error" : s?.state === "verified" ? "good" : "muted"}`;
    sigState.dataset.state = s?.state ?? "";
  }

  const video = h("video#preview", { muted: true, autoplay: true, playsInline: true, controls: true, "aria-label": "Preview of your stream" });
  const overlay = h("div.overlay", {}, h("p", {}, "Not live yet: go live from your camera, or from OBS or ffmpeg."));
  const badge = h("span");
  const viewers = h("span#dash-viewers.big", {}, String(b.viewers));
  const delays = h("p.muted.small");
  // Where the delay goes, stage by stage (GET /api/broadcasts/<id>/delay), as the
  // measurement study broke Periscope's down.
  const breakdown = svg("svg", { id: "delay-breakdown", class: "chart", viewBox: "0 0 320 36", role: "img", "aria-label": "Where the delay goes: measured once you are live" });
  const breakdownLegend = h("ul.legend#delay-legend");
  const breakdownNote = h("p.muted.small");
  const chart = svg("svg", { id: "delay-chart", class: "chart", viewBox: "0 0 320 160", role: "img", "aria-label": "How far behind live the audience is: no reports yet" });

  // --- reactions and moderation ---
  const dashComments = h("ul#dash-comments.dash-list", { "aria-label": "Comments" });
  const heartsLog = h("ul#dash-hearts.dash-list", { "aria-label": "Hearts" });
  const heartTotal = h("span#dash-hearts-total", {}, "0");
  const roomError = h("p.error#dash-error", { role: "alert" });

  // --- polls ---
  const q = h("input#poll-question", { maxLength: 140, required: true });
  const opts = [1, 2, 3, 4].map((n) => h(`input#poll-option-${n}`, { maxLength: 140, required: n <= 2 }));
  const seconds = h("input#poll-seconds", { type: "number", min: 1, max: 3600, value: "30", required: true });
  const dashPoll = h("div#dash-poll", { "aria-live": "polite" });

  // --- who may watch ---
  const viewerList = h("input#viewer-list", { autocapitalize: "none", placeholder: "bo, cy" });
  const viewerMsg = h("p.muted.small", { role: "status" });
  const accessNote = h("p.muted.small");
  const showAccess = () => { accessNote.textContent = b.private ? "Private: only these people (and you) can watch." : "Public: anyone can watch. Saving a list makes it private."; };
  showAccess();

  fill(main, h("div.page", {},
    h("div.row.spread", {},
      h("div", {}, h("h1", {}, b.title || "Untitled broadcast"), h("p.muted", {}, badge, " ", h("a", { href: `/b/${encodeURIComponent(id)}` }, "Open the watch page"), " · ", h("a", { href: "/studio" }, "All broadcasts")))),
    h("div.studio", {},
      h("section.panel.span-7#camera-panel", { "aria-labelledby": "cam-h" }, h("h2#cam-h", {}, "Go live from this browser"),
        h("div.video-wrap", {}, camera, camOverlay),
        h("div.row", {}, camOn, camSwitch, goLive, endLive), camStatus),
      h("section.panel.span-5", { "aria-labelledby": "re-h" }, h("h2#re-h", {}, "Reactions, on the moment they answer"),
        roomError, dashComments,
        h("h3.small", {}, "Hearts ", h("span.muted", {}, "(", heartTotal, " so far)")), heartsLog),
      h("section.panel.span-7", { "aria-labelledby": "pv-h" }, h("h2#pv-h", {}, "What viewers see"), h("div.video-wrap", {}, video, overlay)),
      h("section.panel.span-5", { "aria-labelledby": "gl-h" }, h("h2#gl-h", {}, "Or from OBS or ffmpeg"),
        keyNote,
        field("Stream key", h("div.copy-row", {}, keyInput, copyBtn("Copy stream key", () => keyInput.value))),
        field("OBS server (Settings → Stream → Custom)", h("div.copy-row", {}, serverInput, copyBtn("Copy OBS server", () => serverInput.value))),
        h("div.field", {}, h("span.small", {}, "Or with ffmpeg"), h("div.copy-row", {}, ffmpegLine, copyBtn("Copy ffmpeg command", () => ffmpegLine.textContent))),
        h("div.row", {}, h("button.btn.small", { type: "button", onclick: rotate }, "Rotate key"), h("button.btn.small.danger", { type: "button", onclick: revoke }, "Revoke key")),
        keyMsg,
        h("h3.small", {}, "Signatures"), sigState,
        field("If the stream does not match its signatures", policySel, "Drop holds each second back until its signature has been checked; choose it before going live."), policyMsg),
      h("section.panel.span-6", { "aria-labelledby": "au-h" }, h("h2#au-h", {}, "Audience"),
        h("div.row", {}, viewers, h("span.muted", {}, "watching now")), h("h3.small", {}, "Delay behind live"), chart, delays,
        h("h3.small", {}, "Where the delay goes"), breakdown, breakdownLegend, breakdownNote),
      h("section.panel.span-6", { "aria-labelledby": "po-h" }, h("h2#po-h", {}, "Polls"),
        h("form.poll-form", { onsubmit: openPoll },
          h("div.full", {}, field("Question", q)),
          opts.map((o, i) => field(`Option ${i + 1}${i > 1 ? " (optional)" : ""}`, o)),
          field("Open for (seconds)", seconds),
          h("div.full", {}, h("button.btn.primary", { type: "submit" }, "Open poll"))),
        dashPoll),
      h("section.panel.span-12", { "aria-labelledby": "vw-h" }, h("h2#vw-h", {}, "Who may watch"),
        accessNote,
        field("Usernames, comma-separated", viewerList),
        h("div", {}, h("button.btn", { type: "button", onclick: saveViewers }, "Save viewers")), viewerMsg))));

  api(`/api/broadcasts/${encodeURIComponent(id)}/viewers`).then((v) => { viewerList.value = v.viewers.join(", "); }, () => {});

  async function saveViewers() {
    const list = names(viewerList.value);
    // An empty list on a public broadcast would make it private to nobody and cut off
    // everyone watching: name someone first.
    if (!b.private && list.length === 0) {
      viewerMsg.textContent = "Name at least one person to make this broadcast private.";
      return;
    }
    try {
      const nb = await api(`/api/broadcasts/${encodeURIComponent(id)}/viewers`, { method: "PUT", body: { viewers: list } });
      const wasPrivate = b.private;
      b = { ...b, ...nb };
      showAccess();
      viewerMsg.textContent = `Saved: ${list.length} ${list.length === 1 ? "person" : "people"} may watch.`;
      // Made private: the preview needs the URL with a playback token now.
      if (!wasPrivate && b.private && preview) { preview.destroy(); preview = null; setLive(); }
    } catch (e) { viewerMsg.textContent = e.message; }
  }

  function openPoll(e) {
    e.preventDefault();
    const options = opts.map((o) => o.value.trim()).filter(Boolean);
    const ok = room?.send({ type: "poll_open", question: q.value.trim(), options, seconds: Number(seconds.value) });
    roomError.textContent = ok ? "" : "Not connected to the room.";
  }

  // The broadcaster's own clock: the stream time at the live edge, from the preview
  // (its stream time plus its delay), else estimated from when the broadcast started.
  const liveEdge = () => {
    const t = preview?.streamMs();
    const l = preview?.latencyMs();
    if (t !== undefined && l != null) return t + l;
    return b.started_at ? Date.now() - Date.parse(b.started_at) : undefined;
  };
  const when = (mediaTs) => {
    if (mediaTs == null) return "stream time unknown";
    const edge = liveEdge();
    const behind = edge !== undefined ? ` / ${secs(Math.max(0, edge - mediaTs))} ago` : "";
    return `answered ${secs(mediaTs)} into the stream${behind}`;
  };

  function onMessage(m) {
    switch (m.type) {
      case "recent": m.comments.forEach(addComment); break;
      case "comment": addComment(m); break;
      case "comment_deleted": dashComments.querySelector(`li[data-id="${Number(m.comment)}"]`)?.remove(); break;
      case "hearts": {
        heartTotal.textContent = String(Number(heartTotal.textContent) + m.count);
        const mid = m.media_ts_from != null ? Math.round((m.media_ts_from + m.media_ts_to) / 2) : null;
        heartsLog.prepend(h("li", { dataset: { from: m.media_ts_from ?? "", to: m.media_ts_to ?? "" } },
          h("span", {}, `♥ ${m.count}`, m.senders.length ? ` from ${m.senders.join(", ")}` : ""), h("span.when", {}, when(mid))));
        while (heartsLog.children.length > 30) heartsLog.lastElementChild.remove();
        break;
      }
      case "poll": case "lagged": showPoll(m.type === "poll" ? m : m.poll); break;
      case "welcome": showPoll(m.poll); break;
      case "presence": viewers.textContent = String(m.viewers); break;
      case "error": roomError.textContent = m.message; break;
    }
  }

  const seen = new Set();
  function addComment(c) {
    if (seen.has(c.id)) return;
    seen.add(c.id);
    const act = (label, msg) => h("button.btn.small", { type: "button", "aria-label": label === "Delete" ? `Delete ${c.user}'s comment` : `${label} ${c.user}`, onclick: () => { room?.send(msg); if (label !== "Delete") roomError.textContent = `${label === "Mute" ? "Muted" : "Blocked"} ${c.user}.`; } }, label);
    dashComments.prepend(h("li.comment", { dataset: { id: c.id, mediaTs: c.media_ts ?? "" } },
      h("span.comment-head", {}, h("a.comment-user", { href: `/u/${encodeURIComponent(c.user)}` }, c.user)),
      h("span.comment-text", {}, c.text),
      h("span.when", {}, when(c.media_ts)),
      h("span.actions", {},
        act("Delete", { type: "delete_comment", comment: c.id }),
        act("Mute", { type: "mute", user: c.user }),
        act("Block", { type: "block", user: c.user }))));
    while (dashComments.children.length > 100) dashComments.lastElementChild.remove();
  }

  let pollSig = "";
  function showPoll(p) {
    const sig = JSON.stringify(p && [p.id, p.state, p.totals]);
    if (!p || sig === pollSig) return;
    pollSig = sig;
    dashPoll.dataset.state = p.state;
    fill(dashPoll, h("div.poll", {}, pollView(p, { state: p.state === "open" ? `open until ${new Date(p.closes_at).toLocaleTimeString()}` : p.state })));
  }

  function drawChart(a) {
    const bars = a.histogram || [];
    const max = Math.max(1, ...bars.map(([, n]) => n));
    const w = 320 / Math.max(1, bars.length);
    chart.replaceChildren();
    chart.setAttribute("aria-label", a.reporting ? `Delay behind live: median ${secs(a.delay_p50_ms ?? 0)}, 90th percentile ${secs(a.delay_p90_ms ?? 0)}, from ${a.reporting} players` : "How far behind live the audience is: no reports yet");
    bars.forEach(([bound, n], i) => {
      const bh = (n / max) * 120;
      const label = i === bars.length - 1 ? `>${secs(bars[i - 1]?.[0] ?? 0)}` : `<${secs(bound)}`;
      chart.append(svg("rect", { class: "bar", x: i * w + 3, y: 130 - bh, width: Math.max(1, w - 6), height: bh, rx: 3 }),
        svg("text", { x: i * w + w / 2, y: 146, "text-anchor": "middle" }, label.replace(".0 s", " s")),
        n ? svg("text", { x: i * w + w / 2, y: 126 - bh, "text-anchor": "middle" }, String(n)) : "");
    });
    if (!bars.length) chart.append(svg("text", { x: 160, y: 80, "text-anchor": "middle" }, "No delay reports yet"));
    delays.textContent = a.reporting
      ? `${a.reporting} players report: median ${secs(a.delay_p50_ms)}, p90 ${secs(a.delay_p90_ms)}, p99 ${secs(a.delay_p99_ms)}, max ${secs(a.delay_max_ms)}`
      : "Players report their delay every 2 s while they watch.";
  }

  // Means, which add up to a frame's delay (the percentiles are bucket bounds).
  const STAGES = [
    ["upload", "Upload"],
    ["chunking", "Part formation"],
    ["delivery_flv", "Delivery"],
    ["player_buffer", "Player buffer"],
  ];
  const dur = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : secs(ms));
  function drawBreakdown(d) {
    const parts = STAGES.map(([key, label]) => [key, label, d.stages?.[key]?.mean_ms]).filter(([, , v]) => v != null);
    const total = parts.reduce((sum, [, , v]) => sum + v, 0);
    breakdown.replaceChildren();
    if (!parts.length || total <= 0) {
      breakdown.append(svg("text", { x: 160, y: 22, "text-anchor": "middle" }, "Measured once you are live"));
      fill(breakdownLegend);
      return;
    }
    let x = 0;
    parts.forEach(([key, label, v], i) => {
      const w = Math.max(2, (v / total) * 320);
      breakdown.append(svg("rect", { class: `stage stage-${i}`, x, y: 4, width: w, height: 28, "data-stage": key }, svg("title", {}, `${label}: ${dur(v)}`)));
      x += w;
    });
    breakdown.setAttribute("aria-label", `Where the delay goes: ${parts.map(([, label, v]) => `${label} ${dur(v)}`).join(", ")}`);
    fill(breakdownLegend, parts.map(([key, label, v], i) => h("li", { dataset: { stage: key } }, h(`span.swatch.stage-${i}`), `${label} ${dur(v)}`)));
    const wait = d.stages?.blocking_wait?.mean_ms;
    breakdownNote.textContent = wait != null
      ? `LL-HLS players' requests waited ${dur(wait)} on average for the next part, which then went out at once: no polling delay.`
      : "";
  }

  async function poll() {
    try {
      const [nb, a, d] = await Promise.all([
        api(`/api/broadcasts/${encodeURIComponent(id)}`),
        api(`/api/broadcasts/${encodeURIComponent(id)}/audience`),
        api(`/api/broadcasts/${encodeURIComponent(id)}/delay`).catch(() => ({})),
      ]);
      if (stopped) return;
      b = nb;
      viewers.textContent = String(a.viewers);
      drawChart(a);
      drawBreakdown(d);
      setLive();
    } catch { /* try again on the next tick */ }
  }

  let startingPreview = false;
  async function setLive() {
    showSignature();
    fill(badge, stateBadge(b.state), b.state === "live" && b.started_at ? ` live for ${duration(Date.now() - Date.parse(b.started_at))}` : "");
    overlay.hidden = b.state === "live";
    if (b.state === "ended") fill(overlay, h("p", {}, "This broadcast has ended. ", h("a", { href: `/b/${encodeURIComponent(id)}` }, "Watch the replay")));
    // One preview player: setLive runs again (each poll) while hls.js is still loading.
    if (b.state === "live" && !preview && !startingPreview) {
      startingPreview = true;
      try {
        const p = await play(video, b.watch, { mode: "hls" });
        if (stopped) p.destroy(); else preview = p;
      } catch (e) { roomError.textContent = e.message; }
      startingPreview = false;
    }
    if (b.state === "ended") { preview?.destroy(); preview = null; room?.stop(); }
    showCamera();
  }

  setLive();
  if (b.state !== "ended") {
    room = joinRoom(id, () => tokenQuery(b.watch.hls), {
      on: onMessage,
      shouldRetry: async () => { await poll(); return b.state !== "ended" && !stopped; },
    });
  }
  poll();
  stops.push(every(2000, poll));
  return () => {
    stopped = true;
    // Leaving the studio ends a broadcast that goes out from this page.
    whip?.stop().catch(() => {});
    local?.getTracks().forEach((t) => t.stop());
    stops.forEach((s) => s());
    room?.stop();
    preview?.destroy();
  };
}
