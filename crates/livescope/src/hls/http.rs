//! HTTP for LL-HLS (RFC 8216bis 6.2.5): playlists with blocking reload and delta updates,
//! the init segment, parts and segments, with the caching headers a CDN needs. The part
//! the preload hint names is answered as soon as it starts and streamed chunk by chunk as
//! it is produced. Replays come from the recordings folder, or in a cluster from the node
//! that recorded them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;

use super::{Bandwidth, Rendition, StreamInfo};
use crate::access::Credentials;
use crate::admission::Admission;
use crate::api::ApiError;
use crate::delay::{Delays, Stage};
use crate::store::{DeliveryPath, Store};

/// Media never changes once published: cache it for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A playlist answered to a blocking request is, for its URL, final: a cache may serve it
/// to everyone who asks for the same msn/part while that part is near the live edge.
const BLOCKING_PLAYLIST: &str = "public, max-age=6";
/// A plain playlist request must see the newest window.
const LIVE_PLAYLIST: &str = "public, max-age=1";
/// A live poster is replaced by a newer picture every segment.
const POSTER: &str = "public, max-age=2";

/// What serving LL-HLS and replays takes: the renditions and the hub (what is live), the
/// recordings, who may watch, relays from other nodes, the store (HLS views) and metrics.
#[derive(Clone)]
pub struct Serving {
    pub hls: Arc<super::Registry>,
    pub hub: Arc<crate::hub::Hub>,
    pub recordings: Option<Arc<super::Recordings>>,
    pub admission: Admission,
    pub relays: Arc<crate::relay::Relays>,
    pub store: Store,
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Serving: FromRef<S>,
{
    Router::new().route("/hls/{id}/{file}", get(file).options(crate::http::preflight))
}

/// What a URL under `/hls/<id>/` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Master,
    Playlist,
    /// The recording's playlist: an EVENT playlist of every segment so far, from the
    /// start of the broadcast, closed with EXT-X-ENDLIST when it ends.
    Recording,
    Init,
    /// A one-picture MP4 of a recent keyframe, for the web app's cards.
    Poster,
    Segment(u64),
    Part(u64),
}

impl File {
    fn parse(name: &str) -> Option<File> {
        Some(match name {
            "master.m3u8" => File::Master,
            "index.m3u8" => File::Playlist,
            "recording.m3u8" => File::Recording,
            "init.mp4" => File::Init,
            "poster.mp4" => File::Poster,
            _ => {
                let stem = name.strip_suffix(".m4s")?;
                if let Some(n) = stem.strip_prefix("seg") {
                    File::Segment(digits(n)?)
                } else {
                    File::Part(digits(stem.strip_prefix("part")?)?)
                }
            }
        })
    }
}

fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// The rendition of a broadcast live on another node, pulled here for this viewer (see
/// [`crate::relay`]); the segmenter makes it from the first frames.
async fn relayed(serving: &Serving, id: &str) -> Option<Arc<super::Rendition>> {
    // A stream published here without a rendition has none to wait for.
    if serving.hub.get(id).is_some() {
        return None;
    }
    serving.relays.stream(id).await?;
    for _ in 0..100 {
        if let Some(rendition) = serving.hls.get(id) {
            return Some(rendition);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

fn not_found() -> Response {
    ApiError::not_found("stream or file").into_response()
}

async fn file(
    State(serving): State<Serving>,
    Path((id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<crate::peer::Peer>>>,
) -> Response {
    let Some(file) = File::parse(&name) else {
        return not_found();
    };
    let query = query.as_deref().unwrap_or("");
    let token = crate::playback::token_in_query(query);
    let rendition = serving.hls.get(&id);
    let access = match &rendition {
        Some(r) => r.gate.access(),
        // A replay is served only for a broadcast the store knows, by its exact id.
        None => match serving.admission.access(&id).await {
            Ok(Some(access)) => access,
            Ok(None) => return not_found(),
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let viewer = Credentials {
        token: token.map(str::to_owned),
        user: None,
    };
    // Another node fetching a replay recorded here has checked its viewer itself; it is
    // not a viewer here, and never pulls the broadcast back from another node.
    let relay = headers
        .get(crate::relay::RELAY_HEADER)
        .is_some_and(|secret| serving.relays.is_secret(secret.as_bytes()));
    if !relay && !serving.admission.admits(&id, &access, &viewer) {
        return crate::http::private().into_response();
    }
    let private = access.private;
    let rendition = match rendition {
        Some(rendition) => Some(rendition),
        None if relay => None,
        None => relayed(&serving, &id).await,
    };
    if let (Some(rendition), File::Playlist, Some(Extension(ConnectInfo(peer))), false) =
        (&rendition, file, peer, relay)
    {
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // An HLS view is an address's, not a user's: looking the session up would put a
        // database read on the playlist's path.
        let gone = rendition.audience.seen(peer.addr.ip(), agent, || {
            let viewer = peer.addr.ip().to_string();
            serving.metrics.viewers.get_or_create(&DeliveryPath::Hls.into()).inc();
            Some(serving.store.join(&id, None, &viewer, DeliveryPath::Hls))
        });
        if let Some(view) = gone {
            super::leave(&serving.store, &serving.metrics, vec![view]);
        }
    }
    // A broadcast ends (in the API) a moment before its playlist says so, and its
    // recording is complete a moment after: a player opening the replay then would get
    // the live window's multivariant playlist. It waits for the recording instead.
    if let (Some(rendition), File::Master, Some(_)) = (&rendition, file, &serving.recordings) {
        // The hub lets go of a stream before the store says it ended.
        let stream_gone = serving.hub.get(&id).is_none();
        wait_for_recording(rendition, stream_gone, RECORDING_WAIT).await;
    }
    let response = match rendition {
        Some(rendition) if from_recording(&rendition, file) => replay(&serving, &id, file, &name).await,
        Some(rendition) => {
            let held = (&serving.metrics.hls_blocking_requests, rendition.delays.clone());
            live(rendition, file, query, held).await
        }
        None => replay(&serving, &id, file, &name).await,
    };
    if let (Some(range), File::Init | File::Segment(_) | File::Part(_)) = (headers.get(header::RANGE), file) {
        return ranged(response, range).await;
    }
    // Only a verified token (digits, a dot, hex) is written into a playlist.
    match token {
        Some(token) if private && matches!(file, File::Master | File::Playlist | File::Recording) => {
            with_token(response, token).await
        }
        _ => response,
    }
}

/// How long a request for an ending broadcast's multivariant playlist waits for its
/// recording to be complete: the end takes two part targets and a file write.
const RECORDING_WAIT: Duration = Duration::from_secs(5);

/// Waits, up to `patience`, for an ending broadcast's recording to be complete; returns at
/// once for a broadcast still live (or one that ended and was recorded). `stream_gone`: its
/// publisher has left, though the segmenter may not have seen it yet.
async fn wait_for_recording(rendition: &Rendition, stream_gone: bool, patience: Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let changed = rendition.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let ending = {
            let st = rendition.state.lock().expect("rendition lock");
            st.window.closing || st.window.ended
        };
        if !(ending || stream_gone) || rendition.recorded.load(Ordering::Acquire) {
            return;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return;
        }
    }
}

/// Whether a live (or just ended) broadcast's file is the recording's to answer: the
/// recording's playlist, segments older than the live window, and, once the recording is
/// complete, the multivariant playlist (which then names the whole recording, so a new
/// player gets the whole broadcast). The live playlist stays the live window's: a URL
/// never contradicts what it said before (RFC 8216bis 6.2.1).
fn from_recording(rendition: &Rendition, file: File) -> bool {
    match file {
        File::Recording => true,
        File::Master => rendition.recorded.load(Ordering::Acquire),
        File::Segment(msn) => {
            let st = rendition.state.lock().expect("rendition lock");
            let oldest = st
                .segments
                .first_key_value()
                .map_or(st.window.next_msn(), |(msn, _)| *msn);
            msn < oldest
        }
        _ => false,
    }
}

/// Adds `?token=` to every URI of a playlist answer, so that a player fetching them
/// carries the token it was given.
async fn with_token(response: Response, token: &str) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 22).await else {
        return not_found();
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len() + 1024);
    for line in text.lines() {
        if line.starts_with('#') {
            let mut rest = line;
            while let Some(at) = rest.find("URI=\"") {
                let (head, tail) = rest.split_at(at + 5);
                let end = tail.find('"').unwrap_or(tail.len());
                out.push_str(head);
                out.push_str(&tail[..end]);
                out.push_str("?token=");
                out.push_str(token);
                rest = &tail[end..];
            }
            out.push_str(rest);
        } else if !line.is_empty() {
            out.push_str(line);
            out.push_str("?token=");
            out.push_str(token);
        }
        out.push('\n');
    }
    let mut response = Response::from_parts(parts, Body::from(out));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// `held` counts the blocking requests waiting, and measures how long they waited.
async fn live(rendition: Arc<Rendition>, file: File, query: &str, held: (&Gauge, Arc<Delays>)) -> Response {
    let query = match ::hls::Query::parse(query) {
        Ok(q) => q,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()).into_response(),
    };
    // RFC 8216bis: a blocking request not satisfied within three target durations gets 503.
    let patience = {
        let st = rendition.state.lock().expect("rendition lock");
        Duration::from_secs(3 * u64::from(st.window.target_duration))
    };
    let deadline = tokio::time::Instant::now() + patience;
    // A part request starts streaming with the part's first chunk; the rest wait for whole
    // parts.
    let notify = match file {
        File::Part(_) => &rendition.grew,
        _ => &rendition.changed,
    };
    let mut waiting: Option<(crate::metrics::Held, tokio::time::Instant)> = None;
    let waited = |waiting: &Option<(_, tokio::time::Instant)>| {
        if let Some((_, since)) = waiting {
            held.1.observe(Stage::BlockingWait, since.elapsed());
        }
    };
    loop {
        let changed = notify.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match answer(&rendition, file, &query) {
            Answer::Now(response) => {
                waited(&waiting);
                return response;
            }
            Answer::Stream(number) => {
                waited(&waiting);
                return part_in_progress(rendition.clone(), number, patience);
            }
            Answer::Wait => {
                waiting.get_or_insert_with(|| (crate::metrics::Held::new(held.0), tokio::time::Instant::now()));
            }
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let mut response =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "not produced in time").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    }
}

enum Answer {
    Now(Response),
    /// The part in progress: stream it as it grows.
    Stream(u64),
    Wait,
}

fn answer(rendition: &Rendition, file: File, query: &::hls::Query) -> Answer {
    let st = rendition.state.lock().expect("rendition lock");
    let ended = st.window.ended;
    let has_media = st.window.current.is_some() || !st.window.segments.is_empty();
    match file {
        File::Master => {
            if st.init.is_none() && !ended {
                return Answer::Wait;
            }
            let text = master_playlist(&st.info, st.bandwidth(), MEDIA_PLAYLIST);
            Answer::Now(playlist(text, LIVE_PLAYLIST))
        }
        File::Playlist => {
            if !has_media && !ended {
                return Answer::Wait;
            }
            match st.window.readiness(query) {
                ::hls::Readiness::TooFar => Answer::Now(
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "too_far",
                        "_HLS_msn is more than two segments ahead",
                    )
                    .into_response(),
                ),
                ::hls::Readiness::Wait => Answer::Wait,
                ::hls::Readiness::Ready => {
                    let skip = query.skip != ::hls::Skip::No;
                    // An ended playlist is final; so is, for its URL, a blocking answer.
                    let cache = if ended {
                        IMMUTABLE
                    } else if query.msn.is_some() {
                        BLOCKING_PLAYLIST
                    } else {
                        LIVE_PLAYLIST
                    };
                    Answer::Now(playlist(st.window.render(skip), cache))
                }
            }
        }
        File::Recording => Answer::Now(not_found()),
        File::Init => match &st.init {
            Some(init) => Answer::Now(media(init.clone(), "video/mp4")),
            None if !ended => Answer::Wait,
            None => Answer::Now(not_found()),
        },
        File::Poster => match st.poster() {
            Some([init, part]) => {
                let length = init.len() + part.len();
                let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(init), Ok(part)]);
                let mut response = media_body(Body::from_stream(chunks), "video/mp4");
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                // A newer picture comes with every segment.
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static(POSTER));
                Answer::Now(response)
            }
            None => Answer::Now(not_found()),
        },
        File::Segment(msn) => match st.segments.get(&msn) {
            Some(seg) => Answer::Now(media(seg.clone(), "video/iso.segment")),
            // The segment in progress, or the next one: hold until it is complete.
            None if !ended && msn >= st.window.next_msn() && msn <= st.window.next_msn() + 1 => Answer::Wait,
            None => Answer::Now(not_found()),
        },
        File::Part(number) => match st.parts.get(&number) {
            Some(part) => Answer::Now(media(part.clone(), "video/iso.segment")),
            // The part the preload hint names, once it has begun.
            None if !ended && number == st.window.next_part() && !st.building.is_empty() => Answer::Stream(number),
            // That part before its first chunk, or the one after (a player a little ahead).
            None if !ended && (number == st.window.next_part() || number == st.window.next_part() + 1) => Answer::Wait,
            None => Answer::Now(not_found()),
        },
    }
}

/// Where a stream of the part in progress stands.
enum Progress {
    /// The next chunk (shared by every viewer of the part, not copied).
    More(Bytes),
    /// The part is complete: the rest of it.
    Last(Bytes),
    /// Nothing new yet.
    Wait,
    /// The part will never be complete (the stream ended or moved on without it).
    Gone,
}

/// Streams part `number` while it is produced: the chunks it has, then each new chunk as
/// it comes, until the part is complete. If the part is abandoned or stalls for `patience`,
/// the response is cut short (not ended cleanly), so that no cache keeps a partial part.
fn part_in_progress(rendition: Arc<Rendition>, number: u64, patience: Duration) -> Response {
    struct Sent {
        rendition: Arc<Rendition>,
        chunks: usize,
        bytes: usize,
        done: bool,
    }
    let start = Sent {
        rendition,
        chunks: 0,
        bytes: 0,
        done: false,
    };
    let body = futures_util::stream::unfold(start, move |mut sent| async move {
        if sent.done {
            return None;
        }
        loop {
            let rendition = sent.rendition.clone();
            let grew = rendition.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            let progress = {
                let st = rendition.state.lock().expect("rendition lock");
                if let Some(part) = st.parts.get(&number) {
                    Progress::Last(part.slice(sent.bytes.min(part.len())..))
                } else if st.window.ended || st.window.next_part() != number {
                    Progress::Gone
                } else if st.building.len() > sent.chunks {
                    Progress::More(st.building[sent.chunks].clone())
                } else {
                    Progress::Wait
                }
            };
            let item = match progress {
                Progress::More(data) => {
                    sent.chunks += 1;
                    sent.bytes += data.len();
                    Ok(data)
                }
                Progress::Last(rest) if rest.is_empty() => return None,
                Progress::Last(rest) => {
                    sent.done = true;
                    Ok(rest)
                }
                Progress::Gone => {
                    sent.done = true;
                    Err(std::io::Error::other("the part was abandoned"))
                }
                Progress::Wait => match tokio::time::timeout(patience, grew).await {
                    Ok(()) => continue,
                    Err(_) => {
                        sent.done = true;
                        Err(std::io::Error::other("the part stalled"))
                    }
                },
            };
            return Some((item, sent));
        }
    });
    media_body(Body::from_stream(body), "video/iso.segment")
}

/// The live media playlist's name, which the live multivariant playlist lists.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// The recording's media playlist, which a replay's multivariant playlist lists.
pub const RECORDING_PLAYLIST: &str = "recording.m3u8";

/// The multivariant playlist: one rendition, with its bit rates, codecs, resolution and
/// frame rate, naming the media playlist `media`.
pub fn master_playlist(info: &StreamInfo, bandwidth: Bandwidth, media: &str) -> String {
    let mut attrs = format!("BANDWIDTH={},AVERAGE-BANDWIDTH={}", bandwidth.peak, bandwidth.average);
    if !info.codecs.is_empty() {
        attrs.push_str(&format!(",CODECS=\"{}\"", info.codecs));
    }
    if let Some((w, h)) = info.resolution.filter(|(w, h)| *w > 0 && *h > 0) {
        attrs.push_str(&format!(",RESOLUTION={w}x{h}"));
    }
    if let Some(rate) = info.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
        attrs.push_str(&format!(",FRAME-RATE={rate:.3}"));
    }
    format!("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-STREAM-INF:{attrs}\n{media}\n")
}

fn playlist(text: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, cache),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        text,
    )
        .into_response()
}

fn media(data: Bytes, content_type: &'static str) -> Response {
    media_body(Body::from(data), content_type)
}

fn media_body(body: Body, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCEPT_RANGES, "bytes"),
        ],
        body,
    )
        .into_response()
}

/// Answers a `Range` request for a whole media object (RFC 9110 section 14): 206 with
/// the bytes asked for, or 416 when they are beyond its end. A part still being produced
/// (its size not known yet) is answered whole, as the RFC allows, and so is a range this
/// server does not take apart (several ranges at once).
async fn ranged(response: Response, range: &HeaderValue) -> Response {
    use axum::body::HttpBody as _;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Some(len) = body.size_hint().exact() else {
        return Response::from_parts(parts, body);
    };
    let Some(wanted) = range.to_str().ok().and_then(|r| byte_range(r, len)) else {
        return Response::from_parts(parts, body);
    };
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return not_found();
    };
    match wanted {
        Ok((first, last)) => {
            parts.status = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {first}-{last}/{len}");
            parts.headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("ASCII"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes.slice(first as usize..=last as usize)))
        }
        Err(()) => {
            let content_range = format!("bytes */{len}");
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [
                    (header::CONTENT_RANGE, content_range),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
                ],
            )
                .into_response()
        }
    }
}

/// The one byte range of `value` (`bytes=first-last`, `bytes=first-` or `bytes=-suffix`)
/// within an object of `len` bytes, as first and last offsets: `None` for what is not
/// a single byte range (answered whole), `Err` for a range that starts past the end.
fn byte_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok())?
    };
    let (first, last) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let suffix = number(suffix)?;
            if suffix == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(suffix), len.checked_sub(1)?)
        }
        (first, "") => (number(first)?, len.saturating_sub(1)),
        (first, last) => {
            let (first, last) = (number(first)?, number(last)?);
            if last < first {
                return None;
            }
            (first, last.min(len.saturating_sub(1)))
        }
    };
    if first >= len {
        return Some(Err(()));
    }
    Some(Ok((first, last)))
}

/// A broadcast that is not live: its recording, if there is one here, else (in a cluster)
/// the one on the node that recorded it.
async fn replay(serving: &Serving, id: &str, file: File, name: &str) -> Response {
    let Some(path) = serving.recordings.as_ref().and_then(|r| r.path(id, name)) else {
        return replay_elsewhere(serving, id, name).await;
    };
    let Ok(data) = tokio::fs::read(&path).await else {
        return replay_elsewhere(serving, id, name).await;
    };
    match file {
        File::Master | File::Playlist | File::Recording => {
            let ended = String::from_utf8_lossy(&data).contains("#EXT-X-ENDLIST");
            playlist(
                String::from_utf8_lossy(&data).into_owned(),
                if ended { IMMUTABLE } else { LIVE_PLAYLIST },
            )
        }
        File::Init | File::Poster => media(data.into(), "video/mp4"),
        File::Segment(_) | File::Part(_) => media(data.into(), "video/iso.segment"),
    }
}

/// How long fetching a replay's file from the node that recorded it may take, whole: its
/// multivariant playlist may wait [`RECORDING_WAIT`] there for a recording to complete.
const REPLAY_FETCH: Duration = Duration::from_secs(20);
/// The largest replay file fetched from another node (a segment or a playlist).
const REPLAY_FILE_BYTES: usize = 64 << 20;

/// A file of a broadcast recorded on another node, fetched whole from that node (which
/// keeps its recordings on its disk). 404 when no node alive recorded it; 502 when that
/// node does not answer.
async fn replay_elsewhere(serving: &Serving, id: &str, name: &str) -> Response {
    use http_body_util::BodyExt as _;
    if !serving.relays.clustered() {
        return not_found();
    }
    let lookup = id.to_owned();
    let node = match serving.store.call(move |db| db.recorded_at(&lookup)).await {
        Ok(Some(node)) => node,
        Ok(None) => return not_found(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let fetch = async {
        let (parts, body) = serving
            .relays
            .get(&node, &format!("/hls/{id}/{name}"), REPLAY_FETCH)
            .await?
            .into_parts();
        let body = http_body_util::Limited::new(body, REPLAY_FILE_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the file: {e}"))?
            .to_bytes();
        anyhow::Ok((parts, body))
    };
    let not_there = |e: &anyhow::Error| {
        e.downcast_ref::<crate::relay::Refused>()
            .is_some_and(|r| r.0 == StatusCode::NOT_FOUND)
    };
    let (parts, body) = match tokio::time::timeout(REPLAY_FETCH, fetch).await {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) if not_there(&e) => return not_found(),
        Ok(Err(e)) => return recording_unreachable(id, &node.name, &format!("{e:#}")),
        Err(_) => return recording_unreachable(id, &node.name, &format!("no answer within {REPLAY_FETCH:?}")),
    };
    let mut response = Response::new(Body::from(body));
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL, header::ACCEPT_RANGES] {
        if let Some(value) = parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// 502: the node that recorded a replay did not give it.
fn recording_unreachable(id: &str, node: &str, why: &str) -> Response {
    tracing::warn!(broadcast = %id, node, "cannot fetch a replay from the node that recorded it: {why}");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "recording_unreachable",
        "the node that recorded this broadcast does not answer; try again",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(byte_range("bytes=-500", 100), Some(Ok((0, 99))));
        assert_eq!(byte_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 100), Some(Err(())));
        for whole in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-1", "bytes=-", ""] {
            assert_eq!(byte_range(whole, 100), None, "{whole}");
        }
    }

    #[test]
    fn parses_only_the_names_it_serves() {
        assert_eq!(File::parse("index.m3u8"), Some(File::Playlist));
        assert_eq!(File::parse("seg12.m4s"), Some(File::Segment(12)));
        assert_eq!(File::parse("part12.m4s"), Some(File::Part(12)));
        assert_eq!(File::parse("poster.mp4"), Some(File::Poster));
        for bad in [
            "seg.m4s",
            "seg-1.m4s",
            "part1.2.m4s",
            "partx.m4s",
            "../x",
            "seg99999999999999999999.m4s",
            "",
        ] {
            assert_eq!(File::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_master_playlist_names_rates_codecs_resolution_and_frame_rate() {
        let info = StreamInfo {
            codecs: "avc1.4d400d,mp4a.40.2".into(),
            resolution: Some((320, 240)),
            frame_rate: Some(29.97003),
        };
        let bandwidth = Bandwidth {
            peak: 1_200_000,
            average: 1_000_000,
        };
        let text = master_playlist(&info, bandwidth, RECORDING_PLAYLIST);
        assert!(text.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.4d400d,mp4a.40.2\",RESOLUTION=320x240,FRAME-RATE=29.970\nrecording.m3u8\n"
        ), "{text}");
    }
}
