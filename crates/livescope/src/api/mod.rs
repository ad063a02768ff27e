//! The JSON API under `/api/`: accounts and sessions, follows, broadcasts and the global
//! list, notifications. Errors are `{"error": "<code>", "message": "..."}` with a 4xx
//! status for the caller's mistakes; request bodies are small and size-limited.

mod broadcasts;
mod csrf;
mod events;
mod interaction;
mod keys;
mod nodes;
mod urls;
mod users;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;

pub use broadcasts::{BroadcastView, WatchUrls};
pub use interaction::Interaction;
pub use urls::Urls;

// Each group of handlers takes only the parts of the server it uses (axum's substates),
// cut out of the whole here, the one place in the API that sees it.

impl FromRef<Arc<App>> for crate::store::Store {
    fn from_ref(app: &Arc<App>) -> Self {
        app.store.clone()
    }
}

impl FromRef<Arc<App>> for broadcasts::Views {
    fn from_ref(app: &Arc<App>) -> Self {
        broadcasts::Views {
            urls: Urls::new(
                app.config.public_host.clone(),
                app.http_addr,
                app.rtmp_addr,
                app.rtmps_addr,
                app.config.tls.is_some(),
            ),
            players: app.players.clone(),
            admission: app.admission.clone(),
            verdicts: app.verdicts.clone(),
        }
    }
}

impl FromRef<Arc<App>> for broadcasts::Broadcasts {
    fn from_ref(app: &Arc<App>) -> Self {
        broadcasts::Broadcasts {
            store: app.store.clone(),
            views: FromRef::from_ref(app),
            admission: app.admission.clone(),
            traces: app.traces.clone(),
            metrics: app.metrics.clone(),
        }
    }
}

impl FromRef<Arc<App>> for users::Accounts {
    fn from_ref(app: &Arc<App>) -> Self {
        users::Accounts {
            store: app.store.clone(),
            logins: app.logins.clone(),
            views: FromRef::from_ref(app),
        }
    }
}

impl FromRef<Arc<App>> for keys::SigningKeys {
    fn from_ref(app: &Arc<App>) -> Self {
        keys::SigningKeys {
            store: app.store.clone(),
            key_changes: app.key_changes.clone(),
        }
    }
}

impl FromRef<Arc<App>> for events::Notices {
    fn from_ref(app: &Arc<App>) -> Self {
        events::Notices {
            store: app.store.clone(),
            notifier: app.notifier.clone(),
        }
    }
}

impl FromRef<Arc<App>> for Interaction {
    fn from_ref(app: &Arc<App>) -> Self {
        Interaction {
            store: app.store.clone(),
            admission: app.admission.clone(),
            rooms: app.rooms.clone(),
            players: app.players.clone(),
        }
    }
}

/// API request bodies are small JSON documents.
const BODY_LIMIT: usize = 64 << 10;

/// The API's routes, and `/api/openapi.json`: the OpenAPI document is built from the
/// same handler annotations that register the routes, so the two cannot drift apart.
pub fn routes() -> Router<Arc<App>> {
    let (router, mut doc) = OpenApiRouter::new()
        .routes(routes!(users::register))
        .routes(routes!(users::profile))
        .routes(routes!(users::follow, users::unfollow))
        .routes(routes!(users::followers))
        .routes(routes!(users::following))
        .routes(routes!(users::login, users::logout))
        .routes(routes!(users::me))
        .routes(routes!(keys::add, keys::mine))
        .routes(routes!(keys::revoke))
        .routes(routes!(events::stream))
        .routes(routes!(events::notifications))
        .routes(routes!(broadcasts::feed))
        .routes(routes!(broadcasts::mine))
        .routes(routes!(broadcasts::create, broadcasts::list))
        .routes(routes!(broadcasts::get))
        .routes(routes!(broadcasts::rotate_key, broadcasts::revoke_key))
        .routes(routes!(broadcasts::stats))
        .routes(routes!(broadcasts::get_viewers, broadcasts::set_viewers))
        .routes(routes!(broadcasts::set_signature_policy))
        .routes(routes!(broadcasts::trace))
        .routes(routes!(broadcasts::delay))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::ingest))
        .routes(routes!(interaction::audience))
        .routes(routes!(interaction::timeline))
        .split_for_parts();
    doc.info.title = "livescope".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "The livescope API. Errors are `{\"error\": \"<code>\", \"message\": \"...\"}` with a 4xx status \
         for the caller's mistakes; besides those listed, any operation can answer 400 (a bad query), 401 \
         `invalid_session` (a token for an ended session) and 413 (a body over 64 KiB). Log in with `POST /api/sessions`; send the token as `Authorization: \
         Bearer <token>` (or the session cookie)."
            .into(),
    );
    doc.components
        .get_or_insert_default()
        .add_security_scheme("session", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    let doc = Arc::new(serde_json::to_value(&doc).expect("the OpenAPI document serializes"));
    router
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .route("/api/broadcasts/{id}/live", get(crate::room::socket::live))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(csrf::same_origin_only))
        .layer(axum::middleware::map_response(json_errors))
}

/// Errors that axum itself answers (a body over the limit, a method a route lacks, a bad
/// path segment) get the API's JSON error body too.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        text => text.to_owned(),
    };
    let mut json = ApiError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            json.headers_mut().insert(name, v.clone());
        }
    }
    json
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code, e.g. `username_taken`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

/// A URL query, like axum's `Query`, but a bad one is answered with the API's JSON error.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text())),
        }
    }
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
