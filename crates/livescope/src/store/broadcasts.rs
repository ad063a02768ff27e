//! Broadcasts: who owns them, their hashed stream key, whether they are private (and who
//! may watch), and where they are in their life.

use std::collections::HashSet;
use std::sync::Arc;

use super::sql::{Row, args};
use super::{Db, hash_secret, now_ms};
use crate::access::Access;

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created, never published to.
    Created,
    Live,
    /// Published to and finished: it cannot be published to again.
    Ended,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Live => "live",
            State::Ended => "ended",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "live" => State::Live,
            "ended" => State::Ended,
            _ => State::Created,
        }
    }
}

/// A stored broadcast. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub owner_id: Option<i64>,
    /// The owner's username (none for broadcasts made before accounts existed).
    pub owner: Option<String>,
    pub title: String,
    pub private: bool,
    pub state: State,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Bumped whenever someone loses access (see [`crate::access`]).
    pub access_epoch: u64,
    pub signature_policy: SignaturePolicy,
    /// The node it is (or was last) published on.
    pub node: Option<String>,
}

/// What the server does when a signed broadcast's frames do not match their signatures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    /// Relay everything; the API, the web app and the log say it was tampered with.
    #[default]
    Alert,
    /// Hold each stretch of frames until its record arrives and relay only those that
    /// match (one stretch, about a second, more delay); alert too.
    Drop,
    /// End the broadcast at the first mismatch.
    End,
}

impl SignaturePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SignaturePolicy::Alert => "alert",
            SignaturePolicy::Drop => "drop",
            SignaturePolicy::End => "end",
        }
    }

    fn parse(s: &str) -> SignaturePolicy {
        match s {
            "drop" => SignaturePolicy::Drop,
            "end" => SignaturePolicy::End,
            _ => SignaturePolicy::Alert,
        }
    }
}

/// How the global list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest start first.
    Recent,
    /// A random sample, as Periscope showed its global list.
    Random,
}

const COLUMNS: &str = "b.id, b.owner_id, u.username, b.title, b.private, b.state, b.created_at, b.started_at, b.ended_at, b.access_epoch, b.signature_policy, b.node";
const FROM: &str = "broadcasts b LEFT JOIN users u ON u.id = b.owner_id";

fn row(r: &Row) -> anyhow::Result<Broadcast> {
    Ok(Broadcast {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        owner: r.get(2)?,
        title: r.get(3)?,
        private: r.get(4)?,
        state: State::parse(&r.get::<String>(5)?),
        created_at: r.get(6)?,
        started_at: r.get(7)?,
        ended_at: r.get(8)?,
        access_epoch: r.get::<i64>(9)? as u64,
        signature_policy: SignaturePolicy::parse(&r.get::<String>(10)?),
        node: r.get(11)?,
    })
}

impl Db {
    /// Stores a new broadcast; `stream_key` is kept only as its hash.
    pub fn create_broadcast(
        &self,
        id: &str,
        owner_id: i64,
        stream_key: &str,
        title: &str,
        allowed: Option<&[i64]>,
    ) -> anyhow::Result<Broadcast> {
        self.with(|c| {
            c.transaction(|tx| {
                tx.execute(
                    "INSERT INTO broadcasts (id, owner_id, stream_key_hash, title, private, state, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'created', ?6)",
                    args![
                        id,
                        owner_id,
                        hash_secret(stream_key),
                        title,
                        allowed.is_some(),
                        now_ms()
                    ],
                )?;
                for user in allowed.unwrap_or_default() {
                    tx.execute(
                        "INSERT INTO allowed_viewers (broadcast_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        args![id, user],
                    )?;
                }
                Ok(())
            })
        })?;
        Ok(self.get(id)?.expect("a broadcast just stored"))
    }

    pub fn get(&self, id: &str) -> anyhow::Result<Option<Broadcast>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {COLUMNS} FROM {FROM} WHERE b.id = ?1"), args![id])?
                .map(|r| row(&r))
                .transpose()
        })
    }

    pub fn by_stream_key(&self, key: &str) -> anyhow::Result<Option<Broadcast>> {
        self.with(|c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE b.stream_key_hash = ?1"),
                args![hash_secret(key)],
            )?
            .map(|r| row(&r))
            .transpose()
        })
    }

    /// Sets the signature policy; false if the broadcast is live and `drop` would be chosen
    /// or left (ingest was set up for the policy it went live with), checked in the same
    /// statement so that going live cannot slip in between.
    pub fn set_signature_policy(&self, id: &str, policy: SignaturePolicy) -> anyhow::Result<bool> {
        let changed = self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET signature_policy = ?2
                 WHERE id = ?1 AND (state != 'live' OR (signature_policy = 'drop') = (?2 = 'drop'))",
                args![id, policy.as_str()],
            )
        })?;
        Ok(changed > 0)
    }

    /// Replaces the stream key (`None` revokes it: nobody can publish until a new one).
    pub fn set_stream_key(&self, id: &str, key: Option<&str>) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET stream_key_hash = ?2 WHERE id = ?1",
                args![id, key.map(hash_secret)],
            )
        })?;
        Ok(())
    }

    /// Makes the broadcast private, for `users` (and its owner) only. When someone who
    /// could watch no longer can, the access epoch moves on, revoking playback tokens.
    pub fn set_allowed_viewers(&self, id: &str, users: &[i64]) -> anyhow::Result<()> {
        self.with(|c| {
            c.transaction(|tx| {
                // Takes the broadcast's row first: two changes of the list at once (from
                // two nodes) then run one after the other, not merged.
                tx.execute(
                    "UPDATE broadcasts SET access_epoch = access_epoch WHERE id = ?1",
                    args![id],
                )?;
                let was_private: bool = tx
                    .query_one("SELECT private FROM broadcasts WHERE id = ?1", args![id])?
                    .get(0)?;
                let before: HashSet<i64> = tx
                    .query("SELECT user_id FROM allowed_viewers WHERE broadcast_id = ?1", args![id])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect::<anyhow::Result<_>>()?;
                let after: HashSet<i64> = users.iter().copied().collect();
                let someone_lost_access = !was_private || !before.is_subset(&after);
                tx.execute(
                    "UPDATE broadcasts SET private = 1, access_epoch = access_epoch + ?2 WHERE id = ?1",
                    args![id, i64::from(someone_lost_access)],
                )?;
                tx.execute("DELETE FROM allowed_viewers WHERE broadcast_id = ?1", args![id])?;
                for user in users {
                    tx.execute(
                        "INSERT INTO allowed_viewers (broadcast_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        args![id, user],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// Who may watch broadcast `id` now, or `None` if there is no such broadcast.
    pub fn access(&self, id: &str) -> anyhow::Result<Option<Access>> {
        let Some(b) = self.get(id)? else { return Ok(None) };
        let viewers = if b.private {
            self.allowed_viewers(id)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        Ok(Some(Access {
            private: b.private,
            epoch: b.access_epoch,
            owner: b.owner_id,
            viewers: Arc::new(viewers),
        }))
    }

    /// Who a private broadcast is for.
    pub fn allowed_viewers(&self, id: &str) -> anyhow::Result<Vec<i64>> {
        self.with(|c| {
            c.query("SELECT user_id FROM allowed_viewers WHERE broadcast_id = ?1", args![id])?
                .iter()
                .map(|r| r.get(0))
                .collect()
        })
    }

    /// The names of those a private broadcast is for, in name order.
    pub fn allowed_viewer_names(&self, id: &str) -> anyhow::Result<Vec<String>> {
        self.with(|c| {
            // Names compare without case in both databases (COLLATE NOCASE, CITEXT).
            c.query(
                "SELECT u.username FROM allowed_viewers a JOIN users u ON u.id = a.user_id
                 WHERE a.broadcast_id = ?1 ORDER BY u.username",
                args![id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
        })
    }

    /// Marks a created broadcast live on this node; false if it was not in the `created`
    /// state.
    pub fn start(&self, id: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let changed = self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET state = 'live', started_at = ?2, last_seen_at = ?2, node = ?3
                 WHERE id = ?1 AND state = 'created'",
                args![id, now, self.node.name],
            )
        })?;
        Ok(changed == 1)
    }

    pub fn end(&self, id: &str) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET state = 'ended', ended_at = ?2 WHERE id = ?1 AND state = 'live'",
                args![id, now_ms()],
            )
        })?;
        Ok(())
    }

    /// Public broadcasts in `state`, at most `limit`.
    pub fn list(&self, state: State, order: ListOrder, limit: usize) -> anyhow::Result<Vec<Broadcast>> {
        let order = match (order, state) {
            (ListOrder::Random, _) => "random()",
            (ListOrder::Recent, State::Ended) => "b.ended_at DESC",
            (ListOrder::Recent, _) => "b.started_at DESC, b.created_at DESC",
        };
        self.with(|c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE b.state = ?1 AND b.private = 0 ORDER BY {order} LIMIT ?2"),
                args![state.as_str(), limit as i64],
            )?
            .iter()
            .map(row)
            .collect()
        })
    }

    /// Live broadcasts of the people `user` follows that `user` may watch, newest first.
    pub fn feed(&self, user: i64, limit: usize) -> anyhow::Result<Vec<Broadcast>> {
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM {FROM} JOIN follows f ON f.followee_id = b.owner_id AND f.follower_id = ?1
                     WHERE b.state = 'live' AND (b.private = 0 OR EXISTS (
                         SELECT 1 FROM allowed_viewers a WHERE a.broadcast_id = b.id AND a.user_id = ?1))
                     ORDER BY b.started_at DESC LIMIT ?2"
                ),
                args![user, limit as i64],
            )?
            .iter()
            .map(row)
            .collect()
        })
    }

    /// All of an owner's broadcasts, not yet live ones too, newest first: their dashboard.
    pub fn own(&self, owner: i64, limit: usize) -> anyhow::Result<Vec<Broadcast>> {
        self.with(|c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE b.owner_id = ?1 ORDER BY b.created_at DESC LIMIT ?2"),
                args![owner, limit as i64],
            )?
            .iter()
            .map(row)
            .collect()
        })
    }

    /// The newest broadcasts of `owner` that `viewer` may see.
    pub fn by_owner(&self, owner: i64, viewer: Option<i64>, limit: usize) -> anyhow::Result<Vec<Broadcast>> {
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM {FROM} WHERE b.owner_id = ?1 AND b.state != 'created' AND (
                         b.private = 0 OR b.owner_id = ?2 OR EXISTS (
                         SELECT 1 FROM allowed_viewers a WHERE a.broadcast_id = b.id AND a.user_id = ?2))
                     ORDER BY b.created_at DESC LIMIT ?3"
                ),
                args![owner, viewer, limit as i64],
            )?
            .iter()
            .map(row)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;
    use super::*;

    #[test]
    fn a_broadcast_goes_live_once_and_a_restart_ends_it_when_last_seen() {
        for t in temp_stores("broadcasts") {
            let store = &t.db;
            let owner = store.create_user("alice", "x").unwrap().unwrap().id;
            store.create_broadcast("id1", owner, "key1", "hello", None).unwrap();
            assert_eq!(store.by_stream_key("key1").unwrap().unwrap().id, "id1");
            assert!(store.start("id1").unwrap());
            assert!(!store.start("id1").unwrap(), "a second publisher cannot start it again");
            store.beat(0, 0).unwrap();
            let seen = now_ms();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let store = Db::open_at(&t.at).unwrap();
            let b = store.get("id1").unwrap().unwrap();
            assert_eq!(b.state, State::Ended);
            assert!(
                b.ended_at.unwrap() <= seen,
                "ended when last seen alive, not at the restart"
            );
            assert!(!store.start("id1").unwrap(), "an ended broadcast stays ended");
            store.set_stream_key("id1", None).unwrap();
            assert!(
                store.by_stream_key("key1").unwrap().is_none(),
                "a revoked key opens nothing"
            );
        }
    }

    #[test]
    fn private_broadcasts_are_for_their_list_only() {
        for t in temp_stores("private") {
            let store = &t.db;
            let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| store.create_user(n, "x").unwrap().unwrap().id);
            let b = store.create_broadcast("p1", alice, "k", "", Some(&[bob])).unwrap();
            assert!(b.private);
            let access = store.access("p1").unwrap().unwrap();
            assert!(access.allows_user(Some(alice)));
            assert!(access.allows_user(Some(bob)));
            assert!(!access.allows_user(Some(carol)));
            assert!(!access.allows_user(None));
            store.start("p1").unwrap();
            assert!(store.list(State::Live, ListOrder::Recent, 10).unwrap().is_empty());
            store.follow(carol, alice).unwrap();
            store.follow(bob, alice).unwrap();
            assert!(store.feed(carol, 10).unwrap().is_empty());
            assert_eq!(store.feed(bob, 10).unwrap().len(), 1);
        }
    }
}
