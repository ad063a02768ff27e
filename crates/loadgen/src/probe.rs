//! How the load generator recognizes a frame it published when a viewer receives it,
//! whatever server relayed it: servers may rewrite timestamps and chunking, but not the
//! FLV tag body. The key hashes the type, the length and both ends of the body, which is
//! unique within a clip and costs the same for a 100-byte or a 100 KB frame.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Identifies a frame by its content.
pub fn key(type_id: u8, body: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    };
    eat(type_id);
    (body.len() as u32).to_le_bytes().into_iter().for_each(&mut eat);
    let head = &body[..body.len().min(24)];
    let tail = &body[body.len().saturating_sub(24)..];
    head.iter().chain(tail).copied().for_each(eat);
    h
}

/// When each frame was handed to the publisher's socket.
#[derive(Debug, Default)]
pub struct SendTimes {
    times: Mutex<HashMap<u64, Instant>>,
}

impl SendTimes {
    /// Frames older than this are forgotten (the clip loops, so keys repeat).
    const HORIZON_SECS: u64 = 5;

    pub fn record(&self, key: u64, at: Instant) {
        let mut times = self.times.lock().expect("send times");
        if times.len() > 4096 {
            times.retain(|_, t| at.duration_since(*t).as_secs() < Self::HORIZON_SECS);
        }
        times.insert(key, at);
    }

    pub fn get(&self, key: u64) -> Option<Instant> {
        self.times.lock().expect("send times").get(&key).copied()
    }

    /// Video frames by their timestamp (ms), for LL-HLS parts, whose decode times carry it
    /// (a part's first video sample is the frame published with that timestamp).
    pub fn record_video_ts(&self, ts_ms: u32, at: Instant) {
        self.record(u64::from(ts_ms) | 1 << 63, at);
    }

    pub fn get_video_ts(&self, ts_ms: u32) -> Option<Instant> {
        self.get(u64::from(ts_ms) | 1 << 63)
    }
}
