//! One broadcast's media clock: the publisher's 32-bit millisecond timestamps, unwrapped
//! and re-based onto a 64-bit timeline that only moves forward.
//!
//! RTMP and FLV carry 32-bit millisecond timestamps, and ffmpeg's FLV writer keeps only 31
//! of those bits, so a long broadcast wraps (after 24.8 or 49.7 days, or at once for an
//! encoder that starts near the top). Encoders also jump: backwards when they restart,
//! forwards when their clock is reset. Everything downstream (the fMP4 decode times, the
//! playlists, the live edge that polls and reactions are placed on) wants one steady clock,
//! so each step between two frames is read modulo 2^32, and a step that is not a plausible
//! distance between neighbouring frames re-bases the timeline: the frame is placed just
//! after the newest one, and the frames that follow keep their spacing from there. A
//! player sees a stream that simply goes on.

/// The largest step back between two frames taken as it is: audio and video frames are
/// interleaved by the encoder and may step back by a few frames' worth.
const MAX_STEP_BACK_MS: i64 = 1_000;
/// The largest step forward taken as it is. A real gap (a publisher that stalled, a track
/// that paused) is shorter than this; an encoder whose clock jumped is not.
const MAX_STEP_FORWARD_MS: i64 = 10_000;
/// The spacing given to a frame after a jump when no normal step is known yet.
const DEFAULT_STEP_MS: u64 = 20;

/// The timeline of one publishing session.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The previous frame's timestamp as sent, and where it was placed.
    last: Option<(u32, u64)>,
    /// The newest position given so far.
    newest: u64,
    /// The last forward step taken as it was: the spacing to give a frame after a jump.
    step: u64,
    /// How many times the timeline was re-based.
    jumps: u64,
}

impl Timeline {
    /// Where a media frame sent with `sent` goes on the timeline.
    pub fn place(&mut self, sent: u32) -> u64 {
        let at = match self.last {
            None => u64::from(sent),
            Some((prev_sent, prev_at)) => {
                // Modulo 2^32: a 32-bit wrap is a small step forward.
                let step = i64::from(sent.wrapping_sub(prev_sent) as i32);
                if (-MAX_STEP_BACK_MS..=MAX_STEP_FORWARD_MS).contains(&step) {
                    if step > 0 {
                        self.step = step as u64;
                    }
                    prev_at.saturating_add_signed(step)
                } else {
                    self.jumps += 1;
                    let spacing = if self.step == 0 { DEFAULT_STEP_MS } else { self.step };
                    self.newest + spacing.min(100)
                }
            }
        };
        self.last = Some((sent, at));
        self.newest = self.newest.max(at);
        at
    }

    /// Where a stream header (a codec configuration, metadata) goes: encoders stamp them
    /// 0 or anything, so they never move the timeline.
    pub fn header(&self) -> u64 {
        self.newest
    }

    /// How many times an encoder's clock jumped and the timeline was re-based.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_32_bit_wrap_is_a_small_step() {
        let mut t = Timeline::default();
        let start = u32::MAX - 50;
        let placed: Vec<u64> = (0..5u32).map(|i| t.place(start.wrapping_add(i * 33))).collect();
        let steps: Vec<u64> = placed.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(steps, [33, 33, 33, 33]);
        assert!(placed[4] > u64::from(u32::MAX), "unwrapped past 32 bits: {placed:?}");
        assert_eq!(t.jumps(), 0);
    }

    #[test]
    fn a_31_bit_wrap_and_jumps_either_way_rebase_after_the_newest_frame() {
        let mut t = Timeline::default();
        // ffmpeg's 31 bits: from just under 2^31 back to 0.
        let near = (1u32 << 31) - 40;
        assert_eq!(t.place(near), u64::from(near));
        assert_eq!(t.place(near + 33), u64::from(near) + 33);
        assert_eq!(t.place(0), u64::from(near) + 66);
        assert_eq!(t.place(33), u64::from(near) + 99);
        // An hour forward, then back to zero: each continues 33 ms after the newest.
        let before = t.place(66);
        assert_eq!(t.place(3_600_066), before + 33);
        assert_eq!(t.place(3_600_099), before + 66);
        assert_eq!(t.place(5), before + 99);
        assert_eq!(t.jumps(), 3);
    }

    #[test]
    fn interleaved_tracks_keep_their_spacing() {
        let mut t = Timeline::default();
        // Video at 0, 33, 66; audio at 21, 42 sent after the video frame that follows it.
        let placed: Vec<u64> = [0, 33, 21, 66, 42].iter().map(|&s| t.place(s)).collect();
        assert_eq!(placed, [0, 33, 21, 66, 42]);
        assert_eq!(t.header(), 66);
    }
}
