//! The JSON API under `/api/`: creating and inspecting broadcasts. Errors are
//! `{"error": "<code>", "message": "..."}` with a 4xx status for the caller's mistakes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::store::{self, Broadcast};

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

/// Longest broadcast title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBroadcast {
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishUrls {
    pub rtmp: String,
    pub http: String,
}

#[derive(Debug, Serialize)]
pub struct WatchUrls {
    pub rtmp: String,
    pub flv: String,
    /// The LL-HLS media playlist (`master.m3u8` beside it lists codecs and resolution).
    pub hls: String,
}

#[derive(Debug, Serialize)]
pub struct BroadcastView {
    pub id: String,
    pub title: String,
    pub state: store::State,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub viewers: usize,
    pub watch: WatchUrls,
}

#[derive(Debug, Serialize)]
pub struct CreatedBroadcast {
    #[serde(flatten)]
    pub broadcast: BroadcastView,
    /// The secret that lets its holder publish. Shown only in this answer.
    pub stream_key: String,
    pub publish: PublishUrls,
}

/// Who may create broadcasts. Anyone for now; accounts will decide here.
fn authorize_create(_headers: &HeaderMap) -> Result<(), ApiError> {
    Ok(())
}

pub async fn create_broadcast(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_create(&headers)?;
    let request: CreateBroadcast = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBroadcast::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?
    };
    let title = request.title.unwrap_or_default();
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title_too_long",
            format!("title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    let id = random_token(12);
    let stream_key = format!("live_{}", random_token(32));
    let broadcast = app.store.create(&id, &stream_key, &title)?;
    let host = public_host(&app, &headers);
    let created = CreatedBroadcast {
        broadcast: view(&app, &broadcast, &host),
        publish: PublishUrls {
            rtmp: format!("rtmp://{host}:{}/live/{stream_key}", app.rtmp_addr.port()),
            http: format!("http://{host}:{}/ingest/{stream_key}.flv", app.http_addr.port()),
        },
        stream_key,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn get_broadcast(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<BroadcastView>, ApiError> {
    let broadcast = app.store.get(&id)?.ok_or_else(|| ApiError::not_found("broadcast"))?;
    Ok(Json(view(&app, &broadcast, &public_host(&app, &headers))))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn view(app: &App, b: &Broadcast, host: &str) -> BroadcastView {
    let viewers = app.hub.get(&b.id).map_or(0, |s| s.viewers());
    BroadcastView {
        id: b.id.clone(),
        title: b.title.clone(),
        state: b.state,
        created_at: rfc3339(b.created_at),
        started_at: b.started_at.map(rfc3339),
        ended_at: b.ended_at.map(rfc3339),
        viewers,
        watch: WatchUrls {
            rtmp: format!("rtmp://{host}:{}/live/{}", app.rtmp_addr.port(), b.id),
            flv: format!("http://{host}:{}/live/{}.flv", app.http_addr.port(), b.id),
            hls: format!("http://{host}:{}/hls/{}/index.m3u8", app.http_addr.port(), b.id),
        },
    }
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
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
