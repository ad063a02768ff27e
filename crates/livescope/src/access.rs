//! Who may watch a broadcast, as every delivery path checks it without the database, and
//! how a change reaches the connections already open.
//!
//! A broadcast that is live, or has a room open, has a [`Gate`]: its current [`Access`]
//! in a watch channel. The API changes the store, then the gate; HLS requests read the
//! gate, RTMP and HTTP-FLV viewers look at it after each batch of frames ([`AccessCheck`])
//! and room members after the room tells them (a version, see `Room::access_changed`);
//! each leaves when no longer allowed. The gate also carries evictions of the publisher,
//! sent when the stream key is rotated or revoked.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

/// Who may watch one broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub private: bool,
    /// Moves on whenever someone loses access; playback tokens are issued for one epoch.
    pub epoch: u64,
    pub owner: Option<i64>,
    /// Who a private broadcast is for, besides its owner.
    pub viewers: Arc<HashSet<i64>>,
}

impl Access {
    /// Whether the logged-in `user` (or an anonymous viewer, `None`) may watch.
    pub fn allows_user(&self, user: Option<i64>) -> bool {
        !self.private || user.is_some_and(|u| Some(u) == self.owner || self.viewers.contains(&u))
    }
}

/// How a connected viewer was let in, to check again when the access changes.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub user: Option<i64>,
}

impl Credentials {
    /// What a player's request carries: a playback token in its query (`?token=`), and the
    /// session of a logged-in viewer (a store lookup; none when it fails).
    pub async fn of_request(
        store: &crate::store::Store,
        query: Option<&str>,
        headers: &axum::http::HeaderMap,
    ) -> Credentials {
        Credentials {
            token: query.and_then(crate::playback::token_in_query).map(str::to_owned),
            user: crate::auth::current_user(store, headers)
                .await
                .ok()
                .flatten()
                .map(|u| u.id),
        }
    }
}

/// The live access of one broadcast.
pub struct Gate {
    access: watch::Sender<Access>,
    /// Counts evictions of the publisher.
    evictions: watch::Sender<u64>,
}

impl Gate {
    pub fn access(&self) -> Access {
        self.access.borrow().clone()
    }

    /// A receiver that sees every later change.
    pub fn watch(&self) -> watch::Receiver<Access> {
        self.access.subscribe()
    }

    pub fn set(&self, access: Access) {
        self.access.send_if_modified(|now| {
            let changed = *now != access;
            *now = access;
            changed
        });
    }

    /// Ends the current publishing session (its key was rotated or revoked).
    pub fn evict_publisher(&self) {
        self.evictions.send_modify(|n| *n += 1);
    }

    /// A receiver that sees later evictions.
    pub fn evictions(&self) -> watch::Receiver<u64> {
        self.evictions.subscribe()
    }
}

/// A connected viewer's hold on its broadcast's access, looked at once per batch of frames
/// (a version compare): frames come every few tens of milliseconds, whereas a waiter per
/// viewer, registered again at every batch, is a lock every viewer takes.
pub struct AccessCheck {
    /// `None` once the gate is gone with the broadcast.
    rx: Option<watch::Receiver<Access>>,
}

impl AccessCheck {
    pub fn new(gate: &Gate) -> AccessCheck {
        AccessCheck { rx: Some(gate.watch()) }
    }

    /// Whether the viewer is still admitted; `admits` is asked only when the access has
    /// changed. Once the broadcast ended (its gate is gone), what is left of it is still
    /// the viewer's.
    pub fn still_admitted(&mut self, admits: impl FnOnce(&Access) -> bool) -> bool {
        let Some(rx) = self.rx.as_mut() else { return true };
        match rx.has_changed() {
            Err(_) => {
                self.rx = None;
                true
            }
            Ok(false) => true,
            Ok(true) => admits(&rx.borrow_and_update()),
        }
    }
}

/// The gates of broadcasts someone is holding (a publisher, a rendition, a viewer, a
/// room member); a gate nobody holds is gone, and is made again from the store.
#[derive(Default)]
pub struct Gates {
    gates: Mutex<HashMap<String, Weak<Gate>>>,
}

impl Gates {
    /// The gate of broadcast `id`, if someone holds it.
    pub fn get(&self, id: &str) -> Option<Arc<Gate>> {
        self.gates.lock().expect("gates lock").get(id).and_then(Weak::upgrade)
    }

    /// The gate of broadcast `id`, made with `access` if nobody holds one.
    pub fn open(&self, id: &str, access: Access) -> Arc<Gate> {
        let mut gates = self.gates.lock().expect("gates lock");
        if let Some(gate) = gates.get(id).and_then(Weak::upgrade) {
            return gate;
        }
        // Forget gates nobody holds any more, now and then, so the map stays small.
        if gates.len() >= 64 && gates.len().is_power_of_two() {
            gates.retain(|_, g| g.strong_count() > 0);
        }
        let gate = Arc::new(Gate {
            access: watch::channel(access).0,
            evictions: watch::channel(0).0,
        });
        gates.insert(id.to_owned(), Arc::downgrade(&gate));
        gate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_broadcast_admits_its_owner_and_list_only() {
        let access = Access {
            private: true,
            epoch: 0,
            owner: Some(1),
            viewers: Arc::new([2].into_iter().collect()),
        };
        assert!(access.allows_user(Some(1)));
        assert!(access.allows_user(Some(2)));
        assert!(!access.allows_user(Some(3)));
        assert!(!access.allows_user(None));
        assert!(Access::default().allows_user(None));
    }

    #[tokio::test]
    async fn a_gate_lives_while_held_and_tells_its_watchers() {
        let gates = Gates::default();
        let gate = gates.open("b", Access::default());
        let mut rx = gate.watch();
        gates.open("b", Access::default()).set(Access {
            private: true,
            ..Access::default()
        });
        rx.changed().await.unwrap();
        assert!(rx.borrow().private);
        drop((gate, rx));
        assert!(gates.get("b").is_none());
    }
}
