// WHIP (RFC 9725) from the browser: sends a camera and microphone to livescope over
// WebRTC. The offer goes out once the browser's candidates are gathered (a second at
// most); later candidates trickle in PATCH requests, and a connection that fails is
// restarted (ICE restart, also by PATCH) before it is given up. DELETE ends the broadcast.

/** H.264 first (the one video codec every livescope player decodes), packetization mode 1. */
function preferH264(transceiver) {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => /h264/i.test(c.mimeType) && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
  const rest = caps.codecs.filter((c) => /rtx|red|ulpfec/i.test(c.mimeType));
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rest]);
}

const gathered = (pc, ms) => new Promise((resolve) => {
  if (pc.iceGatheringState === "complete") return resolve();
  const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); };
  const check = () => { if (pc.iceGatheringState === "complete") done(); };
  const timer = setTimeout(done, ms);
  pc.addEventListener("icegatheringstatechange", check);
});

async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  try { message = (await res.json()).message || message; } catch { /* not JSON */ }
  return new Error(message);
}

/** The ICE credentials of an SDP: [ufrag, pwd]. */
const iceCreds = (sdp) => [sdp.match(/a=ice-ufrag:(.*)/)?.[1]?.trim(), sdp.match(/a=ice-pwd:(.*)/)?.[1]?.trim()];

/**
 * Negotiates with a WHIP or WHEP endpoint: `pc` has its transceivers. Returns the
 * resource URL. `headers` are sent with every request (a bearer token, say).
 */
export async function negotiate(pc, url, { headers = {} } = {}) {
  url = new URL(url, location.href).href;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc, 1000);
  const res = await fetch(url, { method: "POST", headers: { ...headers, "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw await failure(res);
  const resource = new URL(res.headers.get("Location"), url).href;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  const patch = (frag) => fetch(resource, { method: "PATCH", headers: { ...headers, "Content-Type": "application/trickle-ice-sdpfrag" }, body: frag });
  // Candidates found after the offer went out.
  pc.addEventListener("icecandidate", (e) => {
    if (!e.candidate?.candidate) return;
    const [ufrag, pwd] = iceCreds(pc.localDescription.sdp);
    patch(`a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\na=${e.candidate.candidate}\r\n`).catch(() => {});
  });
  // A lost connection (a network change on a phone): new credentials both ways, then the
  // same media again. "disconnected" may mend by itself; after 3 s it is restarted, well
  // within the server's 20 s of grace.
  let restarts = 0;
  let timer = null;
  const restart = async () => {
    if (restarts++ >= 3 || pc.signalingState === "closed") return;
    try { await restartIce(pc, patch); } catch { /* the state change says it failed */ }
  };
  pc.addEventListener("iceconnectionstatechange", () => {
    clearTimeout(timer);
    if (pc.iceConnectionState === "failed") restart();
    else if (pc.iceConnectionState === "disconnected") timer = setTimeout(restart, 3000);
  });
  return { resource, patch, restart: () => restartIce(pc, patch) };
}

/** An ICE restart as RFC 9725 4.4 lays it out: new local credentials in a PATCH, the
 * server's new ones in its answer. */
async function restartIce(pc, patch) {
  await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
  const [ufrag, pwd] = iceCreds(pc.localDescription.sdp);
  const res = await patch(`a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\n`);
  if (res.status !== 200) throw await failure(res);
  const [rufrag, rpwd] = iceCreds(await res.text());
  const sdp = pc.remoteDescription.sdp
    .replace(/a=ice-ufrag:.*\r?\n/g, `a=ice-ufrag:${rufrag}\r\n`)
    .replace(/a=ice-pwd:.*\r?\n/g, `a=ice-pwd:${rpwd}\r\n`);
  await pc.setRemoteDescription({ type: "answer", sdp });
}

/**
 * Goes live: sends `stream` (a camera and microphone) to the WHIP URL. Returns
 * {pc, resource, replaceVideo(track), restart(), stop()}; stop() ends the broadcast.
 */
export async function publish(url, stream) {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  const [video] = stream.getVideoTracks();
  const [audio] = stream.getAudioTracks();
  const vt = video ? pc.addTransceiver(video, { direction: "sendonly", streams: [stream], sendEncodings: [{ maxBitrate: 2_500_000 }] }) : null;
  if (audio) pc.addTransceiver(audio, { direction: "sendonly", streams: [stream] });
  if (vt) {
    preferH264(vt);
    // Viewers' players (HTTP-FLV, LL-HLS) take one picture size per stream: under a thin
    // link the browser lowers the frame rate and quality, not the resolution.
    const params = vt.sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    await vt.sender.setParameters(params).catch(() => {});
  }
  try {
    const { resource, restart } = await negotiate(pc, url);
    return {
      pc,
      resource,
      restart,
      replaceVideo: (track) => vt?.sender.replaceTrack(track),
      async stop() {
        try { await fetch(resource, { method: "DELETE" }); } finally { pc.close(); }
      },
    };
  } catch (e) {
    pc.close();
    throw e;
  }
}

/**
 * Watches over WHEP: plays the broadcast at `url` in `video` with the lowest delay WebRTC
 * gives (no jitter buffer held beyond what the network needs). Returns {pc, resource,
 * stop()}.
 */
export async function watch(url, video) {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  const vt = pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.("video");
  if (caps && vt.setCodecPreferences) {
    const h264 = caps.codecs.filter((c) => /h264/i.test(c.mimeType) || /rtx|red|ulpfec/i.test(c.mimeType));
    if (h264.some((c) => /h264/i.test(c.mimeType))) vt.setCodecPreferences(h264);
  }
  const media = new MediaStream();
  pc.addEventListener("track", (e) => {
    media.addTrack(e.track);
    if ("jitterBufferTarget" in e.receiver) e.receiver.jitterBufferTarget = 0;
    video.srcObject = media;
  });
  let resource = null;
  const stop = async () => {
    try {
      if (resource) await fetch(resource, { method: "DELETE" });
    } finally {
      pc.close();
      // A newer session may play in the same <video> by now.
      if (video.srcObject === media) video.srcObject = null;
    }
  };
  try {
    ({ resource } = await negotiate(pc, url));
    // Answered is not connected: a network that blocks UDP fails here, and the player
    // falls back to the next way of watching.
    const connected = await new Promise((resolve) => {
      const check = () => {
        if (pc.connectionState === "connected") resolve(true);
        if (pc.connectionState === "failed" || pc.connectionState === "closed") resolve(false);
      };
      pc.addEventListener("connectionstatechange", check);
      setTimeout(() => resolve(false), 8000);
      check();
    });
    if (!connected) throw new Error("the WebRTC connection did not come up");
    return { pc, resource, stop };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}
