// Plays a broadcast in a <video>: LL-HLS with hls.js (low-latency mode; also the replay,
// where the same URL is a VOD playlist), HTTP-FLV with mpegts.js for a low delay, or
// WebRTC (WHEP) for the lowest.
// The libraries are loaded only here, on the pages that play video.
import { local } from "./lib.js";
import { adaptivePlayout, bufferedAhead } from "./playout.js";

let hlsModule = null;
let mpegtsLoaded = null;

const loadHls = () => (hlsModule ||= import("./vendor/hls.min.mjs").then((m) => m.default));

function loadMpegts() {
  return (mpegtsLoaded ||= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = new URL("./vendor/mpegts.js", import.meta.url).href;
    s.onload = () => resolve(window.mpegts);
    s.onerror = () => reject(new Error("could not load the FLV player"));
    document.head.append(s);
  }));
}

/** Whether this browser can watch over WebRTC. */
export const webrtcSupported = () => typeof RTCPeerConnection === "function";

/**
 * Starts playing. `mode` is "hls", "flv" or "webrtc"; `live` false plays a replay from
 * the start.
 * Returns {latencyMs(), bufferMs(), streamMs(), destroy()}:
 *  - latencyMs: how far behind the live edge playback is (null when unknown or a replay);
 *  - bufferMs: media buffered ahead of the playhead (null before playing);
 *  - streamMs: the stream time (ms, the broadcast's own frame timestamps) on screen, or
 *    undefined when the player cannot tell (FLV: mpegts.js rebases time to 0).
 */
export async function play(video, { hls: hlsUrl, flv: flvUrl, whep: whepUrl }, { mode = "hls", live = true, onError, tap } = {}) {
  video.muted = true; // autoplay is allowed muted; the controls unmute
  video.playsInline = true;
  const kick = () => video.play().catch(() => {});
  if (mode === "webrtc" && live) {
    if (!webrtcSupported() || !whepUrl) throw new Error("this browser cannot watch over WebRTC");
    const { watch } = await import("./whip.js");
    const session = await watch(local(whepUrl), video);
    // WebRTC has no buffer to read off the <video>: the jitter buffer's mean hold over
    // the last second, from the receiver's statistics, is what stands behind live.
    let held = null;
    let last = null;
    const sample = setInterval(async () => {
      const stats = await session.pc.getStats().catch(() => null);
      stats?.forEach((s) => {
        if (s.type !== "inbound-rtp" || s.kind !== "video") return;
        if (last && s.jitterBufferEmittedCount > last.n) held = Math.round(((s.jitterBufferDelay - last.d) / (s.jitterBufferEmittedCount - last.n)) * 1000);
        last = { d: s.jitterBufferDelay, n: s.jitterBufferEmittedCount };
      });
    }, 1000);
    session.pc.addEventListener("connectionstatechange", () => {
      if (session.pc.connectionState === "failed") onError?.("the WebRTC connection failed");
    });
    kick();
    return {
      webrtc: session,
      latencyMs: () => held,
      bufferMs: () => held,
      streamMs: () => undefined,
      destroy() {
        clearInterval(sample);
        session.stop().catch(() => {});
      },
    };
  }
  if (mode === "flv" && live) {
    const mpegts = await loadMpegts();
    mpegts.LoggingControl.enableAll = false;
    mpegts.LoggingControl.enableError = true;
    if (!mpegts.getFeatureList().mseLivePlayback) throw new Error("this browser cannot play the lowest-delay stream");
    const player = mpegts.createPlayer(
      { type: "flv", isLive: true, url: new URL(local(flvUrl), location.href).href },
      {
        ...(tap ? { customLoader: tappedFlvLoader(mpegts, tap) } : {}),
        enableStashBuffer: false,
        stashInitialSize: 128,
        // Measured camera to glass on loopback: latency chasing alone holds 0.78 s; live
        // sync towards 0.3 s holds about 0.3 s with no stalls (bench/results/webapp.md).
        liveSync: true,
        liveSyncTargetLatency: 0.3,
        liveSyncMaxLatency: 0.6,
        liveSyncPlaybackRate: 1.2,
        autoCleanupSourceBuffer: true,
        lazyLoad: false,
      },
    );
    player.on(mpegts.Events.ERROR, (type, detail) => onError?.(`${type}: ${detail}`));
    player.attachMediaElement(video);
    player.load();
    kick();
    return {
      latencyMs: () => bufferedAhead(video),
      bufferMs: () => bufferedAhead(video),
      streamMs: () => undefined,
      destroy() {
        try { player.destroy(); } catch { /* already gone */ }
      },
    };
  }
  const Hls = await loadHls();
  const src = local(hlsUrl);
  if (!Hls.isSupported()) {
    // Safari plays HLS itself; its currentTime is the stream's own time.
    video.src = src;
    kick();
    return { latencyMs: () => null, bufferMs: () => bufferedAhead(video), streamMs: () => Math.round(video.currentTime * 1000), destroy: () => { video.removeAttribute("src"); video.load(); } };
  }
  // Live, the adaptive policy (playout.js) alone sets the playback rate: hls.js's live
  // sync and its own raise of the target after a stall are off.
  const hls = new Hls({ ...(tap ? { fLoader: tappedLoader(Hls.DefaultConfig.loader, tap) } : {}), lowLatencyMode: true, maxLiveSyncPlaybackRate: 1, liveSyncOnStallIncrease: 0, backBufferLength: 30, startPosition: live ? -1 : 0 });
  const playout = live ? adaptivePlayout(video, hls) : null;
  // hls.js puts the first fragment it loads at its playlist position and shifts the media
  // timeline by the fragment's own start (initPTS); adding it back gives the stream's
  // frame timestamps, the same clock the room's media_ts uses. One offset per
  // discontinuity sequence (cc).
  const offsets = new Map();
  let cc = 0;
  hls.on(Hls.Events.INIT_PTS_FOUND, (_, d) => offsets.set(d.frag.cc, d.initPTS / d.timescale));
  hls.on(Hls.Events.FRAG_CHANGED, (_, d) => { cc = d.frag.cc; });
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (!d.fatal) return;
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else onError?.(`${d.type}: ${d.details}`);
  });
  hls.on(Hls.Events.MANIFEST_PARSED, kick);
  hls.loadSource(src);
  hls.attachMedia(video);
  return {
    hls,
    /// The adaptive policy's state: {aimMs, aheadMs, rate, stalls} (null for a replay).
    playout: () => playout?.state() ?? null,
    bufferMs: () => (video.readyState > 1 ? bufferedAhead(video) : null),
    latencyMs: () => (live && Number.isFinite(hls.latency) && video.readyState > 1 ? Math.round(hls.latency * 1000) : null),
    streamMs() {
      const off = offsets.get(cc) ?? offsets.get([...offsets.keys()].pop());
      return off === undefined || video.readyState < 2 ? undefined : Math.round((video.currentTime + off) * 1000);
    },
    destroy() {
      playout?.stop();
      hls.destroy();
      video.removeAttribute("src");
      video.load();
    },
  };
}

/// hls.js's own loader, also handing every init segment, part and segment it loads to
/// `tap.fmp4` (a copy: hls.js may pass the buffer on to its worker).
function tappedLoader(Base, tap) {
  return class extends Base {
    load(context, config, callbacks) {
      const onSuccess = callbacks.onSuccess;
      callbacks.onSuccess = (response, stats, ctx, details) => {
        if (response.data instanceof ArrayBuffer) tap.fmp4(new Uint8Array(response.data.slice(0)));
        onSuccess(response, stats, ctx, details);
      };
      super.load(context, config, callbacks);
    }
  };
}

/// A loader for mpegts.js that streams the FLV with fetch, as its own does, and hands every
/// chunk to `tap.flv` too.
function tappedFlvLoader(mpegts, tap) {
  const { BaseLoader, LoaderStatus, LoaderErrors } = mpegts;
  return class extends BaseLoader {
    static isSupported() {
      return typeof fetch === "function" && typeof ReadableStream === "function";
    }

    constructor() {
      super("livescope-fetch-loader");
      this._needStash = true;
    }

    open(source) {
      this._status = LoaderStatus.kConnecting;
      this._abort = new AbortController();
      tap.flvStart();
      fetch(source.url, { signal: this._abort.signal, credentials: "same-origin" }).then(async (res) => {
        if (!res.ok) {
          this._status = LoaderStatus.kError;
          this._onError?.(LoaderErrors.HTTP_STATUS_CODE_INVALID, { code: res.status, msg: res.statusText });
          return;
        }
        this._status = LoaderStatus.kBuffering;
        const reader = res.body.getReader();
        let received = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          tap.flv(value);
          const chunk = value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
          const at = received;
          received += value.byteLength;
          this._onDataArrival?.(chunk, at, received);
        }
        this._status = LoaderStatus.kComplete;
        this._onComplete?.(0, received - 1);
      }).catch((e) => {
        if (this._abort.signal.aborted) return;
        this._status = LoaderStatus.kError;
        this._onError?.(LoaderErrors.EXCEPTION, { code: -1, msg: e.message });
      });
    }

    abort() {
      this._abort?.abort();
      this._status = LoaderStatus.kComplete;
    }
  };
}
