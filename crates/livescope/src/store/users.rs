//! Accounts and their login sessions. Passwords arrive here already hashed (argon2, in
//! `auth`); session tokens are stored as SHA-256 hashes.

use super::sql::{Row, Value, args, is_unique_violation};
use super::{Db, hash_secret, now_ms};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub created_at: i64,
}

impl User {
    /// The user in a row's first three columns: `id, username, created_at`.
    pub(super) fn from_row(r: &Row) -> anyhow::Result<User> {
        Ok(User {
            id: r.get(0)?,
            username: r.get(1)?,
            created_at: r.get(2)?,
        })
    }
}

impl Db {
    /// Creates an account; `None` if the name is taken (names are case-insensitive).
    pub fn create_user(&self, username: &str, password_hash: &str) -> anyhow::Result<Option<User>> {
        let now = now_ms();
        let inserted = self.with(|c| {
            match c.query_one(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3) RETURNING id",
                args![username, password_hash, now],
            ) {
                Ok(row) => Ok(Some(row.get(0)?)),
                Err(e) if is_unique_violation(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(inserted.map(|id| User {
            id,
            username: username.to_owned(),
            created_at: now,
        }))
    }

    /// Creates `count` accounts named `prefix` + a number that nobody can log in to (for
    /// benchmarks); returns their ids in creation order.
    pub fn create_users_unusable(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<i64>> {
        let now = now_ms();
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
        self.with(|c| {
            c.transaction(|tx| {
                let values: Vec<Value> = names
                    .iter()
                    .flat_map(|n| [Value::Text(n.clone()), Value::Text("!".into()), Value::Int(now)])
                    .collect();
                let rows = tx.insert_rows(
                    "INSERT INTO users (username, password_hash, created_at)",
                    3,
                    &values,
                    "RETURNING username, id",
                )?;
                let mut ids = std::collections::HashMap::with_capacity(count);
                for row in rows {
                    ids.insert(row.get::<String>(0)?, row.get::<i64>(1)?);
                }
                names
                    .iter()
                    .map(|n| {
                        ids.get(n)
                            .copied()
                            .ok_or_else(|| anyhow::anyhow!("user {n} was not stored"))
                    })
                    .collect()
            })
        })
    }

    pub fn user_by_name(&self, username: &str) -> anyhow::Result<Option<User>> {
        Ok(self.user_and_password(username)?.map(|(u, _)| u))
    }

    /// Users by name, for lists of names given by a caller; unknown names are left out.
    pub fn users_by_names(&self, names: &[String]) -> anyhow::Result<Vec<User>> {
        names.iter().filter_map(|n| self.user_by_name(n).transpose()).collect()
    }

    /// The account and its password hash, to check a login.
    pub fn user_and_password(&self, username: &str) -> anyhow::Result<Option<(User, String)>> {
        self.with(|c| {
            c.query_opt(
                "SELECT id, username, created_at, password_hash FROM users WHERE username = ?1",
                args![username],
            )?
            .map(|r| Ok((User::from_row(&r)?, r.get(3)?)))
            .transpose()
        })
    }

    pub fn create_session(&self, user: i64, token: &str, expires_at: i64) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                args![hash_secret(token), user, now_ms(), expires_at],
            )
        })?;
        Ok(())
    }

    /// The user a session token belongs to, if the session exists and has not expired.
    pub fn session_user(&self, token: &str) -> anyhow::Result<Option<User>> {
        self.with(|c| {
            c.query_opt(
                "SELECT u.id, u.username, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                args![hash_secret(token), now_ms()],
            )?
            .map(|r| User::from_row(&r))
            .transpose()
        })
    }

    pub fn delete_session(&self, token: &str) -> anyhow::Result<()> {
        self.with(|c| c.execute("DELETE FROM sessions WHERE token_hash = ?1", args![hash_secret(token)]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_stores;

    #[test]
    fn names_are_unique_whatever_their_case_and_sessions_find_their_user() {
        for t in temp_stores("users") {
            let store = &t.db;
            let alice = store.create_user("Alice", "h").unwrap().unwrap();
            assert!(store.create_user("alice", "h").unwrap().is_none());
            assert_eq!(store.user_by_name("ALICE").unwrap().unwrap().id, alice.id);
            store.create_session(alice.id, "tok", i64::MAX).unwrap();
            assert_eq!(store.session_user("tok").unwrap().unwrap().username, "Alice");
            store.create_session(alice.id, "old", 0).unwrap();
            assert!(
                store.session_user("old").unwrap().is_none(),
                "an expired session is no session"
            );
            store.delete_session("tok").unwrap();
            assert!(store.session_user("tok").unwrap().is_none());
        }
    }
}
