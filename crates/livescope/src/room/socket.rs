//! One WebSocket connection to a room: it sends the welcome, then relays the room's
//! messages and handles the client's. A client that cannot keep up skips to the present
//! and gets `lagged`; one whose socket accepts nothing for [`SEND_TIMEOUT`] is
//! disconnected. Bad messages get an `error`; a flood gets a disconnect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::Rooms;
use super::limits::{self, Bucket};
use super::protocol::{self, ClientMessage, ServerMessage};
use crate::access::{Credentials, Gate};
use crate::api::ApiError;
use crate::api::Interaction;
use crate::auth;
use crate::store::{State as Life, User};

/// A connection whose socket accepts nothing for this long is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The server pings every connection this often...
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// ...and drops one it has heard nothing from (not even the pong every client sends by
/// itself) for this long: a client that stopped reading.
const SILENCE: Duration = Duration::from_secs(25);
/// Messages written to a socket in one go.
const WRITE_BATCH: usize = 64;
/// The kernel's send buffer of a room connection. Left to itself Linux grows it up to 4 MiB,
/// minutes of a busy room that a slow client would read before it saw anything current;
/// bounded, its writes hold up within seconds and it skips to the present instead.
const SEND_BUFFER: usize = 16 << 10;
/// Close code for a client that broke the rules (RFC 6455: policy violation).
const POLICY: u16 = 1008;

/// `GET /api/broadcasts/<id>/live`: joins the broadcast's room. Anonymous viewers may
/// watch and send hearts; comments and votes need a login (session cookie or bearer token);
/// a private broadcast needs its playback token (`?token=`) and a login of someone it is
/// shared with.
pub async fn live(
    State(api): State<Interaction>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<crate::peer::Peer>>>,
    version: axum::http::Version,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let broadcast = api
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    let gate = api
        .admission
        .gate(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    let access = gate.access();
    let user = auth::current_user(&api.store, &headers).await?;
    let viewer = Credentials {
        token: query
            .as_deref()
            .and_then(crate::playback::token_in_query)
            .map(str::to_owned),
        user: user.as_ref().map(|u| u.id),
    };
    if !api.admission.admits(&id, &access, &viewer) {
        return Err(crate::http::private());
    }
    // The playback token is shared by everyone a private broadcast is shared with; its room
    // also needs to know who they are, or a viewer blocked there could come back anonymous.
    if !access.allows_user(viewer.user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invited_only",
            "this private broadcast's room is for the viewers it is shared with: log in as one of them",
        ));
    }
    if broadcast.state == Life::Ended {
        return Err(ApiError::new(
            StatusCode::GONE,
            "broadcast_ended",
            "the broadcast has ended; its timeline is at /api/broadcasts/<id>/timeline",
        ));
    }
    let room = api.rooms.open(&broadcast).await;
    if user.as_ref().is_some_and(|u| room.is_blocked(u.id)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "blocked",
            "the broadcaster has blocked you from this broadcast",
        ));
    }
    if let Some(Extension(ConnectInfo(peer))) = peer
        && let Err(e) = peer.bound_send_buffer(version, SEND_BUFFER)
    {
        tracing::debug!("cannot bound a room connection's send buffer: {e}");
    }
    Ok(ws
        .max_message_size(protocol::MAX_FRAME_BYTES)
        .max_frame_size(protocol::MAX_FRAME_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 << 10)
        .on_upgrade(move |socket| run(api.rooms.clone(), broadcast, user, gate, socket)))
}

async fn run(
    rooms: Arc<Rooms>,
    broadcast: crate::store::Broadcast,
    user: Option<User>,
    gate: Arc<Gate>,
    socket: WebSocket,
) {
    let user_id = user.as_ref().map(|u| u.id);
    // The room is looked up again: the one seen before the upgrade may have closed since.
    let room = rooms.open(&broadcast).await;
    let (member, mut rx, first) = room.join(user).await;
    let (mut sink, mut stream) = socket.split();
    let mut flood = Bucket::new(limits::MESSAGES);
    let mut heard = tokio::time::Instant::now();
    let mut blocks_seen = room.blocked_version.load(std::sync::atomic::Ordering::Acquire);
    // Checked against the gate at the first frames, then after every change: a change
    // between the check before the upgrade and the join is not missed.
    let mut access_seen = u64::MAX;
    let mut ping = tokio::time::interval_at(heard + PING_INTERVAL, PING_INTERVAL);
    let outcome: Result<(), &'static str> = async {
        send(&mut sink, first.into_iter().map(Message::Text).collect()).await?;
        loop {
            tokio::select! {
                // What the client says is handled before what it is sent.
                biased;
                incoming = stream.next() => {
                    heard = tokio::time::Instant::now();
                    let Some(Ok(frame)) = incoming else { return Ok(()) };
                    // Every frame counts against the flood limit, whatever its kind.
                    if !matches!(frame, Message::Pong(_)) && !flood.take(Instant::now()) {
                        return Err("flooding");
                    }
                    let text = match frame {
                        Message::Close(_) => return Ok(()),
                        Message::Text(text) => text,
                        Message::Binary(_) => {
                            reply(&mut sink, ServerMessage::error("bad_message", "send JSON in text frames")).await?;
                            continue;
                        }
                        _ => continue,
                    };
                    let answer = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(message) => room.handle(&member, message).await,
                        Err(e) => Some(ServerMessage::error("bad_message", format!("not a protocol message: {e}"))),
                    };
                    if let Some(answer) = answer {
                        reply(&mut sink, answer).await?;
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() >= SILENCE {
                        return Err("unresponsive");
                    }
                    send(&mut sink, vec![Message::Ping(Default::default())]).await?;
                }
                out = rx.recv() => {
                    let mut batch = Vec::new();
                    let mut next = out;
                    loop {
                        match next {
                            Ok(frame) => batch.push(Message::Text(frame)),
                            Err(RecvError::Lagged(missed)) => {
                                // Skip to the present: what is still in the ring is old news
                                // to a client this far behind. The notice carries the state
                                // that lasts (the poll); missed comments are in the timeline.
                                let missed = missed + rx.len() as u64 + batch.len() as u64;
                                rx = rx.resubscribe();
                                batch.clear();
                                batch.push(Message::text(ServerMessage::Lagged { missed, poll: room.poll() }.to_json()));
                                break;
                            }
                            Err(RecvError::Closed) => return Ok(()),
                        }
                        if batch.len() >= WRITE_BATCH {
                            break;
                        }
                        next = match rx.try_recv() {
                            Ok(m) => Ok(m),
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                            Err(_) => break,
                        };
                    }
                    // A client that drains a write we had to wait for is reading, so alive,
                    // even if our ping is still queued behind that write.
                    rooms.context().metrics.room_messages.inc_by(batch.len() as u64);
                    if send(&mut sink, batch).await? == Sent::AfterWaiting {
                        heard = tokio::time::Instant::now();
                    }
                    // Whether who may watch changed since the last frame, and this member
                    // may no longer (a version compared per batch, not a waiter per member:
                    // with 10,000 members that was a lock taken 100,000 times a second).
                    let version = room.access_version.load(std::sync::atomic::Ordering::Acquire);
                    if version != access_seen {
                        access_seen = version;
                        if room.moved.load(std::sync::atomic::Ordering::Acquire) {
                            reply(&mut sink, ServerMessage::error("reconnect", "the room moved to the node the broadcast is published on: join again")).await?;
                            return Err("the room moved");
                        }
                        if !gate.access().allows_user(user_id) {
                            reply(&mut sink, ServerMessage::error("not_allowed", "the broadcaster no longer shares this broadcast with you")).await?;
                            return Err("no longer allowed");
                        }
                    }
                    // Whether a block since the last frame was of this member.
                    let version = room.blocked_version.load(std::sync::atomic::Ordering::Acquire);
                    if version != blocks_seen {
                        blocks_seen = version;
                        if member.user.as_ref().is_some_and(|u| room.is_blocked(u.id)) {
                            reply(&mut sink, ServerMessage::error("blocked", "the broadcaster has blocked you")).await?;
                            return Err("blocked");
                        }
                    }
                }
            }
        }
    }
    .await;
    if let Err(reason) = outcome {
        tracing::debug!(broadcast = %room.id, reason, "room connection closed");
        let close = CloseFrame {
            code: POLICY,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(close)))).await;
    }
    room.leave(&member);
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    AtOnce,
    /// The socket was full for a while and then drained: the client is reading.
    AfterWaiting,
}

/// Writes messages and flushes once. A socket that accepts no whole message for
/// [`SEND_TIMEOUT`] is a client that stopped reading; one that reads slowly but reads is
/// given the time it needs (and skips ahead if it falls a ring behind).
async fn send(sink: &mut Sink, messages: Vec<Message>) -> Result<Sent, &'static str> {
    let mut sent = Sent::AtOnce;
    for m in messages {
        if within_timeout(sink.feed(m)).await? == Sent::AfterWaiting {
            sent = Sent::AfterWaiting;
        }
    }
    if within_timeout(sink.flush()).await? == Sent::AfterWaiting {
        sent = Sent::AfterWaiting;
    }
    Ok(sent)
}

async fn within_timeout<E>(write: impl Future<Output = Result<(), E>>) -> Result<Sent, &'static str> {
    let mut write = std::pin::pin!(write);
    // Nearly every write completes at once: arm the timer only for one that does not (a
    // timer per write was a measurable share of the room's cost at 10,000 viewers).
    let (done, sent) = match futures_util::poll!(&mut write) {
        std::task::Poll::Ready(done) => (done, Sent::AtOnce),
        std::task::Poll::Pending => match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(done) => (done, Sent::AfterWaiting),
            Err(_) => return Err("stopped reading"),
        },
    };
    done.map(|()| sent).map_err(|_| "socket closed")
}

async fn reply(sink: &mut Sink, message: ServerMessage) -> Result<(), &'static str> {
    send(sink, vec![Message::text(message.to_json())]).await.map(drop)
}
