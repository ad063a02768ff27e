//! Durable state in SQLite (WAL mode) in the data folder: accounts, sessions, follows,
//! broadcasts, notifications and views. This type is the whole interface to the database:
//! callers see plain structs and `anyhow` errors, never SQL, so that a PostgreSQL store can
//! stand beside it for multi-node deployments.
//!
//! Calls are short and synchronous behind one connection, with the calling runtime worker
//! handing its other tasks away first (see `Store::with`). Views are events written by a
//! thread of their own ([`views`]): the media path never waits on the database.

mod broadcasts;
mod follows;
mod interaction;
mod migrations;
mod notifications;
mod users;
mod views;

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

pub use broadcasts::{Broadcast, ListOrder, State};
pub use interaction::{StoredComment, StoredPoll, Timeline};
pub use notifications::Notification;
pub use users::User;
pub use views::{DeliveryPath, Stats};

pub struct Store {
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

impl Store {
    /// Opens (creating if needed) the database in `dir`, brings its schema up to date, and
    /// closes what a previous run left open: broadcasts that were live end at the last time
    /// they were seen alive, and so do their views.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
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
        let store = Store {
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

    /// Runs `f` on the connection. On a worker of tokio's multi-threaded runtime, the
    /// worker first hands its other tasks to the rest of the runtime
    /// (`block_in_place`), so a slow disk or a long transaction holds up only the request
    /// that waits for it, not the connections that happened to share its thread.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let run = || {
            let mut conn = self.conn.lock().expect("store lock");
            f(&mut conn)
        };
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        Ok(if on_worker {
            tokio::task::block_in_place(run)
        } else {
            run()
        }?)
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
pub(crate) fn temp_store(name: &str) -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("livescope-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir).unwrap(), dir)
}
