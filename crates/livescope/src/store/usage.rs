//! The deployment's usage, as the measurement study tabulated Periscope's: one row per
//! broadcast that went live, with its length, audience, interaction and the broadcaster's
//! followers (for `livescope stats`).

use rusqlite::OpenFlags;

use super::sql::{Sql, args};
use super::{Db, Location};

/// One broadcast that went live.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastUsage {
    pub started_ms: i64,
    /// None while still live.
    pub duration_ms: Option<i64>,
    /// Distinct viewers (a registered user once, an anonymous viewer once per address).
    pub viewers: u64,
    pub hearts: u64,
    pub comments: u64,
    /// The broadcaster's followers now.
    pub followers: u64,
}

impl Db {
    /// Every broadcast that went live, oldest first.
    pub fn usage(&self) -> anyhow::Result<Vec<BroadcastUsage>> {
        self.with(read)
    }
}

/// The same, from the database opened as a reader: no migrations and none of the
/// clean-up a server does when it starts, so a running server's data is left as it is
/// (SQLite is opened read-only).
pub fn usage_in(at: &Location) -> anyhow::Result<Vec<BroadcastUsage>> {
    let mut conn = match at {
        Location::Postgres(url) => Sql::postgres(url)?,
        Location::Folder(dir) => {
            let path = dir.join("livescope.db");
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| anyhow::anyhow!("opening {} read-only: {e}", path.display()))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Sql::Sqlite(conn)
        }
    };
    read(&mut conn)
}

fn read(c: &mut Sql) -> anyhow::Result<Vec<BroadcastUsage>> {
    c.query(
        "SELECT b.started_at, b.ended_at - b.started_at,
                (SELECT COUNT(DISTINCT COALESCE('u' || v.user_id, 'a' || v.viewer)) FROM views v
                  WHERE v.broadcast_id = b.id),
                (SELECT CAST(COALESCE(SUM(h.count), 0) AS BIGINT) FROM hearts h WHERE h.broadcast_id = b.id),
                (SELECT COUNT(*) FROM comments m WHERE m.broadcast_id = b.id AND m.deleted = 0),
                (SELECT COUNT(*) FROM follows f WHERE f.followee_id = b.owner_id)
           FROM broadcasts b
          WHERE b.started_at IS NOT NULL
          ORDER BY b.started_at",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(BroadcastUsage {
            started_ms: r.get(0)?,
            duration_ms: r.get(1)?,
            viewers: r.get::<i64>(2)? as u64,
            hearts: r.get::<i64>(3)? as u64,
            comments: r.get::<i64>(4)? as u64,
            followers: r.get::<i64>(5)? as u64,
        })
    })
    .collect()
}
