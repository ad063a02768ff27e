//! A logged-in user's notifications: live as Server-Sent Events, and stored.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiQuery, ErrorBody, limit, rfc3339};
use crate::auth;

/// What the notifications' handlers use: the store, and the connected event streams.
#[derive(Clone)]
pub struct Notices {
    pub store: crate::store::Store,
    pub notifier: Arc<crate::notify::Notifier>,
}

/// How often an event stream checks that its session still exists.
const SESSION_CHECK: Duration = Duration::from_secs(30);

/// Server-Sent Events: first `ready` (from then on nothing is missed), then
/// `broadcast_started` whenever someone the user follows goes live.
#[utoipa::path(get, path = "/api/me/events", tag = "notifications", security(("session" = [])), responses(
    (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn stream(State(api): State<Notices>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let token = auth::session_token(&headers).unwrap_or_default();
    let rx = api.notifier.subscribe(me.id);
    let ready = futures_util::stream::once(async { Ok::<_, Infallible>(Event::default().event("ready").data("{}")) });
    // The stream ends when the session does (logout or expiry): the session is looked up
    // again every SESSION_CHECK, whether or not events are flowing.
    let start = (rx, api.store, token, tokio::time::Instant::now() + SESSION_CHECK);
    let events = futures_util::stream::unfold(start, |(mut rx, store, token, mut check_at)| async move {
        loop {
            match tokio::time::timeout_at(check_at, rx.recv()).await {
                Ok(None) => return None,
                Ok(Some(e)) => {
                    let event = Event::default().event(e.name).data(&*e.data);
                    return Some((Ok(event), (rx, store, token, check_at)));
                }
                Err(_) => {
                    if !matches!(store.session_user(&token).await, Ok(Some(_))) {
                        return None;
                    }
                    check_at += SESSION_CHECK;
                }
            }
        }
    });
    use futures_util::StreamExt;
    Ok(Sse::new(ready.chain(events)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    limit: Option<usize>,
    /// The `next` of the previous page.
    before: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NotificationView {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    broadcast_id: String,
    owner: Option<String>,
    title: Option<String>,
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    notifications: Vec<NotificationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Stored notifications, newest first.
#[utoipa::path(get, path = "/api/me/notifications", tag = "notifications", params(Page), security(("session" = [])),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
pub async fn notifications(
    State(api): State<Notices>,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<NotificationPage>, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let before = match page.before.as_deref() {
        None => i64::MAX,
        Some(c) => c.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "before is not a cursor from `next`",
            )
        })?,
    };
    let limit = limit(page.limit, 50, 500);
    let rows = api.store.call(move |db| db.notifications(me.id, before, limit)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|n| n.id.to_string()))
        .flatten();
    let notifications = rows
        .into_iter()
        .map(|n| NotificationView {
            id: n.id,
            kind: n.kind,
            owner: n.owner,
            title: n.title,
            broadcast_id: n.broadcast_id,
            created_at: rfc3339(n.created_at),
        })
        .collect();
    Ok(Json(NotificationPage { notifications, next }))
}
