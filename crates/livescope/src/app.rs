//! The shared state of a running server, and the one way into publishing: checking a
//! stream key, opening the broadcast's stream, and validating every frame a publisher
//! sends, whatever the ingest protocol.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use flv::{AudioSpecificConfig, AvcConfig, VideoCodec, VideoPacket};
use rtmp::MediaKind;

use crate::access::Gate;
use crate::config::Config;
use crate::hub::{Codec, Frame, HeaderKind, Hub, OpenError, Stream};
use crate::store::{DeliveryPath, State, Store};
use crate::timeline::Timeline;

/// Everything a request or connection handler needs.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub hub: Arc<Hub>,
    /// Addresses actually bound (ports may have been chosen by the OS).
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Where RTMPS is served, when TLS is on.
    pub rtmps_addr: Option<SocketAddr>,
    /// LL-HLS renditions of live broadcasts.
    pub hls: Arc<crate::hls::Registry>,
    /// LL-HLS settings; `None` when LL-HLS is off.
    pub hls_config: Option<crate::hls::Config>,
    /// Where broadcasts are recorded, unless recording is off.
    pub recordings: Option<Arc<crate::hls::Recordings>>,
    /// Connected notification streams.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Failed logins, per account.
    pub logins: Arc<crate::auth::LoginLimiter>,
    /// Who may watch what (the gates of live broadcasts, the playback key), and telling
    /// every node when that changes.
    pub admission: crate::admission::Admission,
    /// The link to the other nodes, and what they last said of their players.
    pub bus: crate::bus::Bus,
    pub elsewhere: Arc<crate::cluster::Elsewhere>,
    /// Every delivery path's players of each broadcast, on every node.
    pub players: crate::players::Players,
    /// Streams pulled from other nodes (see [`crate::relay`]).
    pub relays: Arc<crate::relay::Relays>,
    /// Interaction rooms of broadcasts.
    pub rooms: Arc<crate::room::Rooms>,
    /// What the signatures of broadcasts checked at ingest say.
    pub verdicts: Arc<crate::integrity::Verdicts>,
    /// Tells the checks of live broadcasts that their owner's signing keys changed.
    pub key_changes: Arc<crate::integrity::KeyChanges>,
    /// What `/metrics` shows.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where broadcasts' arrival traces are kept.
    pub traces: crate::trace::Traces,
    /// WebRTC sessions (WHIP publishers, WHEP viewers), and the IP their media uses.
    pub webrtc: Arc<crate::webrtc::sessions::Sessions>,
    pub webrtc_ip: std::net::IpAddr,
}

impl App {
    /// Opens the store and the playback key in the data folder; `rtmp_addr` and
    /// `http_addr` are where the listeners were bound, `bus` the link to the other nodes.
    pub fn open(
        config: Config,
        rtmp_addr: SocketAddr,
        http_addr: SocketAddr,
        recordings: Option<Arc<crate::hls::Recordings>>,
        bus: crate::bus::Bus,
    ) -> anyhow::Result<App> {
        let traces = crate::trace::Traces::new(config.data.join("traces"));
        let config_webrtc_ip = config.webrtc_ip;
        let store = Store::open(
            &crate::store::Location::new(config.database.as_deref(), &config.data)?,
            &crate::store::Node {
                name: config.node.clone(),
                http_url: config
                    .advertise_http
                    .clone()
                    .unwrap_or_else(|| format!("http://{http_addr}")),
                rtmp_url: config
                    .advertise_rtmp
                    .clone()
                    .unwrap_or_else(|| format!("rtmp://{rtmp_addr}")),
                region: config.region.clone(),
            },
        )?;
        // Nodes sharing a database check each other's playback tokens: one key for all.
        let playback = match config.database {
            Some(_) => crate::playback::PlaybackKeys::with_key(store.secret_at_start("playback")?),
            None => crate::playback::PlaybackKeys::load_or_create(&config.data)?,
        };
        let playback = Arc::new(playback);
        let relay_secret = store
            .secret_at_start("relay")?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hub = Arc::new(Hub::new(config.push_batch));
        let hls: Arc<crate::hls::Registry> = Arc::default();
        let elsewhere: Arc<crate::cluster::Elsewhere> = Arc::default();
        let players = crate::players::Players::new(hub.clone(), hls.clone(), elsewhere.clone());
        let metrics: Arc<crate::metrics::Metrics> = Arc::default();
        let rooms = Arc::new(crate::room::Rooms::new(crate::room::Context {
            node: config.node.clone(),
            store: store.clone(),
            bus: bus.clone(),
            hub: hub.clone(),
            players: players.clone(),
            metrics: metrics.clone(),
        }));
        let admission = crate::admission::Admission::new(store.clone(), playback, bus.clone(), rooms.clone());
        let relays = Arc::new(crate::relay::Relays::new(crate::relay::Parts {
            store: store.clone(),
            hub: hub.clone(),
            hls: hls.clone(),
            hls_config: config.hls.clone(),
            admission: admission.clone(),
            metrics: metrics.clone(),
            clustered: bus.clustered(),
            secret: relay_secret,
        }));
        Ok(App {
            store,
            relays,
            bus,
            elsewhere,
            players,
            admission,
            rtmp_addr,
            http_addr,
            rtmps_addr: None,
            hub,
            hls,
            hls_config: config.hls.clone(),
            recordings,
            config,
            notifier: Default::default(),
            logins: Default::default(),
            rooms,
            verdicts: Default::default(),
            key_changes: Default::default(),
            metrics,
            traces,
            webrtc: Default::default(),
            webrtc_ip: crate::webrtc::media_ip(config_webrtc_ip, http_addr),
        })
    }

    /// `https` when the HTTP listener speaks TLS, else `http`.
    pub fn http_scheme(&self) -> &'static str {
        if self.config.tls.is_some() { "https" } else { "http" }
    }
}

/// A viewer's view, recorded while it lasts: joined now, left when this is dropped.
pub struct Watching {
    store: Store,
    view: i64,
    _counted: crate::metrics::Held,
}

impl Watching {
    /// `viewer`: how an anonymous viewer is told apart (their address); `user` when known.
    /// Neither the join nor the leave waits for the store.
    pub fn begin(
        store: &Store,
        metrics: &crate::metrics::Metrics,
        broadcast: &str,
        user: Option<i64>,
        viewer: &str,
        path: DeliveryPath,
    ) -> Watching {
        let view = store.join(broadcast, user, viewer, path);
        Watching {
            store: store.clone(),
            view,
            _counted: crate::metrics::Held::new(&metrics.viewers.get_or_create(&path.into())),
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.store.leave(self.view);
    }
}

/// Why a publisher was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unknown stream key")]
    UnknownKey,
    #[error("the broadcast already has a publisher")]
    AlreadyLive,
    #[error("the broadcast has ended and cannot be published to again")]
    Ended,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A publisher's hold on its broadcast. Dropping it ends the broadcast.
pub struct Publishing {
    app: Arc<App>,
    pub stream: Arc<Stream>,
    pub broadcast_id: String,
    /// Held while live, so that viewers' access checks need no store.
    _gate: Arc<Gate>,
    evictions: tokio::sync::watch::Receiver<u64>,
    has_video: bool,
    pub frames: u64,
    /// Ended by [`Publishing::finish`], nothing left for the drop.
    finished: bool,
    /// The publisher's timestamps, unwrapped and steadied.
    timeline: Timeline,
    /// Under the `drop` signature policy: frames held until their record matched.
    hold: Option<crate::integrity::Hold>,
    released: Vec<Frame>,
    /// Notified when a tampered stream must end (the `end` policy).
    tampered_end: Arc<tokio::sync::Notify>,
    /// Frames received per kind (video, audio, data), for `/metrics`.
    received: [prometheus_client::metrics::counter::Counter; 3],
}

/// Why a publisher is cut off under the `end` signature policy.
pub const TAMPERED_END: &str = "the stream does not match its signatures and its owner asked to end it then";

impl Publishing {
    /// Checks the key and takes the broadcast live.
    pub async fn begin(app: &Arc<App>, stream_key: &str) -> Result<Publishing, PublishError> {
        let key = stream_key.to_owned();
        let broadcast = app
            .store
            .call(move |db| db.by_stream_key(&key))
            .await?
            .ok_or(PublishError::UnknownKey)?;
        match broadcast.state {
            State::Created => {}
            State::Live => return Err(PublishError::AlreadyLive),
            State::Ended => return Err(PublishError::Ended),
        }
        let stream = app
            .hub
            .open(&broadcast.id)
            .map_err(|OpenError::AlreadyLive| PublishError::AlreadyLive)?;
        let id = broadcast.id.clone();
        let started = app.store.call(move |db| db.start(&id)).await;
        if !matches!(started, Ok(true)) {
            app.hub.close(&stream);
            return Err(match started {
                Err(e) => PublishError::Internal(e),
                _ => PublishError::AlreadyLive,
            });
        }
        let gate = match app.admission.gate(&broadcast.id).await {
            Ok(Some(gate)) => gate,
            failed => {
                app.hub.close(&stream);
                end_in_store(app, &broadcast.id);
                return Err(match failed {
                    Err(e) => PublishError::Internal(e),
                    _ => PublishError::UnknownKey,
                });
            }
        };
        // Subscribed before the key is looked at again: a rotation from now on evicts us.
        let mut evictions = gate.evictions();
        evictions.mark_unchanged();
        tracing::info!(broadcast = %broadcast.id, "broadcast is live");
        app.metrics.broadcasts_live.inc();
        match app.store.get(&broadcast.id).await {
            Ok(Some(live)) => {
                let announcer = crate::notify::Announcer {
                    store: app.store.clone(),
                    notifier: app.notifier.clone(),
                    bus: app.bus.clone(),
                };
                crate::notify::broadcast_started(announcer, live)
            }
            Ok(None) => {}
            Err(e) => tracing::error!(broadcast = %broadcast.id, "cannot notify followers: {e:#}"),
        }
        // Signatures are checked against the owner's keys in force: in the ingest path under
        // the `drop` policy, beside it otherwise.
        let owner = broadcast.owner_id;
        let tampered_end = Arc::new(tokio::sync::Notify::new());
        let mut hold = None;
        match app
            .store
            .call(move |db| owner.map_or(Ok(Vec::new()), |o| db.keys(o, false)))
            .await
        {
            Ok(keys) => {
                let keys: Vec<[u8; 32]> = keys.into_iter().map(|k| k.public_key).collect();
                // Followed while live: a revoked key stops verifying at once.
                let keys = app
                    .key_changes
                    .follow(app.store.clone(), broadcast.owner_id.unwrap_or_default(), keys);
                if broadcast.signature_policy == crate::store::SignaturePolicy::Drop {
                    hold = Some(crate::integrity::Hold::new(app.verdicts.clone(), keys, &broadcast.id));
                } else {
                    tokio::spawn(crate::integrity::run(
                        app.verdicts.clone(),
                        stream.clone(),
                        keys,
                        app.store.clone(),
                        tampered_end.clone(),
                        app.metrics.signature_mismatches.clone(),
                    ));
                }
            }
            Err(e) => tracing::error!(broadcast = %broadcast.id, "cannot check signatures: {e:#}"),
        }
        tokio::spawn(crate::trace::run(
            app.traces.clone(),
            stream.clone(),
            app.metrics.delays.of(&broadcast.id),
        ));
        if let Some(config) = app.hls_config.clone() {
            tokio::spawn(crate::hls::run(
                app.hls.clone(),
                config,
                stream.clone(),
                app.recordings.clone(),
                gate.clone(),
                app.store.clone(),
                app.metrics.clone(),
            ));
        }
        Ok(Publishing {
            app: app.clone(),
            stream,
            broadcast_id: broadcast.id,
            _gate: gate,
            evictions,
            has_video: false,
            frames: 0,
            finished: false,
            timeline: Timeline::default(),
            hold,
            released: Vec::new(),
            tampered_end,
            received: app.metrics.received(),
        })
    }

    /// Resolves when the session must end, with why: the broadcast's owner rotated or
    /// revoked the stream key (or a leaked key could not be taken back from whoever holds
    /// it), or the stream was tampered with and the owner's policy is to end it.
    pub async fn evicted(&mut self) -> &'static str {
        tokio::select! {
            changed = self.evictions.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
                crate::rtmp_server::EVICTED
            }
            () = self.tampered_end.notified() => TAMPERED_END,
        }
    }

    /// Validates one message and hands it to the viewers. An error means the publisher sent
    /// something we will not relay (an unknown codec, a corrupt configuration).
    pub fn push(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<(), flv::Error> {
        if payload.is_empty() {
            return Ok(());
        }
        let Described {
            codec,
            sync_point,
            header,
            config,
        } = describe(kind, &payload, &mut self.has_video)?;
        if let Some(config) = config {
            tracing::info!(broadcast = %self.broadcast_id, "{config}");
        }
        self.frames += 1;
        let [video, audio, data] = &self.received;
        match codec {
            Codec::Video(_) => video.inc(),
            Codec::Audio(_) => audio.inc(),
            Codec::Data => data.inc(),
        };
        self.app.metrics.received_bytes.inc_by(payload.len() as u64);
        let at = if header.is_some() || codec == Codec::Data {
            self.timeline.header()
        } else {
            let jumps = self.timeline.jumps();
            let at = self.timeline.place(timestamp);
            if self.timeline.jumps() > jumps {
                tracing::info!(broadcast = %self.broadcast_id, sent = timestamp, at, "the encoder's clock jumped: the timeline goes on from the newest frame");
            }
            at
        };
        let frame = Frame::new(codec, at, sync_point, header, payload);
        match self.hold.as_mut() {
            Some(hold) => {
                hold.push(frame, &mut self.released);
                for frame in self.released.drain(..) {
                    self.stream.push(frame);
                }
            }
            None => self.stream.push(frame),
        }
        Ok(())
    }
}

/// What a frame is, from its FLV tag body.
pub struct Described {
    pub codec: Codec,
    /// A viewer can start here: a video keyframe, or any audio frame of a stream that has
    /// had no video.
    pub sync_point: bool,
    /// The configuration it carries, if it is one.
    pub header: Option<HeaderKind>,
    /// That configuration in words, for the log.
    pub config: Option<String>,
}

/// Reads what a frame is (its codec, whether a viewer can start at it, which
/// configuration it carries); `has_video` notes whether the stream has had video yet. An
/// error means something we will not relay (an unknown codec, a corrupt configuration).
pub fn describe(kind: MediaKind, payload: &Bytes, has_video: &mut bool) -> Result<Described, flv::Error> {
    let codec = Codec::parse(kind, payload)?;
    let mut config = None;
    let (sync_point, header) = match codec {
        Codec::Video(tag) => {
            *has_video = true;
            match tag.packet {
                VideoPacket::SequenceHeader => {
                    if tag.codec == VideoCodec::Avc {
                        let avc = AvcConfig::parse(&payload.slice(tag.header_len..))?;
                        config = Some(format!("video configuration {}", avc.codec_string()));
                    }
                    (false, Some(HeaderKind::VideoConfig))
                }
                VideoPacket::Frame => (tag.keyframe, None),
                VideoPacket::EndOfSequence | VideoPacket::Other => (false, None),
            }
        }
        Codec::Audio(tag) if tag.sequence_header => {
            let (rate, channels) = match tag.codec {
                flv::AudioCodec::Aac => {
                    let aac = AudioSpecificConfig::parse(&payload[tag.header_len..])?;
                    (aac.sample_rate, aac.channels)
                }
                flv::AudioCodec::Opus => (48_000, flv::OpusHead::parse(&payload[tag.header_len..])?.channels),
            };
            config = Some(format!(
                "audio configuration {:?} {rate} Hz, {channels} channels",
                tag.codec
            ));
            (false, Some(HeaderKind::AudioConfig))
        }
        Codec::Audio(_) => (!*has_video, None),
        Codec::Data => {
            let is_metadata = matches!(rtmp::amf0::decode_one(payload), Ok((rtmp::amf0::Value::String(name), _)) if name == "onMetaData");
            (false, is_metadata.then_some(HeaderKind::Metadata))
        }
    };
    Ok(Described {
        codec,
        sync_point,
        header,
        config,
    })
}

impl Publishing {
    /// Ends the broadcast and waits until the store says so: for an ingest whose answer
    /// tells the publisher the broadcast ended. (Dropping a `Publishing` ends it without
    /// waiting.)
    pub async fn finish(mut self) {
        self.app.hub.close(&self.stream);
        let id = self.broadcast_id.clone();
        if let Err(e) = self.app.store.call(move |db| db.end(&id)).await {
            tracing::error!(broadcast = %self.broadcast_id, "could not mark the broadcast ended: {e:#}");
        }
        self.finished = true;
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        self.app.metrics.broadcasts_live.dec();
        if !self.finished {
            self.app.hub.close(&self.stream);
            end_in_store(&self.app, &self.broadcast_id);
        }
        tracing::info!(broadcast = %self.broadcast_id, frames = self.frames, "broadcast ended");
    }
}

/// Marks a broadcast ended, in a task of its own: a publisher leaving waits for nothing.
fn end_in_store(app: &Arc<App>, id: &str) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // the server is stopping: the next start ends what was live
    };
    let (app, id) = (app.clone(), id.to_owned());
    runtime.spawn(async move {
        let ended = id.clone();
        if let Err(e) = app.store.call(move |db| db.end(&ended)).await {
            tracing::error!(broadcast = %id, "could not mark the broadcast ended: {e:#}");
        }
    });
}
