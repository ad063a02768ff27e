//! The JSON API under `/api/`: accounts and sessions, follows, broadcasts and the global
//! list, notifications. Errors are `{"error": "<code>", "message": "..."}` with a 4xx
//! status for the caller's mistakes; request bodies are small and size-limited.

mod broadcasts;
mod events;
mod users;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::app::App;

pub use broadcasts::{BroadcastView, WatchUrls};

/// API request bodies are small JSON documents.
const BODY_LIMIT: usize = 64 << 10;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/users", post(users::register))
        .route("/users/{name}", get(users::profile))
        .route("/users/{name}/follow", put(users::follow).delete(users::unfollow))
        .route("/users/{name}/followers", get(users::followers))
        .route("/users/{name}/following", get(users::following))
        .route("/sessions", post(users::login).delete(users::logout))
        .route("/me", get(users::me))
        .route("/me/events", get(events::stream))
        .route("/me/notifications", get(events::notifications))
        .route("/feed", get(broadcasts::feed))
        .route("/broadcasts", post(broadcasts::create).get(broadcasts::list))
        .route("/broadcasts/{id}", get(broadcasts::get))
        .route(
            "/broadcasts/{id}/stream_key",
            post(broadcasts::rotate_key).delete(broadcasts::revoke_key),
        )
        .route("/broadcasts/{id}/stats", get(broadcasts::stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Parses a JSON body; an empty body is `T::default()`.
fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))
}

/// A page size from `?limit=`, between 1 and `max`.
fn limit(requested: Option<usize>, default: usize, max: usize) -> usize {
    requested.unwrap_or(default).clamp(1, max)
}

/// Times in answers are RFC 3339, to the millisecond.
fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An error answer. 4xx for the caller's mistakes; 500 only for ours, logged, never detailed.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("internal error: {e:#}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The host name for URLs: configured, else the request's Host header without its port.
fn public_host(app: &App, headers: &HeaderMap) -> String {
    if let Some(host) = &app.config.public_host {
        return host.clone();
    }
    let from_header = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| {
        match h.rsplit_once(':') {
            // Keep IPv6 literals whole: "[::1]:8080" -> "[::1]".
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
            _ => h.to_owned(),
        }
    });
    from_header
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c)))
        .unwrap_or_else(|| app.http_addr.ip().to_string())
}

/// A random string of `len` characters from [A-Za-z0-9] (5.95 bits each).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the OS random source works");
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if (b as usize) < ALPHABET.len() * 4 && out.len() < len {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
