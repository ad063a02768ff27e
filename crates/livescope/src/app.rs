//! The shared state of a running server, and the one way into publishing: checking a
//! stream key, opening the broadcast's stream, and validating every frame a publisher
//! sends, whatever the ingest protocol.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use flv::{AudioSpecificConfig, AvcConfig, VideoCodec, VideoPacket};
use rtmp::MediaKind;

use crate::config::Config;
use crate::hub::{Codec, Frame, HeaderKind, Hub, OpenError, Stream};
use crate::store::{DeliveryPath, State, Store};

/// Everything a request or connection handler needs.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub hub: Hub,
    /// Addresses actually bound (ports may have been chosen by the OS).
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// LL-HLS renditions of live broadcasts.
    pub hls: Arc<crate::hls::Registry>,
    /// LL-HLS settings; `None` when LL-HLS is off.
    pub hls_config: Option<crate::hls::Config>,
    /// Where broadcasts are recorded, unless recording is off.
    pub recordings: Option<Arc<crate::hls::Recordings>>,
    /// Connected notification streams.
    pub notifier: crate::notify::Notifier,
    /// Failed logins, per account.
    pub logins: crate::auth::LoginLimiter,
    /// Signs and checks playback tokens of private broadcasts.
    pub playback: crate::playback::PlaybackKeys,
    /// Interaction rooms of broadcasts.
    pub rooms: crate::room::Rooms,
}

impl App {
    /// Opens the store and the playback key in the data folder; `rtmp_addr` and
    /// `http_addr` are where the listeners were bound.
    pub fn open(
        config: Config,
        rtmp_addr: SocketAddr,
        http_addr: SocketAddr,
        recordings: Option<Arc<crate::hls::Recordings>>,
    ) -> anyhow::Result<App> {
        Ok(App {
            store: Store::open(&config.data)?,
            playback: crate::playback::PlaybackKeys::load_or_create(&config.data)?,
            rtmp_addr,
            http_addr,
            hub: Hub::new(config.push_batch),
            hls: Arc::default(),
            hls_config: config.hls.clone(),
            recordings,
            config,
            notifier: Default::default(),
            logins: Default::default(),
            rooms: Default::default(),
        })
    }

    /// Players of broadcast `id` now: RTMP and HTTP-FLV connections, and HLS viewers.
    pub fn players(&self, id: &str) -> usize {
        self.hub.get(id).map_or(0, |s| s.viewers()) + self.hls.get(id).map_or(0, |r| r.audience.len())
    }

    /// Whether a viewer holding `token` may watch broadcast `id`, which is `private` or not.
    pub fn token_admits(&self, id: &str, private: bool, token: Option<&str>) -> bool {
        !private || token.is_some_and(|t| self.playback.verify(id, t, crate::playback::now_secs()))
    }

    /// Whether a viewer holding `token` may watch broadcast `id`, looked up in the store
    /// (once per connection).
    pub fn admits(&self, id: &str, token: Option<&str>) -> anyhow::Result<bool> {
        let private = self.store.get(id)?.is_some_and(|b| b.private);
        Ok(self.token_admits(id, private, token))
    }
}

/// A viewer's view, recorded while it lasts: joined now, left when this is dropped.
pub struct Watching {
    app: Arc<App>,
    view: Option<i64>,
}

impl Watching {
    /// `viewer`: how an anonymous viewer is told apart (their address); `user` when known.
    pub fn begin(app: &Arc<App>, broadcast: &str, user: Option<i64>, viewer: &str, path: DeliveryPath) -> Watching {
        let view = app
            .store
            .join(broadcast, user, viewer, path)
            .inspect_err(|e| tracing::error!(broadcast, "cannot record a view: {e:#}"))
            .ok();
        Watching { app: app.clone(), view }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(view) = self.view
            && let Err(e) = self.app.store.leave(view)
        {
            tracing::error!("cannot record a viewer leaving: {e:#}");
        }
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
    has_video: bool,
    pub frames: u64,
}

impl Publishing {
    /// Checks the key and takes the broadcast live.
    pub fn begin(app: &Arc<App>, stream_key: &str) -> Result<Publishing, PublishError> {
        let broadcast = app.store.by_stream_key(stream_key)?.ok_or(PublishError::UnknownKey)?;
        match broadcast.state {
            State::Created => {}
            State::Live => return Err(PublishError::AlreadyLive),
            State::Ended => return Err(PublishError::Ended),
        }
        let stream = app
            .hub
            .open(&broadcast.id)
            .map_err(|OpenError::AlreadyLive| PublishError::AlreadyLive)?;
        let started = app.store.start(&broadcast.id);
        if !matches!(started, Ok(true)) {
            app.hub.close(&stream);
            return Err(match started {
                Err(e) => PublishError::Internal(e),
                _ => PublishError::AlreadyLive,
            });
        }
        tracing::info!(broadcast = %broadcast.id, "broadcast is live");
        match app.store.get(&broadcast.id) {
            Ok(Some(live)) => crate::notify::broadcast_started(app.clone(), live),
            Ok(None) => {}
            Err(e) => tracing::error!(broadcast = %broadcast.id, "cannot notify followers: {e:#}"),
        }
        if let Some(config) = app.hls_config.clone() {
            tokio::spawn(crate::hls::run(
                app.hls.clone(),
                config,
                stream.clone(),
                app.recordings.clone(),
                broadcast.private,
                app.clone(),
            ));
        }
        Ok(Publishing {
            app: app.clone(),
            stream,
            broadcast_id: broadcast.id,
            has_video: false,
            frames: 0,
        })
    }

    /// Validates one message and hands it to the viewers. An error means the publisher sent
    /// something we will not relay (an unknown codec, a corrupt configuration).
    pub fn push(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<(), flv::Error> {
        if payload.is_empty() {
            return Ok(());
        }
        let codec = Codec::parse(kind, &payload)?;
        let (sync_point, header) = match codec {
            Codec::Video(tag) => {
                self.has_video = true;
                match tag.packet {
                    VideoPacket::SequenceHeader => {
                        if tag.codec == VideoCodec::Avc {
                            let config = AvcConfig::parse(&payload.slice(tag.header_len..))?;
                            tracing::info!(broadcast = %self.broadcast_id, codec = %config.codec_string(), "video configuration");
                        }
                        (false, Some(HeaderKind::VideoConfig))
                    }
                    VideoPacket::Frame => (tag.keyframe, None),
                    VideoPacket::EndOfSequence | VideoPacket::Other => (false, None),
                }
            }
            Codec::Audio(tag) if tag.sequence_header => {
                let config = AudioSpecificConfig::parse(&payload[tag.header_len..])?;
                tracing::info!(broadcast = %self.broadcast_id, rate = config.sample_rate, channels = config.channels, "audio configuration");
                (false, Some(HeaderKind::AudioConfig))
            }
            Codec::Audio(_) => (!self.has_video, None),
            Codec::Data => {
                let is_metadata = matches!(rtmp::amf0::decode_one(&payload), Ok((rtmp::amf0::Value::String(name), _)) if name == "onMetaData");
                (false, is_metadata.then_some(HeaderKind::Metadata))
            }
        };
        self.frames += 1;
        self.stream
            .push(Frame::new(codec, timestamp, sync_point, header, payload));
        Ok(())
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        self.app.hub.close(&self.stream);
        if let Err(e) = self.app.store.end(&self.broadcast_id) {
            tracing::error!(broadcast = %self.broadcast_id, "could not mark the broadcast ended: {e:#}");
        }
        tracing::info!(broadcast = %self.broadcast_id, frames = self.frames, "broadcast ended");
    }
}
