//! The nodes sharing one database: each registers under its name with where other nodes
//! and publishers reach it, beats every few seconds with how busy it is, and is taken for
//! dead when it stops beating: its live broadcasts end and its views close. A node's number
//! splits the id space of what it numbers itself (views and comments), so that nodes never
//! wait on each other, or on the database, for an id.

use super::sql::{Dialect, Sql, args};
use super::{Db, now_ms};

/// A node unheard of for this long is dead (it beats every 5 s).
pub const STALE_MS: i64 = 15_000;

/// Ids a node numbers itself start at its number times this.
pub const ID_SPAN: i64 = 1 << 40;

/// This process as a node of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// Where other nodes pull its streams and publishers reach its HTTP ingest.
    pub http_url: String,
    /// Where publishers reach its RTMP ingest.
    pub rtmp_url: String,
    /// Where it is, for placing publishers near it.
    pub region: Option<String>,
}

impl Node {
    /// The only node of a single-machine service.
    pub fn local() -> Node {
        Node {
            name: "local".into(),
            http_url: String::new(),
            rtmp_url: String::new(),
            region: None,
        }
    }
}

/// A node as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    pub name: String,
    pub http_url: String,
    pub rtmp_url: String,
    pub region: Option<String>,
    /// Milliseconds since the Unix epoch of its last beat.
    pub seen_at: i64,
    pub publishers: u64,
    pub viewers: u64,
}

const NODE_COLUMNS: &str = "name, http_url, rtmp_url, region, seen_at, publishers, viewers";

fn node_row(r: &super::sql::Row) -> anyhow::Result<NodeInfo> {
    Ok(NodeInfo {
        name: r.get(0)?,
        http_url: r.get(1)?,
        rtmp_url: r.get(2)?,
        region: r.get(3)?,
        seen_at: r.get(4)?,
        publishers: r.get::<i64>(5)? as u64,
        viewers: r.get::<i64>(6)? as u64,
    })
}

/// Registers `node` (again, after a restart) and returns its number: the first node is 0,
/// so a single machine's ids are as they always were.
pub(super) fn register(conn: &mut Sql, node: &Node) -> anyhow::Result<i64> {
    let now = now_ms();
    // Two nodes starting together may pick the same free number: the loser tries again.
    let mut attempt = 0;
    loop {
        let registered = conn.transaction(|tx| {
            if tx.dialect() == Dialect::Postgres {
                tx.batch("LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE")?;
            }
            tx.query_one(
                "INSERT INTO nodes (name, number, http_url, rtmp_url, region, seen_at)
                 VALUES (?1, (SELECT COALESCE(MAX(number) + 1, 0) FROM nodes), ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET http_url = excluded.http_url, rtmp_url = excluded.rtmp_url,
                     region = excluded.region, seen_at = excluded.seen_at
                 RETURNING number",
                args![node.name, node.http_url, node.rtmp_url, node.region, now],
            )?
            .get::<i64>(0)
        });
        match registered {
            Ok(number) => return Ok(number),
            Err(e) if attempt < 3 && super::sql::is_unique_violation(&e) => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The first id after those already given out in `table` by the node numbered `number`.
pub(super) fn next_id(conn: &mut Sql, table: &str, number: i64) -> anyhow::Result<i64> {
    let base = number * ID_SPAN;
    conn.query_one(
        &format!("SELECT COALESCE(MAX(id), ?1) + 1 FROM {table} WHERE id >= ?1 AND id < ?2"),
        args![base, base + ID_SPAN],
    )?
    .get(0)
}

impl Db {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node.name
    }

    /// This node's beat: its live broadcasts and itself are alive now, with this many
    /// publishers and viewers. Broadcasts of nodes that stopped beating end (at their last
    /// beat), and those nodes' views close.
    pub fn beat(&self, publishers: usize, viewers: usize) -> anyhow::Result<()> {
        let now = now_ms();
        let me = self.node.name.as_str();
        self.with(|c| {
            c.execute(
                "UPDATE broadcasts SET last_seen_at = ?1 WHERE state = 'live' AND node = ?2",
                args![now, me],
            )?;
            c.execute(
                "UPDATE nodes SET seen_at = ?1, publishers = ?2, viewers = ?3 WHERE name = ?4",
                args![now, publishers as i64, viewers as i64, me],
            )?;
            let ended = c.execute(
                "UPDATE broadcasts SET state = 'ended', ended_at = last_seen_at
                 WHERE state = 'live' AND node != ?1 AND last_seen_at < ?2",
                args![me, now - STALE_MS],
            )?;
            if ended > 0 {
                tracing::warn!("{ended} broadcasts ended: their node stopped beating");
            }
            c.execute(
                "UPDATE views SET left_at = ?1 WHERE left_at IS NULL AND node IN (
                     SELECT name FROM nodes WHERE name != ?2 AND seen_at < ?3)",
                args![now, me, now - STALE_MS],
            )?;
            Ok(())
        })
    }

    /// Nodes heard from lately, the least busy first.
    pub fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        self.with(|c| {
            c.query(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE seen_at >= ?1 ORDER BY publishers, viewers, name"),
                args![now_ms() - STALE_MS],
            )?
            .iter()
            .map(node_row)
            .collect()
        })
    }

    /// The node a live broadcast is published on, when that is another node and alive.
    pub fn origin(&self, broadcast: &str) -> anyhow::Result<Option<NodeInfo>> {
        self.other_node_of(broadcast, "live")
    }

    /// The node that recorded an ended broadcast, when that is another node and alive: its
    /// replay is served from there.
    pub fn recorded_at(&self, broadcast: &str) -> anyhow::Result<Option<NodeInfo>> {
        self.other_node_of(broadcast, "ended")
    }

    /// The node broadcast `broadcast` is (or was) published on, if it is in `state`, on
    /// another node, and that node is alive.
    fn other_node_of(&self, broadcast: &str, state: &str) -> anyhow::Result<Option<NodeInfo>> {
        self.with(|c| {
            c.query_opt(
                "SELECT n.name, n.http_url, n.rtmp_url, n.region, n.seen_at, n.publishers, n.viewers
                 FROM broadcasts b JOIN nodes n ON n.name = b.node
                 WHERE b.id = ?1 AND b.state = ?2 AND b.node != ?3 AND n.seen_at >= ?4",
                args![broadcast, state, self.node.name, now_ms() - STALE_MS],
            )?
            .map(|r| node_row(&r))
            .transpose()
        })
    }

    /// The secret every node sharing this database knows by `name`: 32 random bytes made
    /// by whichever node asks first.
    pub fn secret(&self, name: &str) -> anyhow::Result<[u8; 32]> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        let value: Vec<u8> = self.with(|c| {
            c.execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![name, &fresh[..]],
            )?;
            c.query_one("SELECT value FROM secrets WHERE name = ?1", args![name])?
                .get(0)
        })?;
        value
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored secret {name} is not 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;
    use super::*;

    #[test]
    fn nodes_number_their_ids_apart_and_a_silent_node_s_broadcasts_end() {
        for t in temp_stores("nodes") {
            let a = &t.db;
            let b = Db::open_node(
                &t.at,
                &Node {
                    name: "b".into(),
                    http_url: "http://b".into(),
                    rtmp_url: "rtmp://b".into(),
                    region: Some("eu".into()),
                },
            )
            .unwrap();
            let (va, vb) = (
                a.join("x", None, "1", super::super::DeliveryPath::Rtmp),
                b.join("x", None, "2", super::super::DeliveryPath::Rtmp),
            );
            assert_eq!((va, vb / ID_SPAN), (1, 1), "the first node's ids are as before");
            assert_eq!(a.secret("s").unwrap(), b.secret("s").unwrap(), "one secret for all");
            let owner = a.create_user("o", "!").unwrap().unwrap().id;
            a.create_broadcast("on-b", owner, "k", "", None).unwrap();
            assert!(b.start("on-b").unwrap());
            assert_eq!(a.origin("on-b").unwrap().unwrap().http_url, "http://b");
            assert!(b.origin("on-b").unwrap().is_none(), "not another node's");
            assert!(a.recorded_at("on-b").unwrap().is_none(), "live, not a replay yet");
            // A broadcast b recorded and ended: its replay is b's to serve.
            a.create_broadcast("ended-on-b", owner, "k2", "", None).unwrap();
            assert!(b.start("ended-on-b").unwrap());
            b.end("ended-on-b").unwrap();
            assert_eq!(a.recorded_at("ended-on-b").unwrap().unwrap().http_url, "http://b");
            assert!(a.origin("ended-on-b").unwrap().is_none(), "not live");
            assert!(b.recorded_at("ended-on-b").unwrap().is_none(), "not another node's");
            // b falls silent: a's next beat ends b's broadcast, at b's last beat.
            b.with(|c| {
                c.execute(
                    "UPDATE nodes SET seen_at = ?1 WHERE name = 'b'",
                    args![now_ms() - STALE_MS - 1],
                )?;
                c.execute(
                    "UPDATE broadcasts SET last_seen_at = ?1 WHERE id = 'on-b'",
                    args![now_ms() - STALE_MS - 1],
                )
            })
            .unwrap();
            a.beat(0, 0).unwrap();
            assert_eq!(a.get("on-b").unwrap().unwrap().state, super::super::State::Ended);
            assert!(a.nodes().unwrap().iter().all(|n| n.name != "b"));
            assert!(
                a.recorded_at("ended-on-b").unwrap().is_none(),
                "b's disk is out of reach"
            );
        }
    }
}
