//! WHEP playback: `POST /whep/<id>` with an SDP offer (receive-only H.264, and Opus)
//! plays a live broadcast over WebRTC, the lowest delay a browser can get: frames go out
//! as they arrive, from the next keyframe on (a WHIP publisher is asked for one at once).
//! `PATCH` and `DELETE` on the resource URL work as for WHIP. A WHEP viewer is admitted,
//! bounded and counted like any other: private broadcasts need a playback token or the
//! session of someone allowed, and it counts in the audience as a `webrtc` view.
//!
//! What a WHEP viewer gets: H.264 video (HEVC broadcasts are refused: browsers' WebRTC
//! stacks do not all take it), and Opus audio when the publisher sent Opus (WHIP); an
//! RTMP publisher's AAC is not transcoded, so its WHEP viewers get video only.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Pt};
use str0m::{Event, IceConnectionState};
use tokio::sync::mpsc;

use super::peer::{Peer, Woke};
use super::sessions::{self, Command, Entry, Sessions};
use super::whip::{apply_patch, offer_text};
use crate::access::{AccessCheck, Credentials};
use crate::admission::Admission;
use crate::api::ApiError;
use crate::app::Watching;
use crate::hub::{Codec, Frame, HeaderKind, Next, Stream, Subscription};
use crate::metrics::Metrics;
use crate::relay::Relays;
use crate::store::{DeliveryPath, Store};

/// A viewer whose ICE has not connected by then is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A viewer whose connection was lost has this long to come back (an ICE restart).
const RECONNECT_GRACE: Duration = Duration::from_secs(15);
/// Frames taken from the hub at once.
const BATCH_BYTES: usize = 256 * 1024;

/// What WHEP needs: the streams, who may watch, the audience's bookkeeping, the sessions.
#[derive(Clone)]
pub struct Whep {
    pub relays: Arc<Relays>,
    pub admission: Admission,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub sessions: Arc<Sessions>,
    pub ip: IpAddr,
}

/// `POST /whep/<id>`.
pub async fn play(
    State(whep): State<Whep>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ConnectInfo(peer_addr): ConnectInfo<crate::peer::Peer>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let offer = offer_text(&headers, &body)?;
    let not_live = || ApiError::new(StatusCode::NOT_FOUND, "not_live", "the broadcast is not live");
    let viewer = Credentials::of_request(&whep.store, query.as_deref(), &headers).await;
    // Access first: a stranger learns nothing of a private broadcast.
    let gate = whep.admission.gate(&id).await?.ok_or_else(not_live)?;
    if !whep.admission.admits(&id, &gate.access(), &viewer) {
        return Err(crate::http::private());
    }
    let stream = whep.relays.stream(&id).await.ok_or_else(not_live)?;
    let (stream_headers, sub) = stream.subscribe_at_edge();
    let video = Video::from_headers(&stream_headers.frames);
    if video.hevc {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_codec",
            "this broadcast is HEVC; WebRTC playback takes H.264 (watch it over HTTP-FLV or LL-HLS)",
        ));
    }
    let (entry, commands) = whep.sessions.add(sessions::Kind::Whep, peer_addr.addr.ip())?;
    let mut peer = Peer::new(whep.ip).await?;
    let answer = peer.accept(offer)?;
    let watching = Watching::begin(
        &whep.store,
        &whep.metrics,
        &id,
        viewer.user,
        &peer_addr.addr.ip().to_string(),
        DeliveryPath::Webrtc,
    );
    let location = format!("/whep/resource/{}", entry.id);
    let etag = format!("\"{}\"", peer.rtc.direct_api().local_ice_credentials().ufrag);
    let session = Session {
        peer,
        stream,
        sub,
        video,
        access: AccessCheck::new(&gate),
        viewer,
        admission: whep.admission.clone(),
        id: id.clone(),
        _watching: watching,
    };
    tokio::spawn(session.run(commands, entry));
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
            (header::ETAG, etag),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
            (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Location, ETag".to_owned()),
        ],
        answer,
    )
        .into_response())
}

pub async fn patch_whep(
    State(whep): State<Whep>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::whip::patch(&whep.sessions, sessions::Kind::Whep, &id, &headers, &body).await
}

pub async fn delete_whep(State(whep): State<Whep>, Path(id): Path<String>) -> Result<Response, ApiError> {
    super::whip::delete(&whep.sessions, sessions::Kind::Whep, &id).await
}

/// What the broadcast's H.264 configuration says, for turning its frames into Annex B.
#[derive(Default)]
struct Video {
    /// SPS and PPS, sent in band before each keyframe.
    sets: Vec<bytes::Bytes>,
    length_size: u8,
    hevc: bool,
}

impl Video {
    fn from_headers(frames: &[Arc<Frame>]) -> Video {
        let mut video = Video::default();
        for f in frames {
            video.config(f);
        }
        video
    }

    fn config(&mut self, frame: &Frame) {
        let (Some(HeaderKind::VideoConfig), Codec::Video(tag)) = (frame.header, frame.codec) else {
            return;
        };
        match tag.codec {
            flv::VideoCodec::Hevc => self.hevc = true,
            flv::VideoCodec::Avc => {
                if let Ok(config) =
                    flv::AvcConfig::parse(&frame.payload.slice(tag.header_len.min(frame.payload.len())..))
                {
                    self.length_size = config.nal_length_size;
                    self.sets = config.sps.into_iter().chain(config.pps).collect();
                }
            }
        }
    }
}

/// One WHEP viewer.
struct Session {
    peer: Peer,
    stream: Arc<Stream>,
    sub: Subscription,
    video: Video,
    access: AccessCheck,
    viewer: Credentials,
    admission: Admission,
    id: String,
    /// The view lasts as long as the session.
    _watching: Watching,
}

/// Where each kind of media goes: its mid and payload type.
#[derive(Default)]
struct Outputs {
    video: Option<(Mid, Pt)>,
    audio: Option<(Mid, Pt)>,
}

enum Step {
    Peer(Woke),
    Frames(Next),
    Command(Option<Command>),
    Tick,
}

impl Session {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, entry: Entry) {
        let started = Instant::now();
        let mut events = Vec::new();
        let mut outputs = Outputs::default();
        let mut added: Vec<(Mid, MediaKind)> = Vec::new();
        let mut connected = false;
        let mut batch: Vec<Arc<Frame>> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut closer = None;
        let mut lost: Option<Instant> = None;
        let why: String = 'session: loop {
            if let Err(e) = self.peer.poll(&mut events) {
                break format!("WebRTC failed: {e}");
            }
            if !self.peer.rtc.is_alive() {
                break "the connection closed".into();
            }
            for event in events.drain(..) {
                tracing::debug!(broadcast = %self.id, "WHEP event {event:?}");
                match event {
                    Event::MediaAdded(m) if matches!(m.direction, Direction::SendOnly | Direction::SendRecv) => {
                        // Announced once str0m has set the media up, around the connection.
                        added.push((m.mid, m.kind));
                        outputs = self.outputs(&added);
                    }
                    Event::Connected => {
                        connected = true;
                        // From the live edge as it is now, not as it was at the offer.
                        self.sub = self.stream.subscribe_at_edge().1;
                        outputs = self.outputs(&added);
                        tracing::debug!(broadcast = %self.id, video = ?outputs.video, audio = ?outputs.audio, "WHEP viewer connected");
                        // Start at a keyframe made now, where the publisher can make one.
                        self.stream.want_keyframe();
                    }
                    Event::Closed => break 'session "the viewer closed the connection".into(),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        lost.get_or_insert_with(Instant::now);
                    }
                    Event::IceConnectionStateChange(
                        IceConnectionState::Checking | IceConnectionState::Connected | IceConnectionState::Completed,
                    ) => lost = None,
                    Event::KeyframeRequest(_) => self.stream.want_keyframe(),
                    _ => {}
                }
            }
            batch.clear();
            let step = tokio::select! {
                woke = self.peer.wait() => Step::Peer(woke),
                next = self.sub.next_batch(&mut batch, BATCH_BYTES), if connected => Step::Frames(next),
                command = commands.recv() => Step::Command(command),
                _ = tick.tick() => Step::Tick,
            };
            match step {
                Step::Peer(woke) => {
                    if let Err(e) = self.peer.feed(woke) {
                        break format!("WebRTC failed: {e}");
                    }
                }
                Step::Frames(Next::Ended) => break "the broadcast ended".into(),
                Step::Frames(Next::Frames) => {
                    if !self
                        .access
                        .still_admitted(|access| self.admission.admits(&self.id, access, &self.viewer))
                    {
                        break "no longer admitted".into();
                    }
                    for frame in &batch {
                        self.send(&outputs, frame);
                    }
                }
                Step::Command(Some(Command::Patch(frag, reply))) => {
                    let _ = reply.send(apply_patch(&mut self.peer, frag));
                }
                Step::Command(Some(Command::Close(reply))) => {
                    closer = Some(reply);
                    break "ended by the viewer".into();
                }
                Step::Command(None) => break "the server is shutting down".into(),
                Step::Tick => {
                    if !connected && started.elapsed() > CONNECT_TIMEOUT {
                        break "the viewer never connected (ICE)".into();
                    }
                    if lost.is_some_and(|at| at.elapsed() > RECONNECT_GRACE) {
                        break "the viewer's connection was lost".into();
                    }
                }
            }
        };
        tracing::debug!(broadcast = %self.id, "WHEP session ended: {why}");
        self.peer.close();
        drop(self);
        drop(entry);
        if let Some(reply) = closer {
            let _ = reply.send(());
        }
    }

    /// The negotiated sending media: H.264 (packetization mode 1) and Opus.
    fn outputs(&mut self, added: &[(Mid, MediaKind)]) -> Outputs {
        let mut outputs = Outputs::default();
        for &(mid, kind) in added {
            let Some(writer) = self.peer.rtc.writer(mid) else {
                continue;
            };
            let pt = writer
                .payload_params()
                .find(|p| match kind {
                    MediaKind::Video => {
                        p.spec().codec == RtcCodec::H264 && p.spec().format.packetization_mode == Some(1)
                    }
                    MediaKind::Audio => p.spec().codec == RtcCodec::Opus,
                })
                .map(|p| p.pt());
            match (kind, pt) {
                (MediaKind::Video, Some(pt)) => outputs.video = Some((mid, pt)),
                (MediaKind::Audio, Some(pt)) => outputs.audio = Some((mid, pt)),
                _ => {}
            }
        }
        outputs
    }

    /// Writes one frame to the peer; what it cannot carry is left out.
    fn send(&mut self, outputs: &Outputs, frame: &Frame) {
        if frame.header.is_some() {
            self.video.config(frame);
            return;
        }
        let (target, data, at) = match frame.codec {
            Codec::Video(tag) if tag.packet == flv::VideoPacket::Frame && tag.codec == flv::VideoCodec::Avc => {
                let Some(target) = outputs.video else { return };
                let before: &[bytes::Bytes] = if tag.keyframe { &self.video.sets } else { &[] };
                let body = frame.payload.get(tag.header_len..).unwrap_or_default();
                let Ok(annexb) = flv::to_annexb(body, self.video.length_size, before) else {
                    return;
                };
                let pts = frame.timestamp as i64 + i64::from(tag.composition_time);
                (target, annexb, MediaTime::from_90khz(pts.max(0) as u64 * 90))
            }
            Codec::Audio(tag) if tag.codec == flv::AudioCodec::Opus && !tag.sequence_header => {
                let Some(target) = outputs.audio else { return };
                let body = frame.payload.get(tag.header_len..).unwrap_or_default().to_vec();
                (
                    target,
                    body,
                    MediaTime::new(frame.timestamp * 48, str0m::media::Frequency::FORTY_EIGHT_KHZ),
                )
            }
            _ => return,
        };
        let (mid, pt) = target;
        if let Some(writer) = self.peer.rtc.writer(mid) {
            let _ = writer.write(pt, frame.received, at, data);
        }
    }
}
