//! A poll's rules, as plain data: one vote per user, live totals, and latency-compensated
//! closing. A viewer watches the stream some seconds behind live, so the broadcaster's
//! "closed" reaches them late; a vote that answers a moment before the close (its media
//! time is before the stream time at which the poll closed) still counts if it arrives
//! within that viewer's delay after the close, capped at [`LATE_CAP_MS`].

use std::collections::HashSet;

use super::protocol::Poll;

/// The most a late vote may trail the close.
pub const LATE_CAP_MS: i64 = 30_000;
/// Allowance for the vote's own trip to the server.
const TRANSIT_MS: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// Closed for viewers at the live edge; late votes from viewers behind it still count.
    Closing,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Counted {
        late: bool,
    },
    AlreadyVoted,
    NoSuchOption,
    /// Too late, even for a viewer that far behind live.
    Closed,
}

#[derive(Debug, Clone)]
pub struct OpenPoll {
    pub id: i64,
    pub question: String,
    pub options: Vec<String>,
    pub totals: Vec<u64>,
    pub closes_at: i64,
    /// The stream time at the live edge when the poll closed.
    pub media_close_ts: Option<i64>,
    pub phase: Phase,
    /// The totals when the poll closed at the live edge: what everyone sees until the late
    /// votes are in, so that nobody votes late knowing how the vote stands.
    shown_at_close: Option<Vec<u64>>,
    voters: HashSet<i64>,
}

impl OpenPoll {
    pub fn new(id: i64, question: String, options: Vec<String>, closes_at: i64) -> OpenPoll {
        OpenPoll {
            id,
            question,
            totals: vec![0; options.len()],
            options,
            closes_at,
            media_close_ts: None,
            phase: Phase::Open,
            shown_at_close: None,
            voters: HashSet::new(),
        }
    }

    /// A vote from `user` for `option`, sent while watching stream time `media_ts`, from a
    /// viewer `delay_ms` behind live, arriving at server time `now`.
    pub fn vote(&mut self, user: i64, option: usize, media_ts: Option<i64>, delay_ms: Option<u64>, now: i64) -> Vote {
        if option >= self.options.len() {
            return Vote::NoSuchOption;
        }
        if self.voters.contains(&user) {
            return Vote::AlreadyVoted;
        }
        let late = match self.phase {
            Phase::Open if now < self.closes_at => false,
            Phase::Closed => return Vote::Closed,
            _ => {
                let allowed = (delay_ms.unwrap_or(0) as i64).min(LATE_CAP_MS) + TRANSIT_MS;
                let answered_before_close = matches!((media_ts, self.media_close_ts), (Some(m), Some(c)) if m <= c);
                if !answered_before_close || now - self.closes_at > allowed {
                    return Vote::Closed;
                }
                true
            }
        };
        self.voters.insert(user);
        self.totals[option] += 1;
        Vote::Counted { late }
    }

    /// Moves the poll along at server time `now`; `edge_media_ts` is the stream time at the
    /// live edge. Returns whether the phase changed.
    pub fn tick(&mut self, now: i64, edge_media_ts: Option<i64>) -> bool {
        match self.phase {
            Phase::Open if now >= self.closes_at => {
                self.phase = Phase::Closing;
                self.media_close_ts = edge_media_ts;
                self.shown_at_close = Some(self.totals.clone());
                true
            }
            Phase::Closing if now >= self.closes_at + LATE_CAP_MS + TRANSIT_MS => {
                self.phase = Phase::Closed;
                true
            }
            _ => false,
        }
    }

    pub fn view(&self) -> Poll {
        Poll {
            id: self.id,
            question: self.question.clone(),
            options: self.options.clone(),
            totals: match (self.phase, &self.shown_at_close) {
                (Phase::Closing, Some(shown)) => shown.clone(),
                _ => self.totals.clone(),
            },
            closes_at: self.closes_at,
            state: match self.phase {
                Phase::Open => "open",
                Phase::Closing => "closing",
                Phase::Closed => "closed",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vote_each_and_late_votes_count_within_the_voters_delay() {
        let mut p = OpenPoll::new(1, "?".into(), vec!["a".into(), "b".into()], 10_000);
        assert_eq!(p.vote(1, 0, Some(500), None, 5_000), Vote::Counted { late: false });
        assert_eq!(p.vote(1, 1, Some(600), None, 5_100), Vote::AlreadyVoted);
        assert_eq!(p.vote(2, 5, Some(600), None, 5_100), Vote::NoSuchOption);
        // The broadcaster's stream was at 9,000 ms when the poll closed.
        assert!(p.tick(10_000, Some(9_000)));
        // A viewer 8 s behind voted while watching 8,900 ms; it arrives 7 s after the close.
        assert_eq!(
            p.vote(3, 1, Some(8_900), Some(8_000), 17_000),
            Vote::Counted { late: true }
        );
        // The same late arrival from a viewer 2 s behind is too late for them.
        assert_eq!(p.vote(4, 1, Some(8_900), Some(2_000), 17_000), Vote::Closed);
        // A vote that answers stream time after the close does not count, however late.
        assert_eq!(p.vote(5, 1, Some(9_500), Some(20_000), 11_000), Vote::Closed);
        // Delays are capped.
        assert_eq!(p.vote(6, 1, Some(1_000), Some(120_000), 45_000), Vote::Closed);
        assert_eq!(p.totals, [1, 1]);
        assert_eq!(
            p.view().totals,
            [1, 0],
            "late votes are not shown until the poll is final"
        );
        assert!(p.tick(10_000 + LATE_CAP_MS + TRANSIT_MS, Some(40_000)));
        assert_eq!(p.phase, Phase::Closed);
        assert_eq!(p.vote(7, 0, Some(1), Some(1), 41_001), Vote::Closed);
    }
}
