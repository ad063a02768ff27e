//! A player's playout, modelled for clients that receive a stream without showing it
//! (`livescope watch`): playback starts once a pre-buffer of media has arrived, runs in
//! real time, stalls when the playhead reaches the newest frame, and starts again once the
//! pre-buffer is back. What it holds (media received ahead of the playhead) is the
//! player's buffer, which it reports as the web player reports its own.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Playout {
    prebuffer_ms: f64,
    /// The end of the newest media received: its time plus one frame's duration.
    newest: Option<f64>,
    /// The newest frame's own time, and the duration of a frame (the last positive step
    /// between frames, at most 100 ms).
    last_frame: Option<f64>,
    frame_ms: f64,
    state: State,
    /// Whether playback has begun (the first wait is start-up, not a stall).
    started: bool,
    pub stalls: u32,
    pub stalled_ms: f64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Not playing: the playhead is at media time `at` (none before the first frame),
    /// since `since`.
    Waiting { at: Option<f64>, since: Instant },
    /// Playing in real time: media time `media` was on screen at `since`.
    Playing { media: f64, since: Instant },
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

impl Playout {
    pub fn new(prebuffer_ms: f64, now: Instant) -> Playout {
        Playout {
            prebuffer_ms,
            newest: None,
            last_frame: None,
            frame_ms: 0.0,
            state: State::Waiting { at: None, since: now },
            started: false,
            stalls: 0,
            stalled_ms: 0.0,
        }
    }

    /// Plays on to `now`, stalling where the media ran out.
    fn advance(&mut self, now: Instant) {
        if let (State::Playing { media, since }, Some(newest)) = (self.state, self.newest)
            && media + ms_between(since, now) >= newest
        {
            let dry = since + Duration::from_secs_f64((newest - media).max(0.0) / 1000.0);
            self.state = State::Waiting {
                at: Some(newest),
                since: dry,
            };
            self.stalls += 1;
        }
    }

    /// A frame of media time `media_ms` arrived at `now`.
    pub fn frame(&mut self, media_ms: f64, now: Instant) {
        self.advance(now);
        if let Some(last) = self.last_frame
            && media_ms > last
        {
            self.frame_ms = (media_ms - last).min(100.0);
        }
        self.last_frame = Some(self.last_frame.map_or(media_ms, |l| l.max(media_ms)));
        let newest = self.newest.map_or(media_ms, |n| n.max(media_ms + self.frame_ms));
        self.newest = Some(newest);
        if let State::Waiting { at, since } = self.state {
            let at = at.unwrap_or(media_ms);
            self.state = if newest - at >= self.prebuffer_ms {
                if self.started {
                    self.stalled_ms += ms_between(since, now);
                }
                self.started = true;
                State::Playing { media: at, since: now }
            } else {
                State::Waiting { at: Some(at), since }
            };
        }
    }

    /// The media time on screen at `now`, once playback has begun.
    pub fn position_ms(&mut self, now: Instant) -> Option<f64> {
        self.advance(now);
        if !self.started {
            return None;
        }
        match self.state {
            State::Playing { media, since } => Some(media + ms_between(since, now)),
            State::Waiting { at, .. } => at,
        }
    }

    /// Media held ahead of the playhead at `now`, once playback has begun.
    pub fn buffer_ms(&mut self, now: Instant) -> Option<f64> {
        let position = self.position_ms(now)?;
        Some((self.newest? - position).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_stream_holds_the_prebuffer_and_a_gap_stalls_once() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Playout::new(1000.0, t0);
        // 30 fps arriving in real time: playback starts after a second of media.
        for n in 0..=90u64 {
            p.frame((n * 33) as f64, at(n * 33));
        }
        let buffer = p.buffer_ms(at(90 * 33)).unwrap();
        assert!((buffer - 1000.0).abs() < 40.0, "{buffer}");
        assert_eq!(p.stalls, 0);
        // Nothing for 2.5 s: the buffer runs dry after 1 s, then a stall until the
        // pre-buffer is back.
        assert_eq!(p.buffer_ms(at(90 * 33 + 1500)), Some(0.0));
        assert_eq!(p.stalls, 1);
        let resume = 90 * 33 + 2500;
        for n in 91..=200u64 {
            let arrival = resume.max(n * 33);
            p.frame((n * 33) as f64, at(arrival));
        }
        assert_eq!(p.stalls, 1);
        assert!(p.stalled_ms > 1400.0 && p.stalled_ms < 1600.0, "{}", p.stalled_ms);
        assert!(p.buffer_ms(at(200 * 33)).unwrap() > 900.0);
    }

    #[test]
    fn nothing_is_reported_before_playback_begins() {
        let t0 = Instant::now();
        let mut p = Playout::new(1000.0, t0);
        assert_eq!(p.buffer_ms(t0), None);
        p.frame(0.0, t0);
        p.frame(500.0, t0 + Duration::from_millis(500));
        assert_eq!(p.buffer_ms(t0 + Duration::from_millis(500)), None);
    }
}
