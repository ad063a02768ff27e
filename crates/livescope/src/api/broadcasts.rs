//! Broadcasts: creating one (logged in; it belongs to its creator), its stream key (shown
//! once, stored hashed, rotated or revoked by the owner), the global list, the feed of
//! people one follows, and audience statistics.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::urls::Urls;
use super::{ApiError, ApiQuery, ErrorBody, json_body, limit, random_token, rfc3339};
use crate::admission::Admission;
use crate::auth;
use crate::players::Players;
use crate::store::{Broadcast, ListOrder, SignaturePolicy, State as Life, Stats, Store, User};

/// Longest broadcast title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most people a private broadcast can be for.
pub const MAX_ALLOWED_VIEWERS: usize = 1000;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBroadcast {
    #[serde(default)]
    title: Option<String>,
    /// Makes the broadcast private: only these users (and the owner) may watch it.
    #[serde(default)]
    viewers: Option<Vec<String>>,
    /// What the server does if the broadcast is signed and turns out tampered with:
    /// `alert` (the default), `drop` (relay only stretches whose signature matched) or `end`.
    #[serde(default)]
    signature_policy: SignaturePolicy,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    signature_policy: SignaturePolicy,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishUrls {
    pub rtmp: String,
    /// RTMP over TLS, when the server has a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps: Option<String>,
    pub http: String,
    /// WHIP (RFC 9725): POST an SDP offer of H.264 and Opus here, from a browser or OBS
    /// 30+. OBS can also take `<server>/whip` with the stream key as its bearer token.
    pub whip: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WatchUrls {
    pub rtmp: String,
    pub flv: String,
    /// Live: the LL-HLS media playlist (`master.m3u8` beside it lists bit rates, codecs,
    /// resolution and frame rate). Ended: the replay's multivariant playlist, which names
    /// the whole recording (`recording.m3u8`).
    pub hls: String,
    /// WHEP (WebRTC playback), the lowest delay: POST an SDP offer here. Live only.
    pub whep: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BroadcastView {
    pub id: String,
    pub owner: Option<String>,
    pub title: String,
    pub private: bool,
    pub state: Life,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub viewers: usize,
    pub watch: WatchUrls,
    /// What the server does if the broadcast's signatures do not match.
    pub signature_policy: SignaturePolicy,
    /// What the broadcast's signatures say, once it has gone live since the server started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureView>,
}

/// A broadcast's signatures as checked at ingest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    /// `verified`, `not_yet_verified`, `unsigned` or `tampered`.
    pub state: &'static str,
    /// Records checked in full (verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// The media time (ms, the publisher's clock) from which it was tampered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tampered_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The spans of media time (ms, from and to) that did not match their signatures, the
    /// most recent 64.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flagged_ms: Vec<[u64; 2]>,
    /// How many stretches did not match, in all.
    #[serde(skip_serializing_if = "is_zero")]
    pub mismatches: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<crate::integrity::Checked> for SignatureView {
    fn from(c: crate::integrity::Checked) -> Self {
        let (state, records, tampered_at_ms, reason) = match c.verdict {
            signed::Verdict::NotYetVerified => ("not_yet_verified", None, None, None),
            signed::Verdict::Verified { records } => ("verified", Some(records), None, None),
            signed::Verdict::Unsigned => ("unsigned", None, None, None),
            signed::Verdict::Tampered { at_ms, reason } => ("tampered", None, Some(at_ms), Some(reason)),
        };
        SignatureView {
            state,
            records,
            tampered_at_ms,
            reason,
            flagged_ms: c.flagged.into_iter().map(|(from, to)| [from, to]).collect(),
            mismatches: c.mismatches,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedBroadcast {
    #[serde(flatten)]
    pub broadcast: BroadcastView,
    /// The secret that lets its holder publish. Shown only in this answer.
    pub stream_key: String,
    pub publish: PublishUrls,
}

/// What the broadcasts' handlers use: the store, how to show a broadcast, who may watch
/// it, and its delay figures and arrival trace.
#[derive(Clone)]
pub struct Broadcasts {
    pub store: Store,
    pub views: Views,
    pub admission: Admission,
    pub traces: crate::trace::Traces,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What showing a broadcast takes: its URLs, its players now, a playback token for a
/// private one and what its signatures say.
#[derive(Clone)]
pub struct Views {
    pub urls: Urls,
    pub players: Players,
    pub admission: Admission,
    pub verdicts: Arc<crate::integrity::Verdicts>,
}

impl Views {
    /// What the API shows of a broadcast. Only called for broadcasts the caller may watch:
    /// a private one's watch URLs carry a playback token.
    pub fn view(&self, b: &Broadcast, host: &str) -> BroadcastView {
        let viewers = self.players.of(&b.id);
        let query = if b.private {
            let (token, _) = self
                .admission
                .playback()
                .issue(&b.id, b.access_epoch, crate::playback::now_secs());
            format!("?token={token}")
        } else {
            String::new()
        };
        let playlist = if b.state == Life::Ended {
            "master.m3u8"
        } else {
            "index.m3u8"
        };
        BroadcastView {
            id: b.id.clone(),
            owner: b.owner.clone(),
            title: b.title.clone(),
            private: b.private,
            state: b.state,
            created_at: rfc3339(b.created_at),
            started_at: b.started_at.map(rfc3339),
            ended_at: b.ended_at.map(rfc3339),
            viewers,
            signature_policy: b.signature_policy,
            signature: self.verdicts.checked(&b.id).map(SignatureView::from),
            watch: WatchUrls {
                rtmp: self.urls.rtmp(host, &format!("live/{}{query}", b.id)),
                flv: self.urls.http(host, &format!("live/{}.flv{query}", b.id)),
                hls: self.urls.http(host, &format!("hls/{}/{playlist}{query}", b.id)),
                whep: self.urls.http(host, &format!("whep/{}{query}", b.id)),
            },
        }
    }

    /// Where to publish with `key`.
    fn publish(&self, host: &str, key: &str) -> PublishUrls {
        PublishUrls {
            rtmp: self.urls.rtmp(host, &format!("live/{key}")),
            rtmps: self.urls.rtmps(host, &format!("live/{key}")),
            http: self.urls.http(host, &format!("ingest/{key}.flv")),
            whip: self.urls.http(host, &format!("whip/{key}")),
        }
    }
}

fn new_stream_key() -> String {
    format!("live_{}", random_token(32))
}

/// A new broadcast of the logged-in user; private when `viewers` is given.
#[utoipa::path(post, path = "/api/broadcasts", tag = "broadcasts", request_body = CreateBroadcast,
    security(("session" = [])), responses(
    (status = 201, description = "The broadcast, its stream key (shown only here) and publish URLs", body = CreatedBroadcast),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 422, description = "A field is invalid", body = ErrorBody),
))]
pub async fn create(State(api): State<Broadcasts>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let owner = auth::require_user(&api.store, &headers).await?;
    let request: CreateBroadcast = json_body(&body)?;
    let title = request.title.unwrap_or_default();
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title_too_long",
            format!("title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
    let allowed = match request.viewers {
        Some(names) => Some(allowed_ids(&api.store, names).await?),
        None => None,
    };
    let id = random_token(12);
    let stream_key = new_stream_key();
    let key = stream_key.clone();
    let broadcast = api
        .store
        .call(move |db| {
            let created = db.create_broadcast(&id, owner.id, &key, &title, allowed.as_deref())?;
            if created.signature_policy == request.signature_policy {
                return Ok(created);
            }
            // Not live yet: any policy may be set.
            db.set_signature_policy(&id, request.signature_policy)?;
            Ok(db.get(&id)?.expect("a broadcast just stored"))
        })
        .await?;
    let host = api.views.urls.host(&headers);
    let created = CreatedBroadcast {
        broadcast: api.views.view(&broadcast, &host),
        publish: api.views.publish(&host, &stream_key),
        stream_key,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Where the broadcast's delay goes, per stage the server measures (see `delay.rs`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DelayView {
    /// Per stage (`upload`, `chunking`, `blocking_wait`, `delivery_rtmp`, `delivery_flv`,
    /// `player_buffer`), those measured so far.
    pub stages: std::collections::BTreeMap<&'static str, crate::delay::Summary>,
    /// How the upload stage is measured.
    pub upload_clock: &'static str,
}

/// Where the broadcast's delay goes, stage by stage, live; for whoever may watch it.
#[utoipa::path(get, path = "/api/broadcasts/{id}/delay", tag = "broadcasts", params(("id" = String, Path)),
    responses(
    (status = 200, body = DelayView),
    (status = 403, description = "A private broadcast", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn delay(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DelayView>, ApiError> {
    visible(&api, &headers, &id).await?;
    let stages = api
        .metrics
        .delays
        .get(&id)
        .map(|d| d.summary().into_iter().collect())
        .unwrap_or_default();
    Ok(Json(DelayView {
        stages,
        upload_clock: "a frame's arrival against its media time, less the smallest such difference in the last minute (the publisher's clock offset, estimated by its fastest frame: the error is that frame's own delay)",
    }))
}

/// The broadcast's arrival trace (CSV: each frame's media time, arrival at the server, size
/// and keyframe flag), live or ended; for whoever may watch it.
#[utoipa::path(get, path = "/api/broadcasts/{id}/trace", tag = "broadcasts", params(("id" = String, Path)),
    responses(
    (status = 200, description = "The trace, text/csv", content_type = "text/csv"),
    (status = 403, description = "A private broadcast", body = ErrorBody),
    (status = 404, description = "No such broadcast, or it never went live", body = ErrorBody),
))]
pub async fn trace(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    visible(&api, &headers, &id).await?;
    let path = api.traces.file(&id).ok_or_else(|| ApiError::not_found("trace"))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::not_found("trace"))?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// The broadcast, if the caller may see it: a private one is refused to strangers (403).
async fn visible(api: &Broadcasts, headers: &HeaderMap, id: &str) -> Result<(Broadcast, Option<User>), ApiError> {
    let me = auth::current_user(&api.store, headers).await?;
    let broadcast = api
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    let access = api
        .admission
        .access(id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    if !access.allows_user(me.as_ref().map(|u| u.id)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "private_broadcast",
            "this broadcast is private",
        ));
    }
    Ok((broadcast, me))
}

/// One broadcast: its state, times, viewers and watch URLs.
#[utoipa::path(get, path = "/api/broadcasts/{id}", tag = "broadcasts", params(("id" = String, Path)), responses(
    (status = 200, body = BroadcastView),
    (status = 403, description = "A private broadcast, not for the caller", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn get(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<BroadcastView>, ApiError> {
    let (broadcast, _) = visible(&api, &headers, &id).await?;
    Ok(Json(api.views.view(&broadcast, &api.views.urls.host(&headers))))
}

/// The owner's broadcast, or 404 (not found) / 403 (someone else's).
async fn owned(api: &Broadcasts, headers: &HeaderMap, id: &str) -> Result<Broadcast, ApiError> {
    let me = auth::require_user(&api.store, headers).await?;
    let broadcast = api
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    if broadcast.owner_id != Some(me.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            "only the broadcast's owner may do this",
        ));
    }
    Ok(broadcast)
}

/// Sets what the server does if the broadcast's signatures do not match. Between `alert`
/// and `end` it changes at once, even live; `drop` is chosen or left before the broadcast
/// goes live (it decides how ingest is set up), so a live one answers 409. Owner only.
#[utoipa::path(put, path = "/api/broadcasts/{id}/signature_policy", tag = "broadcasts", params(("id" = String, Path)),
    request_body = PolicyRequest, security(("session" = [])), responses(
    (status = 200, body = BroadcastView),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
    (status = 409, description = "Live, and `drop` chosen or left", body = ErrorBody),
))]
pub async fn set_signature_policy(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<BroadcastView>, ApiError> {
    owned(&api, &headers, &id).await?;
    let request: PolicyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    let changed = id.clone();
    let (set, broadcast) = api
        .store
        .call(move |db| {
            Ok((
                db.set_signature_policy(&changed, request.signature_policy)?,
                db.get(&changed)?,
            ))
        })
        .await?;
    if !set {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "policy_fixed_while_live",
            "drop is chosen before going live: it decides how the server takes the stream in",
        ));
    }
    let broadcast = broadcast.ok_or_else(|| ApiError::not_found("broadcast"))?;
    Ok(Json(api.views.view(&broadcast, &api.views.urls.host(&headers))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NewKey {
    /// Shown only in this answer; the previous key no longer works.
    stream_key: String,
    publish: PublishUrls,
}

/// A new stream key; the old one stops working. Owner only.
#[utoipa::path(post, path = "/api/broadcasts/{id}/stream_key", tag = "broadcasts", params(("id" = String, Path)),
    security(("session" = [])), responses(
    (status = 201, body = NewKey),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn rotate_key(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let broadcast = owned(&api, &headers, &id).await?;
    let stream_key = new_stream_key();
    let (changed, key) = (broadcast.id.clone(), stream_key.clone());
    api.store
        .call(move |db| db.set_stream_key(&changed, Some(&key)))
        .await?;
    api.admission.evict_publisher(&broadcast.id).await;
    let host = api.views.urls.host(&headers);
    let body = NewKey {
        publish: api.views.publish(&host, &stream_key),
        stream_key,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Revokes the stream key: nobody can publish with it any more. Owner only.
#[utoipa::path(delete, path = "/api/broadcasts/{id}/stream_key", tag = "broadcasts", params(("id" = String, Path)),
    security(("session" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn revoke_key(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let broadcast = owned(&api, &headers, &id).await?;
    let changed = broadcast.id.clone();
    api.store.call(move |db| db.set_stream_key(&changed, None)).await?;
    api.admission.evict_publisher(&broadcast.id).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Viewers {
    /// Who may watch (besides the owner). An empty list still keeps strangers out.
    viewers: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewerList {
    /// Whether the broadcast is private; when it is not, anyone may watch.
    private: bool,
    /// Who may watch besides the owner (empty for a public broadcast).
    viewers: Vec<String>,
}

/// Who may watch the broadcast. Owner only.
#[utoipa::path(get, path = "/api/broadcasts/{id}/viewers", tag = "broadcasts", params(("id" = String, Path)),
    security(("session" = [])), responses(
    (status = 200, body = ViewerList),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn get_viewers(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ViewerList>, ApiError> {
    let broadcast = owned(&api, &headers, &id).await?;
    Ok(Json(ViewerList {
        private: broadcast.private,
        viewers: api.store.call(move |db| db.allowed_viewer_names(&id)).await?,
    }))
}

/// Sets who may watch a private broadcast (and makes a public one private). Owner only.
#[utoipa::path(put, path = "/api/broadcasts/{id}/viewers", tag = "broadcasts", params(("id" = String, Path)),
    request_body = Viewers, security(("session" = [])), responses(
    (status = 200, body = BroadcastView),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
    (status = 422, description = "An unknown user, or too many", body = ErrorBody),
))]
pub async fn set_viewers(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<BroadcastView>, ApiError> {
    let broadcast = owned(&api, &headers, &id).await?;
    let request: Viewers = json_body(&body)?;
    let allowed = allowed_ids(&api.store, request.viewers).await?;
    let changed = broadcast.id.clone();
    api.store
        .call(move |db| db.set_allowed_viewers(&changed, &allowed))
        .await?;
    api.admission.changed(&broadcast.id).await?;
    let broadcast = api
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("broadcast"))?;
    Ok(Json(api.views.view(&broadcast, &api.views.urls.host(&headers))))
}

/// The ids of the users named, or 422 naming the first unknown one.
async fn allowed_ids(store: &Store, names: Vec<String>) -> Result<Vec<i64>, ApiError> {
    if names.len() > MAX_ALLOWED_VIEWERS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_viewers",
            format!("a private broadcast is for at most {MAX_ALLOWED_VIEWERS} people"),
        ));
    }
    let wanted = names.clone();
    let users = store.call(move |db| db.users_by_names(&wanted)).await?;
    if let Some(unknown) = names
        .iter()
        .find(|n| !users.iter().any(|u| u.username.eq_ignore_ascii_case(n)))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_user",
            format!("no user is called {:?}", unknown.chars().take(64).collect::<String>()),
        ));
    }
    Ok(users.iter().map(|u| u.id).collect())
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `live` (the default) or `ended` (replays).
    state: Option<String>,
    /// `recent` (the default), `viewers` or `random`.
    sort: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Most broadcasts returned (default 50, at most 500).
    limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BroadcastList {
    broadcasts: Vec<BroadcastView>,
}

impl BroadcastList {
    fn of(views: &Views, host: &str, broadcasts: &[Broadcast]) -> BroadcastList {
        BroadcastList {
            broadcasts: broadcasts.iter().map(|b| views.view(b, host)).collect(),
        }
    }
}

/// The global list of public broadcasts (ended ones are replays).
#[utoipa::path(get, path = "/api/broadcasts", tag = "broadcasts", params(ListQuery), responses(
    (status = 200, body = BroadcastList),
    (status = 400, description = "A bad state or sort", body = ErrorBody),
))]
pub async fn list(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<BroadcastList>, ApiError> {
    let bad = |what: &str, allowed: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("{what} must be one of {allowed}"),
        )
    };
    let state = match q.state.as_deref().unwrap_or("live") {
        "live" => Life::Live,
        "ended" => Life::Ended,
        _ => return Err(bad("state", "live, ended")),
    };
    let limit = limit(q.limit, 50, 500);
    let broadcasts = match q.sort.as_deref().unwrap_or("recent") {
        "recent" => {
            api.store
                .call(move |db| db.list(state, ListOrder::Recent, limit))
                .await?
        }
        "random" => {
            api.store
                .call(move |db| db.list(state, ListOrder::Random, limit))
                .await?
        }
        "viewers" => {
            // Viewer counts live in memory: rank every live broadcast by them. Ended
            // broadcasts have none, so they keep their recency order.
            let mut all = api
                .store
                .call(move |db| db.list(state, ListOrder::Recent, 10_000))
                .await?;
            all.sort_by_key(|b| std::cmp::Reverse(api.views.players.of(&b.id)));
            all.truncate(limit);
            all
        }
        _ => return Err(bad("sort", "viewers, recent, random")),
    };
    let host = api.views.urls.host(&headers);
    Ok(Json(BroadcastList::of(&api.views, &host, &broadcasts)))
}

/// Live broadcasts of the people the caller follows.
#[utoipa::path(get, path = "/api/feed", tag = "broadcasts", security(("session" = [])), responses(
    (status = 200, body = BroadcastList),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn feed(State(api): State<Broadcasts>, headers: HeaderMap) -> Result<Json<BroadcastList>, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let host = api.views.urls.host(&headers);
    let broadcasts = api.store.call(move |db| db.feed(me.id, 100)).await?;
    Ok(Json(BroadcastList::of(&api.views, &host, &broadcasts)))
}

/// The caller's own broadcasts, newest first, those not yet live too (the dashboard).
#[utoipa::path(get, path = "/api/me/broadcasts", tag = "broadcasts", params(PageQuery), security(("session" = [])), responses(
    (status = 200, body = BroadcastList),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn mine(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<BroadcastList>, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let host = api.views.urls.host(&headers);
    let limit = limit(q.limit, 50, 500);
    let broadcasts = api.store.call(move |db| db.own(me.id, limit)).await?;
    Ok(Json(BroadcastList::of(&api.views, &host, &broadcasts)))
}

/// Total views, unique viewers and peak concurrent viewers.
#[utoipa::path(get, path = "/api/broadcasts/{id}/stats", tag = "broadcasts", params(("id" = String, Path)), responses(
    (status = 200, body = Stats),
    (status = 403, description = "A private broadcast, not for the caller", body = ErrorBody),
    (status = 404, description = "No such broadcast", body = ErrorBody),
))]
pub async fn stats(
    State(api): State<Broadcasts>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Stats>, ApiError> {
    let (broadcast, _) = visible(&api, &headers, &id).await?;
    Ok(Json(api.store.call(move |db| db.stats(&broadcast.id)).await?))
}
