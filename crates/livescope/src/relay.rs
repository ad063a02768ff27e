//! Streams published on another node: the first viewer here of a broadcast live elsewhere
//! makes this node pull it from its origin once, over HTTP-FLV, into the local hub, where
//! it fans out to this node's RTMP, HTTP-FLV and LL-HLS viewers as if it were published
//! here (as SRS and OvenMediaEngine edges do).
//!
//! HTTP-FLV is the relay protocol because it is the hub's own shape, one tag per frame
//! with the origin's timeline, already encoded once per frame for every FLV viewer at the
//! origin: the origin spends on a relay what it spends on one viewer. Over plain HTTP it
//! passes any proxy between nodes, needs no session set-up beyond one request (RTMP needs
//! a handshake and chunk state), and adds no delay (LL-HLS would add a part).
//!
//! A relay lasts while this node has viewers of it (and the origin's stream lasts): 30 s
//! after its last viewer left, it stops. A pull that fails leaves the broadcast not live
//! here, and the viewer is told so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::admission::Admission;
use crate::hub::{Frame, Hub, Stream};
use crate::metrics::Metrics;
use crate::store::Store;
use rtmp::MediaKind;

/// The header that marks a pull by another node, with the cluster's relay secret.
pub const RELAY_HEADER: &str = "x-livescope-relay";

/// How long a viewer waits for a pull to deliver its first keyframe.
const FIRST_FRAMES: Duration = Duration::from_secs(5);
/// A pull whose origin sends nothing for this long has lost it.
const ORIGIN_IDLE: Duration = Duration::from_secs(10);
/// A pull that has had no viewer here (RTMP, HTTP-FLV or LL-HLS) for this long stops.
const UNWATCHED: Duration = Duration::from_secs(30);
/// Largest FLV tag accepted from an origin (as from a publisher).
const MAX_TAG_BYTES: u32 = 16 << 20;

/// Another node answered a request with this status, not a success.
#[derive(Debug, thiserror::Error)]
#[error("answered {0}")]
pub struct Refused(pub hyper::StatusCode);

/// The pulls running on this node, by broadcast, and what a pull takes.
pub struct Relays {
    /// Each pull's readiness: `None` while starting, then whether it delivered.
    pulls: Mutex<HashMap<String, watch::Receiver<Option<bool>>>>,
    parts: Parts,
}

/// What a pull takes: the store (where the origin is), the hub it feeds, LL-HLS (its own
/// segmenter), who may watch, and the secret it shows the origin.
pub struct Parts {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub hls: Arc<crate::hls::Registry>,
    pub hls_config: Option<crate::hls::Config>,
    pub admission: Admission,
    pub metrics: Arc<Metrics>,
    /// Only a cluster's nodes (sharing a database, told of access changes over the bus)
    /// have others to pull from.
    pub clustered: bool,
    /// What this node shows another to pull from it (hex).
    pub secret: String,
}

impl Relays {
    pub fn new(parts: Parts) -> Relays {
        Relays {
            pulls: Mutex::default(),
            parts,
        }
    }

    /// Pulls under way now.
    pub fn len(&self) -> usize {
        self.pulls.lock().expect("relays lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live stream of broadcast `id` on this node: its own publisher's, or one pulled
    /// from the node it is published on. `None` when it is live nowhere, or its origin
    /// cannot be reached.
    pub async fn stream(self: &Arc<Self>, id: &str) -> Option<Arc<Stream>> {
        let local = self.parts.hub.get(id);
        if local.is_some() || !self.parts.clustered {
            return local;
        }
        let mut ready = {
            let mut pulls = self.pulls.lock().expect("relays lock");
            match pulls.get(id) {
                Some(ready) => ready.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    pulls.insert(id.to_owned(), rx.clone());
                    tokio::spawn(self.clone().pull(id.to_owned(), tx));
                    rx
                }
            }
        };
        let delivered = tokio::time::timeout(FIRST_FRAMES, ready.wait_for(Option::is_some)).await;
        match delivered {
            Ok(Ok(ready)) if *ready == Some(true) => self.parts.hub.get(id),
            _ => None,
        }
    }

    /// Whether this node has others to pull from.
    pub fn clustered(&self) -> bool {
        self.parts.clustered
    }

    /// `GET path` from another node, showing the relay secret: its answer, when it is a
    /// success (else a [`Refused`] error), within `patience` for the connection and again
    /// for the answer's head.
    pub async fn get(
        &self,
        node: &crate::store::NodeInfo,
        path: &str,
        patience: Duration,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let authority = node
            .http_url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("node {} advertises {}, not an http:// URL", node.name, node.http_url))?
            .trim_end_matches('/')
            .to_owned();
        let tcp = tokio::time::timeout(patience, tokio::net::TcpStream::connect(&authority)).await??;
        tcp.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, &authority)
            .header(RELAY_HEADER, &self.parts.secret)
            .body(http_body_util::Empty::<Bytes>::new())?;
        let response = tokio::time::timeout(patience, sender.send_request(request)).await??;
        if !response.status().is_success() {
            return Err(anyhow::Error::new(Refused(response.status())).context(format!(
                "node {} answered {}",
                node.name,
                response.status()
            )));
        }
        Ok(response)
    }

    /// Whether `secret` is the one other nodes show to pull from this one.
    pub fn is_secret(&self, secret: &[u8]) -> bool {
        crate::auth::same_secret(secret, self.parts.secret.as_bytes())
    }

    /// Pulls `id` from its origin into the hub until the origin's stream ends.
    async fn pull(self: Arc<Self>, id: String, ready: watch::Sender<Option<bool>>) {
        if let Err(e) = self.pull_from_origin(&id, &ready).await {
            tracing::warn!(broadcast = %id, "relay from the origin ended: {e:#}");
        }
        ready.send_replace(Some(false));
        self.pulls.lock().expect("relays lock").remove(&id);
    }

    async fn pull_from_origin(&self, id: &str, ready: &watch::Sender<Option<bool>>) -> anyhow::Result<()> {
        let lookup = id.to_owned();
        let Some(origin) = self.parts.store.call(move |db| db.origin(&lookup)).await? else {
            return Ok(()); // live nowhere else: not live
        };
        let response = self.get(&origin, &format!("/live/{id}.flv"), FIRST_FRAMES).await?;
        let Ok(stream) = self.parts.hub.open(id) else {
            // Published here meanwhile: the publisher's stream is the one to watch.
            ready.send_replace(Some(true));
            return Ok(());
        };
        tracing::info!(broadcast = %id, origin = %origin.name, "relaying from the origin");
        if let Some(config) = self.parts.hls_config.clone()
            && let Ok(Some(gate)) = self.parts.admission.gate(id).await
        {
            tokio::spawn(crate::hls::run(
                self.parts.hls.clone(),
                config,
                stream.clone(),
                None,
                gate,
                self.parts.store.clone(),
                self.parts.metrics.clone(),
            ));
        }
        let relayed = relay(&self.parts.hls, response.into_body(), &stream, ready).await;
        self.parts.hub.close(&stream);
        relayed
    }
}

/// Pushes the origin's FLV tags into `stream` as frames; says `ready` at the first keyframe
/// (or first frame of an audio-only stream), when a viewer has a picture to start from.
async fn relay(
    hls: &crate::hls::Registry,
    mut body: hyper::body::Incoming,
    stream: &Stream,
    ready: &watch::Sender<Option<bool>>,
) -> anyhow::Result<()> {
    let mut demuxer = flv::Demuxer::new(MAX_TAG_BYTES);
    let mut has_video = false;
    let mut watched_at = tokio::time::Instant::now();
    let mut check = tokio::time::interval(Duration::from_secs(5));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(ORIGIN_IDLE, body.frame()) => next,
            _ = check.tick() => {
                let hls = hls.get(&stream.id).map_or(0, |r| r.audience.len());
                if stream.viewers() > 0 || hls > 0 {
                    watched_at = tokio::time::Instant::now();
                } else if watched_at.elapsed() >= UNWATCHED {
                    tracing::info!(broadcast = %stream.id, "nobody here watches the relayed stream: stopped");
                    return Ok(());
                }
                continue;
            }
        };
        let Some(frame) = next.map_err(|_| anyhow::anyhow!("the origin sent nothing for {ORIGIN_IDLE:?}"))? else {
            return Ok(()); // the origin's stream ended
        };
        let Ok(data) = frame?.into_data() else { continue };
        demuxer.push(&data);
        while let Some(tag) = demuxer.next_tag()? {
            let kind = match tag.kind {
                flv::TagKind::Audio => MediaKind::Audio,
                flv::TagKind::Video => MediaKind::Video,
                flv::TagKind::Script => MediaKind::Data,
            };
            if tag.body.is_empty() {
                continue;
            }
            let described = crate::app::describe(kind, &tag.body, &mut has_video)?;
            let frame = Frame::new(
                described.codec,
                u64::from(tag.timestamp),
                described.sync_point,
                described.header,
                tag.body,
            );
            stream.push(frame);
            if described.sync_point && ready.borrow().is_none() {
                ready.send_replace(Some(true));
            }
        }
    }
}
