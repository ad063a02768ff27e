//! The WHIP and WHEP sessions of this node, by resource id: what `PATCH` (trickle ICE,
//! ICE restart) and `DELETE` (the end) reach. The id is random and long, so knowing a
//! resource URL is what lets a client act on it, as RFC 9725 lays out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::sdpfrag::SdpFrag;

/// At most this many peer connections at once on a node: each holds a UDP socket and a
/// task.
pub const MAX_SESSIONS: usize = 2000;
/// And at most this many from one address, so that one client cannot take them all.
pub const MAX_PER_ADDRESS: usize = 64;
/// How long an ended session's id is remembered: a client's `DELETE` that crosses the
/// session's own end (OBS closes its peer connection, which ends the session, then sends
/// `DELETE`) is still answered as done, not `404`.
const REMEMBER_ENDED: Duration = Duration::from_secs(60);

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
    map: Mutex<HashMap<String, Session>>,
    /// Sessions that ended lately, oldest first (at most [`MAX_SESSIONS`]).
    ended: Mutex<VecDeque<(Instant, Kind, String)>>,
}

struct Session {
    kind: Kind,
    from: IpAddr,
    commands: mpsc::Sender<Command>,
}

/// Why a session was not added.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Node,
    Address,
}

/// A session's hold on its entry: dropping it (the session ended) removes the entry.
pub struct Entry {
    sessions: Arc<Sessions>,
    kind: Kind,
    pub id: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.sessions.map.lock().expect("sessions lock").remove(&self.id);
        let mut ended = self.sessions.ended.lock().expect("sessions lock");
        forget_old(&mut ended);
        if ended.len() >= MAX_SESSIONS {
            ended.pop_front();
        }
        ended.push_back((Instant::now(), self.kind, std::mem::take(&mut self.id)));
    }
}

fn forget_old(ended: &mut VecDeque<(Instant, Kind, String)>) {
    while ended.front().is_some_and(|(at, ..)| at.elapsed() > REMEMBER_ENDED) {
        ended.pop_front();
    }
}

impl Sessions {
    /// Registers a new session of a client at `from`; refused when the node, or that
    /// address, has as many as it takes.
    pub fn add(self: &Arc<Self>, kind: Kind, from: IpAddr) -> Result<(Entry, mpsc::Receiver<Command>), Full> {
        let mut map = self.map.lock().expect("sessions lock");
        if map.len() >= MAX_SESSIONS {
            return Err(Full::Node);
        }
        if map.values().filter(|s| s.from == from).count() >= MAX_PER_ADDRESS {
            return Err(Full::Address);
        }
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|_| Full::Node)?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let (tx, rx) = mpsc::channel(8);
        map.insert(
            id.clone(),
            Session {
                kind,
                from,
                commands: tx,
            },
        );
        Ok((
            Entry {
                sessions: self.clone(),
                kind,
                id,
            },
            rx,
        ))
    }

    /// The command line of a session of `kind`.
    pub fn get(&self, kind: Kind, id: &str) -> Option<mpsc::Sender<Command>> {
        let map = self.map.lock().expect("sessions lock");
        map.get(id).filter(|s| s.kind == kind).map(|s| s.commands.clone())
    }

    /// Whether a session of `kind` with this id ended in the last minute.
    pub fn ended_lately(&self, kind: Kind, id: &str) -> bool {
        let mut ended = self.ended.lock().expect("sessions lock");
        forget_old(&mut ended);
        ended.iter().any(|(_, k, i)| *k == kind && i == id)
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Full> for crate::api::ApiError {
    fn from(full: Full) -> Self {
        let message = match full {
            Full::Node => "this node has as many WebRTC sessions as it takes",
            Full::Address => "this address has as many WebRTC sessions as it may",
        };
        crate::api::ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_session_and_an_ended_one_frees_its_place() {
        let sessions = Arc::new(Sessions::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut held: Vec<_> = (0..MAX_PER_ADDRESS)
            .map(|_| sessions.add(Kind::Whep, a).unwrap())
            .collect();
        assert_eq!(sessions.add(Kind::Whep, a).err(), Some(Full::Address));
        let (entry, _) = sessions.add(Kind::Whip, b).unwrap();
        assert!(sessions.get(Kind::Whip, &entry.id).is_some());
        assert!(
            sessions.get(Kind::Whep, &entry.id).is_none(),
            "a WHIP session is not WHEP's"
        );
        held.pop();
        assert!(sessions.add(Kind::Whep, a).is_ok());
        let id = entry.id.clone();
        assert!(!sessions.ended_lately(Kind::Whip, &id));
        drop(entry);
        assert_eq!(sessions.len(), MAX_PER_ADDRESS - 1);
        assert!(sessions.get(Kind::Whip, &id).is_none());
        assert!(sessions.ended_lately(Kind::Whip, &id), "remembered as ended");
        assert!(!sessions.ended_lately(Kind::Whep, &id));
    }
}
