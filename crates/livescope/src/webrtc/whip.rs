//! WHIP ingest (RFC 9725): `POST /whip/<stream_key>` (or `POST /whip` with the stream key
//! as a bearer token, as OBS sends it) with an SDP offer of H.264 and Opus answers with
//! the SDP answer and a resource URL; `PATCH` on it trickles candidates or restarts ICE,
//! `DELETE` ends the broadcast. Media enters the hub through [`Publishing`], the one way
//! into publishing that RTMP and HTTP ingest take: H.264 access units become FLV AVC tags,
//! Opus packets Enhanced RTMP Opus tags.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rtmp::MediaKind as Kind;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::{Event, IceConnectionState, IceCreds};
use tokio::sync::mpsc;

use super::peer::{OfferError, Peer};
use super::sdpfrag::{self, SdpFrag};
use super::sessions::{self, Command, Entry};
use crate::api::ApiError;
use crate::app::{App, PublishError, Publishing};
use crate::store::State as BroadcastState;

/// A publisher whose ICE has not connected by then is given up (a browser connects in
/// well under a second); its broadcast stays as it was.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connected publisher that sends no media for this long has gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// An SDP offer is a few kilobytes; a body larger than this is not one.
pub const MAX_OFFER: usize = 64 * 1024;

/// `POST /whip/<stream_key>`.
pub async fn publish_keyed(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    ConnectInfo(peer): ConnectInfo<crate::peer::Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    publish(app, &key, peer.addr.ip(), &headers, &body).await
}

/// `POST /whip` with `Authorization: Bearer <stream_key>`.
pub async fn publish_bearer(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<crate::peer::Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "give the stream key in the URL (/whip/<stream_key>) or as a bearer token",
            )
        })?
        .to_owned();
    publish(app, &key, peer.addr.ip(), &headers, &body).await
}

/// Whether a request body is of the given media type.
pub fn is_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Reads an SDP offer from a request body.
pub fn offer_text<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, ApiError> {
    if !is_content_type(headers, "application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the SDP offer as application/sdp",
        ));
    }
    std::str::from_utf8(body).map_err(|_| bad_sdp("the SDP offer is not UTF-8"))
}

pub fn bad_sdp(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_sdp", message)
}

impl From<OfferError> for ApiError {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::Malformed(_) => bad_sdp(e.to_string()),
            OfferError::Unsupported(_) => ApiError::new(StatusCode::BAD_REQUEST, "unsupported_codec", e.to_string()),
            OfferError::Socket(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_media_port", e.to_string()),
        }
    }
}

/// What the offer's media sections ask for: a video section must offer H.264 and an
/// audio section Opus, the codecs livescope relays; at least one of them is needed.
fn check_codecs(offer: &str) -> Result<(), ApiError> {
    let mut sections = Vec::new();
    for line in offer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            sections.push((m.split(' ').next().unwrap_or("").to_owned(), String::new()));
        } else if let (Some(rtpmap), Some(last)) = (line.strip_prefix("a=rtpmap:"), sections.last_mut()) {
            last.1.push_str(&rtpmap.to_ascii_lowercase());
            last.1.push('\n');
        }
    }
    let has = |kind: &str| sections.iter().any(|(k, _)| k == kind);
    if !has("video") && !has("audio") {
        return Err(bad_sdp("the offer has no audio or video section"));
    }
    for (kind, codecs) in &sections {
        let (wanted, name) = match kind.as_str() {
            "video" => (" h264/", "H.264"),
            "audio" => (" opus/", "Opus"),
            _ => continue,
        };
        if !codecs.contains(wanted) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_codec",
                format!("the offer's {kind} has no {name}, the only {kind} codec livescope takes over WebRTC"),
            ));
        }
    }
    Ok(())
}

async fn publish(
    app: Arc<App>,
    key: &str,
    from: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let offer = offer_text(headers, body)?;
    check_codecs(offer)?;
    let broadcast = publishable(&app, key).await?;
    let (entry, commands) = app.webrtc.add(sessions::Kind::Whip, from)?;
    let mut peer = Peer::new(app.webrtc_ip).await?;
    let answer = peer.accept(offer)?;
    let location = format!("/whip/resource/{}", entry.id);
    let etag = format!("\"{}\"", peer.rtc.direct_api().local_ice_credentials().ufrag);
    tracing::info!(broadcast = %broadcast, "WHIP publisher offered media");
    let keyframes = app
        .hls_config
        .as_ref()
        .map_or(Duration::from_secs(2), |hls| hls.segment_target);
    tokio::spawn(run(app, key.to_owned(), broadcast, peer, commands, entry, keyframes));
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
            (header::ETAG, etag),
        ],
        answer,
    )
        .into_response())
}

/// The broadcast a stream key publishes to, if it can be published to now. The broadcast
/// goes live only once media can flow (ICE and DTLS connected): an attempt that never
/// connects leaves it as it was, ready for the next.
async fn publishable(app: &App, key: &str) -> Result<String, ApiError> {
    let k = key.to_owned();
    let broadcast = app
        .store
        .call(move |db| db.by_stream_key(&k))
        .await?
        .ok_or(PublishError::UnknownKey)?;
    match broadcast.state {
        BroadcastState::Created => Ok(broadcast.id),
        BroadcastState::Live => Err(PublishError::AlreadyLive.into()),
        BroadcastState::Ended => Err(PublishError::Ended.into()),
    }
}

/// `PATCH /whip/resource/<id>` (and WHEP's): trickle ICE or an ICE restart.
pub async fn patch(
    sessions: &sessions::Sessions,
    kind: sessions::Kind,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    if !is_content_type(headers, "application/trickle-ice-sdpfrag") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send an ICE fragment as application/trickle-ice-sdpfrag",
        ));
    }
    if body.len() > sdpfrag::MAX_LEN {
        return Err(bad_sdp("an ICE fragment this long is not one"));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad_sdp("the ICE fragment is not UTF-8"))?;
    let frag = SdpFrag::parse(text).map_err(bad_sdp)?;
    let session = sessions.get(kind, id).ok_or_else(|| ApiError::not_found("session"))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    session
        .send(Command::Patch(frag, reply))
        .await
        .map_err(|_| ApiError::not_found("session"))?;
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(Ok(Some(frag)))) => {
            // The new ICE session's tag, as for the one the POST began.
            let ufrag = frag.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).unwrap_or("");
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/trickle-ice-sdpfrag".to_owned()),
                    (header::ETAG, format!("\"{ufrag}\"")),
                ],
                frag,
            )
                .into_response())
        }
        Ok(Ok(Ok(None))) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Ok(Err(why))) => Err(bad_sdp(why)),
        _ => Err(ApiError::not_found("session")),
    }
}

/// `DELETE /whip/resource/<id>` (and WHEP's): ends the session, answering once it has.
pub async fn delete(sessions: &sessions::Sessions, kind: sessions::Kind, id: &str) -> Result<Response, ApiError> {
    let Some(session) = sessions.get(kind, id) else {
        // Ended already (its client closed the connection just before): what DELETE
        // asks is done.
        return if sessions.ended_lately(kind, id) {
            Ok(StatusCode::OK.into_response())
        } else {
            Err(ApiError::not_found("session"))
        };
    };
    let (reply, ended) = tokio::sync::oneshot::channel();
    // A send that fails found the session ending by itself: done all the same.
    if session.send(Command::Close(reply)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), ended).await;
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn patch_whip(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patch(&app.webrtc, sessions::Kind::Whip, &id, &headers, &body).await
}

pub async fn delete_whip(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    delete(&app.webrtc, sessions::Kind::Whip, &id).await
}

/// Applies a PATCH to a running peer connection. The server is ICE-lite: it answers the
/// checks the client sends and needs none of its candidates, so trickled ones are taken
/// and dropped (browsers' mDNS `.local` ones too), which also bounds what a PATCH can
/// make the server keep. New credentials restart ICE; the same new ones again, alone, get
/// the same answer, as a trickle PATCH carrying them may come before the restart's own.
pub fn apply_patch(peer: &mut Peer, frag: SdpFrag) -> Result<Option<String>, String> {
    let Some((ufrag, pass)) = frag.credentials else {
        return Ok(None);
    };
    if let Some((restarted, answer)) = &peer.restarted
        && *restarted == ufrag
    {
        // The restart's own PATCH (credentials alone) gets the answer; candidates that
        // follow it are trickle.
        return Ok(frag.candidates.is_empty().then(|| answer.clone()));
    }
    if peer.remote_ufrag.as_deref() == Some(ufrag.as_str()) {
        return Ok(None);
    }
    let local = IceCreds::new();
    peer.remote_ufrag = Some(ufrag.clone());
    let mut api = peer.rtc.direct_api();
    api.set_remote_ice_credentials(IceCreds {
        ufrag: ufrag.clone(),
        pass,
    });
    api.set_local_ice_credentials(local.clone());
    let answer = sdpfrag::answer(&local.ufrag, &local.pass, &peer.candidate());
    peer.restarted = Some((ufrag, answer.clone()));
    Ok(Some(answer))
}

/// A track's clock: RTP time to milliseconds on the broadcast's timeline, anchored at the
/// arrival of its first frame. (Audio and video are aligned by arrival, which on the
/// links WebRTC is used on is within a few tens of milliseconds.)
struct Clock {
    at_ms: u64,
    rtp: u64,
    hz: u64,
}

impl Clock {
    fn place(clock: &mut Option<Clock>, epoch: Instant, data: &MediaData) -> u32 {
        let c = clock.get_or_insert_with(|| Clock {
            at_ms: data.network_time.saturating_duration_since(epoch).as_millis() as u64,
            rtp: data.time.numer(),
            hz: u64::from(data.time.denom()).max(1),
        });
        let ticks = data.time.numer().saturating_sub(c.rtp);
        (c.at_ms + ticks * 1000 / c.hz) as u32
    }
}

/// Turns a publisher's media into FLV tag bodies for [`Publishing::push`].
pub struct Ingest {
    epoch: Instant,
    tagger: flv::AvcTagger,
    video: Option<Clock>,
    audio: Option<Clock>,
    audio_config_sent: bool,
    /// The offer has video: audio waits for it (see [`Ingest::audio`]).
    pub expect_video: bool,
    /// The offer has audio: its configuration goes out as the broadcast goes live.
    pub expect_audio: bool,
    video_started: bool,
    /// When the first audio frame came.
    audio_since: Option<Instant>,
    /// Frames that could not be relayed, for one warning.
    refused: u64,
}

/// How long audio waits for the first video frame before the stream goes on without
/// video.
const VIDEO_WAIT: Duration = Duration::from_secs(3);

impl Ingest {
    pub fn new(epoch: Instant) -> Ingest {
        Ingest {
            epoch,
            tagger: flv::AvcTagger::default(),
            video: None,
            audio: None,
            audio_config_sent: false,
            expect_video: false,
            expect_audio: false,
            video_started: false,
            audio_since: None,
            refused: 0,
        }
    }

    /// Pushes one depacketized frame; `true` when a keyframe should be asked for (a
    /// frame was lost, or none that can be decoded has come yet).
    pub fn push(&mut self, publishing: &mut Publishing, data: &MediaData) -> bool {
        let result = match data.params.spec().codec {
            Codec::H264 => self.video(publishing, data),
            Codec::Opus => self.audio(publishing, data),
            _ => Ok(false),
        };
        result.unwrap_or_else(|e| {
            self.refused += 1;
            if self.refused == 1 {
                tracing::warn!(broadcast = %publishing.broadcast_id, "a WebRTC frame was not relayed: {e}");
            }
            true
        })
    }

    fn video(&mut self, publishing: &mut Publishing, data: &MediaData) -> Result<bool, flv::Error> {
        let at = Clock::place(&mut self.video, self.epoch, data);
        let tags = self.tagger.push(&data.data)?;
        if let Some(config) = tags.config {
            publishing.push(Kind::Video, at, config)?;
        }
        let decodable = tags.frame.is_some();
        if let Some((frame, _)) = tags.frame {
            publishing.push(Kind::Video, at, frame)?;
            self.video_started = true;
        }
        Ok(!data.contiguous || !decodable)
    }

    /// Sends the Opus configuration, once: as soon as the offer is known to have audio,
    /// so that it comes before the first video keyframe, where LL-HLS's init segment is
    /// made with the tracks known by then (as an RTMP encoder sends both configurations
    /// first).
    pub fn announce_audio(&mut self, publishing: &mut Publishing) -> Result<(), flv::Error> {
        if !self.audio_config_sent {
            self.audio_config_sent = true;
            let head = flv::OpusHead::webrtc(2).encode();
            let config = [&flv::AudioTag::opus_header(true)[..], &head].concat();
            publishing.push(Kind::Audio, 0, config.into())?;
        }
        Ok(())
    }

    fn audio(&mut self, publishing: &mut Publishing, data: &MediaData) -> Result<bool, flv::Error> {
        // A browser's microphone starts before its camera's first keyframe. Encoders send
        // video first, and the hub and segmenter take a stream whose first frame is audio
        // for one without video: audio waits for the video (a few hundred milliseconds),
        // or goes on alone if none comes.
        let since = *self.audio_since.get_or_insert_with(Instant::now);
        if self.expect_video && !self.video_started && since.elapsed() < VIDEO_WAIT {
            return Ok(false);
        }
        let at = Clock::place(&mut self.audio, self.epoch, data);
        self.announce_audio(publishing)?;
        let frame = [&flv::AudioTag::opus_header(false)[..], &data.data].concat();
        publishing.push(Kind::Audio, at, frame.into())?;
        Ok(false)
    }
}

/// What woke the session's loop.
enum Step {
    Peer(super::peer::Woke),
    Command(Option<Command>),
    Evicted(&'static str),
    Tick,
    KeyframeWanted,
}

/// A publisher whose connection was lost has this long to come back (an ICE restart)
/// before its broadcast ends.
const RECONNECT_GRACE: Duration = Duration::from_secs(20);
/// Keyframe requests to the publisher at most this often, whoever asks (the periodic
/// one, a viewer joining, a lost frame): each keyframe costs every viewer bandwidth.
const KEYFRAME_SPACING: Duration = Duration::from_millis(1000);

/// Runs one WHIP session: the broadcast goes live once media can flow, and ends when its
/// publisher goes (DELETE, a closed or lost connection, no media), or is evicted.
async fn run(
    app: Arc<App>,
    key: String,
    id: String,
    mut peer: Peer,
    mut commands: mpsc::Receiver<Command>,
    entry: Entry,
    keyframes: Duration,
) {
    let epoch = Instant::now();
    let mut ingest = Ingest::new(epoch);
    let mut publishing: Option<Publishing> = None;
    let mut stream = None;
    let mut video: Option<Mid> = None;
    let mut events = Vec::new();
    let mut connected = false;
    let mut lost: Option<Instant> = None;
    let mut last_media = Instant::now();
    let mut keyframes_asked = KeyframeRequests::default();
    let mut tick = tokio::time::interval(keyframes.min(Duration::from_secs(2)));
    let mut closer = None;
    let why: String = 'session: loop {
        if let Err(e) = peer.poll(&mut events) {
            break format!("WebRTC failed: {e}");
        }
        if !peer.rtc.is_alive() {
            break "the connection closed".into();
        }
        let mut want_keyframe = false;
        for event in events.drain(..) {
            match event {
                Event::Connected if publishing.is_none() => {
                    connected = true;
                    last_media = Instant::now();
                    match Publishing::begin(&app, &key).await {
                        Ok(mut p) => {
                            tracing::info!(broadcast = %id, "WHIP publisher connected: live");
                            if ingest.expect_audio
                                && let Err(e) = ingest.announce_audio(&mut p)
                            {
                                tracing::warn!(broadcast = %id, "cannot announce the audio: {e}");
                            }
                            stream = Some(p.stream.clone());
                            publishing = Some(p);
                        }
                        Err(e) => break 'session format!("refused: {e}"),
                    }
                }
                Event::Closed => break 'session "the publisher closed the connection".into(),
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    lost.get_or_insert_with(Instant::now);
                }
                Event::IceConnectionStateChange(
                    IceConnectionState::Checking | IceConnectionState::Connected | IceConnectionState::Completed,
                ) => lost = None,
                Event::MediaAdded(m) if m.kind == MediaKind::Video => {
                    video = Some(m.mid);
                    ingest.expect_video = true;
                    want_keyframe = true;
                }
                Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                    ingest.expect_audio = true;
                    if let Some(p) = publishing.as_mut()
                        && let Err(e) = ingest.announce_audio(p)
                    {
                        tracing::warn!(broadcast = %id, "cannot announce the audio: {e}");
                    }
                }
                Event::MediaData(data) => {
                    if let Some(p) = publishing.as_mut() {
                        last_media = Instant::now();
                        want_keyframe |= ingest.push(p, &data);
                    }
                }
                _ => {}
            }
        }
        if want_keyframe {
            keyframes_asked.ask(&mut peer, video);
        }
        let step = tokio::select! {
            woke = peer.wait() => Step::Peer(woke),
            command = commands.recv() => Step::Command(command),
            why = async {
                match publishing.as_mut() {
                    Some(p) => p.evicted().await,
                    None => std::future::pending().await,
                }
            } => Step::Evicted(why),
            _ = tick.tick() => Step::Tick,
            () = async {
                match &stream {
                    Some(s) => s.keyframe_wanted().await,
                    None => std::future::pending().await,
                }
            } => Step::KeyframeWanted,
            () = async {
                match keyframes_asked.deferred_until() {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => Step::KeyframeWanted,
        };
        match step {
            Step::Peer(woke) => {
                if let Err(e) = peer.feed(woke) {
                    break format!("WebRTC failed: {e}");
                }
            }
            // A WebRTC viewer starts at the next keyframe: make it now.
            Step::KeyframeWanted => keyframes_asked.ask(&mut peer, video),
            Step::Command(Some(Command::Patch(frag, reply))) => {
                let _ = reply.send(apply_patch(&mut peer, frag));
            }
            Step::Command(Some(Command::Close(reply))) => {
                closer = Some(reply);
                break "ended by its publisher".into();
            }
            Step::Command(None) => break "the server is shutting down".into(),
            Step::Evicted(why) => break why.into(),
            Step::Tick => {
                if !connected && epoch.elapsed() > CONNECT_TIMEOUT {
                    break "the publisher never connected (ICE)".into();
                }
                if lost.is_some_and(|at| at.elapsed() > RECONNECT_GRACE) {
                    break "the publisher's connection was lost".into();
                }
                if connected && last_media.elapsed() > IDLE_TIMEOUT {
                    break "the publisher sent no media".into();
                }
                // Browsers send a keyframe only when asked: one per segment keeps LL-HLS
                // segments and new viewers' starts short.
                keyframes_asked.ask(&mut peer, video);
            }
        }
    };
    tracing::info!(broadcast = %id, "WHIP session ended: {why}");
    peer.close();
    if let Some(p) = publishing {
        p.finish().await;
    }
    drop(entry);
    if let Some(reply) = closer {
        let _ = reply.send(());
    }
}

/// The keyframes a session asks its publisher for: at most one request per
/// [`KEYFRAME_SPACING`]; one that comes sooner is deferred to the end of the spacing, not
/// dropped, so a viewer who joins just after the periodic request gets its keyframe a
/// second later, not a segment later.
#[derive(Default)]
struct KeyframeRequests {
    last: Option<Instant>,
    deferred: bool,
}

impl KeyframeRequests {
    /// Asks for a keyframe now, or defers the request.
    fn ask(&mut self, peer: &mut Peer, video: Option<Mid>) {
        if self.last.is_some_and(|at| at.elapsed() < KEYFRAME_SPACING) {
            self.deferred = true;
            return;
        }
        if let Some(mut writer) = video.and_then(|mid| peer.rtc.writer(mid)) {
            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
            self.last = Some(Instant::now());
            self.deferred = false;
        }
    }

    /// When a deferred request is due.
    fn deferred_until(&self) -> Option<Instant> {
        self.last.filter(|_| self.deferred).map(|at| at + KEYFRAME_SPACING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::CodecExtra;
    use str0m::unversioned::{Depacketizer, H264Depacketizer, H264Packetizer, Packetizer};

    /// 2.5 s of H.264 as Chromium 156 (OpenH264, 320x240, 15 fps) sent it to a WHIP
    /// session, decrypted and captured at the server (str0m's raw packets): 60 RTP packets
    /// of single NAL units, STAP-A (the parameter sets) and FU-A fragments. Each record is
    /// the payload length (u16), payload type, marker, sequence number (u16), timestamp
    /// (u32), all big-endian, then the payload.
    const CAPTURE: &[u8] = include_bytes!("testdata/chromium-h264.rtp");

    struct Packet<'a> {
        marker: bool,
        sequence: u16,
        payload: &'a [u8],
    }

    fn captured() -> Vec<Packet<'static>> {
        let mut packets = Vec::new();
        let mut rest = CAPTURE;
        while rest.len() >= 10 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            packets.push(Packet {
                marker: rest[3] == 1,
                sequence: u16::from_be_bytes([rest[4], rest[5]]),
                payload: &rest[10..10 + len],
            });
            rest = &rest[10 + len..];
        }
        packets
    }

    /// Depacketizes RTP payloads into access units (Annex B), one per marker.
    fn access_units<'a>(payloads: impl IntoIterator<Item = (bool, &'a [u8])>) -> Vec<Vec<u8>> {
        let mut depacketizer = H264Depacketizer::default();
        let (mut units, mut unit, mut extra) = (Vec::new(), Vec::new(), CodecExtra::None);
        for (marker, payload) in payloads {
            depacketizer
                .depacketize(payload, &mut unit, &mut extra)
                .expect("a payload that depacketizes");
            if marker {
                units.push(std::mem::take(&mut unit));
            }
        }
        units
    }

    #[test]
    fn captured_chromium_rtp_becomes_flv_frames_and_goes_back_to_rtp() {
        let packets = captured();
        assert_eq!(packets.len(), 60);
        assert!(
            packets
                .windows(2)
                .all(|w| w[1].sequence == w[0].sequence.wrapping_add(1))
        );
        let units = access_units(packets.iter().map(|p| (p.marker, p.payload)));
        assert_eq!(units.len(), 36, "one access unit per marker");
        // Into FLV, as a WHIP session hands them to publishing.
        let mut tagger = flv::AvcTagger::default();
        let mut frames = Vec::new();
        let mut configs = Vec::new();
        for unit in &units {
            let tags = tagger.push(unit).expect("Chromium's units tag");
            configs.extend(tags.config);
            frames.extend(tags.frame);
        }
        assert_eq!(configs.len(), 1, "one configuration");
        let record = flv::AvcConfig::parse(&configs[0].slice(5..)).unwrap();
        assert_eq!(record.codec_string(), "avc1.42c015", "constrained baseline, level 2.1");
        assert_eq!(fmp4::avc_dimensions(&configs[0][5..]), Some((320, 240)));
        assert_eq!(frames.len(), units.len(), "every unit is a frame");
        assert!(frames[0].1, "the first frame is a keyframe");
        // And back, as a WHEP session sends them: Annex B with the parameter sets before
        // keyframes, packetized for a 1,200-byte MTU, depacketized again: the same units.
        let mut packetizer = H264Packetizer::default();
        let mut resent = Vec::new();
        for (frame, keyframe) in &frames {
            let sets = if *keyframe {
                [record.sps.clone(), record.pps.clone()].concat()
            } else {
                Vec::new()
            };
            let annexb = flv::to_annexb(&frame[5..], record.nal_length_size, &sets).unwrap();
            let payloads = packetizer.packetize(1200, &annexb).unwrap();
            assert!(payloads.iter().all(|p| p.len() <= 1200));
            let last = payloads.len() - 1;
            resent.extend(payloads.into_iter().enumerate().map(|(i, p)| (i == last, p)));
        }
        let again = access_units(resent.iter().map(|(m, p)| (*m, p.as_slice())));
        assert_eq!(again.len(), units.len());
        let nals = |u: &[u8]| flv::nal_units(u).map(<[u8]>::to_vec).collect::<Vec<_>>();
        for (a, b) in units.iter().zip(&again) {
            assert_eq!(nals(a), nals(b), "the same NAL units, parameter sets included");
        }
    }

    #[test]
    fn an_offer_must_carry_h264_video_or_opus_audio() {
        let chromium = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert!(check_codecs(chromium).is_ok());
        let vp8_only = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(check_codecs(vp8_only).unwrap_err().code, "unsupported_codec");
        assert_eq!(check_codecs("v=0\r\n").unwrap_err().code, "bad_sdp");
        let pcmu = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(check_codecs(pcmu).unwrap_err().code, "unsupported_codec");
    }
}
