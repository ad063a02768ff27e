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
use crate::app::App;
use crate::store::User;

/// The cookie the web app's session travels in.
pub const SESSION_COOKIE: &str = "livescope_session";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins allowed per account within [`LOGIN_WINDOW`] before further attempts are
/// refused (429) until the window has passed.
pub const LOGIN_ATTEMPTS: u32 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// Hashes a password with argon2id (a PHC string with its salt and parameters). Slow on
/// purpose, so it runs off the async workers.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h: PasswordHash| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Checks a password against a stored hash. Without a stored hash (no such account) it
/// still spends the time of a check, so that timing does not tell which names exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
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
    .unwrap_or(false)
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
pub fn current_user(app: &App, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    match app.store.session_user(&token)? {
        Some(user) => Ok(Some(user)),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_session",
            "the session has expired or was ended; log in again",
        )),
    }
}

/// The logged-in user, or 401.
pub fn require_user(app: &App, headers: &HeaderMap) -> Result<User, ApiError> {
    current_user(app, headers)?.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "log in first"))
}

/// Failed logins per account name, forgotten after [`LOGIN_WINDOW`].
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// Whether `name` may try to log in now; if not, how long until it may.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        let map = self.failures.lock().expect("limiter lock");
        match map.get(&name.to_lowercase()) {
            Some((count, since)) if *count >= LOGIN_ATTEMPTS && since.elapsed() < LOGIN_WINDOW => {
                Err(LOGIN_WINDOW - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, name: &str) {
        let mut map = self.failures.lock().expect("limiter lock");
        // Bounded: when it grows large, forget windows that have passed.
        if map.len() >= 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
        }
        let entry = map.entry(name.to_lowercase()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, name: &str) {
        self.failures.lock().expect("limiter lock").remove(&name.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
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
    fn the_limiter_refuses_after_too_many_failures() {
        let limiter = LoginLimiter::default();
        for _ in 0..LOGIN_ATTEMPTS {
            assert!(limiter.check("Bob").is_ok());
            limiter.failed("bob");
        }
        assert!(limiter.check("BOB").is_err());
        assert!(limiter.check("alice").is_ok());
        limiter.succeeded("bob");
        assert!(limiter.check("bob").is_ok());
    }
}
