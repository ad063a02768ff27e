//! Who is calling: passwords (argon2id), login sessions as bearer tokens or an HttpOnly
//! cookie, and a limit on failed logins per account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, StatusCode, header};

use crate::api::ApiError;
use crate::store::User;

/// The cookie the web app's session travels in.
pub const SESSION_COOKIE: &str = "livescope_session";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins allowed per account within [`LOGIN_WINDOW`] before further attempts are
/// refused (429) until the window has passed.
pub const LOGIN_ATTEMPTS: u32 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// Password hashes computed at once: each takes argon2's 19 MiB and a core for tens of
/// milliseconds, so more would only add memory and queueing.
const CONCURRENT_HASHES: usize = 2;
/// A request that cannot start hashing within this long is answered 503.
const HASH_WAIT: Duration = Duration::from_secs(5);
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_HASHES);

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
            HashError::Failed(e) => e.into(),
        }
    }
}

async fn hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>, HashError> {
    match tokio::time::timeout(HASH_WAIT, HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(HashError::Busy),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on one of [`CONCURRENT_HASHES`] long-lived threads. Always the same few
/// threads, so the allocator keeps a few arenas of argon2's blocks rather than one per
/// blocking thread that ever hashed.
async fn on_hashing_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    static POOL: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..CONCURRENT_HASHES {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().expect("pool lock").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a hashing thread");
        }
        Mutex::new(tx)
    });
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    pool.lock()
        .expect("pool lock")
        .send(job)
        .map_err(|_| anyhow::anyhow!("the hashing threads are gone"))?;
    Ok(result.await?)
}

/// Hashes a password with argon2id (a PHC string with its salt and parameters). Slow on
/// purpose, so it runs off the async workers, a few at a time.
pub async fn hash_password(password: String) -> Result<String, HashError> {
    let _permit = hashing_permit().await?;
    let hashed = on_hashing_thread(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h: PasswordHash| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await??;
    Ok(hashed)
}

/// Checks a password against a stored hash. Without a stored hash (no such account) it
/// still spends the time of a check, so that timing does not tell which names exist.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, HashError> {
    let _permit = hashing_permit().await?;
    Ok(on_hashing_thread(move || {
        let argon = Argon2::default();
        match hash {
            Some(hash) => argon.verify_password(password.as_bytes(), hash.as_str()).is_ok(),
            None => {
                let _ = argon.hash_password(password.as_bytes()).map(|_: PasswordHash| ());
                false
            }
        }
    })
    .await
    .unwrap_or(false))
}

/// The session token a request carries: `Authorization: Bearer <token>`, else the cookie.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The logged-in user, if any. A token that names no live session is an error (401), so
/// that a client learns its session is gone rather than silently acting anonymously.
pub async fn current_user(store: &crate::store::Store, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    match store.session_user(&token).await? {
        Some(user) => Ok(Some(user)),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_session",
            "the session has expired or was ended; log in again",
        )),
    }
}

/// The logged-in user, or 401.
pub async fn require_user(store: &crate::store::Store, headers: &HeaderMap) -> Result<User, ApiError> {
    current_user(store, headers)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "log in first"))
}

/// Login attempts, counted before the password is checked (so concurrent guesses count
/// too) and forgotten on success or after [`LOGIN_WINDOW`]. Two keys per attempt: the
/// account and the caller's address together (so a stranger cannot lock an account owner
/// out, only themselves), and the address alone, with a larger allowance (so one address
/// cannot try many accounts).
#[derive(Default)]
pub struct LoginLimiter {
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Attempts allowed per address, whatever the accounts, within [`LOGIN_WINDOW`].
pub const ADDRESS_ATTEMPTS: u32 = 50;
/// Keys remembered at most; past it the oldest windows are forgotten.
const MAX_KEYS: usize = 100_000;

impl LoginLimiter {
    /// Counts an attempt to log in as `name` from `address`; if too many were made, how
    /// long until the next may be.
    pub fn attempt(&self, name: &str, address: &str) -> Result<(), Duration> {
        let mut map = self.attempts.lock().expect("limiter lock");
        if map.len() >= MAX_KEYS {
            map.retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
            if map.len() >= MAX_KEYS {
                // Still full: forget everything rather than grow or scan on every attempt.
                map.clear();
            }
        }
        let keys = [
            (format!("{}\n{address}", name.to_lowercase()), LOGIN_ATTEMPTS),
            (format!("\n{address}"), ADDRESS_ATTEMPTS),
        ];
        for (key, allowed) in &keys {
            if let Some((count, since)) = map.get(key)
                && *count >= *allowed
                && since.elapsed() < LOGIN_WINDOW
            {
                return Err(LOGIN_WINDOW - since.elapsed());
            }
        }
        for (key, _) in keys {
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= LOGIN_WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
        Ok(())
    }

    /// A successful login forgets the account's attempts from that address.
    pub fn succeeded(&self, name: &str, address: &str) {
        let mut map = self.attempts.lock().expect("limiter lock");
        map.remove(&format!("{}\n{address}", name.to_lowercase()));
        if let Some(entry) = map.get_mut(&format!("\n{address}")) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }
}

/// Whether two secrets are the same, compared by their hashes so that the time taken
/// tells nothing of how much of a guess was right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a) == Sha256::digest(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=b; livescope_session=tok1".parse().unwrap());
        assert_eq!(session_token(&h).as_deref(), Some("tok1"));
        h.insert(header::AUTHORIZATION, "Bearer tok2".parse().unwrap());
        assert_eq!(session_token(&h).as_deref(), Some("tok2"));
    }

    #[test]
    fn the_limiter_counts_attempts_per_account_and_address_and_per_address() {
        let limiter = LoginLimiter::default();
        for _ in 0..LOGIN_ATTEMPTS {
            assert!(limiter.attempt("Bob", "1.1.1.1").is_ok());
        }
        assert!(limiter.attempt("BOB", "1.1.1.1").is_err());
        assert!(
            limiter.attempt("bob", "2.2.2.2").is_ok(),
            "bob himself, elsewhere, is not locked out"
        );
        assert!(limiter.attempt("alice", "1.1.1.1").is_ok());
        limiter.succeeded("bob", "1.1.1.1");
        assert!(limiter.attempt("bob", "1.1.1.1").is_ok());
        let many = LoginLimiter::default();
        let allowed = (0..ADDRESS_ATTEMPTS + 10)
            .filter(|i| many.attempt(&format!("user{i}"), "3.3.3.3").is_ok())
            .count();
        assert_eq!(
            allowed, ADDRESS_ATTEMPTS as usize,
            "one address cannot try many accounts"
        );
    }
}
