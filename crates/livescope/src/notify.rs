//! Telling people a broadcast started: every follower (for a private broadcast, every
//! allowed viewer) gets a stored notification and, if connected to `/api/me/events`, an
//! event at once. Fan-out runs in its own task, in batches, off the media path: a
//! broadcaster with 100,000 followers starts streaming at once and the batches follow.
//! In a cluster, each stored batch is also sent over the bus, and every node tells those
//! of the batch connected to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::bus::Bus;
use crate::store::{Broadcast, Store, now_ms};

/// Followers handled per database transaction.
pub const FANOUT_BATCH: usize = 2_000;
/// Events queued per connected stream; a client that lets more pile up misses live events
/// (they stay in its stored notifications).
const QUEUE: usize = 64;

/// One event for a notification stream: its SSE event name and JSON data.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: &'static str,
    pub data: Arc<str>,
}

/// The `broadcast_started` event's data.
/// A broadcast that started, as its notifications tell it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    broadcast_id: String,
    owner: Option<String>,
    title: String,
    private: bool,
    started_at: i64,
}

/// One batch of go-live notices, stored, for the other nodes to tell their connected users.
#[derive(Debug, Serialize, Deserialize)]
pub struct Notified {
    /// The users, and their notifications' ids, in the same order.
    pub users: Vec<i64>,
    pub ids: Vec<i64>,
    pub started: Started,
}

/// The event a connected user receives.
#[derive(Serialize)]
struct StartedEvent<'a> {
    notification_id: i64,
    #[serde(flatten)]
    started: &'a Started,
}

#[derive(Default)]
pub struct Notifier {
    streams: Mutex<HashMap<i64, Vec<mpsc::Sender<Event>>>>,
}

impl Notifier {
    /// A new stream of `user`'s events.
    pub fn subscribe(&self, user: i64) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut streams = self.streams.lock().expect("notifier lock");
        let list = streams.entry(user).or_default();
        list.retain(|s| !s.is_closed());
        list.push(tx);
        rx
    }

    /// Sends an event to whichever of `users` are connected; never waits.
    /// Tells those of `users` connected here (`ids` are their notifications).
    pub fn deliver_started(&self, users: &[i64], ids: &[i64], started: &Started) {
        self.deliver(users, |i| Event {
            name: "broadcast_started",
            data: serde_json::to_string(&StartedEvent {
                notification_id: ids[i],
                started,
            })
            .expect("plain data serializes")
            .into(),
        });
    }

    fn deliver(&self, users: &[i64], event: impl Fn(usize) -> Event) {
        let mut streams = self.streams.lock().expect("notifier lock");
        for (i, user) in users.iter().enumerate() {
            let Some(list) = streams.get_mut(user) else { continue };
            list.retain(|s| !s.is_closed());
            for s in list.iter() {
                let _ = s.try_send(event(i));
            }
            if list.is_empty() {
                streams.remove(user);
            }
        }
    }
}

/// What telling followers takes: the store (who follows, and the notices kept), the
/// connected streams here, and the bus to the other nodes' streams.
#[derive(Clone)]
pub struct Announcer {
    pub store: Store,
    pub notifier: Arc<Notifier>,
    pub bus: Bus,
}

/// Starts the fan-out of `broadcast_started` for a broadcast that just went live.
pub fn broadcast_started(app: Announcer, broadcast: Broadcast) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match fan_out(&app, &broadcast).await {
            Ok(n) => {
                tracing::info!(broadcast = %broadcast.id, notified = n, took = ?started.elapsed(), "followers notified")
            }
            Err(e) => tracing::error!(broadcast = %broadcast.id, "notifying followers failed: {e:#}"),
        }
    });
}

async fn fan_out(app: &Announcer, b: &Broadcast) -> anyhow::Result<usize> {
    let Some(owner) = b.owner_id else { return Ok(0) };
    let users = if b.private {
        // Only the people it is for hear of a private broadcast.
        let id = b.id.clone();
        app.store.call(move |db| db.allowed_viewers(&id)).await?
    } else {
        Vec::new()
    };
    if b.private {
        for batch in users.chunks(FANOUT_BATCH) {
            send(app, b, batch.to_vec()).await?;
        }
        return Ok(users.len());
    }
    let mut after = 0;
    let mut total = 0;
    loop {
        let batch = app
            .store
            .call(move |db| db.follower_ids(owner, after, FANOUT_BATCH))
            .await?;
        let Some(&last) = batch.last() else { break };
        total += batch.len();
        send(app, b, batch).await?;
        after = last;
    }
    Ok(total)
}

/// Stores one batch's notifications, then delivers them to those connected.
async fn send(app: &Announcer, b: &Broadcast, users: Vec<i64>) -> anyhow::Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let started = Started {
        broadcast_id: b.id.clone(),
        owner: b.owner.clone(),
        title: b.title.clone(),
        private: b.private,
        started_at: b.started_at.unwrap_or_else(now_ms),
    };
    let (id, stored) = (b.id.clone(), users.clone());
    let ids = app
        .store
        .call(move |db| db.notify_many(&stored, "broadcast_started", &id))
        .await?;
    app.notifier.deliver_started(&users, &ids, &started);
    app.bus.publish("notify", &Notified { users, ids, started }).await;
    Ok(())
}
