//! Notifications kept for people who were not connected when they happened.

use super::sql::{Value, args};
use super::{Db, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub broadcast_id: String,
    pub created_at: i64,
    /// The broadcast's title and owner's name, if it still exists.
    pub title: Option<String>,
    pub owner: Option<String>,
}

impl Db {
    /// Stores one notification for each of `users`, in one transaction; returns their ids,
    /// in the order of `users` (which must be distinct).
    pub fn notify_many(&self, users: &[i64], kind: &str, broadcast_id: &str) -> anyhow::Result<Vec<i64>> {
        let now = now_ms();
        self.with(|c| {
            c.transaction(|tx| {
                let values: Vec<Value> = users
                    .iter()
                    .flat_map(|u| {
                        [
                            Value::Int(*u),
                            Value::Text(kind.to_owned()),
                            Value::Text(broadcast_id.to_owned()),
                            Value::Int(now),
                        ]
                    })
                    .collect();
                let rows = tx.insert_rows(
                    "INSERT INTO notifications (user_id, kind, broadcast_id, created_at)",
                    4,
                    &values,
                    "RETURNING user_id, id",
                )?;
                let mut ids = std::collections::HashMap::with_capacity(users.len());
                for row in rows {
                    ids.insert(row.get::<i64>(0)?, row.get::<i64>(1)?);
                }
                users
                    .iter()
                    .map(|u| {
                        ids.get(u)
                            .copied()
                            .ok_or_else(|| anyhow::anyhow!("no notification stored for user {u}"))
                    })
                    .collect()
            })
        })
    }

    /// `user`'s notifications, newest first, older than `before` (a notification id).
    pub fn notifications(&self, user: i64, before: i64, limit: usize) -> anyhow::Result<Vec<Notification>> {
        self.with(|c| {
            c.query(
                "SELECT n.id, n.kind, n.broadcast_id, n.created_at, b.title, u.username FROM notifications n
                 LEFT JOIN broadcasts b ON b.id = n.broadcast_id LEFT JOIN users u ON u.id = b.owner_id
                 WHERE n.user_id = ?1 AND n.id < ?2 ORDER BY n.id DESC LIMIT ?3",
                args![user, before, limit as i64],
            )?
            .iter()
            .map(|r| {
                Ok(Notification {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    broadcast_id: r.get(2)?,
                    created_at: r.get(3)?,
                    title: r.get(4)?,
                    owner: r.get(5)?,
                })
            })
            .collect()
        })
    }
}
