//! Account keys: the Ed25519 public keys broadcasters register to sign their broadcasts.

use super::sql::args;
use super::{Db, now_ms};

/// Keys an account may hold at once: one per machine or encoder it broadcasts from.
pub const MAX_KEYS: usize = 8;

/// One registered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    pub public_key: [u8; 32],
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What registering a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Added,
    /// The key is registered already (by this account or, revoked or not, by another):
    /// a key names one account for good.
    Taken,
    /// The account holds [`MAX_KEYS`] keys.
    Full,
}

impl Db {
    /// Registers `key` for `user`.
    pub fn add_key(&self, user: i64, key: [u8; 32]) -> anyhow::Result<Registered> {
        self.with(|c| {
            c.transaction(|tx| {
                let taken = tx
                    .query_opt("SELECT 1 FROM signing_keys WHERE public_key = ?1", args![&key[..]])?
                    .is_some();
                if taken {
                    return Ok(Registered::Taken);
                }
                let held: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM signing_keys WHERE user_id = ?1 AND revoked_at IS NULL",
                        args![user],
                    )?
                    .get(0)?;
                if held as usize >= MAX_KEYS {
                    return Ok(Registered::Full);
                }
                tx.execute(
                    "INSERT INTO signing_keys (public_key, user_id, created_at) VALUES (?1, ?2, ?3)",
                    args![&key[..], user, now_ms()],
                )?;
                Ok(Registered::Added)
            })
        })
    }

    /// `user`'s keys, oldest first; revoked ones only with `revoked`.
    pub fn keys(&self, user: i64, revoked: bool) -> anyhow::Result<Vec<AccountKey>> {
        self.with(|c| {
            let rows = c.query(
                "SELECT public_key, created_at, revoked_at FROM signing_keys
                 WHERE user_id = ?1 AND (?2 OR revoked_at IS NULL) ORDER BY created_at, public_key",
                args![user, revoked],
            )?;
            let mut keys = Vec::new();
            for row in rows {
                if let Ok(public_key) = <[u8; 32]>::try_from(row.get::<Vec<u8>>(0)?) {
                    keys.push(AccountKey {
                        public_key,
                        created_at: row.get(1)?,
                        revoked_at: row.get(2)?,
                    });
                }
            }
            Ok(keys)
        })
    }

    /// Revokes `user`'s `key`: false if the account holds no such key in force.
    pub fn revoke_key(&self, user: i64, key: [u8; 32]) -> anyhow::Result<bool> {
        let changed = self.with(|c| {
            c.execute(
                "UPDATE signing_keys SET revoked_at = ?3 WHERE public_key = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                args![&key[..], user, now_ms()],
            )
        })?;
        Ok(changed == 1)
    }
}
