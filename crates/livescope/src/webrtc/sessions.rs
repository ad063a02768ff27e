//! The WHIP and WHEP sessions of this node, by resource id: what `PATCH` (trickle ICE,
//! ICE restart) and `DELETE` (the end) reach. The id is random and long, so knowing a
//! resource URL is what lets a client act on it, as RFC 9725 lays out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::sdpfrag::SdpFrag;

/// At most this many peer connections at once on a node: each holds a UDP socket and a
/// task.
pub const MAX_SESSIONS: usize = 2000;

/// What the HTTP side asks of a running session.
#[derive(Debug)]
pub enum Command {
    /// Candidates to add, or credentials to restart ICE with; the reply is the server's
    /// fragment for a restart (`Some`), nothing for candidates alone, or why not.
    Patch(SdpFrag, oneshot::Sender<Result<Option<String>, String>>),
    /// End the session; the reply comes when it has ended.
    Close(oneshot::Sender<()>),
}

/// Which endpoint a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Whip,
    Whep,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, (Kind, mpsc::Sender<Command>)>>,
}

/// A session's hold on its entry: dropping it (the session ended) removes the entry.
pub struct Entry {
    sessions: Arc<Sessions>,
    pub id: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.sessions.map.lock().expect("sessions lock").remove(&self.id);
    }
}

impl Sessions {
    /// Registers a new session; `None` when the node has as many as it takes.
    pub fn add(self: &Arc<Self>, kind: Kind) -> Option<(Entry, mpsc::Receiver<Command>)> {
        let mut map = self.map.lock().expect("sessions lock");
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).ok()?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let (tx, rx) = mpsc::channel(8);
        map.insert(id.clone(), (kind, tx));
        Some((
            Entry {
                sessions: self.clone(),
                id,
            },
            rx,
        ))
    }

    /// The command line of a session of `kind`.
    pub fn get(&self, kind: Kind, id: &str) -> Option<mpsc::Sender<Command>> {
        let map = self.map.lock().expect("sessions lock");
        map.get(id).filter(|(k, _)| *k == kind).map(|(_, tx)| tx.clone())
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
