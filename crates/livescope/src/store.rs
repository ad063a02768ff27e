//! Durable state: broadcasts and their stream keys, in SQLite (WAL mode) in the data folder.
//!
//! Calls are short and synchronous behind one connection; the media path never touches
//! the store except when a broadcast starts or ends.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created, never published to.
    Created,
    Live,
    /// Published to and finished: it cannot be published to again.
    Ended,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Live => "live",
            State::Ended => "ended",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "live" => State::Live,
            "ended" => State::Ended,
            _ => State::Created,
        }
    }
}

/// A stored broadcast. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub stream_key: String,
    pub title: String,
    pub state: State,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS broadcasts (
    id          TEXT PRIMARY KEY,
    stream_key  TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    ended_at    INTEGER
);
";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database in `dir`, and closes broadcasts a previous
    /// run left live: their publishers are gone.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating data folder {}", dir.display()))?;
        let path = dir.join("livescope.db");
        let conn = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "UPDATE broadcasts SET state = 'ended', ended_at = COALESCE(ended_at, ?1) WHERE state = 'live'",
            params![now_ms()],
        )?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    pub fn create(&self, id: &str, stream_key: &str, title: &str) -> anyhow::Result<Broadcast> {
        let b = Broadcast {
            id: id.to_owned(),
            stream_key: stream_key.to_owned(),
            title: title.to_owned(),
            state: State::Created,
            created_at: now_ms(),
            started_at: None,
            ended_at: None,
        };
        self.conn.lock().expect("store lock").execute(
            "INSERT INTO broadcasts (id, stream_key, title, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![b.id, b.stream_key, b.title, b.state.as_str(), b.created_at],
        )?;
        Ok(b)
    }

    pub fn get(&self, id: &str) -> anyhow::Result<Option<Broadcast>> {
        self.find("id", id)
    }

    pub fn by_stream_key(&self, key: &str) -> anyhow::Result<Option<Broadcast>> {
        self.find("stream_key", key)
    }

    fn find(&self, column: &str, value: &str) -> anyhow::Result<Option<Broadcast>> {
        let sql = format!(
            "SELECT id, stream_key, title, state, created_at, started_at, ended_at FROM broadcasts WHERE {column} = ?1"
        );
        let conn = self.conn.lock().expect("store lock");
        Ok(conn
            .query_row(&sql, params![value], |r| {
                Ok(Broadcast {
                    id: r.get(0)?,
                    stream_key: r.get(1)?,
                    title: r.get(2)?,
                    state: State::parse(&r.get::<_, String>(3)?),
                    created_at: r.get(4)?,
                    started_at: r.get(5)?,
                    ended_at: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Marks a created broadcast live; false if it was not in the `created` state.
    pub fn start(&self, id: &str) -> anyhow::Result<bool> {
        let changed = self.conn.lock().expect("store lock").execute(
            "UPDATE broadcasts SET state = 'live', started_at = ?2 WHERE id = ?1 AND state = 'created'",
            params![id, now_ms()],
        )?;
        Ok(changed == 1)
    }

    pub fn end(&self, id: &str) -> anyhow::Result<()> {
        self.conn.lock().expect("store lock").execute(
            "UPDATE broadcasts SET state = 'ended', ended_at = ?2 WHERE id = ?1 AND state = 'live'",
            params![id, now_ms()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_goes_live_once_and_a_restart_ends_it() {
        let dir = std::env::temp_dir().join(format!("livescope-store-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        store.create("id1", "key1", "hello").unwrap();
        assert_eq!(store.by_stream_key("key1").unwrap().unwrap().id, "id1");
        assert!(store.start("id1").unwrap());
        assert!(!store.start("id1").unwrap(), "a second publisher cannot start it again");
        drop(store);
        let store = Store::open(&dir).unwrap();
        let b = store.get("id1").unwrap().unwrap();
        assert_eq!(b.state, State::Ended);
        assert!(b.ended_at.is_some());
        assert!(!store.start("id1").unwrap(), "an ended broadcast stays ended");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
