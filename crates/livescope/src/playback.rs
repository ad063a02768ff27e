//! Playback tokens for private broadcasts: `<expiry>.<HMAC-SHA256>` over the broadcast id
//! and the expiry, with a key kept in the data folder. A token travels in URLs
//! (`?token=`), so every delivery path can check it without a database, and so can a CDN
//! that knows the key; the origin answers media only to URLs that carry a valid one.
//!
//! Every token issued within the same window for the same broadcast is the same, so all
//! authorized viewers ask for the same URLs and an edge cache serves them all from one
//! origin request per part, without calling back.

use std::path::Path;

use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Tokens are issued for the rest of the current window plus one more, so a token lives
/// between one and two windows.
pub const WINDOW_SECS: u64 = 3600;
/// Bytes of the MAC kept in a token.
const TAG_BYTES: usize = 16;

pub struct PlaybackKeys {
    key: [u8; 32],
}

impl PlaybackKeys {
    /// The key in `dir/playback.key`, made on first use (readable by the owner only).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<PlaybackKeys> {
        let path = dir.join("playback.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = decode_hex(text.trim()).context("playback.key is not 64 hex digits")?;
            let key = bytes.try_into().ok().context("playback.key is not 32 bytes")?;
            return Ok(PlaybackKeys { key });
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).context("random")?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("playback.key.new");
        std::fs::write(&tmp, encode_hex(&key))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(PlaybackKeys { key })
    }

    pub fn with_key(key: [u8; 32]) -> PlaybackKeys {
        PlaybackKeys { key }
    }

    fn mac(&self, broadcast: &str, epoch: u64, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(broadcast.as_bytes());
        mac.update(b"\n");
        mac.update(epoch.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// A token for `broadcast` in its access epoch `epoch` (see [`crate::access`]), and
    /// when it expires (seconds since the Unix epoch).
    pub fn issue(&self, broadcast: &str, epoch: u64, now_secs: u64) -> (String, u64) {
        let expires = (now_secs / WINDOW_SECS + 2) * WINDOW_SECS;
        let tag = self.mac(broadcast, epoch, expires).finalize().into_bytes();
        (format!("{expires}.{}", encode_hex(&tag[..TAG_BYTES])), expires)
    }

    /// Whether `token` lets its holder watch `broadcast`, now in access epoch `epoch`.
    pub fn verify(&self, broadcast: &str, epoch: u64, token: &str, now_secs: u64) -> bool {
        let Some((expires, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires), Some(tag)) = (expires.parse::<u64>(), decode_hex(tag)) else {
            return false;
        };
        tag.len() == TAG_BYTES
            && now_secs < expires
            && self.mac(broadcast, epoch, expires).verify_truncated_left(&tag).is_ok()
    }
}

/// The `token` parameter of a URL query, if any.
pub fn token_in_query(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("token="))
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_broadcast_until_it_expires() {
        let keys = PlaybackKeys::with_key([7; 32]);
        let (token, expires) = keys.issue("b1", 0, 10_000);
        assert!(expires > 10_000 + WINDOW_SECS - 1 && expires <= 10_000 + 2 * WINDOW_SECS);
        assert_eq!(
            keys.issue("b1", 0, 10_001).0,
            token,
            "one token per window: caches share URLs"
        );
        assert!(keys.verify("b1", 0, &token, 10_000));
        assert!(
            !keys.verify("b1", 1, &token, 10_000),
            "revoked when the access epoch moves on"
        );
        assert!(!keys.verify("b2", 0, &token, 10_000), "bound to its broadcast");
        assert!(!keys.verify("b1", 0, &token, expires), "expired");
        assert!(
            !PlaybackKeys::with_key([8; 32]).verify("b1", 0, &token, 10_000),
            "bound to the key"
        );
        let (exp, tag) = token.split_once('.').unwrap();
        assert!(!keys.verify(
            "b1",
            0,
            &format!("{}.{tag}", exp.parse::<u64>().unwrap() + 3600),
            10_000
        ));
        for garbage in ["", ".", "x.y", "1.", "99999999999999999999.00", "1.zz", "é.é"] {
            assert!(!keys.verify("b1", 0, garbage, 0), "{garbage}");
        }
    }
}
