//! Views, recorded the way the measurement study counted them: for every viewer
//! (registered or anonymous) of a broadcast, when they joined and left and how the media
//! reached them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

use super::sql::{Sql, args};
use super::{Db, now_ms};

/// How a viewer received the broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPath {
    Rtmp,
    Flv,
    Hls,
    /// WHEP.
    Webrtc,
}

impl DeliveryPath {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryPath::Rtmp => "rtmp",
            DeliveryPath::Flv => "flv",
            DeliveryPath::Hls => "hls",
            DeliveryPath::Webrtc => "webrtc",
        }
    }
}

/// What a broadcast's audience added up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Every join counts.
    pub views: u64,
    /// Distinct viewers: a registered user once, an anonymous viewer once per address.
    pub unique_viewers: u64,
    /// The most viewers watching at the same moment.
    pub peak_concurrent_viewers: u64,
}

/// Most view events waiting for the writer. A view event is about 100 bytes, so this is
/// a few MiB at worst; past it, events are dropped and counted rather than queued without
/// bound (an open view is closed at the next start from the broadcast's end anyway).
const VIEW_QUEUE: usize = 65_536;
/// Most events written in one transaction.
const VIEW_BATCH: usize = 4096;

enum ViewEvent {
    Join {
        id: i64,
        broadcast: String,
        user: Option<i64>,
        viewer: String,
        path: DeliveryPath,
        at: i64,
    },
    Leave {
        ids: Vec<i64>,
        at: i64,
    },
    /// Answered once every event before it is written.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// Views are written by a thread of their own, on a connection of their own, from a
/// bounded queue: a viewer joining or leaving is an event sent, never a wait on the disk,
/// so the media path does not wait on the database.
pub(super) struct ViewLog {
    // tokio's channel allocates its slots as they fill; std's bounded one allocates (and
    // touches) all of them at once, 6 MiB for this queue.
    tx: tokio::sync::mpsc::Sender<ViewEvent>,
    /// The next view's id, in this node's span (see [`super::nodes`]).
    next_id: AtomicI64,
    dropped: AtomicU64,
}

impl ViewLog {
    /// Starts the writer on `conn`, for views of node `node` numbered from `first`.
    pub(super) fn start(conn: Sql, node: String, first: i64) -> anyhow::Result<ViewLog> {
        let (tx, rx) = tokio::sync::mpsc::channel(VIEW_QUEUE);
        std::thread::Builder::new()
            .name("view-log".into())
            .spawn(move || write_views(conn, &node, rx))?;
        Ok(ViewLog {
            tx,
            next_id: AtomicI64::new(first),
            dropped: AtomicU64::new(0),
        })
    }

    fn send(&self, event: ViewEvent) {
        if self.tx.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!("the view log is behind: {dropped} view events dropped so far");
            }
        }
    }
}

fn write_views(mut conn: Sql, node: &str, mut rx: tokio::sync::mpsc::Receiver<ViewEvent>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < VIEW_BATCH
            && let Ok(next) = rx.try_recv()
        {
            batch.push(next);
        }
        let mut barriers = Vec::new();
        if let Err(e) = conn.reconnect_if_closed() {
            tracing::error!("cannot reach the database for views: {e:#}");
        }
        let written = conn.transaction(|tx| {
            for event in batch {
                match event {
                    ViewEvent::Join {
                        id,
                        broadcast,
                        user,
                        viewer,
                        path,
                        at,
                    } => {
                        tx.execute(
                            "INSERT INTO views (id, broadcast_id, user_id, viewer, path, joined_at, node)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            args![id, broadcast, user, viewer, path.as_str(), at, node],
                        )?;
                    }
                    ViewEvent::Leave { ids, at } => {
                        for id in ids {
                            tx.execute(
                                "UPDATE views SET left_at = ?2 WHERE id = ?1 AND left_at IS NULL",
                                args![id, at],
                            )?;
                        }
                    }
                    ViewEvent::Barrier(done) => barriers.push(done),
                }
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::error!("cannot record views: {e:#}");
        }
        for done in barriers {
            let _ = done.send(());
        }
    }
}

impl Db {
    /// Records a join and returns the view's id for [`Db::leave`], without waiting for
    /// the disk. `viewer` identifies an anonymous viewer (their address), `user` a
    /// registered one.
    pub fn join(&self, broadcast: &str, user: Option<i64>, viewer: &str, path: DeliveryPath) -> i64 {
        let id = self.views.next_id.fetch_add(1, Ordering::Relaxed);
        self.views.send(ViewEvent::Join {
            id,
            broadcast: broadcast.to_owned(),
            user,
            viewer: viewer.to_owned(),
            path,
            at: now_ms(),
        });
        id
    }

    pub fn leave(&self, view: i64) {
        self.leave_all(vec![view]);
    }

    /// Ends many views in one event (HLS viewers leave by the thousand when a broadcast
    /// ends).
    pub fn leave_all(&self, ids: Vec<i64>) {
        self.views.send(ViewEvent::Leave { ids, at: now_ms() });
    }

    /// Waits until every view event sent so far is written.
    pub fn flush_views(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        self.views.send(ViewEvent::Barrier(done));
        let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
    }

    pub fn stats(&self, broadcast: &str) -> anyhow::Result<Stats> {
        self.flush_views();
        self.with(|c| {
            let counts = c.query_one(
                "SELECT COUNT(*), COUNT(DISTINCT COALESCE('u' || user_id, 'a' || viewer)) FROM views
                 WHERE broadcast_id = ?1",
                args![broadcast],
            )?;
            let (views, unique): (i64, i64) = (counts.get(0)?, counts.get(1)?);
            // Peak concurrency: walk joins (+1) and leaves (-1) in time order; a leave at the
            // same millisecond as a join comes first.
            let steps = c.query(
                "SELECT joined_at, 1 FROM views WHERE broadcast_id = ?1
                 UNION ALL SELECT left_at, -1 FROM views WHERE broadcast_id = ?1 AND left_at IS NOT NULL
                 ORDER BY 1, 2",
                args![broadcast],
            )?;
            let mut now = 0i64;
            let mut peak = 0i64;
            for step in steps {
                now += step.get::<i64>(1)?;
                peak = peak.max(now);
            }
            Ok(Stats {
                views: views as u64,
                unique_viewers: unique as u64,
                peak_concurrent_viewers: peak as u64,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;
    use super::*;

    #[test]
    fn stats_count_views_unique_viewers_and_the_peak() {
        for t in temp_stores("views") {
            let store = &t.db;
            let a = store.join("b", Some(7), "1.2.3.4", DeliveryPath::Rtmp);
            let b = store.join("b", None, "5.6.7.8", DeliveryPath::Hls);
            std::thread::sleep(std::time::Duration::from_millis(5));
            store.leave(a);
            store.leave(b);
            std::thread::sleep(std::time::Duration::from_millis(5));
            store.join("b", Some(7), "9.9.9.9", DeliveryPath::Flv);
            assert_eq!(
                store.stats("b").unwrap(),
                Stats {
                    views: 3,
                    unique_viewers: 2,
                    peak_concurrent_viewers: 2
                }
            );
        }
    }
}
