//! Durable state: accounts, sessions, follows, broadcasts, notifications and views, in
//! SQLite (WAL mode) in the data folder by default, or in PostgreSQL when several nodes
//! share one service. This type is the whole interface to the database: callers see plain
//! structs and `anyhow` errors, never SQL; every query is written once, for both
//! databases ([`sql`]).
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
mod nodes;
mod notifications;
pub mod scratch;
pub(crate) mod sql;
mod usage;
mod users;
mod views;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sha2::{Digest, Sha256};

use sql::{Sql, args};

pub use broadcasts::{Broadcast, ListOrder, SignaturePolicy, State};
pub use interaction::{StoredComment, StoredPoll, Timeline};
pub use keys::{AccountKey, MAX_KEYS, Registered};
pub use nodes::{Node, NodeInfo};
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

/// Connections (and store threads) to PostgreSQL: its calls are round trips, which several
/// connections overlap.
const POSTGRES_CONNECTIONS: usize = 4;

/// Calls waiting for the store thread. A caller past this waits for a place, so a burst
/// of requests queues in their own tasks rather than in an unbounded list here.
const QUEUE: usize = 1024;

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// SQLite, in `livescope.db` in this folder.
    Folder(PathBuf),
    /// PostgreSQL at this URL (`postgres://user:password@host:port/database`).
    Postgres(String),
}

impl Location {
    /// `url` if given (a `postgres://` URL, or a `sqlite:` folder), else SQLite in `data`.
    pub fn new(url: Option<&str>, data: &Path) -> anyhow::Result<Location> {
        match url {
            None => Ok(Location::Folder(data.to_owned())),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Location::Postgres(u.to_owned()))
            }
            Some(u) if u.starts_with("sqlite:") => Ok(Location::Folder(PathBuf::from(&u["sqlite:".len()..]))),
            Some(u) => anyhow::bail!(
                "unknown database {}: give a postgres://user:password@host/database URL or sqlite:FOLDER",
                sql::redact(u)
            ),
        }
    }
}

impl Store {
    /// Opens the database as `node` (see [`Db::open_node`]) and starts the store thread.
    pub fn open(at: &Location, node: &Node) -> anyhow::Result<Store> {
        // The PostgreSQL driver blocks on a runtime of its own, which cannot start on one
        // of the server's runtime threads: open the database on a thread of its own.
        let (at, node) = (at.clone(), node.clone());
        let db = Arc::new(
            std::thread::spawn(move || Db::open_node(&at, &node))
                .join()
                .map_err(|_| anyhow::anyhow!("opening the database panicked"))??,
        );
        let (jobs, rx) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        // One thread per connection: SQLite has one (one writer at a time anyway); with
        // PostgreSQL, calls run side by side, each a round trip to the server.
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..db.conns.len() {
            let (worker, rx) = (db.clone(), rx.clone());
            std::thread::Builder::new().name(format!("store-{i}")).spawn(move || {
                loop {
                    // One thread waits for the next call at a time; it lets go to run it.
                    let Some(job) = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv() else {
                        return;
                    };
                    // A query that panics fails its own call (its answer is dropped), not
                    // the store.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&worker)));
                }
            })?;
        }
        Ok(Store { db, jobs })
    }

    /// A secret shared by the nodes (see [`Db::secret`]), read while the server starts,
    /// before its runtime serves anyone: this waits for the database.
    pub fn secret_at_start(&self, name: &str) -> anyhow::Result<[u8; 32]> {
        let (db, name) = (self.db.clone(), name.to_owned());
        std::thread::spawn(move || db.secret(&name))
            .join()
            .map_err(|_| anyhow::anyhow!("reading a secret panicked"))?
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
    /// Its connections: one for SQLite, [`POSTGRES_CONNECTIONS`] for PostgreSQL.
    conns: Vec<Mutex<Sql>>,
    /// This process, as a node of the service.
    node: Node,
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
    /// Opens (creating if needed) the SQLite database in `dir` (see [`Db::open_node`]).
    pub fn open(dir: &Path) -> anyhow::Result<Db> {
        Self::open_at(&Location::Folder(dir.to_owned()))
    }

    /// Opens the database as the only node (see [`Db::open_node`]).
    pub fn open_at(at: &Location) -> anyhow::Result<Db> {
        Self::open_node(at, &Node::local())
    }

    /// Opens the database for a tool of its own process (`livescope seed`): its schema
    /// brought up to date, but no node registered and nothing of a previous run closed,
    /// so that it can run beside the nodes of a live cluster.
    pub fn open_tool(at: &Location) -> anyhow::Result<Db> {
        let mut conn = Self::connect(at)?;
        migrations::run(&mut conn)?;
        let node = Node {
            name: "tool".into(),
            ..Node::local()
        };
        // The tool numbers no views or comments of its own: the first node's span will do.
        Self::assemble(at, conn, node, 0)
    }

    /// Opens the database as `node`, brings its schema up to date, registers the node,
    /// and closes what its previous run left open: broadcasts that were live on it end at
    /// the last time they were seen alive, and so do its views.
    pub fn open_node(at: &Location, node: &Node) -> anyhow::Result<Db> {
        let mut conn = Self::connect(at)?;
        migrations::run(&mut conn)?;
        let number = nodes::register(&mut conn, node)?;
        let now = now_ms();
        conn.execute(
            "UPDATE broadcasts SET state = 'ended', ended_at = COALESCE(last_seen_at, started_at, ?1)
             WHERE state = 'live' AND (node = ?2 OR node IS NULL)",
            args![now, node.name],
        )?;
        conn.execute(
            "UPDATE views SET left_at = CASE WHEN ended > joined_at THEN ended ELSE joined_at END
             FROM (SELECT v.id AS view_id, COALESCE(b.ended_at, ?1) AS ended FROM views v
                   LEFT JOIN broadcasts b ON b.id = v.broadcast_id
                   WHERE v.left_at IS NULL AND (v.node = ?2 OR v.node IS NULL)) open
             WHERE views.id = open.view_id",
            args![now, node.name],
        )?;
        let store = Self::assemble(at, conn, node.clone(), number)?;
        store.finish_abandoned_polls()?;
        Ok(store)
    }

    /// The store on `conn` (and, for PostgreSQL, more connections), with its view writer,
    /// numbering views and comments in the span of node `number`.
    fn assemble(at: &Location, mut conn: Sql, node: Node, number: i64) -> anyhow::Result<Db> {
        let first_view = nodes::next_id(&mut conn, "views", number)?;
        let views = views::ViewLog::start(Self::connect(at)?, node.name.clone(), first_view)?;
        let next_comment = nodes::next_id(&mut conn, "comments", number)?;
        let mut conns = vec![Mutex::new(conn)];
        if matches!(at, Location::Postgres(_)) {
            for _ in 1..POSTGRES_CONNECTIONS {
                conns.push(Mutex::new(Self::connect(at)?));
            }
        }
        Ok(Db {
            node,
            conns,
            views,
            next_comment: next_comment.into(),
        })
    }

    /// A connection to the database, set up as every one of ours is.
    fn connect(at: &Location) -> anyhow::Result<Sql> {
        let dir = match at {
            Location::Postgres(url) => return Sql::postgres(url),
            Location::Folder(dir) => dir,
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating data folder {}", dir.display()))?;
        let path = dir.join("livescope.db");
        let conn = rusqlite::Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // In WAL mode NORMAL loses nothing when the process dies (kill -9): a committed
        // transaction is in the OS's hands. Only a power cut can lose the last few.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Sql::Sqlite(conn))
    }

    /// Runs `f` on the connection.
    /// Runs `f` on a free connection (or waits for the first).
    fn with<T>(&self, f: impl FnOnce(&mut Sql) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut conn = self
            .conns
            .iter()
            .find_map(|c| c.try_lock().ok())
            .unwrap_or_else(|| self.conns[0].lock().unwrap_or_else(|e| e.into_inner()));
        conn.reconnect_if_closed()?;
        f(&mut conn)
    }

    /// Forgets what is no longer needed: expired sessions, and notifications older than
    /// `keep`. The server calls it every hour.
    pub fn prune(&self, keep: std::time::Duration) -> anyhow::Result<()> {
        let now = now_ms();
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= ?1", args![now])?;
            c.execute(
                "DELETE FROM notifications WHERE created_at < ?1",
                args![now - keep.as_millis() as i64],
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
impl Db {
    /// Every value in `table`, as text, for tests that check what is stored.
    pub(crate) fn table_text(&self, table: &str) -> anyhow::Result<String> {
        let rows = self.with(|c| c.query(&format!("SELECT * FROM {table}"), args![]))?;
        Ok(rows.iter().map(|r| format!("{r:?}\n")).collect())
    }
}

/// Stores for tests that must hold on both databases.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Db, Location};

    /// A new, empty store; its folder (SQLite) is removed when it is dropped.
    pub(crate) struct TempStore {
        pub db: Db,
        pub at: Location,
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            if let Location::Folder(dir) = &self.at {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// The scratch PostgreSQL server shared by the tests of this process.
    fn postgres() -> &'static super::scratch::ScratchPostgres {
        static POSTGRES: std::sync::OnceLock<super::scratch::ScratchPostgres> = std::sync::OnceLock::new();
        POSTGRES.get_or_init(|| super::scratch::ScratchPostgres::start().expect("a scratch PostgreSQL"))
    }

    /// With `LIVESCOPE_TEST_STORE=postgres`, a new PostgreSQL database for a test server;
    /// otherwise `None` (SQLite in the data folder).
    pub(crate) fn database_for_tests() -> Option<String> {
        (std::env::var("LIVESCOPE_TEST_STORE").as_deref() == Ok("postgres"))
            .then(|| postgres().create_database().expect("a scratch database"))
    }

    /// One new store in SQLite and one in PostgreSQL.
    pub(crate) fn temp_stores(name: &str) -> [TempStore; 2] {
        let pg = postgres();
        let dir = std::env::temp_dir().join(format!("livescope-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        [
            Location::Folder(dir),
            Location::Postgres(pg.create_database().expect("a scratch database")),
        ]
        .map(|at| TempStore {
            db: Db::open_at(&at).unwrap_or_else(|e| panic!("opening {at:?}: {e:#}")),
            at,
        })
    }
}
