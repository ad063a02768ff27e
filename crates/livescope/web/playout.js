// The adaptive buffer policy of `livescope sim` (Policy::Adaptive in sim.rs), for LL-HLS in
// the browser: keep an aimed-at buffer ahead of the playhead, play at 0.8x while less is
// buffered (so the buffer lasts as long as 1.25 times as much at 1x), let hls.js catch up
// at up to 1.25x while the player is further behind live than the aim, and after every
// stall aim higher by the stall's length: the jitter this viewer's stream has shown.
// The simulator shows this beats every fixed pre-buffer on the study's bursty uploads
// (bench/results/sim.md); the same constants are used here.

export const SLOW_DOWN = 0.8;
export const CATCH_UP = 1.25;
/// How far below the aim the buffer may fall before playback slows (seconds).
const MARGIN = 0.5;
/// The first aim, as the simulator's P = 1 s: three LL-HLS parts, hls.js's own start.
const START_PREBUFFER = 1.0;
/// An aim never grows past this: a viewer this far behind is better served by a seek.
const MAX_AIM = 10;

/// Drives `video.playbackRate` (slowing) and `hls.targetLatency` (hls.js catches up
/// towards it at up to CATCH_UP). Returns {state(), stop()}.
export function adaptivePlayout(video, hls) {
  let aim = START_PREBUFFER * SLOW_DOWN;
  let stalls = 0;
  let stalledAt = null;
  let started = false;
  const partTarget = () => hls.levels?.[hls.currentLevel]?.details?.partTarget || 0.334;
  // hls.js measures latency to the live edge, which is ahead of the buffer by the part
  // being made; its target is the aim plus that part.
  const target = () => {
    hls.targetLatency = aim + partTarget();
  };
  const ahead = () => {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.1 && video.currentTime < b.end(i)) return b.end(i) - video.currentTime;
    }
    return 0;
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
  const slow = () => {
    if (!started || video.paused || stalledAt !== null) return;
    const rate = video.playbackRate;
    // Only this module slows down; hls.js only speeds up and resets its own rates.
    if (ahead() < aim - MARGIN && rate <= 1) {
      if (rate !== SLOW_DOWN) video.playbackRate = SLOW_DOWN;
    } else if (rate === SLOW_DOWN && ahead() >= aim) {
      video.playbackRate = 1;
    }
  };
  const timer = setInterval(slow, 200);
  hls.once("hlsLevelUpdated", target);
  return {
    state: () => ({ aimMs: Math.round(aim * 1000), aheadMs: Math.round(ahead() * 1000), rate: video.playbackRate, stalls }),
    stop() {
      clearInterval(timer);
      video.removeEventListener("waiting", onWaiting);
      video.removeEventListener("playing", onPlaying);
    },
  };
}
