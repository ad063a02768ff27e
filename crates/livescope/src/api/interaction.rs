//! What the audience is doing: its delay behind live now, and the stored timeline of
//! comments, hearts and polls by stream time (for replays). The live room itself is the
//! WebSocket in `room::socket`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{ApiError, ApiQuery, ErrorBody, limit};
use crate::access::Credentials;
use crate::app::App;
use crate::auth;
use crate::room::Audience;
use crate::store::Timeline;

/// `GET /api/broadcasts/<id>/audience`.
#[utoipa::path(get, path = "/api/broadcasts/{id}/audience", tag = "interaction", params(("id" = String, Path)),
    security(("session" = [])), responses(
    (status = 200, description = "Viewers now and their delay behind live, from the players' reports", body = Audience),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the broadcaster", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn audience(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Audience>, ApiError> {
    let me = auth::require_user(&app, &headers).await?;
    let broadcast = app
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    if broadcast.owner_id != Some(me.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            "only the broadcaster can see the audience",
        ));
    }
    Ok(Json(match app.rooms.get(&id) {
        Some(room) => room.audience(&app),
        None => Audience {
            connected: 0,
            viewers: app.players(&id),
            reporting: 0,
            delay_p50_ms: None,
            delay_p90_ms: None,
            delay_p99_ms: None,
            delay_max_ms: None,
            histogram: Vec::new(),
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Span {
    /// Stream time (ms) from which, inclusive; default 0.
    from: Option<i64>,
    /// Stream time (ms) up to which, inclusive; default the end.
    to: Option<i64>,
    /// Most comments returned (default 500, at most 5,000).
    limit: Option<usize>,
    /// A private broadcast's playback token.
    token: Option<String>,
}

/// `GET /api/broadcasts/<id>/timeline?from=&to=`.
#[utoipa::path(get, path = "/api/broadcasts/{id}/timeline", tag = "interaction", params(("id" = String, Path), Span),
    responses(
    (status = 200, description = "Comments, hearts per second and polls, by stream time", body = Timeline),
    (status = 403, description = "A private broadcast, without its token", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn timeline(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(span): ApiQuery<Span>,
) -> Result<Json<Timeline>, ApiError> {
    let access = app.access(&id).await?.ok_or_else(|| ApiError::not_found("broadcast"))?;
    let viewer = Credentials {
        token: span.token.clone(),
        user: auth::current_user(&app, &headers).await?.map(|u| u.id),
    };
    if !app.admits(&id, &access, &viewer) {
        return Err(crate::http::private());
    }
    let (from, to) = (span.from.unwrap_or(0), span.to.unwrap_or(i64::MAX));
    if from > to {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_query", "from is after to"));
    }
    let limit = limit(span.limit, 500, 5000);
    Ok(Json(app.store.call(move |db| db.timeline(&id, from, to, limit)).await?))
}
