//! A room across nodes. The room of a live broadcast has one home, the node it is
//! published on, which holds its state (comments and their order, the poll, mutes and
//! blocks) as a single node does. Any other node with members in it keeps a mirror: it
//! passes its members' comments, votes and the broadcaster's commands to the home and
//! waits for the answer, sends their hearts on every flush (in time for the home's next
//! heart batch), and relays the home's frames to its members as they come.
//!
//! Every frame leaves the home once, on one subject, and NATS delivers one publisher's
//! messages in order: every member on every node sees the same frames in the same order,
//! each once. A comment is acknowledged (no error answered) only once the home has
//! stored it.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::protocol::{ClientMessage, ServerMessage};
use super::{Member, Room, Rooms};
use crate::bus::Incoming;
use crate::store::User;

/// What a mirror tells or asks a room's home.
#[derive(Debug, Serialize, Deserialize)]
pub struct ToHome {
    pub broadcast: String,
    /// The mirror's node.
    pub node: String,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A member joins the mirror: answered with [`Joined`].
    Join { user: Option<RemoteUser> },
    /// The mirror's hearts of one interval, and its members now (no answer).
    Hearts {
        /// (server second, media second, count)
        per_second: Vec<(i64, Option<i64>, u64)>,
        senders: Vec<String>,
        media_from: Option<i64>,
        media_to: Option<i64>,
        connected: usize,
    },
    /// A member's comment, vote or command: answered with [`Acted`].
    Act {
        user: RemoteUser,
        message: ClientMessage,
        /// The delay the member last reported, for judging a late vote.
        delay_ms: Option<u64>,
    },
}

/// A logged-in member of a mirror.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteUser {
    pub id: i64,
    pub username: String,
}

impl From<&User> for RemoteUser {
    fn from(u: &User) -> RemoteUser {
        RemoteUser {
            id: u.id,
            username: u.username.clone(),
        }
    }
}

/// The home's answer to a join: what the newcomer is sent first, and who is muted and
/// blocked.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Joined {
    pub frames: Vec<String>,
    pub muted: Vec<i64>,
    pub blocked: Vec<i64>,
}

/// The home's answer to an act: what to answer the member alone (an error), if anything.
#[derive(Debug, Serialize, Deserialize)]
pub struct Acted {
    pub answer: Option<String>,
}

/// What the home sends its mirrors, in order: frames for every member, and changes to who
/// is muted or blocked.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FromHome {
    /// A frame of the room at `node`, its home. `seq` counts the frames of one opening of
    /// the room there (`epoch`, random) from 1: a mirror that finds one missing (lost while
    /// NATS was unreachable) tells its members they lagged.
    Frame {
        node: String,
        epoch: u64,
        seq: u64,
        text: String,
    },
    Muted {
        user: i64,
        blocked: bool,
    },
}

/// The subject a room's home listens on: one per node.
pub fn home_subject(node: &str) -> String {
    format!("room.{node}")
}

/// The subject a room's home sends on.
pub fn frames_subject(broadcast: &str) -> String {
    format!("frames.{broadcast}")
}

/// Requests waiting for one room's worker at its home; past this, a mirror is told the
/// room is busy rather than queue without bound.
const WORKER_QUEUE: usize = 1024;
/// A room's worker with nothing to do for this long stops (the next request starts one).
const WORKER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves the rooms homed on this node to the other nodes' mirrors: each room's requests
/// in the order they came (so that one mirror's comments keep their order), rooms side by
/// side (so that one room waiting on the database holds up no other).
pub async fn serve_home(rooms: Arc<Rooms>) -> anyhow::Result<()> {
    let cx = rooms.context();
    let Some(mut requests) = cx.bus.subscribe(&home_subject(&cx.node)).await? else {
        return Ok(());
    };
    tokio::spawn(async move {
        let mut workers: HashMap<String, mpsc::Sender<(ToHome, Incoming)>> = HashMap::new();
        while let Some(message) = requests.next().await {
            let Some(request) = message.parse::<ToHome>() else {
                continue;
            };
            let id = request.broadcast.clone();
            let mut item = (request, message);
            if let Some(worker) = workers.get(&id) {
                match worker.try_send(item) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Full((request, message))) => {
                        busy(&request, &message).await;
                        continue;
                    }
                    Err(mpsc::error::TrySendError::Closed(back)) => item = back,
                }
            }
            workers.retain(|_, worker| !worker.is_closed());
            let (worker, queue) = mpsc::channel(WORKER_QUEUE);
            let _ = worker.try_send(item);
            workers.insert(id.clone(), worker);
            tokio::spawn(serve_room(rooms.clone(), id, queue));
        }
    });
    Ok(())
}

/// A full queue's answer: the room is busy (a join gets a welcome without history).
async fn busy(request: &ToHome, message: &Incoming) {
    match request.what {
        What::Join { .. } => message.reply(&Joined::default()).await,
        What::Act { .. } => {
            let answer = ServerMessage::error("busy", "the room is busy; try again").to_json();
            message.reply(&Acted { answer: Some(answer) }).await;
        }
        What::Hearts { .. } => {}
    }
}

/// One room's requests at its home, in order, until none has come for a while.
async fn serve_room(rooms: Arc<Rooms>, id: String, mut queue: mpsc::Receiver<(ToHome, Incoming)>) {
    while let Ok(Some((request, message))) = tokio::time::timeout(WORKER_IDLE, queue.recv()).await {
        serve_request(&rooms, &id, request, message).await;
    }
    // Closed first, so that nothing is queued after the last look.
    queue.close();
    while let Ok((request, message)) = queue.try_recv() {
        serve_request(&rooms, &id, request, message).await;
    }
}

async fn serve_request(rooms: &Arc<Rooms>, id: &str, request: ToHome, message: Incoming) {
    {
        let Some(room) = home_room(rooms, id).await else {
            if !matches!(request.what, What::Hearts { .. }) {
                let answer = ServerMessage::error("not_live", "the broadcast is not live here").to_json();
                message.reply(&Acted { answer: Some(answer) }).await;
            }
            return;
        };
        match request.what {
            What::Join { user } => {
                let user = user.map(|u| User {
                    id: u.id,
                    username: u.username,
                    created_at: 0,
                });
                message.reply(&room.joined(user.as_ref())).await;
            }
            What::Hearts {
                per_second,
                senders,
                media_from,
                media_to,
                connected,
            } => {
                room.merge_hearts(&per_second, senders, media_from, media_to);
                room.mirror_connected(&request.node, connected);
            }
            What::Act {
                user,
                message: act,
                delay_ms,
            } => {
                let member = Member {
                    // Remote members have no connection here: they are known by user.
                    connection: 0,
                    user: Some(User {
                        id: user.id,
                        username: user.username,
                        created_at: 0,
                    }),
                };
                let answer = room.act(&member, act, Some(delay_ms)).await;
                message
                    .reply(&Acted {
                        answer: answer.map(|a| a.to_json()),
                    })
                    .await;
            }
        }
    }
}

/// The room of `broadcast` if this node is its home (opened if nobody here is in it).
async fn home_room(rooms: &Arc<Rooms>, broadcast: &str) -> Option<Arc<Room>> {
    if let Some(room) = rooms.get(broadcast)
        && room.home.is_none()
    {
        return Some(room);
    }
    let id = broadcast.to_owned();
    let b = rooms.context().store.call(move |db| db.get(&id)).await.ok()??;
    if b.node.as_deref() != Some(rooms.context().node.as_str()) {
        return None;
    }
    Some(rooms.open(&b).await)
}

/// How many frames were lost between the frame numbered `last` and the one numbered `seq`
/// (of the same epoch), if any.
fn missed_between(last: Option<u64>, seq: u64) -> Option<u64> {
    let last = last?;
    (seq > last + 1).then(|| seq - last - 1)
}

/// Relays the home's frames (from `frames`) to a mirror's members until the mirror closes.
pub async fn relay_frames(room: Arc<Room>, mut frames: crate::bus::Subscription) {
    let closed = room.closed.notified();
    tokio::pin!(closed);
    closed.as_mut().enable();
    // The epoch and number of the last frame from the home.
    let mut last: Option<(u64, u64)> = None;
    loop {
        tokio::select! {
            () = &mut closed => break,
            message = frames.next() => {
                let Some(message) = message else { break };
                match message.parse::<FromHome>() {
                    // Only the home's: a room opened elsewhere before the broadcast went live
                    // there may still be sending its last frames.
                    Some(FromHome::Frame { node, epoch, seq, text }) if room.home.as_deref() == Some(node.as_str()) => {
                        let last_seq = last.filter(|(e, _)| *e == epoch).map(|(_, s)| s);
                        if let Some(missed) = missed_between(last_seq, seq) {
                            tracing::warn!(broadcast = %room.id, missed, "frames from the room's home were lost");
                            room.relay(ServerMessage::Lagged { missed, poll: None }.to_json());
                        }
                        last = Some((epoch, seq));
                        room.relay(text);
                    }
                    Some(FromHome::Frame { .. }) => {}
                    Some(FromHome::Muted { user, blocked }) => room.apply_mute(user, blocked),
                    None => {}
                }
            }
        }
    }
    frames.close().await;
}

#[cfg(test)]
mod tests {
    use super::missed_between;

    #[test]
    fn a_gap_in_the_homes_numbering_is_a_loss() {
        assert_eq!(missed_between(None, 7), None, "the first frame a mirror sees");
        assert_eq!(missed_between(Some(7), 8), None);
        assert_eq!(missed_between(Some(7), 10), Some(2));
        assert_eq!(missed_between(Some(7), 7), None);
    }
}
