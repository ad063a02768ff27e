//! The HTTP side: the router, HTTP-FLV delivery (`GET /live/<id>.flv`) and HTTP ingest
//! (`POST /ingest/<key>.flv`, one long chunked FLV upload, as Meerkat did).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use rtmp::MediaKind;

use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::access::{AccessCheck, Credentials};
use crate::api::{self, ApiError};
use crate::app::{App, PublishError, Publishing, Watching};
use crate::hub::{Frame, Next, Subscription};
use crate::store::DeliveryPath;

/// Largest FLV tag accepted from an HTTP publisher, as for RTMP.
const MAX_TAG_BYTES: u32 = 16 << 20;
/// A publisher silent this long is gone.
pub const INGEST_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes a viewer takes from the ring per wake-up.
const VIEWER_BATCH_BYTES: usize = 256 << 10;

/// A handler must have answered (its status and headers; a body may stream on) within
/// this, or the client gets 408: it bounds a slowly sent request body and a handler stuck
/// on something, while the longest legitimate wait, a blocking playlist request, is three
/// target durations (6 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route. A handler that panics answers 500 and harms no other request.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(api::routes())
        .route("/api/{*rest}", axum::routing::any(api::not_found))
        .route("/live/{file}", get(watch_flv).options(preflight))
        .route("/metrics", get(metrics))
        .merge(crate::hls::routes())
        .merge(crate::web::routes(crate::web::Assets::load()))
        .route(
            "/whip",
            post(crate::webrtc::whip::publish_bearer).layer(DefaultBodyLimit::max(crate::webrtc::whip::MAX_OFFER)),
        )
        .route(
            "/whip/{key}",
            post(crate::webrtc::whip::publish_keyed).layer(DefaultBodyLimit::max(crate::webrtc::whip::MAX_OFFER)),
        )
        .route(
            "/whep/{id}",
            post(crate::webrtc::whep::play)
                .options(preflight_whep)
                .layer(DefaultBodyLimit::max(crate::webrtc::whip::MAX_OFFER)),
        )
        .route(
            "/whep/resource/{id}",
            axum::routing::patch(crate::webrtc::whep::patch_whep)
                .delete(crate::webrtc::whep::delete_whep)
                .layer(DefaultBodyLimit::max(crate::webrtc::sdpfrag::MAX_LEN)),
        )
        .route(
            "/whip/resource/{id}",
            axum::routing::patch(crate::webrtc::whip::patch_whip)
                .delete(crate::webrtc::whip::delete_whip)
                .layer(DefaultBodyLimit::max(crate::webrtc::sdpfrag::MAX_LEN)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // An upload lasts as long as its broadcast: it has its own idle timeout instead.
        .route("/ingest/{file}", post(ingest_flv).layer(DefaultBodyLimit::disable()))
        .layer(CatchPanicLayer::new())
        .with_state(app)
}

impl axum::extract::FromRef<Arc<App>> for crate::webrtc::whep::Whep {
    fn from_ref(app: &Arc<App>) -> Self {
        crate::webrtc::whep::Whep {
            relays: app.relays.clone(),
            admission: app.admission.clone(),
            store: app.store.clone(),
            metrics: app.metrics.clone(),
            sessions: app.webrtc.clone(),
            ip: app.webrtc_ip,
        }
    }
}

/// WHEP's CORS preflight: a player on another origin may POST its offer.
async fn preflight_whep() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type, Authorization"),
            (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Location, ETag"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

impl axum::extract::FromRef<Arc<App>> for crate::hls::Serving {
    fn from_ref(app: &Arc<App>) -> Self {
        crate::hls::Serving {
            hls: app.hls.clone(),
            hub: app.hub.clone(),
            recordings: app.recordings.clone(),
            admission: app.admission.clone(),
            relays: app.relays.clone(),
            store: app.store.clone(),
            metrics: app.metrics.clone(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::UnknownKey => ApiError::new(StatusCode::NOT_FOUND, "unknown_stream_key", e.to_string()),
            PublishError::AlreadyLive => ApiError::new(StatusCode::CONFLICT, "already_live", e.to_string()),
            PublishError::Ended => ApiError::new(StatusCode::GONE, "broadcast_ended", e.to_string()),
            PublishError::Internal(e) => e.into(),
        }
    }
}

/// The Prometheus metrics, for a scraper on this machine: operational detail (viewers,
/// traffic, queues) is not for everyone, so other addresses get 404 (scrape through a
/// local agent, or a proxy that authenticates).
async fn metrics(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<crate::peer::Peer>) -> Response {
    if !peer.addr.ip().is_loopback() {
        return ApiError::not_found("page").into_response();
    }
    app.metrics.store_queue.set(app.store.queued() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn watch_flv(
    State(app): State<Arc<App>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    request_headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<crate::peer::Peer>,
) -> Result<Response, ApiError> {
    let id = file.strip_suffix(".flv").ok_or_else(|| ApiError::not_found("stream"))?;
    let not_live = || ApiError::new(StatusCode::NOT_FOUND, "not_live", "the broadcast is not live");
    let viewer = Credentials::of_request(&app.store, query.as_deref(), &request_headers).await;
    // Another node pulling the stream for its own viewers (who it admits itself): not a
    // viewer here.
    let relay = request_headers
        .get(crate::relay::RELAY_HEADER)
        .is_some_and(|secret| app.relays.is_secret(secret.as_bytes()));
    // Access first: a stranger learns nothing of a private broadcast, not even whether it
    // is live.
    let gate = app.admission.gate(id).await?.ok_or_else(not_live)?;
    if !relay && !app.admission.admits(id, &gate.access(), &viewer) {
        return Err(private());
    }
    let stream = if relay {
        app.hub.get(id)
    } else {
        app.relays.stream(id).await
    }
    .ok_or_else(not_live)?;
    let watching = (!relay).then(|| {
        Watching::begin(
            &app.store,
            &app.metrics,
            id,
            viewer.user,
            &peer.addr.ip().to_string(),
            DeliveryPath::Flv,
        )
    });
    let (headers, sub) = if relay {
        stream.subscribe_relay()
    } else {
        stream.subscribe()
    };
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    pending.push_back(flv::encode_header(
        headers.has_audio,
        headers.has_video || !headers.has_audio,
    ));
    pending.extend(headers.frames.iter().map(|f| f.flv_tag().clone()));
    let state = FlvViewer {
        sub,
        pending,
        batch: Vec::new(),
        relay,
        access: AccessCheck::new(&gate),
        viewer,
        app: app.clone(),
        id: id.to_owned(),
        skipped: 0,
        newest: None,
        tally: app.metrics.sent(DeliveryPath::Flv, app.metrics.delays.of(id)),
    };
    let body = futures_util::stream::unfold(state, next_flv_bytes).map(move |bytes| {
        // The view lasts as long as the response body.
        let _ = &watching;
        bytes
    });
    Ok((
        [
            (header::CONTENT_TYPE, "video/x-flv"),
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The answer to a browser's CORS preflight for media (`OPTIONS`): any page may fetch
/// a broadcast's media, with a `Range`, the way it may fetch it without one.
pub async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "Range"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// The answer to a stranger asking for a private broadcast's media.
pub fn private() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "private_broadcast",
        "this broadcast is private: use the URL with the playback token the API gives its viewers",
    )
}

/// One HTTP-FLV viewer's side of the stream.
struct FlvViewer {
    sub: Subscription,
    pending: VecDeque<Bytes>,
    batch: Vec<Arc<Frame>>,
    /// Another node's pull, which access changes do not end.
    relay: bool,
    /// The viewer is let go after the first batch that finds it no longer admitted.
    access: AccessCheck,
    viewer: Credentials,
    app: Arc<App>,
    id: String,
    /// Frames the hub skipped for this viewer, as counted so far.
    skipped: u64,
    /// The arrival of the newest frame pending, for the delivery stage.
    newest: Option<std::time::Instant>,
    /// What it was sent, and how soon.
    tally: crate::metrics::SentTally,
}

/// Yields the viewer's FLV one shared tag at a time; hyper gathers ready tags into one write.
async fn next_flv_bytes(mut v: FlvViewer) -> Option<(Result<Bytes, std::io::Error>, FlvViewer)> {
    loop {
        if let Some(bytes) = v.pending.pop_front() {
            v.tally.sent(1, bytes.len() as u64);
            if v.pending.is_empty()
                && let Some(arrived) = v.newest.take()
            {
                // Handed to the connection's writer: the socket write follows at once
                // unless the viewer is behind.
                v.tally.delivered(arrived);
            }
            return Some((Ok(bytes), v));
        }
        v.batch.clear();
        match v.sub.next_batch(&mut v.batch, VIEWER_BATCH_BYTES).await {
            Next::Frames => {
                v.pending.extend(v.batch.iter().map(|f| f.flv_tag().clone()));
                v.newest = v.batch.last().map(|f| f.received);
            }
            Next::Ended => return None,
        }
        if v.sub.skipped > v.skipped {
            v.app.metrics.viewer_skipped_frames.inc_by(v.sub.skipped - v.skipped);
            v.skipped = v.sub.skipped;
        }
        if !v.relay
            && !v
                .access
                .still_admitted(|access| v.app.admission.admits(&v.id, access, &v.viewer))
        {
            tracing::info!(broadcast = %v.id, "HTTP-FLV viewer no longer admitted: disconnected");
            return None;
        }
    }
}

async fn ingest_flv(State(app): State<Arc<App>>, Path(file): Path<String>, body: Body) -> Result<Response, ApiError> {
    let key = file
        .strip_suffix(".flv")
        .ok_or_else(|| ApiError::not_found("ingest endpoint"))?;
    let mut publishing = Publishing::begin(&app, key).await?;
    let id = publishing.broadcast_id.clone();
    let mut demuxer = flv::Demuxer::new(MAX_TAG_BYTES);
    let mut data = body.into_data_stream();
    let outcome: Result<(), String> = loop {
        let next = tokio::select! {
            next = tokio::time::timeout(INGEST_IDLE_TIMEOUT, data.next()) => next,
            why = publishing.evicted() => break Err(why.into()),
        };
        let chunk = match next {
            Err(_) => break Err("publisher idle".into()),
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(format!("upload broke: {e}")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        demuxer.push(&chunk);
        let pushed = (|| {
            while let Some(tag) = demuxer.next_tag()? {
                let kind = match tag.kind {
                    flv::TagKind::Audio => MediaKind::Audio,
                    flv::TagKind::Video => MediaKind::Video,
                    flv::TagKind::Script => MediaKind::Data,
                };
                publishing.push(kind, tag.timestamp, tag.body)?;
            }
            Ok::<_, flv::Error>(())
        })();
        if let Err(e) = pushed {
            break Err(e.to_string());
        }
    };
    let frames = publishing.frames;
    // The answer says the broadcast ended: it has, in the store, when it is sent.
    publishing.finish().await;
    match outcome {
        Ok(()) => Ok(Json(serde_json::json!({ "id": id, "state": "ended", "frames": frames })).into_response()),
        Err(reason) => {
            tracing::warn!(broadcast = %id, "HTTP ingest closed: {reason}");
            Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_stream", reason))
        }
    }
}
