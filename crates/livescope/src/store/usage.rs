//! The deployment's usage, as the measurement study tabulated Periscope's: one row per
//! broadcast that went live, with its length, audience, interaction and the broadcaster's
//! followers (for `livescope stats`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::Db;

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
        self.with(|c| read(c))
    }
}

/// The same, from the database in `dir` opened read-only: no migrations and none of the
/// clean-up a server does when it starts, so a running server's data is left as it is.
pub fn usage_in(dir: &Path) -> anyhow::Result<Vec<BroadcastUsage>> {
    let path = dir.join("livescope.db");
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow::anyhow!("opening {} read-only: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(read(&conn)?)
}

fn read(c: &Connection) -> rusqlite::Result<Vec<BroadcastUsage>> {
    let mut stmt = c.prepare(
        "SELECT b.started_at, b.ended_at - b.started_at,
                (SELECT COUNT(DISTINCT COALESCE('u' || v.user_id, 'a' || v.viewer)) FROM views v
                  WHERE v.broadcast_id = b.id),
                (SELECT COALESCE(SUM(h.count), 0) FROM hearts h WHERE h.broadcast_id = b.id),
                (SELECT COUNT(*) FROM comments m WHERE m.broadcast_id = b.id AND m.deleted = 0),
                (SELECT COUNT(*) FROM follows f WHERE f.followee_id = b.owner_id)
           FROM broadcasts b
          WHERE b.started_at IS NOT NULL
          ORDER BY b.started_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(BroadcastUsage {
            started_ms: r.get(0)?,
            duration_ms: r.get(1)?,
            viewers: r.get::<_, i64>(2)? as u64,
            hearts: r.get::<_, i64>(3)? as u64,
            comments: r.get::<_, i64>(4)? as u64,
            followers: r.get::<_, i64>(5)? as u64,
        })
    })?;
    rows.collect()
}
