//! What viewers said and did: comments, heart counts per second, polls and their votes,
//! each kept with the server time and the media time it answers, so that a replay can
//! show them in sync with the stream.

use serde::Serialize;

use super::Db;
use super::sql::{Row, args, is_unique_violation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredComment {
    pub id: i64,
    pub user: String,
    /// Plain text: clients must show it as text, never as markup.
    pub text: String,
    /// Milliseconds of stream time the commenter was watching.
    pub media_ts: Option<i64>,
    /// Milliseconds since the Unix epoch when the server received it.
    pub server_ts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredPoll {
    pub id: i64,
    pub question: String,
    pub options: Vec<String>,
    pub opened_at: i64,
    pub closes_at: i64,
    pub media_open_ts: Option<i64>,
    pub media_close_ts: Option<i64>,
    /// Votes per option, once the poll is closed.
    pub result: Option<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HeartSecond {
    /// The media second the hearts answered (None: the viewer did not say).
    pub media_second: Option<i64>,
    /// The server second they arrived in (seconds since the Unix epoch).
    pub second: i64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredVote {
    pub poll: i64,
    pub user: String,
    pub option: usize,
    pub media_ts: Option<i64>,
    pub server_ts: i64,
    /// Arrived after the close, from a viewer still watching the moment before it.
    pub late: bool,
}

/// Everything viewers did within a span of media time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    pub comments: Vec<StoredComment>,
    pub hearts: Vec<HeartSecond>,
    pub polls: Vec<StoredPoll>,
    /// The votes of those polls.
    pub votes: Vec<StoredVote>,
}

impl Db {
    /// Stores a comment; returns its id.
    /// The id the next comment gets: comments are numbered before they are stored, so that
    /// a room can order them without holding a lock across the write.
    pub fn next_comment_id(&self) -> i64 {
        self.next_comment.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores comment `id` (from [`Db::next_comment_id`]).
    pub fn add_comment(
        &self,
        id: i64,
        broadcast: &str,
        user: i64,
        text: &str,
        media_ts: Option<i64>,
        server_ts: i64,
    ) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO comments (id, broadcast_id, user_id, text, media_ts, server_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![id, broadcast, user, text, media_ts, server_ts],
            )
        })?;
        Ok(())
    }

    /// Marks a comment of `broadcast` deleted; false if there is no such comment.
    pub fn delete_comment(&self, broadcast: &str, id: i64) -> anyhow::Result<bool> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE comments SET deleted = 1 WHERE id = ?1 AND broadcast_id = ?2",
                args![id, broadcast],
            )
        })?;
        Ok(n == 1)
    }

    /// Adds heart counts, each `(server second, media second, count)`.
    pub fn add_hearts(&self, broadcast: &str, counts: &[(i64, Option<i64>, u64)]) -> anyhow::Result<()> {
        self.with(|c| {
            c.transaction(|tx| {
                for (second, media, count) in counts {
                    // NULL media seconds would never conflict: store them as -1.
                    tx.execute(
                        "INSERT INTO hearts (broadcast_id, second, media_second, count) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (broadcast_id, second, media_second)
                         DO UPDATE SET count = hearts.count + excluded.count",
                        args![broadcast, second, media.unwrap_or(-1), *count as i64],
                    )?;
                }
                Ok(())
            })
        })
    }

    pub fn open_poll(&self, broadcast: &str, poll: &StoredPoll) -> anyhow::Result<i64> {
        self.with(|c| {
            c.query_one(
                "INSERT INTO polls (broadcast_id, question, options, opened_at, closes_at, media_open_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![
                    broadcast,
                    poll.question,
                    serde_json::to_string(&poll.options).expect("strings serialize"),
                    poll.opened_at,
                    poll.closes_at,
                    poll.media_open_ts
                ],
            )?
            .get(0)
        })
    }

    /// Records a vote; false if this user already voted in this poll.
    pub fn add_vote(
        &self,
        poll: i64,
        user: i64,
        option: usize,
        media_ts: Option<i64>,
        server_ts: i64,
        late: bool,
    ) -> anyhow::Result<bool> {
        self.with(|c| {
            match c.execute(
                "INSERT INTO votes (poll_id, user_id, option, media_ts, server_ts, late) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![poll, user, option as i64, media_ts, server_ts, late],
            ) {
                Ok(_) => Ok(true),
                Err(e) if is_unique_violation(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    pub fn close_poll(&self, poll: i64, media_close_ts: Option<i64>, result: &[u64]) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE polls SET media_close_ts = ?2, result = ?3 WHERE id = ?1",
                args![
                    poll,
                    media_close_ts,
                    serde_json::to_string(result).expect("numbers serialize")
                ],
            )
        })?;
        Ok(())
    }

    /// Mutes (or blocks) `user` in `broadcast`.
    pub fn moderate(&self, broadcast: &str, user: i64, blocked: bool) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO moderation (broadcast_id, user_id, blocked) VALUES (?1, ?2, ?3)
                 ON CONFLICT (broadcast_id, user_id) DO UPDATE SET blocked = CASE
                     WHEN excluded.blocked > moderation.blocked THEN excluded.blocked ELSE moderation.blocked END",
                args![broadcast, user, blocked],
            )
        })?;
        Ok(())
    }

    /// Who is muted in `broadcast`, and whether each is also blocked.
    pub fn moderation(&self, broadcast: &str) -> anyhow::Result<Vec<(i64, bool)>> {
        self.with(|c| {
            c.query(
                "SELECT user_id, blocked FROM moderation WHERE broadcast_id = ?1",
                args![broadcast],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
        })
    }

    /// Gives every poll left without a result (the server stopped while it was open) the
    /// result of the votes it got, unless its broadcast is still live (on another node).
    pub fn finish_abandoned_polls(&self) -> anyhow::Result<()> {
        let open: Vec<(i64, usize)> = self.with(|c| {
            // Not the polls of broadcasts live on other nodes: those are running.
            c.query(
                "SELECT id, options FROM polls WHERE result IS NULL
                 AND broadcast_id NOT IN (SELECT id FROM broadcasts WHERE state = 'live')",
                args![],
            )?
            .iter()
            .map(|r| {
                let options: String = r.get(1)?;
                Ok((
                    r.get(0)?,
                    serde_json::from_str::<Vec<String>>(&options).map_or(0, |o| o.len()),
                ))
            })
            .collect()
        })?;
        for (id, options) in open {
            let mut totals = vec![0u64; options];
            let votes: Vec<i64> = self.with(|c| {
                c.query("SELECT option FROM votes WHERE poll_id = ?1", args![id])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            })?;
            for v in votes {
                if let Some(t) = usize::try_from(v).ok().and_then(|v| totals.get_mut(v)) {
                    *t += 1;
                }
            }
            self.close_poll(id, None, &totals)?;
        }
        Ok(())
    }

    pub fn poll(&self, id: i64) -> anyhow::Result<Option<StoredPoll>> {
        self.with(|c| {
            c.query_opt(
                "SELECT id, question, options, opened_at, closes_at, media_open_ts, media_close_ts, result
                 FROM polls WHERE id = ?1",
                args![id],
            )?
            .map(|r| poll_row(&r))
            .transpose()
        })
    }

    /// Comments (not deleted), hearts and polls of `broadcast` between media times `from`
    /// and `to` (milliseconds), at most `limit` comments.
    pub fn timeline(&self, broadcast: &str, from: i64, to: i64, limit: usize) -> anyhow::Result<Timeline> {
        self.with(|c| {
            let comments = c
                .query(
                    "SELECT c.id, u.username, c.text, c.media_ts, c.server_ts FROM comments c
                     JOIN users u ON u.id = c.user_id
                     WHERE c.broadcast_id = ?1 AND c.deleted = 0 AND c.media_ts BETWEEN ?2 AND ?3
                     ORDER BY c.media_ts, c.id LIMIT ?4",
                    args![broadcast, from, to, limit as i64],
                )?
                .iter()
                .map(|r| {
                    Ok(StoredComment {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        text: r.get(2)?,
                        media_ts: r.get(3)?,
                        server_ts: r.get(4)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let hearts = c
                .query(
                    "SELECT media_second, second, CAST(SUM(count) AS BIGINT) FROM hearts
                     WHERE broadcast_id = ?1 AND media_second BETWEEN ?2 AND ?3
                     GROUP BY media_second, second ORDER BY media_second, second",
                    args![broadcast, from.div_euclid(1000), to.div_euclid(1000)],
                )?
                .iter()
                .map(|r| {
                    Ok(HeartSecond {
                        // Hearts without a media time are kept under -1.
                        media_second: r.get::<Option<i64>>(0)?.filter(|s| *s >= 0),
                        second: r.get(1)?,
                        count: r.get::<i64>(2)? as u64,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let polls = c
                .query(
                    "SELECT id, question, options, opened_at, closes_at, media_open_ts, media_close_ts, result
                     FROM polls WHERE broadcast_id = ?1 AND media_open_ts BETWEEN ?2 AND ?3 ORDER BY media_open_ts",
                    args![broadcast, from, to],
                )?
                .iter()
                .map(poll_row)
                .collect::<anyhow::Result<Vec<StoredPoll>>>()?;
            let mut votes = Vec::new();
            for poll in &polls {
                let rows = c.query(
                    "SELECT u.username, v.option, v.media_ts, v.server_ts, v.late FROM votes v
                     JOIN users u ON u.id = v.user_id WHERE v.poll_id = ?1 ORDER BY v.server_ts",
                    args![poll.id],
                )?;
                for r in rows {
                    votes.push(StoredVote {
                        poll: poll.id,
                        user: r.get(0)?,
                        option: r.get::<i64>(1)? as usize,
                        media_ts: r.get(2)?,
                        server_ts: r.get(3)?,
                        late: r.get(4)?,
                    });
                }
            }
            Ok(Timeline {
                comments,
                hearts,
                polls,
                votes,
            })
        })
    }
}

fn poll_row(r: &Row) -> anyhow::Result<StoredPoll> {
    let options: String = r.get(2)?;
    let result: Option<String> = r.get(7)?;
    Ok(StoredPoll {
        id: r.get(0)?,
        question: r.get(1)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        opened_at: r.get(3)?,
        closes_at: r.get(4)?,
        media_open_ts: r.get(5)?,
        media_close_ts: r.get(6)?,
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;
    use super::*;

    #[test]
    fn a_timeline_holds_what_was_said_at_each_moment() {
        for t in temp_stores("interaction") {
            let store = &t.db;
            let ana = store.create_user("ana", "h").unwrap().unwrap().id;
            let (a, b, c) = (
                store.next_comment_id(),
                store.next_comment_id(),
                store.next_comment_id(),
            );
            store.add_comment(a, "b", ana, "early", Some(1_000), 10).unwrap();
            store.add_comment(b, "b", ana, "late", Some(9_000), 20).unwrap();
            store
                .add_comment(c, "other", ana, "elsewhere", Some(1_000), 10)
                .unwrap();
            assert!(store.delete_comment("b", b).unwrap());
            assert!(
                !store.delete_comment("other", a).unwrap(),
                "a comment of another broadcast"
            );
            store
                .add_hearts("b", &[(100, Some(1), 3), (100, Some(1), 2), (101, None, 4)])
                .unwrap();
            let poll = StoredPoll {
                id: 0,
                question: "q?".into(),
                options: vec!["a".into(), "b".into()],
                opened_at: 5,
                closes_at: 6,
                media_open_ts: Some(2_000),
                media_close_ts: None,
                result: None,
            };
            let p = store.open_poll("b", &poll).unwrap();
            assert!(store.add_vote(p, ana, 1, Some(2_500), 7, false).unwrap());
            assert!(
                !store.add_vote(p, ana, 0, Some(2_500), 8, false).unwrap(),
                "one vote each"
            );
            store.close_poll(p, Some(3_000), &[0, 1]).unwrap();
            let t = store.timeline("b", 0, 10_000, 100).unwrap();
            assert_eq!(
                t.comments.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
                ["early"]
            );
            assert_eq!(
                t.hearts,
                vec![HeartSecond {
                    media_second: Some(1),
                    second: 100,
                    count: 5
                }]
            );
            assert_eq!(t.polls[0].result, Some(vec![0, 1]));
        }
    }
}
