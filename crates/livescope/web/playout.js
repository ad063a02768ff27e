// The adaptive buffer policy of `livescope sim` (Policy::Adaptive in sim.rs), for LL-HLS in
// the browser: keep an aimed-at buffer ahead of the playhead; play at 0.8x while the
// buffer is below the aim by more than a margin (so it lasts as long as 1.25 times as much
// at 1x), at 1.25x while it is above it by more than the margin (so a gap's delay is not
// kept for good), and after every stall aim higher by the stall's length: the jitter this
// viewer's stream has shown. The simulator shows this stalls no more than a fixed
// pre-buffer and stays closer to live, on the study's bursty uploads with LL-HLS parts
// (bench/results/sim.md); the same constants are used here.
//
// This module alone sets the playback rate: hls.js's own live sync is off
// (maxLiveSyncPlaybackRate 1, which also stops it resetting rates it did not set). Its
// target latency is kept at the aim plus a part, so that where hls.js starts and where it
// jumps back to after a seek agree with the aim.

export const SLOW_DOWN = 0.8;
export const CATCH_UP = 1.25;
/// How far from the aim the buffer may wander before the rate changes (seconds).
const MARGIN = 0.5;
/// The first aim, as the simulator's pre-buffer P = 1 s: three LL-HLS parts.
const START_PREBUFFER = 1.0;
/// An aim never grows past this: a viewer this far behind is better served by a seek.
const MAX_AIM = 10;

/// Media buffered ahead of the playhead (ms), in the buffered range that holds it; null
/// when nothing is.
export function bufferedAhead(video) {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= video.currentTime + 0.1 && video.currentTime < b.end(i)) {
      return Math.round((b.end(i) - video.currentTime) * 1000);
    }
  }
  return null;
}

/// Runs the policy on `video`, played by `hls`. Returns {state(), stop()}.
export function adaptivePlayout(video, hls) {
  let aim = START_PREBUFFER * SLOW_DOWN;
  let stalls = 0;
  let stalledAt = null;
  let started = false;
  let stopped = false;
  const partTarget = () => hls.levels?.[hls.currentLevel]?.details?.partTarget || 0.334;
  const live = () => hls.levels?.[hls.currentLevel]?.details?.live !== false;
  const target = () => {
    hls.targetLatency = aim + partTarget();
  };
  const ahead = () => (bufferedAhead(video) ?? 0) / 1000;
  const setRate = (rate) => {
    if (video.playbackRate !== rate) video.playbackRate = rate;
  };
  const onWaiting = () => {
    if (started && stalledAt === null) stalledAt = performance.now();
  };
  const onPlaying = () => {
    if (stalledAt !== null) {
      aim = Math.min(MAX_AIM, aim + (performance.now() - stalledAt) / 1000);
      stalls++;
      stalledAt = null;
      target();
    }
    started = true;
  };
  video.addEventListener("waiting", onWaiting);
  video.addEventListener("playing", onPlaying);
  const tick = () => {
    if (stopped || !started || video.paused || stalledAt !== null) return;
    if (!live()) {
      // The broadcast ended: what is left plays at its own pace.
      setRate(1);
      return;
    }
    const held = ahead();
    if (held > aim + MARGIN) setRate(CATCH_UP);
    else if (held < aim - MARGIN) setRate(SLOW_DOWN);
    else if ((video.playbackRate > 1 && held <= aim) || (video.playbackRate < 1 && held >= aim)) setRate(1);
  };
  const timer = setInterval(tick, 200);
  hls.once("hlsLevelUpdated", target);
  return {
    state: () => ({ aimMs: Math.round(aim * 1000), aheadMs: Math.round(ahead() * 1000), rate: video.playbackRate, stalls }),
    stop() {
      stopped = true;
      clearInterval(timer);
      video.removeEventListener("waiting", onWaiting);
      video.removeEventListener("playing", onPlaying);
    },
  };
}
