//! Token buckets: how often a viewer may comment, heart, or send anything at all.

use std::time::Instant;

/// Comments: a burst of 5, then one every 2 s.
pub const COMMENTS: (f64, f64) = (5.0, 0.5);
/// Hearts: a burst of 20, then 10 a second (they are counted, not relayed one by one).
pub const HEARTS: (f64, f64) = (20.0, 10.0);
/// Any message: a burst of 100, then 50 a second; past that the client is disconnected.
pub const MESSAGES: (f64, f64) = (100.0, 50.0);

#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new((capacity, per_second): (f64, f64)) -> Bucket {
        Bucket {
            capacity,
            per_second,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Whether the bucket has refilled completely: forgetting it changes nothing.
    pub fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * self.per_second >= self.capacity
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(COMMENTS);
        assert_eq!((0..10).filter(|_| b.take(t0)).count(), 5);
        assert!(!b.take(t0 + Duration::from_millis(1000)));
        assert!(b.take(t0 + Duration::from_millis(2100)));
    }
}
