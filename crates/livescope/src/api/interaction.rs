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
use crate::auth;
use crate::room::Audience;
use crate::store::Timeline;

/// What the audience and timeline handlers use: the store, who may watch, the rooms and the
/// player counts.
#[derive(Clone)]
pub struct Interaction {
    pub store: crate::store::Store,
    pub admission: crate::admission::Admission,
    pub rooms: Arc<crate::room::Rooms>,
    pub players: crate::players::Players,
}

/// `GET /api/broadcasts/<id>/audience`.
#[utoipa::path(get, path = "/api/broadcasts/{id}/audience", tag = "interaction", params(("id" = String, Path)),
    security(("session" = [])), responses(
    (status = 200, description = "Viewers now and their delay behind live, from the players' reports", body = Audience),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the broadcaster", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn audience(
    State(api): State<Interaction>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Audience>, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let broadcast = api
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
    Ok(Json(match api.rooms.get(&id) {
        Some(room) => room.audience(),
        None => Audience {
            connected: 0,
            viewers: api.players.of(&id),
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
    State(api): State<Interaction>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(span): ApiQuery<Span>,
) -> Result<Json<Timeline>, ApiError> {
    let access = api
        .admission
        .access(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    let viewer = Credentials {
        token: span.token.clone(),
        user: auth::current_user(&api.store, &headers).await?.map(|u| u.id),
    };
    if !api.admission.admits(&id, &access, &viewer) {
        return Err(crate::http::private());
    }
    let (from, to) = (span.from.unwrap_or(0), span.to.unwrap_or(i64::MAX));
    if from > to {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_query", "from is after to"));
    }
    let limit = limit(span.limit, 500, 5000);
    Ok(Json(api.store.call(move |db| db.timeline(&id, from, to, limit)).await?))
}
