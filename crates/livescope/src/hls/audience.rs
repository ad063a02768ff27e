//! Who watches a live rendition over HLS. HLS has no connection to watch, so a viewer is
//! an address and user agent that keeps asking for the playlist: the first request is a
//! join, and [`IDLE`] without one is a leave. Behind a CDN the origin sees the edges, not
//! the viewers, so this counts edges; the interaction WebSocket counts people.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A viewer that has not asked for the playlist for this long has left.
pub const IDLE: Duration = Duration::from_secs(10);
/// Most viewers tracked per rendition; past it, new ones are served but not recorded.
const MAX_TRACKED: usize = 100_000;

struct Seen {
    view: Option<i64>,
    last: Instant,
}

#[derive(Default)]
pub struct Audience {
    viewers: Mutex<HashMap<String, Seen>>,
}

impl Audience {
    /// Notes a playlist request from `key`; for a new viewer, `join` records the join and
    /// returns the view's id. The join (a database write) runs outside the lock, so that
    /// it holds up no other viewer's playlist. Returns a view to end at once: that of a
    /// viewer swept while it joined.
    #[must_use]
    pub fn seen(&self, key: &str, join: impl FnOnce() -> Option<i64>) -> Option<i64> {
        {
            let mut viewers = self.viewers.lock().expect("audience lock");
            if let Some(seen) = viewers.get_mut(key) {
                seen.last = Instant::now();
                return None;
            }
            if viewers.len() >= MAX_TRACKED {
                return None;
            }
            let last = Instant::now();
            viewers.insert(key.to_owned(), Seen { view: None, last });
        }
        let view = join();
        match self.viewers.lock().expect("audience lock").get_mut(key) {
            Some(seen) => {
                seen.view = view;
                None
            }
            None => view,
        }
    }

    /// Forgets viewers idle for `idle` (all of them for zero); returns their views, to close.
    pub fn sweep(&self, idle: Duration) -> Vec<i64> {
        let mut gone = Vec::new();
        self.viewers.lock().expect("audience lock").retain(|_, seen| {
            let stay = !idle.is_zero() && seen.last.elapsed() < idle;
            if !stay {
                gone.extend(seen.view);
            }
            stay
        });
        gone
    }

    pub fn len(&self) -> usize {
        self.viewers.lock().expect("audience lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_joins_once_and_leaves_when_idle() {
        let audience = Audience::default();
        let mut joins = 0;
        for _ in 0..3 {
            let _ = audience.seen("1.2.3.4 ua", || {
                joins += 1;
                Some(7)
            });
        }
        let _ = audience.seen("5.6.7.8 ua", || None);
        assert_eq!((joins, audience.len()), (1, 2));
        assert!(audience.sweep(IDLE).is_empty());
        assert_eq!(audience.sweep(Duration::ZERO), vec![7]);
        assert!(audience.is_empty());
    }
}
