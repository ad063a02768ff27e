//! A room across nodes. The room of a live broadcast has one home, the node it is
//! published on, which holds its state (comments and their order, the poll, mutes and
//! blocks) as a single node does. Any other node with members in it keeps a mirror: it
//! passes its members' comments, votes and the broadcaster's commands to the home and
//! waits for the answer, gathers their hearts into one batch per heart interval, and
//! relays the home's frames to its members as they come.
//!
//! Every frame leaves the home once, on one subject, and NATS delivers one publisher's
//! messages in order: every member on every node sees the same frames in the same order,
//! each once. A comment is acknowledged (no error answered) only once the home has
//! stored it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::protocol::{ClientMessage, ServerMessage};
use super::{Member, Room};
use crate::app::App;
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
    Frame { text: String },
    Muted { user: i64, blocked: bool },
}

/// The subject a room's home listens on: one per node.
pub fn home_subject(node: &str) -> String {
    format!("room.{node}")
}

/// The subject a room's home sends on.
pub fn frames_subject(broadcast: &str) -> String {
    format!("frames.{broadcast}")
}

/// Serves the rooms homed on this node to the other nodes' mirrors, one message at a time
/// (so that one mirror's comments keep their order).
pub async fn serve_home(app: Arc<App>) -> anyhow::Result<()> {
    let Some(mut requests) = app.bus.subscribe(&home_subject(&app.config.node)).await? else {
        return Ok(());
    };
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let Some(request) = message.parse::<ToHome>() else {
                continue;
            };
            let Some(room) = home_room(&app, &request.broadcast).await else {
                message
                    .reply(&Acted {
                        answer: Some(ServerMessage::error("not_live", "the broadcast is not live here").to_json()),
                    })
                    .await;
                continue;
            };
            match request.what {
                What::Join { user } => {
                    let user = user.map(|u| User {
                        id: u.id,
                        username: u.username,
                        created_at: 0,
                    });
                    message.reply(&room.joined(&app, user.as_ref())).await;
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
                    let answer = room.act(&app, &member, act, Some(delay_ms)).await;
                    message
                        .reply(&Acted {
                            answer: answer.map(|a| a.to_json()),
                        })
                        .await;
                }
            }
        }
    });
    Ok(())
}

/// The room of `broadcast` if this node is its home (opened if nobody here is in it).
async fn home_room(app: &Arc<App>, broadcast: &str) -> Option<Arc<Room>> {
    if let Some(room) = app.rooms.get(broadcast)
        && room.home.is_none()
    {
        return Some(room);
    }
    let id = broadcast.to_owned();
    let b = app.store.call(move |db| db.get(&id)).await.ok()??;
    if b.node.as_deref() != Some(app.config.node.as_str()) {
        return None;
    }
    Some(app.rooms.open(app, &b).await)
}

/// Relays the home's frames to a mirror's members until the mirror closes.
pub async fn relay_frames(app: Arc<App>, room: Arc<Room>) {
    let subscription = app.bus.subscribe(&frames_subject(&room.id)).await;
    let mut frames = match subscription {
        Ok(Some(frames)) => frames,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(broadcast = %room.id, "cannot follow the room's home: {e:#}");
            return;
        }
    };
    let closed = room.closed.notified();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            message = frames.next() => {
                let Some(message) = message else { break };
                match message.parse::<FromHome>() {
                    Some(FromHome::Frame { text }) => room.relay(text),
                    Some(FromHome::Muted { user, blocked }) => room.apply_mute(user, blocked),
                    None => {}
                }
            }
        }
    }
    frames.close().await;
}
