//! Broadcasters' signing keys (Ed25519): the public half a broadcaster registers on their
//! account, its fingerprint for viewers to pin, and the key file `livescope keygen` writes.
//! The secret half never reaches the server: it stays in the file on the broadcaster's
//! machine, and the server stores and shows public keys only.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A registered account key: an Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

/// Why a public key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a public key is 32 bytes of Ed25519, in base64 (44 characters)")]
    Encoding,
    #[error("those 32 bytes are not an Ed25519 public key")]
    NotAPoint,
    #[error("that public key is weak (a point of small order) and would verify forged signatures")]
    Weak,
}

impl PublicKey {
    /// Reads a key as users paste it: standard base64, padded or not, spaces around.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError::Encoding)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Encoding)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(PublicKey(bytes))
    }

    pub fn to_base64(self) -> String {
        STANDARD.encode(self.0)
    }

    /// `SHA256:` and the unpadded base64 of the key's SHA-256, as OpenSSH shows keys: short
    /// enough to read out, long enough that no one can make a key with the same one.
    pub fn fingerprint(self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(self.0)))
    }
}

/// Makes a new account key and writes its secret half to `path` (readable by its owner
/// only; an existing file is kept unless `force`). Returns the public half.
pub fn generate(path: &Path, force: bool) -> anyhow::Result<PublicKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let public = PublicKey(key.verifying_key().to_bytes());
    writeln!(
        file,
        "# livescope account key: keep this file secret; its public half is {}",
        public.to_base64()
    )?;
    writeln!(file, "{}", STANDARD.encode(seed))?;
    Ok(public)
}

/// Reads a key file `generate` wrote.
pub fn load(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| anyhow::anyhow!("{} holds no key", path.display()))?;
    let seed: [u8; 32] = STANDARD
        .decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{} is not a livescope key file", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_loads_back_and_its_public_half_parses() {
        let dir = std::env::temp_dir().join(format!("livescope-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        let _ = std::fs::remove_file(&path);
        let public = generate(&path, false).unwrap();
        assert!(generate(&path, false).is_err(), "an existing key is kept");
        let secret = load(&path).unwrap();
        assert_eq!(secret.verifying_key().to_bytes(), public.0);
        assert_eq!(PublicKey::parse(&public.to_base64()), Ok(public));
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0, "owner only");
        let fingerprint = public.fingerprint();
        assert!(
            fingerprint.starts_with("SHA256:") && fingerprint.len() == 7 + 43,
            "{fingerprint}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_that_are_not_ed25519_public_keys_are_refused() {
        assert_eq!(PublicKey::parse("not base64!"), Err(KeyError::Encoding));
        assert_eq!(PublicKey::parse(&STANDARD.encode([1u8; 31])), Err(KeyError::Encoding));
        // The identity point has small order: any signature would verify under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::parse(&STANDARD.encode(identity)), Err(KeyError::Weak));
        // A y coordinate with no point on the curve (about half of them have none).
        let off_curve = (2u8..=255)
            .map(|y| {
                let mut bytes = [0u8; 32];
                bytes[0] = y;
                bytes
            })
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .unwrap();
        assert_eq!(PublicKey::parse(&STANDARD.encode(off_curve)), Err(KeyError::NotAPoint));
    }
}
