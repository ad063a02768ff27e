//! `GET /metrics`: what the server is doing, as counters and gauges in the Prometheus
//! exposition format (OpenMetrics text, via `prometheus-client`). Each part of the server
//! updates the few it owns: ingest the frames and bytes received, viewers' loops what they
//! sent, the LL-HLS origin its parts, segments and held requests. Updating one is an atomic
//! add: nothing here waits.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use std::sync::Arc;

use crate::delay::{Delays, Stage};
use crate::store::DeliveryPath;

/// A delivery path: `rtmp`, `flv` or `hls`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    pub path: &'static str,
}

impl From<DeliveryPath> for PathLabel {
    fn from(path: DeliveryPath) -> Self {
        PathLabel { path: path.as_str() }
    }
}

/// A kind of media frame: `video`, `audio` or `data`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// The server's metrics. Names get the `livescope_` prefix, and counters `_total`.
pub struct Metrics {
    registry: Registry,
    /// Viewers connected now, per delivery path (LL-HLS: players seen in the last 30 s).
    pub viewers: Family<PathLabel, Gauge>,
    /// Broadcasts live now.
    pub broadcasts_live: Gauge,
    /// Frames received from publishers, per kind.
    pub frames_received: Family<KindLabel, Counter>,
    /// Bytes of media received from publishers.
    pub received_bytes: Counter,
    /// Frames written to push viewers (RTMP, HTTP-FLV), per path.
    pub frames_sent: Family<PathLabel, Counter>,
    /// Bytes written to push viewers, per path.
    pub sent_bytes: Family<PathLabel, Counter>,
    /// Frames push viewers skipped because they fell behind (on to a keyframe).
    pub viewer_skipped_frames: Counter,
    /// LL-HLS parts and segments made.
    pub hls_parts: Counter,
    pub hls_segments: Counter,
    /// LL-HLS blocking playlist requests waiting now.
    pub hls_blocking_requests: Gauge,
    /// Room messages (comments, heart batches, polls, presence) written to viewers.
    pub room_messages: Counter,
    /// Store calls waiting for the store thread (sampled when scraped).
    pub store_queue: Gauge,
    /// Stretches of signed broadcasts that did not match their signatures.
    pub signature_mismatches: Counter,
    /// Where each broadcast's delay goes (also `livescope_delay_<stage>_seconds`).
    pub delays: crate::delay::Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("livescope");
        let m = Metrics {
            viewers: Family::default(),
            broadcasts_live: Gauge::default(),
            frames_received: Family::default(),
            received_bytes: Counter::default(),
            frames_sent: Family::default(),
            sent_bytes: Family::default(),
            viewer_skipped_frames: Counter::default(),
            hls_parts: Counter::default(),
            hls_segments: Counter::default(),
            hls_blocking_requests: Gauge::default(),
            room_messages: Counter::default(),
            store_queue: Gauge::default(),
            signature_mismatches: Counter::default(),
            delays: crate::delay::Registry::new(&mut registry),
            registry: Registry::default(),
        };
        registry.register("viewers", "Viewers connected, per delivery path", m.viewers.clone());
        registry.register("broadcasts_live", "Broadcasts live", m.broadcasts_live.clone());
        registry.register(
            "frames_received",
            "Frames received from publishers, per kind",
            m.frames_received.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes of media received from publishers",
            m.received_bytes.clone(),
        );
        registry.register(
            "frames_sent",
            "Frames written to push viewers, per path",
            m.frames_sent.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes written to push viewers, per path",
            m.sent_bytes.clone(),
        );
        registry.register(
            "viewer_skipped_frames",
            "Frames push viewers skipped because they fell behind",
            m.viewer_skipped_frames.clone(),
        );
        registry.register("hls_parts", "LL-HLS parts made", m.hls_parts.clone());
        registry.register("hls_segments", "LL-HLS segments made", m.hls_segments.clone());
        registry.register(
            "hls_blocking_requests",
            "LL-HLS blocking playlist requests waiting",
            m.hls_blocking_requests.clone(),
        );
        registry.register(
            "room_messages",
            "Room messages written to viewers",
            m.room_messages.clone(),
        );
        registry.register(
            "store_queue",
            "Store calls waiting for the store thread",
            m.store_queue.clone(),
        );
        registry.register(
            "signature_mismatches",
            "Stretches of signed broadcasts that did not match their signatures",
            m.signature_mismatches.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The counters of frames received, per kind (`video`, `audio`, `data`), for a
    /// publisher to keep: the label lookup once, not per frame.
    pub fn received(&self) -> [Counter; 3] {
        ["video", "audio", "data"].map(|kind| self.frames_received.get_or_create(&KindLabel { kind }).clone())
    }

    /// A push viewer's tally of what it is sent on `path`, and of its delivery delay.
    pub fn sent(&self, path: DeliveryPath, delays: Arc<Delays>) -> SentTally {
        let label = path.into();
        SentTally {
            frames: self.frames_sent.get_or_create(&label).clone(),
            bytes: self.sent_bytes.get_or_create(&label).clone(),
            delays,
            stage: match path {
                DeliveryPath::Flv => Stage::DeliveryFlv,
                _ => Stage::DeliveryRtmp,
            },
            local_frames: 0,
            local_bytes: 0,
            // Viewers start sampling at different batches, so that short visits do not
            // weigh the first batch (a keyframe group sent at once) too much.
            deliveries: u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos()),
            ) % SAMPLE_EVERY,
        }
    }
}

/// What one push viewer is sent, added up in the viewer's own loop and handed to the
/// shared counters every [`FLUSH_EVERY`] frames and when the viewer leaves; its delivery
/// delay is observed for one batch in [`SAMPLE_EVERY`]. Counting every frame of every
/// viewer into shared atomics cost several percent of the push benchmark's CPU: the
/// viewers run on both cores, and each add moved the counter's cache line between them.
pub struct SentTally {
    frames: Counter,
    bytes: Counter,
    delays: Arc<Delays>,
    stage: Stage,
    local_frames: u64,
    local_bytes: u64,
    deliveries: u64,
}

/// Frames a viewer counts locally before adding them to the shared counters.
pub const FLUSH_EVERY: u64 = 64;
/// One delivered batch in this many per viewer is measured.
pub const SAMPLE_EVERY: u64 = 8;

impl SentTally {
    /// `frames` frames of `bytes` bytes were handed to the viewer's connection.
    pub fn sent(&mut self, frames: u64, bytes: u64) {
        self.local_frames += frames;
        self.local_bytes += bytes;
        if self.local_frames >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// A batch whose newest frame arrived at `arrived` was handed to the connection.
    pub fn delivered(&mut self, arrived: std::time::Instant) {
        if self.deliveries.is_multiple_of(SAMPLE_EVERY) {
            self.delays.observe(self.stage, arrived.elapsed());
        }
        self.deliveries += 1;
    }

    fn flush(&mut self) {
        self.frames.inc_by(std::mem::take(&mut self.local_frames));
        self.bytes.inc_by(std::mem::take(&mut self.local_bytes));
    }
}

impl Drop for SentTally {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Counts something while it lasts (a viewer on a path, a blocking request held).
pub struct Held {
    gauge: Gauge,
}

impl Held {
    pub fn new(gauge: &Gauge) -> Held {
        gauge.inc();
        Held { gauge: gauge.clone() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_values_show() {
        let m = Metrics::default();
        let viewer = Held::new(&m.viewers.get_or_create(&DeliveryPath::Flv.into()));
        m.received_bytes.inc_by(1000);
        m.frames_received.get_or_create(&KindLabel { kind: "video" }).inc();
        let text = m.render();
        assert!(text.contains("livescope_viewers{path=\"flv\"} 1"), "{text}");
        assert!(text.contains("livescope_received_bytes_total 1000"), "{text}");
        assert!(
            text.contains("livescope_frames_received_total{kind=\"video\"} 1"),
            "{text}"
        );
        drop(viewer);
        assert!(m.render().contains("livescope_viewers{path=\"flv\"} 0"));
    }
}
