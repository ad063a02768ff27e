//! Views, recorded the way the measurement study counted them: for every viewer
//! (registered or anonymous) of a broadcast, when they joined and left and how the media
//! reached them.

use rusqlite::params;
use serde::Serialize;

use super::{Store, now_ms};

/// How a viewer received the broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPath {
    Rtmp,
    Flv,
    Hls,
}

impl DeliveryPath {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryPath::Rtmp => "rtmp",
            DeliveryPath::Flv => "flv",
            DeliveryPath::Hls => "hls",
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

impl Store {
    /// Records a join; returns the view's id for [`Store::leave`]. `viewer` identifies an
    /// anonymous viewer (their address), `user` a registered one.
    pub fn join(&self, broadcast: &str, user: Option<i64>, viewer: &str, path: DeliveryPath) -> anyhow::Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO views (broadcast_id, user_id, viewer, path, joined_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![broadcast, user, viewer, path.as_str(), now_ms()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn leave(&self, view: i64) -> anyhow::Result<()> {
        self.leave_all(&[view])
    }

    /// Ends many views in one transaction (HLS viewers leave by the thousand when a
    /// broadcast ends).
    pub fn leave_all(&self, views: &[i64]) -> anyhow::Result<()> {
        let now = now_ms();
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare("UPDATE views SET left_at = ?2 WHERE id = ?1 AND left_at IS NULL")?;
                for view in views {
                    stmt.execute(params![view, now])?;
                }
            }
            tx.commit()
        })
    }

    pub fn stats(&self, broadcast: &str) -> anyhow::Result<Stats> {
        self.with(|c| {
            let (views, unique) = c.query_row(
                "SELECT COUNT(*), COUNT(DISTINCT COALESCE('u' || user_id, 'a' || viewer)) FROM views
                 WHERE broadcast_id = ?1",
                params![broadcast],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?;
            // Peak concurrency: walk joins (+1) and leaves (-1) in time order; a leave at the
            // same millisecond as a join comes first.
            let mut stmt = c.prepare(
                "SELECT joined_at, 1 FROM views WHERE broadcast_id = ?1
                 UNION ALL SELECT left_at, -1 FROM views WHERE broadcast_id = ?1 AND left_at IS NOT NULL
                 ORDER BY 1, 2",
            )?;
            let mut now = 0i64;
            let mut peak = 0i64;
            for step in stmt.query_map(params![broadcast], |r| r.get::<_, i64>(1))? {
                now += step?;
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
    use super::super::temp_store;
    use super::*;

    #[test]
    fn stats_count_views_unique_viewers_and_the_peak() {
        let (store, dir) = temp_store("views");
        let a = store.join("b", Some(7), "1.2.3.4", DeliveryPath::Rtmp).unwrap();
        let b = store.join("b", None, "5.6.7.8", DeliveryPath::Hls).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.leave(a).unwrap();
        store.leave(b).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.join("b", Some(7), "9.9.9.9", DeliveryPath::Flv).unwrap();
        assert_eq!(
            store.stats("b").unwrap(),
            Stats {
                views: 3,
                unique_viewers: 2,
                peak_concurrent_viewers: 2
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
