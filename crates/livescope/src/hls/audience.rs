//! Who watches a live rendition over HLS. HLS has no connection to watch, so a viewer is
//! an address and user agent that keeps asking for the playlist: the first request is a
//! join, and [`IDLE`] without one is a leave. Behind a CDN the origin sees the edges, not
//! the viewers, so this counts edges; the interaction WebSocket counts people.
//!
//! A user agent is whatever the client says, so one address counts as at most
//! [`MAX_VIEWERS_PER_ADDRESS`] viewers: a household's phone, laptop and TV each count, a
//! client inventing agents cannot raise the count (or the view records) past that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A viewer that has not asked for the playlist for this long has left.
pub const IDLE: Duration = Duration::from_secs(10);
/// Most viewers tracked per rendition; past it, new ones are served but not recorded.
const MAX_TRACKED: usize = 100_000;
/// Most HLS viewers counted from one address at once; more are served but not counted.
pub const MAX_VIEWERS_PER_ADDRESS: usize = 8;
/// Characters of a user agent that tell viewers apart.
const AGENT_CHARS: usize = 200;

struct Seen {
    view: Option<i64>,
    last: Instant,
}

#[derive(Default)]
struct Viewers {
    by_key: HashMap<(IpAddr, String), Seen>,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Default)]
pub struct Audience {
    viewers: Mutex<Viewers>,
}

impl Audience {
    /// Notes a playlist request from `addr` with user agent `agent`; for a new viewer,
    /// `join` records the join and returns the view's id. The join runs outside the lock,
    /// so that it holds up no other viewer's playlist. Returns a view to end at once: that
    /// of a viewer swept while it joined.
    #[must_use]
    pub fn seen(&self, addr: IpAddr, agent: &str, join: impl FnOnce() -> Option<i64>) -> Option<i64> {
        let end = agent.char_indices().nth(AGENT_CHARS).map_or(agent.len(), |(i, _)| i);
        let key = (addr, agent[..end].to_owned());
        {
            let mut viewers = self.viewers.lock().expect("audience lock");
            if let Some(seen) = viewers.by_key.get_mut(&key) {
                seen.last = Instant::now();
                return None;
            }
            let from_addr = viewers.per_address.get(&addr).copied().unwrap_or(0);
            if viewers.by_key.len() >= MAX_TRACKED || from_addr >= MAX_VIEWERS_PER_ADDRESS {
                return None;
            }
            *viewers.per_address.entry(addr).or_default() += 1;
            let last = Instant::now();
            viewers.by_key.insert(key.clone(), Seen { view: None, last });
        }
        let view = join();
        match self.viewers.lock().expect("audience lock").by_key.get_mut(&key) {
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
        let mut viewers = self.viewers.lock().expect("audience lock");
        let Viewers { by_key, per_address } = &mut *viewers;
        by_key.retain(|(addr, _), seen| {
            let stay = !idle.is_zero() && seen.last.elapsed() < idle;
            if !stay {
                gone.extend(seen.view);
                if let Some(n) = per_address.get_mut(addr) {
                    *n -= 1;
                    if *n == 0 {
                        per_address.remove(addr);
                    }
                }
            }
            stay
        });
        gone
    }

    pub fn len(&self) -> usize {
        self.viewers.lock().expect("audience lock").by_key.len()
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
        let a: IpAddr = "1.2.3.4".parse().unwrap();
        let mut joins = 0;
        for _ in 0..3 {
            let _ = audience.seen(a, "ua", || {
                joins += 1;
                Some(7)
            });
        }
        let _ = audience.seen("5.6.7.8".parse().unwrap(), "ua", || None);
        assert_eq!((joins, audience.len()), (1, 2));
        assert!(audience.sweep(IDLE).is_empty());
        assert_eq!(audience.sweep(Duration::ZERO), vec![7]);
        assert!(audience.is_empty());
    }

    #[test]
    fn one_address_inventing_agents_counts_a_few_viewers_at_most() {
        let audience = Audience::default();
        let a: IpAddr = "1.2.3.4".parse().unwrap();
        let mut joins = 0;
        for i in 0..3000 {
            let _ = audience.seen(a, &format!("forged/{i}"), || {
                joins += 1;
                None
            });
        }
        assert_eq!(
            (joins, audience.len()),
            (MAX_VIEWERS_PER_ADDRESS, MAX_VIEWERS_PER_ADDRESS)
        );
        audience.sweep(Duration::ZERO);
        let _ = audience.seen(a, "after", || None);
        assert_eq!(audience.len(), 1, "places are freed when viewers leave");
    }
}
