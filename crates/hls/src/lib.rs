//! Low-Latency HLS (RFC 8216bis, draft 16+): the window of segments and partial segments
//! of one live rendition, its media playlist, delta updates, and the rules of blocking
//! playlist reload. Pure functions and plain data: no clock, no I/O.

mod playlist;
mod query;

pub use playlist::{Part, Segment, Window, format_date_time, next_position};
pub use query::{Query, QueryError, Skip};

/// Whether a blocking request can be answered (RFC 8216bis 6.2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The playlist already holds what was asked for: answer now.
    Ready,
    /// Hold the request until the window changes.
    Wait,
    /// Too far in the future: answer 400.
    TooFar,
}

impl Window {
    /// Decides a request with `_HLS_msn` (and maybe `_HLS_part`).
    pub fn readiness(&self, query: &Query) -> Readiness {
        let Some(msn) = query.msn else {
            return Readiness::Ready;
        };
        if self.ended {
            return Readiness::Ready;
        }
        // "more than two Media Segments beyond the last Media Segment in the Playlist"
        if msn > self.next_msn() + 2 {
            return Readiness::TooFar;
        }
        if self.contains(msn, query.part) {
            Readiness::Ready
        } else {
            Readiness::Wait
        }
    }
}
