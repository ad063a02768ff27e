//! Where a broadcast's delay goes, stage by stage, as the server sees it: the study's
//! breakdown (upload, chunking, polling, delivery) measured live for every broadcast. Each
//! stage is a histogram of log-spaced buckets kept with atomic adds, per broadcast (for
//! `GET /api/broadcasts/<id>/delay`) and for the whole server (Prometheus histograms in
//! `/metrics`). The parts of the server that see a stage observe it with the handle of
//! their broadcast; nothing here waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

use crate::recent::Recent;

/// The stages the server can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Publisher to server: a frame's arrival against its media time, less the smallest
    /// such difference seen in the last minute (the publisher's clock offset, estimated by
    /// its fastest frame; see [`UploadClock`]).
    Upload,
    /// LL-HLS part formation: how long a frame waits, on average over its part, from its
    /// arrival to the part being whole (half a part; the part's first frame waits a whole
    /// one, which is what the study's 3 s of chunking counted).
    Chunking,
    /// How long LL-HLS blocking playlist requests were held for the next part (what
    /// polling cost players in 2015). It runs alongside chunking (a player asks for the
    /// part being made), so it does not add to a frame's delay: a part goes out the moment
    /// it is whole.
    BlockingWait,
    /// Push delivery: from a frame arriving to its bytes being handed to a viewer's socket.
    DeliveryRtmp,
    DeliveryFlv,
    /// What players hold in their buffers (media buffered ahead of the playhead, which on
    /// average is how long a frame waits in the player), as the web player and
    /// `livescope watch` report it every 2 s over the room.
    PlayerBuffer,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Upload,
        Stage::Chunking,
        Stage::BlockingWait,
        Stage::DeliveryRtmp,
        Stage::DeliveryFlv,
        Stage::PlayerBuffer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Upload => "upload",
            Stage::Chunking => "chunking",
            Stage::BlockingWait => "blocking_wait",
            Stage::DeliveryRtmp => "delivery_rtmp",
            Stage::DeliveryFlv => "delivery_flv",
            Stage::PlayerBuffer => "player_buffer",
        }
    }
}

/// Bucket `i` holds values below `FIRST * RATIO^i` seconds: 0.5 ms to about 70 s.
const BUCKETS: usize = 48;
const FIRST: f64 = 0.0005;
const RATIO: f64 = 1.2806;

fn bound(i: usize) -> f64 {
    FIRST * RATIO.powi(i as i32)
}

/// One stage's distribution.
struct Buckets {
    counts: [AtomicU64; BUCKETS],
    total: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            total: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Buckets {
    fn observe(&self, seconds: f64) {
        // The first bucket whose bound exceeds `seconds`, by one logarithm (this runs for
        // every batch a push viewer is sent); the comparisons fix the rounding at edges.
        let mut i = if seconds < FIRST {
            0
        } else {
            ((seconds / FIRST).ln() / RATIO.ln()).floor() as usize + 1
        }
        .min(BUCKETS - 1);
        while i > 0 && seconds < bound(i - 1) {
            i -= 1;
        }
        while i < BUCKETS - 1 && seconds >= bound(i) {
            i += 1;
        }
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Count, mean and the 50th and 95th percentiles (the upper bound of their bucket), in
    /// milliseconds.
    fn summary(&self) -> Option<Summary> {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let quantile = |q: f64| {
            let want = (q * total as f64).ceil() as u64;
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= want {
                    return bound(i) * 1000.0;
                }
            }
            bound(BUCKETS - 1) * 1000.0
        };
        Some(Summary {
            count: total,
            mean_ms: self.sum_us.load(Ordering::Relaxed) as f64 / total as f64 / 1000.0,
            p50_ms: quantile(0.5),
            p95_ms: quantile(0.95),
        })
    }
}

/// A stage's numbers, as the API shows them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub count: u64,
    pub mean_ms: f64,
    /// The upper bounds of the buckets holding the median and the 95th percentile (buckets
    /// are 28% apart).
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// One broadcast's stages, and the server's Prometheus histogram of each.
pub struct Delays {
    stages: [Buckets; Stage::ALL.len()],
    global: [Histogram; Stage::ALL.len()],
}

impl Delays {
    pub fn observe(&self, stage: Stage, delay: Duration) {
        let i = Stage::ALL.iter().position(|s| *s == stage).expect("a stage");
        let seconds = delay.as_secs_f64();
        self.stages[i].observe(seconds);
        self.global[i].observe(seconds);
    }

    /// Every stage measured so far, by name.
    pub fn summary(&self) -> Vec<(&'static str, Summary)> {
        Stage::ALL
            .iter()
            .zip(&self.stages)
            .filter_map(|(stage, b)| b.summary().map(|s| (stage.name(), s)))
            .collect()
    }
}

/// The delays of broadcasts since the server started (the most recent [`KEEP`]).
pub struct Registry {
    by_broadcast: Mutex<Recent<Arc<Delays>>>,
    global: [Histogram; Stage::ALL.len()],
}

/// Broadcasts whose delays are kept.
pub const KEEP: usize = 1024;

impl Registry {
    /// The server's histograms, registered in `metrics` as `livescope_delay_<stage>_seconds`.
    pub fn new(metrics: &mut prometheus_client::registry::Registry) -> Registry {
        let global: [Histogram; Stage::ALL.len()] =
            std::array::from_fn(|_| Histogram::new((0..BUCKETS).step_by(3).map(bound)));
        for (stage, h) in Stage::ALL.iter().zip(&global) {
            metrics.register(
                format!("delay_{}_seconds", stage.name()),
                format!("Delay added by the {} stage", stage.name().replace('_', " ")),
                h.clone(),
            );
        }
        Registry {
            by_broadcast: Mutex::new(Recent::new(KEEP)),
            global,
        }
    }

    /// The handle of broadcast `id`, made on first use.
    pub fn of(&self, id: &str) -> Arc<Delays> {
        self.by_broadcast
            .lock()
            .expect("delays lock")
            .get_or_insert_with(id, || {
                Arc::new(Delays {
                    stages: Default::default(),
                    global: self.global.clone(),
                })
            })
            .clone()
    }

    /// The delays of broadcast `id`, if any stage was seen.
    pub fn get(&self, id: &str) -> Option<Arc<Delays>> {
        self.by_broadcast.lock().expect("delays lock").get(id).cloned()
    }
}

/// Estimates the publisher's clock offset for the upload stage: the smallest `arrival -
/// media time` seen over the last minute is the frame that travelled fastest, taken as a
/// delay of zero. The error is that frame's own delay (at least the network's one-way
/// minimum, typically milliseconds on a good path); a minute's window follows a
/// publisher's clock drifting against the server's.
#[derive(Default)]
pub struct UploadClock {
    /// (arrival ms, arrival - media ms), candidates for the minimum, oldest first.
    window: std::collections::VecDeque<(f64, f64)>,
}

const WINDOW_MS: f64 = 60_000.0;

impl UploadClock {
    /// A frame of media time `media_ms` arrived at `arrival_ms` (any origin); its upload
    /// delay beyond the fastest frame's, in ms.
    pub fn delay(&mut self, media_ms: f64, arrival_ms: f64) -> f64 {
        let offset = arrival_ms - media_ms;
        while self.window.back().is_some_and(|&(_, o)| o >= offset) {
            self.window.pop_back();
        }
        self.window.push_back((arrival_ms, offset));
        while self.window.front().is_some_and(|&(t, _)| arrival_ms - t > WINDOW_MS) {
            self.window.pop_front();
        }
        let min = self.window.front().map_or(offset, |&(_, o)| o);
        offset - min
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_place_values_in_their_buckets() {
        let mut metrics = prometheus_client::registry::Registry::default();
        let registry = Registry::new(&mut metrics);
        let d = registry.of("b");
        for ms in [10, 10, 10, 10, 10, 10, 10, 10, 10, 500] {
            d.observe(Stage::Upload, Duration::from_millis(ms));
        }
        let s = &d.summary()[0];
        assert_eq!(s.0, "upload");
        assert_eq!(s.1.count, 10);
        assert!((s.1.mean_ms - 59.0).abs() < 0.01, "{:?}", s.1);
        assert!(s.1.p50_ms >= 10.0 && s.1.p50_ms < 13.0, "{:?}", s.1);
        assert!(s.1.p95_ms >= 500.0 && s.1.p95_ms < 641.0, "{:?}", s.1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics).unwrap();
        assert!(text.contains("delay_upload_seconds_count 10"), "{text}");
    }

    #[test]
    fn the_upload_clock_takes_the_fastest_frame_as_zero_and_follows_drift() {
        let mut c = UploadClock::default();
        // The publisher's clock is 5 s ahead; frames take 20 to 120 ms.
        assert_eq!(c.delay(5000.0, 20.0), 0.0);
        assert_eq!(c.delay(5033.0, 153.0), 100.0);
        assert_eq!(c.delay(5066.0, 76.0), 0.0, "a faster frame is the new zero");
        // A minute later the old minimum has left the window.
        assert_eq!(c.delay(65_100.0, 60_200.0 + 10.0), 0.0);
    }

    #[test]
    fn a_value_lands_in_the_first_bucket_whose_bound_exceeds_it() {
        for seconds in [0.0, 0.0001, 0.0005, 0.00064, 0.001, 0.0123, 0.3339, 1.0, 2.5, 69.0, 1e6] {
            let b = Buckets::default();
            b.observe(seconds);
            let want = (0..BUCKETS).find(|&i| seconds < bound(i)).unwrap_or(BUCKETS - 1);
            let got = b.counts.iter().position(|c| c.load(Ordering::Relaxed) == 1).unwrap();
            assert_eq!(got, want, "{seconds} s");
        }
    }
}
