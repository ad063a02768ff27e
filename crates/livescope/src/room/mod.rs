//! Real-time interaction: one room per broadcast that every viewer can join over a
//! WebSocket. Comments are relayed in order to everyone; hearts are counted and sent as one
//! batch every [`HEART_INTERVAL`], so that 10,000 viewers sending hearts cost one message
//! per viewer per batch; polls keep live totals and close with latency compensation.
//! Everything is stored with both server and media time.
//!
//! Messages are serialized once and handed to every connection through one bounded ring
//! (`tokio::sync::broadcast`): a connection that falls a ring behind skips to the present
//! and is told (`lagged`), and never slows the room or anyone else. The room sends what
//! happened in each [`FLUSH_INTERVAL`] as one frame (a JSON array when there is more than
//! one message), so that a viewer costs the server at most ten writes a second however
//! busy the room is: on a 2-core machine with 10,000 viewers, one write per message per
//! viewer was the whole budget.

pub mod cluster;
mod limits;
mod poll;
pub mod protocol;
pub mod socket;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::bus::Bus;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::players::Players;
use crate::store::Store;
use crate::store::{Broadcast, StoredPoll, User, now_ms};
use poll::{OpenPoll, Phase, Vote};
use protocol::{ClientMessage, Comment, ServerMessage};

/// What happened in each interval goes to every viewer as one frame.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Hearts are sent as one batch per interval (a whole number of flushes).
pub const HEART_INTERVAL: Duration = Duration::from_millis(200);
/// Presence is sent this often.
const PRESENCE_INTERVAL: Duration = Duration::from_secs(2);
/// A mirror tells the home how many members it has at least this often (with its hearts,
/// more often), so that presence at the home is at most this old when it is sent.
const MIRROR_REPORT: Duration = Duration::from_secs(1);
/// Frames a connection may fall behind by before it loses the oldest: with a frame per
/// flush, 6.4 s of the room. A socket stuck longer than its send timeout is dropped
/// instead; one that drains slowly skips to the present with a `lagged` notice.
const RING: usize = 64;
/// Comments a newcomer sees at once.
const RECENT_COMMENTS: usize = 50;
/// A `recent` frame holds comments up to about this many bytes (at least one comment).
const RECENT_FRAME_BYTES: usize = 1024;
/// Senders named in a hearts batch.
const NAMED_SENDERS: usize = 5;
/// A room nobody has been in for this long closes.
const IDLE_ROOM: Duration = Duration::from_secs(30);

/// What goes through a room's ring: one frame's text, a message or a JSON array of them.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// What rooms need from the rest of the server, and nothing more: the store, the link to
/// the other nodes, the live streams (for media time and whether the broadcast is on air),
/// the player counts and the metrics.
pub struct Context {
    /// This node's name.
    pub node: String,
    pub store: Store,
    pub bus: Bus,
    pub hub: Arc<Hub>,
    pub players: Players,
    pub metrics: Arc<Metrics>,
}

/// The rooms of broadcasts that have (or recently had) someone in them.
pub struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    cx: Arc<Context>,
}

impl Rooms {
    pub fn new(cx: Context) -> Rooms {
        Rooms {
            rooms: Mutex::default(),
            cx: Arc::new(cx),
        }
    }

    /// What the rooms were given.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The room of `b`, opened (with its ticker) if nobody is in it yet.
    pub async fn open(self: &Arc<Self>, b: &Broadcast) -> Arc<Room> {
        if let Some(room) = self.get(&b.id) {
            return room;
        }
        let cx = &self.cx;
        // Mutes and blocks are read before the lock: no lock waits on the store.
        let id = b.id.clone();
        let moderation = cx.store.call(move |db| db.moderation(&id)).await.unwrap_or_else(|e| {
            tracing::error!(broadcast = %b.id, "cannot load mutes and blocks: {e:#}");
            Vec::new()
        });
        // A live broadcast published on another node has its room's home there: this is a
        // mirror (see `cluster`), which follows the home's frames from before anyone joins.
        let home = b
            .node
            .clone()
            .filter(|node| cx.bus.clustered() && b.state == crate::store::State::Live && *node != cx.node);
        let frames = match &home {
            Some(_) => cx
                .bus
                .subscribe(&cluster::frames_subject(&b.id))
                .await
                .inspect_err(|e| tracing::warn!(broadcast = %b.id, "cannot follow the room's home: {e:#}"))
                .ok()
                .flatten(),
            None => None,
        };
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if let Some(room) = rooms.get(&b.id) {
            return room.clone();
        }
        let room = Arc::new(Room::new(cx.clone(), b, moderation, home));
        rooms.insert(b.id.clone(), room.clone());
        tokio::spawn(ticker(self.clone(), room.clone()));
        if let Some(frames) = frames {
            tokio::spawn(cluster::relay_frames(room.clone(), frames));
        }
        room
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.rooms.lock().expect("rooms lock").get(id).cloned()
    }

    fn remove(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.id);
        }
    }
}

pub struct Room {
    cx: Arc<Context>,
    pub id: String,
    pub owner_id: Option<i64>,
    /// The node that holds this room's state, when it is not this one: this room is then
    /// a mirror of it.
    pub home: Option<String>,
    /// At a home: the members of each mirror, as last reported.
    mirrors: Mutex<HashMap<String, (usize, std::time::Instant)>>,
    /// Told when the room closes.
    closed: tokio::sync::Notify,
    /// The broadcast went live on another node after this room opened here as its home:
    /// its members are asked to join again (and find a mirror of the new home).
    pub moved: std::sync::atomic::AtomicBool,
    tx: broadcast::Sender<Frame>,
    /// Messages of the current flush interval, serialized, in order.
    outbox: Mutex<Vec<String>>,
    state: Mutex<State>,
    /// The latest comments as `recent` frames, built once for every newcomer until the
    /// next comment or deletion.
    recent_frames: Mutex<Option<Arc<[Frame]>>>,
    /// Held while a comment is stored and queued, so that ids and delivery share one order
    /// without holding up hearts, votes and joins behind the disk.
    comment_order: Mutex<()>,
    /// Bumped at every block; each connection checks after each frame it is sent (at least
    /// every presence report) whether it is the one blocked.
    pub blocked_version: AtomicU64,
    /// Bumped when who may watch changes; each connection then checks the gate after its
    /// next frames (see [`Room::access_changed`]).
    pub access_version: AtomicU64,
    hearts: Mutex<Hearts>,
    connected: AtomicUsize,
    joined: AtomicU64,
    next_connection: AtomicU64,
}

#[derive(Default)]
struct State {
    muted: HashSet<i64>,
    blocked: HashSet<i64>,
    poll: Option<OpenPoll>,
    /// Poll totals changed since they were last sent.
    poll_changed: bool,
    /// The poll changed phase outside the ticker (a vote closed it): send it.
    poll_moved: bool,
    recent: VecDeque<Comment>,
    /// Each connection's last reported playback delay, in ms.
    delays: HashMap<u64, u64>,
    /// A poll is being stored (see `Room::open_poll`): no other may open meanwhile.
    opening_poll: bool,
    /// The delays as they were when the current poll closed: a late vote is judged by
    /// what its sender reported before the close, not after.
    closing_delays: HashMap<u64, u64>,
    /// Per-user (or, anonymous, per-connection) limits.
    comment_limits: HashMap<Who, limits::Bucket>,
    heart_limits: HashMap<Who, limits::Bucket>,
}

impl State {
    /// Moves the poll on to its phase at `now` (the stream being at `edge`); at the close,
    /// keeps the delays reported so far, by which late votes are judged. Whether it moved.
    fn advance_poll(&mut self, now: i64, edge: Option<i64>) -> bool {
        let Some(poll) = self.poll.as_mut() else { return false };
        let moved = poll.tick(now, edge);
        if moved && poll.phase == Phase::Closing {
            self.closing_delays = self.delays.clone();
        }
        moved
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    User(i64),
    Connection(u64),
}

#[derive(Default)]
struct Hearts {
    senders: Vec<String>,
    media_from: Option<i64>,
    media_to: Option<i64>,
    /// Counts by (server second, media second), written to the store once a second.
    per_second: HeartCounts,
}

/// One connection's identity in a room.
pub struct Member {
    pub connection: u64,
    pub user: Option<User>,
}

impl Member {
    fn who(&self) -> Who {
        self.user
            .as_ref()
            .map_or(Who::Connection(self.connection), |u| Who::User(u.id))
    }
}

/// The audience's delay behind live, from the players' reports.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Audience {
    /// Connected to the room now.
    pub connected: usize,
    /// Watching now, over every delivery path.
    pub viewers: usize,
    /// Connections that reported a delay.
    pub reporting: usize,
    pub delay_p50_ms: Option<u64>,
    pub delay_p90_ms: Option<u64>,
    pub delay_p99_ms: Option<u64>,
    pub delay_max_ms: Option<u64>,
    /// How many reports fall under each bound: `[upper bound ms, count]`, the last bound open.
    pub histogram: Vec<(u64, usize)>,
}

impl Room {
    /// A room for `b`, with its stored mutes and blocks (`(user, blocked)`); a mirror of
    /// the room at node `home`, if given.
    fn new(cx: Arc<Context>, b: &Broadcast, moderation: Vec<(i64, bool)>, home: Option<String>) -> Room {
        let mut state = State::default();
        for (user, blocked) in moderation {
            state.muted.insert(user);
            if blocked {
                state.blocked.insert(user);
            }
        }
        Room {
            cx,
            id: b.id.clone(),
            owner_id: b.owner_id,
            home,
            mirrors: Mutex::default(),
            closed: tokio::sync::Notify::new(),
            moved: std::sync::atomic::AtomicBool::new(false),
            tx: broadcast::channel(RING).0,
            outbox: Mutex::default(),
            state: Mutex::new(state),
            recent_frames: Mutex::default(),
            comment_order: Mutex::default(),
            blocked_version: AtomicU64::new(0),
            access_version: AtomicU64::new(0),
            hearts: Mutex::default(),
            connected: AtomicUsize::new(0),
            joined: AtomicU64::new(0),
            next_connection: AtomicU64::new(1),
        }
    }

    /// Queues a message for everyone; it leaves with the next flush.
    fn send(&self, message: &ServerMessage) {
        self.outbox.lock().expect("outbox lock").push(message.to_json());
    }

    /// Sends the interval's messages as one frame, and returns it.
    fn flush(&self) -> Option<Frame> {
        let messages = std::mem::take(&mut *self.outbox.lock().expect("outbox lock"));
        let text: Frame = match messages.len() {
            0 => return None,
            1 => messages.into_iter().next().expect("one message"),
            _ => format!("[{}]", messages.join(",")),
        }
        .into();
        let _ = self.tx.send(text.clone());
        Some(text)
    }

    /// A mirror's members get a frame from the home.
    fn relay(&self, text: String) {
        let _ = self.tx.send(text.into());
    }

    /// A mirror learns of a mute or block at the home.
    fn apply_mute(&self, user: i64, blocked: bool) {
        let mut state = self.state.lock().expect("room lock");
        state.muted.insert(user);
        if blocked {
            state.blocked.insert(user);
            drop(state);
            self.blocked_version.fetch_add(1, Ordering::Release);
        }
    }

    /// A home adds a mirror's hearts to the current batch.
    fn merge_hearts(
        &self,
        per_second: &[(i64, Option<i64>, u64)],
        senders: Vec<String>,
        media_from: Option<i64>,
        media_to: Option<i64>,
    ) {
        let mut hearts = self.hearts.lock().expect("hearts lock");
        for name in senders {
            if hearts.senders.len() < NAMED_SENDERS && !hearts.senders.contains(&name) {
                hearts.senders.push(name);
            }
        }
        if let Some(m) = media_from {
            hearts.media_from = Some(hearts.media_from.map_or(m, |f| f.min(m)));
        }
        if let Some(m) = media_to {
            hearts.media_to = Some(hearts.media_to.map_or(m, |t| t.max(m)));
        }
        // A mirror is trusted as a node is, but a count it got wrong hurts no total.
        for &(second, media, n) in per_second {
            let count = hearts.per_second.entry((second, media)).or_default();
            *count = count.saturating_add(n.min(1 << 32));
        }
    }

    /// A home notes how many members a mirror has.
    fn mirror_connected(&self, node: &str, connected: usize) {
        let mut mirrors = self.mirrors.lock().expect("mirrors lock");
        mirrors.insert(node.to_owned(), (connected.min(1 << 32), std::time::Instant::now()));
    }

    /// A mirror sends the hearts since its last flush to the home (and, with `presence`,
    /// how many members it has, even without hearts).
    async fn hearts_to_home(&self, home: &str, presence: bool) {
        let batch = std::mem::take(&mut *self.hearts.lock().expect("hearts lock"));
        if batch.per_second.is_empty() && !presence {
            return;
        }
        let request = cluster::ToHome {
            broadcast: self.id.clone(),
            node: self.cx.node.clone(),
            what: cluster::What::Hearts {
                per_second: batch.per_second.into_iter().map(|((s, m), n)| (s, m, n)).collect(),
                senders: batch.senders,
                media_from: batch.media_from,
                media_to: batch.media_to,
                connected: self.connected.load(Ordering::Relaxed),
            },
        };
        self.cx.bus.publish(&cluster::home_subject(home), &request).await;
    }

    /// Whether the broadcast is live on another node now.
    async fn went_live_elsewhere(&self) -> bool {
        let id = self.id.clone();
        match self.cx.store.call(move |db| db.get(&id)).await {
            Ok(Some(b)) => b.state == crate::store::State::Live && b.node.is_some_and(|n| n != self.cx.node),
            _ => false,
        }
    }

    /// Members here and, at a home, on the mirrors that reported lately.
    fn connected_everywhere(&self) -> usize {
        let mut mirrors = self.mirrors.lock().expect("mirrors lock");
        mirrors.retain(|_, (_, at)| at.elapsed() < 2 * PRESENCE_INTERVAL + Duration::from_secs(1));
        self.connected.load(Ordering::Relaxed) + mirrors.values().map(|(n, _)| n).sum::<usize>()
    }

    pub fn is_blocked(&self, user: i64) -> bool {
        self.state.lock().expect("room lock").blocked.contains(&user)
    }

    /// A new connection: its identity, its view of the ring, and what to send it first (the
    /// welcome, then the latest comments; from the home, for a mirror).
    pub async fn join(&self, user: Option<User>) -> (Member, broadcast::Receiver<Frame>, Vec<Frame>) {
        let rx = self.tx.subscribe();
        self.connected.fetch_add(1, Ordering::Relaxed);
        self.joined.fetch_add(1, Ordering::Relaxed);
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let first = match &self.home {
            None => self.welcome(user.as_ref()),
            Some(home) => {
                let request = cluster::ToHome {
                    broadcast: self.id.clone(),
                    node: self.cx.node.clone(),
                    what: cluster::What::Join {
                        user: user.as_ref().map(cluster::RemoteUser::from),
                    },
                };
                match self
                    .cx
                    .bus
                    .request::<_, cluster::Joined>(&cluster::home_subject(home), &request)
                    .await
                {
                    Ok(joined) if !joined.frames.is_empty() => {
                        let mut state = self.state.lock().expect("room lock");
                        state.muted.extend(joined.muted);
                        state.blocked.extend(joined.blocked);
                        joined.frames.into_iter().map(Frame::from).collect()
                    }
                    // The home is too busy to say: a welcome without history.
                    Ok(_) => self.welcome(user.as_ref()),
                    Err(e) => {
                        // The home will be heard from; meanwhile a welcome without history.
                        tracing::warn!(broadcast = %self.id, "the room's home did not answer a join: {e:#}");
                        self.welcome(user.as_ref())
                    }
                }
            }
        };
        (Member { connection, user }, rx, first)
    }

    /// A home's answer to a mirror's newcomer.
    fn joined(&self, user: Option<&User>) -> cluster::Joined {
        let frames = self.welcome(user).iter().map(|f| f.as_str().to_owned()).collect();
        let state = self.state.lock().expect("room lock");
        cluster::Joined {
            frames,
            muted: state.muted.iter().copied().collect(),
            blocked: state.blocked.iter().copied().collect(),
        }
    }

    /// What a newcomer is sent first: the welcome, then the latest comments.
    fn welcome(&self, user: Option<&User>) -> Vec<Frame> {
        let role = match user {
            Some(u) if Some(u.id) == self.owner_id => "broadcaster",
            Some(_) => "viewer",
            None => "anonymous",
        };
        let state = self.state.lock().expect("room lock");
        let welcome = ServerMessage::Welcome {
            v: protocol::VERSION,
            broadcast: self.id.clone(),
            role,
            user: user.map(|u| u.username.clone()),
            viewers: self.viewers(),
            heart_interval_ms: HEART_INTERVAL.as_millis() as u64,
            poll: state.poll.as_ref().map(OpenPoll::view),
            recent: state.recent.len(),
        };
        let recent = self.recent_frames(&state);
        drop(state);
        let mut first = vec![Frame::from(welcome.to_json())];
        first.extend(recent.iter().cloned());
        first
    }

    /// The latest comments as `recent` frames of about [`RECENT_FRAME_BYTES`] each.
    fn recent_frames(&self, state: &State) -> Arc<[Frame]> {
        let mut cached = self.recent_frames.lock().expect("recent frames lock");
        if let Some(frames) = &*cached {
            return frames.clone();
        }
        let mut frames = Vec::new();
        let mut chunk: Vec<Comment> = Vec::new();
        let mut bytes = 0;
        for c in &state.recent {
            let size = c.text.len() + c.user.len() + 80;
            if !chunk.is_empty() && bytes + size > RECENT_FRAME_BYTES {
                let comments = std::mem::take(&mut chunk);
                frames.push(Frame::from(ServerMessage::Recent { comments }.to_json()));
                bytes = 0;
            }
            chunk.push(c.clone());
            bytes += size;
        }
        if !chunk.is_empty() {
            frames.push(Frame::from(ServerMessage::Recent { comments: chunk }.to_json()));
        }
        let frames: Arc<[Frame]> = frames.into();
        *cached = Some(frames.clone());
        frames
    }

    pub fn leave(&self, member: &Member) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
        let mut state = self.state.lock().expect("room lock");
        state.delays.remove(&member.connection);
        if member.user.is_none() {
            state.comment_limits.remove(&Who::Connection(member.connection));
            state.heart_limits.remove(&Who::Connection(member.connection));
        }
    }

    /// The current poll, for a client that lagged.
    pub fn poll(&self) -> Option<protocol::Poll> {
        self.state.lock().expect("room lock").poll.as_ref().map(OpenPoll::view)
    }

    /// Viewers over every delivery path: the stream's players, or the room's members if
    /// more (a member may watch through a CDN the origin does not see).
    /// Who may watch changed: every connection checks itself against the gate after the
    /// presence report sent now, which reaches everyone within a flush.
    pub fn access_changed(&self) {
        self.access_version.fetch_add(1, Ordering::Release);
        self.send(&ServerMessage::Presence {
            viewers: self.viewers(),
            connected: self.connected_everywhere(),
            joined: self.joined.load(Ordering::Relaxed),
            live: self.cx.hub.get(&self.id).is_some(),
        });
    }

    fn viewers(&self) -> usize {
        self.cx.players.of(&self.id).max(self.connected_everywhere())
    }

    /// Handles one message from a member; returns what to answer that member alone.
    pub async fn handle(&self, member: &Member, message: ClientMessage) -> Option<ServerMessage> {
        match message {
            ClientMessage::Heart { media_ts } => self.heart(member, self.media_time(member, media_ts)),
            ClientMessage::Delay { ms, buffer_ms } => {
                let ms = ms.min(3_600_000);
                self.state
                    .lock()
                    .expect("room lock")
                    .delays
                    .insert(member.connection, ms);
                if let Some(buffer) = buffer_ms {
                    self.cx.metrics.delays.of(&self.id).observe(
                        crate::delay::Stage::PlayerBuffer,
                        std::time::Duration::from_millis(buffer.min(3_600_000)),
                    );
                }
                None
            }
            message => match &self.home {
                None => self.act(member, message, None).await,
                Some(home) => self.act_at_home(home, member, message).await,
            },
        }
    }

    /// A mirror passes a member's comment, vote or command to the home, and its answer back.
    async fn act_at_home(&self, home: &str, member: &Member, message: ClientMessage) -> Option<ServerMessage> {
        let Some(user) = &member.user else {
            return Some(ServerMessage::error("login_required", "log in to comment or vote"));
        };
        // Stamped here, where the member's delay is known, as the home would.
        let message = match message {
            ClientMessage::Comment { text, media_ts } => {
                if let Some(refused) = self.comment_allowed(member, &text) {
                    return Some(refused);
                }
                ClientMessage::Comment {
                    text,
                    media_ts: self.media_time(member, media_ts),
                }
            }
            ClientMessage::Vote { poll, option, media_ts } => ClientMessage::Vote {
                poll,
                option,
                media_ts: self.media_time(member, media_ts),
            },
            other => other,
        };
        let delay_ms = self.reported_delay(member);
        let request = cluster::ToHome {
            broadcast: self.id.clone(),
            node: self.cx.node.clone(),
            what: cluster::What::Act {
                user: cluster::RemoteUser::from(user),
                message,
                delay_ms,
            },
        };
        match self
            .cx
            .bus
            .request::<_, cluster::Acted>(&cluster::home_subject(home), &request)
            .await
        {
            Ok(acted) => acted.answer.map(ServerMessage::Relayed),
            Err(e) => {
                tracing::warn!(broadcast = %self.id, "the room's home did not answer: {e:#}");
                Some(ServerMessage::error(
                    "unavailable",
                    "the room is not reachable now; try again",
                ))
            }
        }
    }

    /// A comment, vote or command, at the room's home (`remote_delay`: the delay a mirror's
    /// member last reported, for a vote from a mirror).
    async fn act(
        &self,
        member: &Member,
        message: ClientMessage,
        remote_delay: Option<Option<u64>>,
    ) -> Option<ServerMessage> {
        let is_owner = member.user.as_ref().is_some_and(|u| Some(u.id) == self.owner_id);
        let owner_only = || ServerMessage::error("broadcaster_only", "only the broadcaster can do this");
        match message {
            ClientMessage::Heart { .. } | ClientMessage::Delay { .. } => None,
            ClientMessage::Comment { text, media_ts } => {
                self.comment(member, &text, self.media_time(member, media_ts)).await
            }
            ClientMessage::Vote { poll, option, media_ts } => {
                self.vote(member, poll, option, self.media_time(member, media_ts), remote_delay)
                    .await
            }
            ClientMessage::PollOpen { .. }
            | ClientMessage::DeleteComment { .. }
            | ClientMessage::Mute { .. }
            | ClientMessage::Block { .. }
                if !is_owner =>
            {
                Some(owner_only())
            }
            ClientMessage::PollOpen {
                question,
                options,
                seconds,
            } => self.open_poll(question, options, seconds).await,
            ClientMessage::DeleteComment { comment } => self.delete_comment(comment).await,
            ClientMessage::Mute { user } => self.moderate(&user, false).await,
            ClientMessage::Block { user } => self.moderate(&user, true).await,
        }
    }

    /// The stream time a reaction answers: the one its client sent or, from a client that
    /// sends none, the live edge less the delay that client last reported (so that the
    /// reaction is still placed on the moment it answers, as well as the server can tell).
    /// None when the broadcast is not live.
    fn media_time(&self, member: &Member, sent: Option<i64>) -> Option<i64> {
        if sent.is_some() {
            return sent;
        }
        let edge = self.cx.hub.get(&self.id)?.edge_ms() as i64;
        let delay = self.reported_delay(member);
        Some(edge.saturating_sub(delay.unwrap_or(0) as i64).max(0))
    }

    /// The playback delay `member` last reported, in ms.
    fn reported_delay(&self, member: &Member) -> Option<u64> {
        self.state
            .lock()
            .expect("room lock")
            .delays
            .get(&member.connection)
            .copied()
    }

    fn heart(&self, member: &Member, media_ts: Option<i64>) -> Option<ServerMessage> {
        let now = std::time::Instant::now();
        {
            let mut state = self.state.lock().expect("room lock");
            if let Some(u) = &member.user
                && state.muted.contains(&u.id)
            {
                return Some(muted());
            }
            let bucket = state
                .heart_limits
                .entry(member.who())
                .or_insert_with(|| limits::Bucket::new(limits::HEARTS));
            if !bucket.take(now) {
                return Some(ServerMessage::error(
                    "rate_limited",
                    "at most 10 hearts a second; the extra ones were not counted",
                ));
            }
        }
        let mut hearts = self.hearts.lock().expect("hearts lock");
        if let Some(u) = &member.user
            && hearts.senders.len() < NAMED_SENDERS
            && !hearts.senders.contains(&u.username)
        {
            hearts.senders.push(u.username.clone());
        }
        if let Some(m) = media_ts {
            hearts.media_from = Some(hearts.media_from.map_or(m, |f| f.min(m)));
            hearts.media_to = Some(hearts.media_to.map_or(m, |t| t.max(m)));
        }
        let key = (now_ms().div_euclid(1000), media_ts.map(|m| m.div_euclid(1000)));
        *hearts.per_second.entry(key).or_default() += 1;
        None
    }

    /// Why `member` may not send comment `text` now (not logged in, an empty or long
    /// comment, muted, too many), or `None`; takes one from their comment allowance.
    fn comment_allowed(&self, member: &Member, text: &str) -> Option<ServerMessage> {
        let Some(user) = &member.user else {
            return Some(ServerMessage::error("login_required", "log in to comment"));
        };
        let text = protocol::clean_text(text);
        if text.is_empty() || text.chars().count() > protocol::MAX_COMMENT_CHARS {
            return Some(ServerMessage::error(
                "bad_comment",
                format!("a comment is 1 to {} characters", protocol::MAX_COMMENT_CHARS),
            ));
        }
        let mut state = self.state.lock().expect("room lock");
        if state.muted.contains(&user.id) {
            return Some(muted());
        }
        let bucket = state
            .comment_limits
            .entry(member.who())
            .or_insert_with(|| limits::Bucket::new(limits::COMMENTS));
        if !bucket.take(std::time::Instant::now()) {
            return Some(ServerMessage::error(
                "rate_limited",
                "too many comments: at most 5 at once, then one every 2 seconds",
            ));
        }
        None
    }

    async fn comment(&self, member: &Member, text: &str, media_ts: Option<i64>) -> Option<ServerMessage> {
        if let Some(refused) = self.comment_allowed(member, text) {
            return Some(refused);
        }
        let user = member.user.as_ref()?;
        let text = protocol::clean_text(text);
        // Numbered and queued under one lock, so every client sees comments in id order;
        // stored after it, so that no lock of the room waits on the disk.
        let server_ts = now_ms();
        let comment = {
            let _order = self.comment_order.lock().expect("comment order lock");
            let comment = Comment {
                id: self.cx.store.next_comment_id(),
                user: user.username.clone(),
                text,
                media_ts,
                server_ts,
            };
            let mut state = self.state.lock().expect("room lock");
            if state.recent.len() == RECENT_COMMENTS {
                state.recent.pop_front();
            }
            state.recent.push_back(comment.clone());
            *self.recent_frames.lock().expect("recent frames lock") = None;
            drop(state);
            self.send(&ServerMessage::Comment(comment.clone()));
            comment
        };
        let (room, user_id, stored) = (self.id.clone(), user.id, comment.clone());
        let added = self
            .cx
            .store
            .call(move |db| db.add_comment(stored.id, &room, user_id, &stored.text, media_ts, server_ts))
            .await;
        if let Err(e) = added {
            // Queued but not kept: take it back from everyone, as a deletion is.
            tracing::error!(broadcast = %self.id, "cannot store a comment: {e:#}");
            let mut state = self.state.lock().expect("room lock");
            state.recent.retain(|c| c.id != comment.id);
            *self.recent_frames.lock().expect("recent frames lock") = None;
            drop(state);
            self.send(&ServerMessage::CommentDeleted { comment: comment.id });
            return Some(ServerMessage::error("internal", "the comment could not be stored"));
        }
        None
    }

    async fn vote(
        &self,
        member: &Member,
        poll: i64,
        option: usize,
        media_ts: Option<i64>,
        remote_delay: Option<Option<u64>>,
    ) -> Option<ServerMessage> {
        let Some(user) = &member.user else {
            return Some(ServerMessage::error("login_required", "log in to vote"));
        };
        let now = now_ms();
        // Counted under the room's lock; stored after it.
        let late = {
            let mut guard = self.state.lock().expect("room lock");
            if guard.muted.contains(&user.id) {
                return Some(muted());
            }
            let edge = self.cx.hub.get(&self.id).map(|s| s.edge_ms() as i64);
            let state = &mut *guard;
            let Some(phase) = state.poll.as_ref().filter(|p| p.id == poll).map(|p| p.phase) else {
                return Some(ServerMessage::error("no_such_poll", "that poll is not open here"));
            };
            // A vote just after the close closes the poll at the live edge itself rather than
            // wait for the next tick (the final close, and storing the result, is the tick's).
            if phase == Phase::Open && state.advance_poll(now, edge) {
                state.poll_moved = true;
            }
            let p = state.poll.as_mut().expect("the poll found above");
            let delay = if p.phase == Phase::Open {
                None
            } else {
                // A mirror's member's delay is the one they last reported there.
                remote_delay.unwrap_or_else(|| state.closing_delays.get(&member.connection).copied())
            };
            match p.vote(user.id, option, media_ts, delay, now) {
                Vote::Counted { late } => {
                    state.poll_changed = true;
                    late
                }
                Vote::AlreadyVoted => return Some(ServerMessage::error("already_voted", "one vote per poll")),
                Vote::NoSuchOption => {
                    return Some(ServerMessage::error("no_such_option", "that option is not in the poll"));
                }
                Vote::Closed => return Some(ServerMessage::error("poll_closed", "the poll closed before your vote")),
            }
        };
        let user_id = user.id;
        let stored = self
            .cx
            .store
            .call(move |db| db.add_vote(poll, user_id, option, media_ts, now, late))
            .await;
        if let Err(e) = stored {
            tracing::error!(broadcast = %self.id, "cannot store a vote: {e:#}");
        }
        None
    }

    async fn open_poll(&self, question: String, options: Vec<String>, seconds: u32) -> Option<ServerMessage> {
        let question = protocol::clean_text(&question);
        let options: Vec<String> = options.iter().map(|o| protocol::clean_text(o)).collect();
        let too_long = |s: &String| s.is_empty() || s.chars().count() > protocol::MAX_POLL_TEXT_CHARS;
        if !(2..=4).contains(&options.len())
            || too_long(&question)
            || options.iter().any(too_long)
            || !(1..=protocol::MAX_POLL_SECONDS).contains(&seconds)
        {
            return Some(ServerMessage::error(
                "bad_poll",
                format!(
                    "a poll has a question, 2 to 4 options (each 1 to {} characters) and lasts 1 to {} s",
                    protocol::MAX_POLL_TEXT_CHARS,
                    protocol::MAX_POLL_SECONDS
                ),
            ));
        }
        {
            let mut state = self.state.lock().expect("room lock");
            if state.opening_poll || state.poll.as_ref().is_some_and(|p| p.phase != Phase::Closed) {
                return Some(ServerMessage::error("poll_open", "a poll is already open"));
            }
            // Held while the poll is stored, outside the lock.
            state.opening_poll = true;
        }
        let now = now_ms();
        let stored = StoredPoll {
            id: 0,
            question: question.clone(),
            options: options.clone(),
            opened_at: now,
            closes_at: now + i64::from(seconds) * 1000,
            media_open_ts: self.cx.hub.get(&self.id).map(|s| s.edge_ms() as i64),
            media_close_ts: None,
            result: None,
        };
        let (room, to_store) = (self.id.clone(), stored.clone());
        let opened = self.cx.store.call(move |db| db.open_poll(&room, &to_store)).await;
        let mut state = self.state.lock().expect("room lock");
        state.opening_poll = false;
        let id = match opened {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(broadcast = %self.id, "cannot store a poll: {e:#}");
                return Some(ServerMessage::error("internal", "the poll could not be stored"));
            }
        };
        let poll = OpenPoll::new(id, question, options, stored.closes_at);
        self.send(&ServerMessage::Poll(poll.view()));
        state.poll = Some(poll);
        None
    }

    async fn delete_comment(&self, comment: i64) -> Option<ServerMessage> {
        let room = self.id.clone();
        match self.cx.store.call(move |db| db.delete_comment(&room, comment)).await {
            Ok(true) => {
                let mut state = self.state.lock().expect("room lock");
                state.recent.retain(|c| c.id != comment);
                *self.recent_frames.lock().expect("recent frames lock") = None;
                self.send(&ServerMessage::CommentDeleted { comment });
                None
            }
            Ok(false) => Some(ServerMessage::error("no_such_comment", "no such comment here")),
            Err(e) => {
                tracing::error!(broadcast = %self.id, "cannot delete a comment: {e:#}");
                Some(ServerMessage::error("internal", "the comment could not be deleted"))
            }
        }
    }

    async fn moderate(&self, name: &str, block: bool) -> Option<ServerMessage> {
        let user = match self.cx.store.user_by_name(name).await {
            Ok(Some(u)) => u,
            Ok(None) => return Some(ServerMessage::error("no_such_user", "no such user")),
            Err(e) => {
                tracing::error!("cannot look up a user: {e:#}");
                return Some(ServerMessage::error("internal", "internal error"));
            }
        };
        if Some(user.id) == self.owner_id {
            return Some(ServerMessage::error("bad_request", "you cannot mute or block yourself"));
        }
        let (room, user_id) = (self.id.clone(), user.id);
        if let Err(e) = self.cx.store.call(move |db| db.moderate(&room, user_id, block)).await {
            tracing::error!(broadcast = %self.id, "cannot store a mute or block: {e:#}");
            return Some(ServerMessage::error(
                "internal",
                "the mute or block could not be stored",
            ));
        }
        self.apply_mute(user.id, block);
        let change = cluster::FromHome::Muted {
            user: user.id,
            blocked: block,
        };
        self.cx.bus.publish(&cluster::frames_subject(&self.id), &change).await;
        None
    }

    /// Forgets the limits of whoever has not used them lately (a full bucket is the same as
    /// none), so that the maps hold only the active.
    fn prune_limits(&self) {
        let now = std::time::Instant::now();
        let mut state = self.state.lock().expect("room lock");
        state.comment_limits.retain(|_, b| !b.is_full(now));
        state.heart_limits.retain(|_, b| !b.is_full(now));
    }

    /// The audience's delay distribution, from the players' reports.
    pub fn audience(&self) -> Audience {
        let mut delays: Vec<u64> = self.state.lock().expect("room lock").delays.values().copied().collect();
        delays.sort_unstable();
        let at = |q: f64| (!delays.is_empty()).then(|| delays[((delays.len() - 1) as f64 * q).round() as usize]);
        let bounds = [500, 1_000, 2_000, 3_000, 5_000, 10_000, 30_000, u64::MAX];
        let mut histogram = Vec::new();
        let mut from = 0;
        for bound in bounds {
            let n = delays[from..].iter().take_while(|d| **d < bound).count();
            histogram.push((bound, n));
            from += n;
        }
        Audience {
            connected: self.connected.load(Ordering::Relaxed),
            viewers: self.viewers(),
            reporting: delays.len(),
            delay_p50_ms: at(0.5),
            delay_p90_ms: at(0.9),
            delay_p99_ms: at(0.99),
            delay_max_ms: delays.last().copied(),
            histogram,
        }
    }

    /// A hearts batch: poll totals and phase, and the hearts since the last batch; returns
    /// heart counts to store, and a poll that closed, to store.
    fn tick(&self) -> (HeartCounts, Option<ClosedPoll>) {
        let batch = std::mem::take(&mut *self.hearts.lock().expect("hearts lock"));
        let count: u64 = batch.per_second.values().sum();
        if count > 0 {
            self.send(&ServerMessage::Hearts {
                count,
                senders: batch.senders,
                media_ts_from: batch.media_from,
                media_ts_to: batch.media_to,
                server_ts: now_ms(),
            });
        }
        let mut state = self.state.lock().expect("room lock");
        let edge = self.cx.hub.get(&self.id).map(|s| s.edge_ms() as i64);
        let mut closed = None;
        let state = &mut *state;
        let moved = state.advance_poll(now_ms(), edge);
        if let Some(poll) = state.poll.as_ref() {
            if moved && poll.phase == Phase::Closed {
                closed = Some((poll.id, poll.media_close_ts, poll.totals.clone()));
            }
            // While closing, the totals shown stay those at the close.
            let changed = state.poll_changed && poll.phase == Phase::Open;
            if moved || changed || std::mem::take(&mut state.poll_moved) {
                state.poll_changed = false;
                self.send(&ServerMessage::Poll(poll.view()));
            }
        }
        (batch.per_second, closed)
    }
}

/// Hearts per (server second, stream second), to store.
type HeartCounts = HashMap<(i64, Option<i64>), u64>;

/// A poll that closed, to store: its id, the stream time of the close, the totals.
type ClosedPoll = (i64, Option<i64>, Vec<u64>);

fn muted() -> ServerMessage {
    ServerMessage::error("muted", "the broadcaster has muted you in this broadcast")
}

/// Runs a room: a flush every [`FLUSH_INTERVAL`]; at a home, heart batches and polls every
/// [`HEART_INTERVAL`], presence every [`PRESENCE_INTERVAL`] and heart counts to the store
/// every second; at a mirror, its hearts to the home every flush. Ends when the room has
/// been empty for [`IDLE_ROOM`] and no poll is still closing.
async fn ticker(rooms: Arc<Rooms>, room: Arc<Room>) {
    let cx = room.cx.clone();
    let per = |d: Duration| (d.as_millis() / FLUSH_INTERVAL.as_millis()).max(1) as u64;
    let mut interval = tokio::time::interval(FLUSH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counts = HeartCounts::new();
    let mut ticks = 0u64;
    let mut empty_since: Option<tokio::time::Instant> = None;
    // At a home: frames sent to the mirrors, numbered so that they notice one lost, under
    // a number of this room's own (a room opened again counts from 1 again).
    let mut frames_sent = 0u64;
    let epoch = {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random source works");
        u64::from_le_bytes(bytes)
    };
    loop {
        interval.tick().await;
        ticks += 1;
        if let Some(home) = &room.home {
            // A mirror: its hearts, and its members' count now and then, go to the home.
            // Every flush, not every heart batch: hearts sent at the batch interval waited
            // up to a whole interval more at the home, past the batch's delivery target.
            room.hearts_to_home(home, ticks.is_multiple_of(per(MIRROR_REPORT)))
                .await;
            if ticks.is_multiple_of(per(PRESENCE_INTERVAL)) {
                room.prune_limits();
            }
        } else if ticks.is_multiple_of(per(HEART_INTERVAL)) {
            let (hearts, closed) = room.tick();
            for (key, n) in hearts {
                *counts.entry(key).or_default() += n;
            }
            if let Some((id, media_close, totals)) = closed {
                let stored = cx.store.call(move |db| db.close_poll(id, media_close, &totals)).await;
                if let Err(e) = stored {
                    tracing::error!(broadcast = %room.id, "cannot store a poll's result: {e:#}");
                }
            }
        }
        if room.home.is_none() && ticks.is_multiple_of(per(Duration::from_secs(1))) && !counts.is_empty() {
            let rows: Vec<_> = counts.drain().map(|((s, m), n)| (s, m, n)).collect();
            let id = room.id.clone();
            if let Err(e) = cx.store.call(move |db| db.add_hearts(&id, &rows)).await {
                tracing::error!(broadcast = %room.id, "cannot store hearts: {e:#}");
            }
        }
        if room.home.is_none()
            && cx.bus.clustered()
            && ticks.is_multiple_of(per(PRESENCE_INTERVAL))
            && cx.hub.get(&room.id).is_none()
            && !room.moved.load(Ordering::Acquire)
            && room.went_live_elsewhere().await
        {
            // Opened before the broadcast went live, on a node it is not published on: the
            // home is elsewhere now. Members join again and find a mirror of it.
            rooms.remove(&room);
            room.moved.store(true, Ordering::Release);
            room.access_changed();
        }
        if room.home.is_none() && ticks.is_multiple_of(per(PRESENCE_INTERVAL)) {
            room.prune_limits();
            room.send(&ServerMessage::Presence {
                viewers: room.viewers(),
                connected: room.connected_everywhere(),
                joined: room.joined.load(Ordering::Relaxed),
                live: cx.hub.get(&room.id).is_some(),
            });
        }
        // A room that moved is no home: the mirrors follow the node the broadcast is live on.
        if let Some(frame) = room.flush()
            && room.home.is_none()
            && cx.bus.clustered()
            && !room.moved.load(Ordering::Acquire)
        {
            frames_sent += 1;
            let frame = cluster::FromHome::Frame {
                node: cx.node.clone(),
                epoch,
                seq: frames_sent,
                text: frame.as_str().to_owned(),
            };
            cx.bus.publish(&cluster::frames_subject(&room.id), &frame).await;
        }
        // A home stays open while a mirror has members.
        let busy = room.connected_everywhere() > 0
            || room
                .state
                .lock()
                .expect("room lock")
                .poll
                .as_ref()
                .is_some_and(|p| p.phase != Phase::Closed);
        if busy {
            empty_since = None;
        } else if empty_since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= IDLE_ROOM {
            rooms.remove(&room);
            // Whoever joined between the check and the removal is in the old room: keep
            // serving them until they leave.
            if room.connected.load(Ordering::Relaxed) == 0 {
                break;
            }
        }
    }
    room.closed.notify_waiters();
    if !counts.is_empty() {
        let rows: Vec<_> = counts.drain().map(|((s, m), n)| (s, m, n)).collect();
        let id = room.id.clone();
        let _ = cx.store.call(move |db| db.add_hearts(&id, &rows)).await;
    }
}
