//! The follow graph: directed, as on Periscope and Twitter. Lists page by user id (keyset),
//! so a page costs the same at the millionth follower as at the first.

use super::sql::{Value, args};
use super::{Db, User, now_ms};

impl Db {
    /// `follower` follows `followee`; following twice is following once.
    pub fn follow(&self, follower: i64, followee: i64) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                args![follower, followee, now_ms()],
            )
        })?;
        Ok(())
    }

    pub fn unfollow(&self, follower: i64, followee: i64) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2",
                args![follower, followee],
            )
        })?;
        Ok(())
    }

    pub fn is_following(&self, follower: i64, followee: i64) -> anyhow::Result<bool> {
        self.with(|c| {
            c.query_opt(
                "SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = ?2",
                args![follower, followee],
            )
        })
        .map(|found| found.is_some())
    }

    /// (followers, following) of `user`.
    pub fn follow_counts(&self, user: i64) -> anyhow::Result<(u64, u64)> {
        self.with(|c| {
            let mut count = |sql: &str| c.query_one(sql, args![user])?.get::<i64>(0);
            Ok((
                count("SELECT COUNT(*) FROM follows WHERE followee_id = ?1")? as u64,
                count("SELECT COUNT(*) FROM follows WHERE follower_id = ?1")? as u64,
            ))
        })
    }

    /// One page of `user`'s followers (`followers = true`) or of whom `user` follows, in
    /// user id order after `after`, with the time each follow began.
    pub fn follow_page(
        &self,
        user: i64,
        followers: bool,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(User, i64)>> {
        let (mine, theirs) = if followers {
            ("followee_id", "follower_id")
        } else {
            ("follower_id", "followee_id")
        };
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT u.id, u.username, u.created_at, f.created_at FROM follows f JOIN users u ON u.id = f.{theirs}
                     WHERE f.{mine} = ?1 AND f.{theirs} > ?2 ORDER BY f.{theirs} LIMIT ?3"
                ),
                args![user, after, limit as i64],
            )?
            .iter()
            .map(|r| Ok((User::from_row(r)?, r.get(3)?)))
            .collect()
        })
    }

    /// Ids of `user`'s followers after `after`, for notification fan-out in batches.
    pub fn follower_ids(&self, user: i64, after: i64, limit: usize) -> anyhow::Result<Vec<i64>> {
        self.with(|c| {
            c.query(
                "SELECT follower_id FROM follows WHERE followee_id = ?1 AND follower_id > ?2
                 ORDER BY follower_id LIMIT ?3",
                args![user, after, limit as i64],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
        })
    }

    /// Makes each of `followers` follow `followee` in one transaction (benchmarks seed
    /// large audiences with it).
    pub fn follow_many(&self, followers: &[i64], followee: i64) -> anyhow::Result<()> {
        let now = now_ms();
        self.with(|c| {
            let values: Vec<Value> = followers
                .iter()
                .flat_map(|f| [Value::Int(*f), Value::Int(followee), Value::Int(now)])
                .collect();
            c.transaction(|tx| {
                tx.insert_rows(
                    "INSERT INTO follows (follower_id, followee_id, created_at)",
                    3,
                    &values,
                    "ON CONFLICT DO NOTHING",
                )
            })?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;

    #[test]
    fn follows_are_directed_idempotent_and_paged() {
        for t in temp_stores("follows") {
            let store = &t.db;
            let ids: Vec<i64> = (0..5)
                .map(|i| store.create_user(&format!("u{i}"), "h").unwrap().unwrap().id)
                .collect();
            for &f in &ids[1..] {
                store.follow(f, ids[0]).unwrap();
                store.follow(f, ids[0]).unwrap();
            }
            assert_eq!(store.follow_counts(ids[0]).unwrap(), (4, 0));
            assert_eq!(store.follow_counts(ids[1]).unwrap(), (0, 1));
            let first = store.follow_page(ids[0], true, 0, 3).unwrap();
            assert_eq!(first.len(), 3);
            let rest = store.follow_page(ids[0], true, first[2].0.id, 3).unwrap();
            assert_eq!(rest.len(), 1);
            assert_eq!(rest[0].0.username, "u4");
            store.unfollow(ids[4], ids[0]).unwrap();
            assert_eq!(store.follower_ids(ids[0], 0, 10).unwrap(), ids[1..4].to_vec());
        }
    }
}
