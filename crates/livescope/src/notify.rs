//! Telling people a broadcast started: every follower (for a private broadcast, every
//! allowed viewer) gets a stored notification and, if connected to `/api/me/events`, an
//! event at once. Fan-out runs in its own task, in batches, off the media path: a
//! broadcaster with 100,000 followers starts streaming at once and the batches follow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::app::App;
use crate::store::{Broadcast, now_ms};

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
#[derive(Debug, Serialize)]
struct Started<'a> {
    /// The stored notification's id (as in `/api/me/notifications`).
    notification_id: i64,
    broadcast_id: &'a str,
    owner: Option<&'a str>,
    title: &'a str,
    private: bool,
    started_at: i64,
}

/// The connected notification streams, by user id.
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

/// Starts the fan-out of `broadcast_started` for a broadcast that just went live.
pub fn broadcast_started(app: Arc<App>, broadcast: Broadcast) {
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

async fn fan_out(app: &App, b: &Broadcast) -> anyhow::Result<usize> {
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
async fn send(app: &App, b: &Broadcast, users: Vec<i64>) -> anyhow::Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let started_at = b.started_at.unwrap_or_else(now_ms);
    let (id, stored) = (b.id.clone(), users.clone());
    let ids = app
        .store
        .call(move |db| db.notify_many(&stored, "broadcast_started", &id))
        .await?;
    app.notifier.deliver(&users, |i| Event {
        name: "broadcast_started",
        data: serde_json::to_string(&Started {
            notification_id: ids[i],
            broadcast_id: &b.id,
            owner: b.owner.as_deref(),
            title: &b.title,
            private: b.private,
            started_at,
        })
        .expect("plain data serializes")
        .into(),
    });
    Ok(())
}
