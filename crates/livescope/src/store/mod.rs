//! Durable state in SQLite (WAL mode) in the data folder: accounts, sessions, follows,
//! broadcasts, notifications and views. This type is the whole interface to the database:
//! callers see plain structs and `anyhow` errors, never SQL, so that a PostgreSQL store can
//! stand beside it for multi-node deployments.
//!
//! [`Store`] is the handle the server holds: [`Store::call`] runs a closure on [`Db`] (the
//! synchronous queries) on the store's own thread, fed by a bounded queue, so no runtime
//! thread ever waits on the disk. Views are events written by a thread of their own
//! ([`views`]) and comments are numbered in memory: the media path and the rooms never
//! wait on the database.

mod broadcasts;
mod follows;
mod interaction;
mod keys;
mod migrations;
mod notifications;
mod usage;
mod users;
mod views;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

pub use broadcasts::{Broadcast, ListOrder, SignaturePolicy, State};
pub use interaction::{StoredComment, StoredPoll, Timeline};
pub use keys::{AccountKey, MAX_KEYS, Registered};
pub use notifications::Notification;
pub use usage::{BroadcastUsage, usage_in};
pub use users::User;
pub use views::{DeliveryPath, Stats};

/// The server's handle on the database: calls go to the store thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    jobs: tokio::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce(&Db) + Send>;

/// Calls waiting for the store thread. A caller past this waits for a place, so a burst
/// of requests queues in their own tasks rather than in an unbounded list here.
const QUEUE: usize = 1024;

impl Store {
    /// Opens the database in `dir` (see [`Db::open`]) and starts the store thread.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = Arc::new(Db::open(dir)?);
        let (jobs, mut rx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let worker = db.clone();
        std::thread::Builder::new().name("store".into()).spawn(move || {
            while let Some(job) = rx.blocking_recv() {
                // A query that panics fails its own call (its answer is dropped), not the
                // store.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&worker)));
            }
        })?;
        Ok(Store { db, jobs })
    }

    /// Calls waiting for the store thread now.
    pub fn queued(&self) -> usize {
        QUEUE - self.jobs.capacity()
    }

    /// Runs `f` on the store thread and waits (asynchronously) for its answer.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |db| {
                let _ = tx.send(f(db));
            }))
            .await
            .map_err(|_| anyhow::anyhow!("the store has stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("a store call failed"))?
    }

    /// A broadcast by id.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Broadcast>> {
        let id = id.to_owned();
        self.call(move |db| db.get(&id)).await
    }

    /// Who may watch broadcast `id`.
    pub async fn access(&self, id: &str) -> anyhow::Result<Option<crate::access::Access>> {
        let id = id.to_owned();
        self.call(move |db| db.access(&id)).await
    }

    /// The user of a session token.
    pub async fn session_user(&self, token: &str) -> anyhow::Result<Option<User>> {
        let token = token.to_owned();
        self.call(move |db| db.session_user(&token)).await
    }

    pub async fn user_by_name(&self, name: &str) -> anyhow::Result<Option<User>> {
        let name = name.to_owned();
        self.call(move |db| db.user_by_name(&name)).await
    }

    /// Records a join without waiting (see [`Db::join`]).
    pub fn join(&self, broadcast: &str, user: Option<i64>, viewer: &str, path: DeliveryPath) -> i64 {
        self.db.join(broadcast, user, viewer, path)
    }

    /// Records a leave without waiting.
    pub fn leave(&self, view: i64) {
        self.db.leave(view);
    }

    /// Records many leaves without waiting.
    pub fn leave_all(&self, views: Vec<i64>) {
        self.db.leave_all(views);
    }

    /// The id the next comment gets (see [`Db::next_comment_id`]).
    pub fn next_comment_id(&self) -> i64 {
        self.db.next_comment_id()
    }
}

/// The database and its synchronous queries, used on the store thread (through
/// [`Store::call`]) and by tests and tools.
pub struct Db {
    conn: Mutex<Connection>,
    /// Joins and leaves, written by a thread of their own.
    views: views::ViewLog,
    /// The next comment's id (see [`Store::next_comment_id`]).
    next_comment: std::sync::atomic::AtomicI64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How secrets that are only ever compared (stream keys, session tokens) are stored. They
/// are long random strings, so a plain SHA-256 is as good as a slow hash for them.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Db {
    /// Opens (creating if needed) the database in `dir`, brings its schema up to date, and
    /// closes what a previous run left open: broadcasts that were live end at the last time
    /// they were seen alive, and so do their views.
    pub fn open(dir: &Path) -> anyhow::Result<Db> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating data folder {}", dir.display()))?;
        let path = dir.join("livescope.db");
        let mut conn = Self::connect(&path)?;
        migrations::run(&mut conn)?;
        let now = now_ms();
        conn.execute(
            "UPDATE broadcasts SET state = 'ended', ended_at = COALESCE(last_seen_at, started_at, ?1)
             WHERE state = 'live'",
            params![now],
        )?;
        conn.execute(
            "UPDATE views SET left_at = MAX(joined_at, COALESCE(
                 (SELECT ended_at FROM broadcasts b WHERE b.id = views.broadcast_id), ?1))
             WHERE left_at IS NULL",
            params![now],
        )?;
        let views = views::ViewLog::start(Self::connect(&path)?)?;
        let next_comment: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM comments", [], |r| r.get(0))?;
        let store = Db {
            conn: Mutex::new(conn),
            views,
            next_comment: next_comment.into(),
        };
        store.finish_abandoned_polls()?;
        Ok(store)
    }

    /// A connection to the database at `path`, set up as every one of ours is.
    fn connect(path: &Path) -> anyhow::Result<Connection> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode NORMAL loses nothing when the process dies (kill -9): a committed
        // transaction is in the OS's hands. Only a power cut can lose the last few.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Runs `f` on the connection.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.conn.lock().expect("store lock");
        Ok(f(&mut conn)?)
    }

    /// Forgets what is no longer needed: expired sessions, and notifications older than
    /// `keep`. The server calls it every hour.
    pub fn prune(&self, keep: std::time::Duration) -> anyhow::Result<()> {
        let now = now_ms();
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            c.execute(
                "DELETE FROM notifications WHERE created_at < ?1",
                params![now - keep.as_millis() as i64],
            )
        })?;
        Ok(())
    }

    /// Notes that live broadcasts and open views are still alive now, so that after a crash
    /// they end at about the right time. The server calls it every few seconds.
    pub fn heartbeat(&self) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET last_seen_at = ?1 WHERE state = 'live'",
                params![now_ms()],
            )
        })?;
        Ok(())
    }
}

/// Whether an error is a UNIQUE constraint failing (a name already taken).
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

#[cfg(test)]
pub(crate) fn temp_store(name: &str) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("livescope-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Db::open(&dir).unwrap(), dir)
}
