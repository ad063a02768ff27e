//! Signed broadcasts checked at ingest: a task per live broadcast reads its frames from the
//! hub, as the LL-HLS segmenter does (so the publisher never waits on it), and runs a
//! [`signed::Verifier`] over them against the owner's account keys in force. The verdict
//! (verified, not yet verified, unsigned, or tampered since a media time) is what the API
//! shows for the broadcast. The owner's [`SignaturePolicy`] says what else happens: `end`
//! ends the broadcast at the first mismatch; `drop` checks inside the ingest path instead
//! ([`Hold`]), relaying each stretch of frames only once its record has matched.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use flv::{AvcConfig, HevcConfig, VideoCodec, VideoPacket};
use signed::sei::Codec;
use signed::{Stretch, Verdict, Verifier};
use tokio::sync::{Notify, watch};

use crate::hub::{Codec as FrameCodec, Frame, Next, Stream};
use crate::recent::Recent;
use crate::store::{SignaturePolicy, Store};

/// Tells live checks that an account's signing keys changed (a key added or revoked).
pub struct KeyChanges {
    users: tokio::sync::broadcast::Sender<i64>,
}

impl Default for KeyChanges {
    fn default() -> Self {
        KeyChanges {
            users: tokio::sync::broadcast::channel(64).0,
        }
    }
}

impl KeyChanges {
    pub fn changed(&self, user: i64) {
        let _ = self.users.send(user);
    }

    /// The keys in force of `owner`, starting with `keys` and following every change, for
    /// as long as a receiver is held. Re-reading them from the store happens in a task of
    /// its own: the checks (one inside the ingest path) only look at the newest.
    pub fn follow(&self, store: Store, owner: i64, keys: Vec<[u8; 32]>) -> watch::Receiver<Vec<[u8; 32]>> {
        let (tx, rx) = watch::channel(keys);
        let mut changes = self.users.subscribe();
        tokio::spawn(async move {
            // A change between reading `keys` and subscribing would be missed: read once
            // more now that every later change is heard.
            if let Ok(keys) = store.call(move |db| db.keys(owner, false)).await {
                let keys: Vec<[u8; 32]> = keys.into_iter().map(|k| k.public_key).collect();
                tx.send_if_modified(|old| {
                    let changed = *old != keys;
                    *old = keys;
                    changed
                });
            }
            loop {
                let user = tokio::select! {
                    () = tx.closed() => return,
                    user = changes.recv() => user,
                };
                // A lagged receiver may have missed this owner's change: read again.
                if matches!(user, Ok(u) if u != owner) {
                    continue;
                }
                if matches!(user, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                match store.call(move |db| db.keys(owner, false)).await {
                    Ok(keys) => {
                        let keys = keys.into_iter().map(|k| k.public_key).collect();
                        if tx.send(keys).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::error!(user = owner, "cannot read signing keys: {e:#}"),
                }
            }
        });
        rx
    }
}

/// The longest stretch between records that a broadcaster's signer may make, in frames
/// (`livescope broadcast` makes one at every keyframe and at least every 30 frames): a
/// stream with no record in twice as many frames is unsigned.
pub const MAX_STRETCH_FRAMES: u32 = 60;

/// What the server found in one broadcast's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    /// Spans of media time (ms) that did not match, the most recent
    /// [`signed::stream::MAX_FLAGGED`].
    pub flagged: Vec<(u64, u64)>,
    /// How many stretches did not match, in all.
    pub mismatches: u64,
    /// The start (ms) of the stretch still waiting for its record: at the end of a
    /// stream, what was never checked.
    pub unchecked_from: Option<u64>,
}

/// The verdicts of broadcasts checked since the server started, the most recent
/// [`KEEP_VERDICTS`].
pub struct Verdicts {
    by_broadcast: Mutex<Recent<Checked>>,
}

impl Default for Verdicts {
    fn default() -> Self {
        Verdicts {
            by_broadcast: Mutex::new(Recent::new(KEEP_VERDICTS)),
        }
    }
}

/// Broadcasts whose verdicts are kept (a few KiB each at most).
pub const KEEP_VERDICTS: usize = 4096;

impl Verdicts {
    pub fn get(&self, id: &str) -> Option<Verdict> {
        self.checked(id).map(|c| c.verdict)
    }

    pub fn checked(&self, id: &str) -> Option<Checked> {
        self.by_broadcast.lock().expect("verdicts lock").get(id).cloned()
    }

    fn set(&self, id: &str, checker: &TagChecker) {
        let checked = checker.checked();
        let mut verdicts = self.by_broadcast.lock().expect("verdicts lock");
        let kept = verdicts.get_or_insert_with(id, || checked.clone());
        *kept = checked;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Feeds a [`Verifier`] from FLV tag bodies (what RTMP messages and hub frames carry):
/// the video configuration sets it up, frames and audio go in.
pub struct TagChecker {
    keys: Vec<[u8; 32]>,
    broadcast: String,
    verifier: Option<Verifier>,
    /// A recording watched later: certificates are not held to the wall clock.
    replay: bool,
}

impl TagChecker {
    /// `keys`: the broadcaster's account keys in force; `broadcast`: its id.
    pub fn new(keys: Vec<[u8; 32]>, broadcast: &str) -> TagChecker {
        TagChecker {
            keys,
            broadcast: broadcast.to_owned(),
            verifier: None,
            replay: false,
        }
    }

    /// Checks a recording: its certificates may have expired since.
    pub fn set_replay(&mut self) {
        self.replay = true;
    }

    fn make_verifier(&self, codec: Codec, length_size: usize) -> Verifier {
        let v = Verifier::new(
            self.keys.clone(),
            &self.broadcast,
            codec,
            length_size,
            MAX_STRETCH_FRAMES,
        );
        if self.replay { v.replaying() } else { v }
    }

    /// One tag body, its header parsed already (`codec`, as the hub keeps it with every
    /// frame), at `timestamp_ms`.
    pub fn tag(&mut self, codec: FrameCodec, timestamp_ms: u64, body: &[u8]) {
        match codec {
            FrameCodec::Video(tag) => {
                let payload = &body[tag.header_len.min(body.len())..];
                match tag.packet {
                    VideoPacket::SequenceHeader if self.verifier.is_none() => {
                        // The configuration tells the codec and the NAL length size.
                        let record = bytes::Bytes::copy_from_slice(payload);
                        let (codec, length_size) = match tag.codec {
                            VideoCodec::Avc => (Codec::Avc, AvcConfig::parse(&record).map(|c| c.nal_length_size)),
                            VideoCodec::Hevc => (Codec::Hevc, HevcConfig::parse(&record).map(|c| c.nal_length_size)),
                        };
                        if let Ok(length_size) = length_size {
                            self.verifier = Some(self.make_verifier(codec, usize::from(length_size)));
                        }
                    }
                    VideoPacket::Frame => self.video_sample(timestamp_ms, tag.composition_time, tag.keyframe, payload),
                    _ => {}
                }
            }
            FrameCodec::Audio(tag) if !tag.sequence_header => {
                self.audio_frame(&body[tag.header_len.min(body.len())..]);
            }
            _ => {}
        }
    }

    /// Sets the checking up from a codec and NAL length size learnt otherwise (from a CMAF
    /// init segment, which has no FLV sequence header).
    pub fn configure(&mut self, codec: Codec, length_size: usize) {
        if self.verifier.is_none() {
            self.verifier = Some(self.make_verifier(codec, length_size));
        }
    }

    /// A video sample read from a container other than FLV.
    pub fn video_sample(&mut self, dts_ms: u64, composition_ms: i32, keyframe: bool, sample: &[u8]) {
        if let Some(v) = self.verifier.as_mut() {
            v.video(dts_ms, composition_ms, keyframe, sample, now_ms());
        }
    }

    /// An audio frame read from a container other than FLV.
    pub fn audio_frame(&mut self, data: &[u8]) {
        if let Some(v) = self.verifier.as_mut() {
            v.audio(data);
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verifier
            .as_ref()
            .map_or(Verdict::NotYetVerified, |v| v.verdict().clone())
    }

    /// The broadcaster's account keys in force changed.
    pub fn set_keys(&mut self, keys: Vec<[u8; 32]>) {
        if let Some(v) = self.verifier.as_mut() {
            v.set_trusted(keys.clone());
        }
        self.keys = keys;
    }

    /// The verdict with the spans that did not match.
    pub fn checked(&self) -> Checked {
        Checked {
            verdict: self.verdict(),
            flagged: self.verifier.as_ref().map_or_else(Vec::new, |v| v.flagged().collect()),
            mismatches: self.verifier.as_ref().map_or(0, Verifier::mismatches),
            unchecked_from: self.verifier.as_ref().and_then(Verifier::unchecked_from),
        }
    }

    /// How many stretches did not match so far.
    fn mismatches(&self) -> u64 {
        self.verifier.as_ref().map_or(0, Verifier::mismatches)
    }

    /// The verdict's kind, without its details (cheap, for every frame).
    fn verdict_kind(&self) -> std::mem::Discriminant<Verdict> {
        self.verifier
            .as_ref()
            .map_or(std::mem::discriminant(&Verdict::NotYetVerified), |v| {
                std::mem::discriminant(v.verdict())
            })
    }

    /// After frames were skipped by this side (a check that fell behind): the next
    /// stretches are checked as by a viewer joining there.
    pub fn rejoin(&mut self) {
        if let Some(v) = self.verifier.as_mut() {
            v.rejoin();
        }
    }

    fn take_closed(&mut self) -> Option<Stretch> {
        self.verifier.as_mut().and_then(Verifier::take_closed)
    }
}

/// Frames held back at most, waiting for a record: twice the longest stretch of video, or
/// this many frames of any kind (an audio-only stream has no stretches).
const MAX_HELD_VIDEO: u32 = MAX_STRETCH_FRAMES * 2;
const MAX_HELD_FRAMES: usize = 1024;

/// The `drop` policy, inside the ingest path: frames are held from one record to the next
/// and relayed only if the record that closes their stretch matches them (video, record
/// chain and certificate; audio is checked as it comes and a mismatch there drops the
/// stretch being held when it is found). This costs the delay of one stretch (a GOP, at
/// most 30 frames with `livescope broadcast`). A stream that never carries a record is
/// unsigned and passes through once that is clear; one whose records stop has everything
/// after dropped. The last stretch of a broadcast has no record after it and is not
/// relayed.
pub struct Hold {
    checker: TagChecker,
    keys: watch::Receiver<Vec<[u8; 32]>>,
    verdicts: Arc<Verdicts>,
    broadcast: String,
    held: Vec<Frame>,
    held_video: u32,
    pass_through: bool,
    /// Frames dropped so far.
    pub dropped: u64,
}

impl Hold {
    pub fn new(verdicts: Arc<Verdicts>, keys: watch::Receiver<Vec<[u8; 32]>>, broadcast: &str) -> Hold {
        let checker = TagChecker::new(keys.borrow().clone(), broadcast);
        verdicts.set(broadcast, &checker);
        Hold {
            checker,
            keys,
            verdicts,
            broadcast: broadcast.to_owned(),
            held: Vec::new(),
            held_video: 0,
            pass_through: false,
            dropped: 0,
        }
    }

    fn drop_held(&mut self) {
        if !self.held.is_empty() {
            let at = self.held.first().map_or(0, |f| f.timestamp);
            tracing::warn!(broadcast = %self.broadcast, frames = self.held.len(), at_ms = at, "dropped a stretch that does not match its signature");
        }
        self.dropped += self.held.len() as u64;
        self.held.clear();
        self.held_video = 0;
    }

    fn release(&mut self, out: &mut Vec<Frame>) {
        out.append(&mut self.held);
        self.held_video = 0;
    }

    /// Takes the next frame from the publisher; `out` receives the frames now cleared.
    pub fn push(&mut self, frame: Frame, out: &mut Vec<Frame>) {
        if self.keys.has_changed().unwrap_or(false) {
            let keys = self.keys.borrow_and_update().clone();
            self.checker.set_keys(keys);
        }
        let mismatches = self.checker.mismatches();
        let before = self.checker.verdict_kind();
        self.checker.tag(frame.codec, frame.timestamp, &frame.payload);
        let closed = self.checker.take_closed();
        let mismatched = self.checker.mismatches() > mismatches;
        if closed.is_some() || mismatched || self.checker.verdict_kind() != before {
            self.verdicts.set(&self.broadcast, &self.checker);
        }
        if self.pass_through {
            // Unsigned: relayed as it comes, and still checked (signatures that start now
            // are reported).
            out.push(frame);
            return;
        }
        if frame.header.is_some() || frame.codec == FrameCodec::Data {
            // Metadata and codec configurations carry no media: every viewer needs them,
            // whatever happens to the frames around them.
            out.push(frame);
            return;
        }
        // Only a stretch whose record matched goes on; one that could not be checked (no
        // certificate in force) is not vouched for either.
        match closed {
            _ if mismatched => self.drop_held(),
            Some(Stretch::Matched) => self.release(out),
            Some(_) => self.drop_held(),
            None => {}
        }
        if matches!(frame.codec, FrameCodec::Video(_)) {
            self.held_video += 1;
        }
        self.held.push(frame);
        if self.held_video > MAX_HELD_VIDEO || self.held.len() > MAX_HELD_FRAMES {
            if self.checker.verdict() == Verdict::Unsigned {
                self.pass_through = true;
                self.release(out);
            } else {
                // Signatures stopped, or records come that nothing certified: nothing here
                // can be vouched for.
                self.drop_held();
            }
            self.verdicts.set(&self.broadcast, &self.checker);
        }
    }
}

/// Checks one live broadcast until it ends; `keys` are its owner's account keys in force.
/// At the first mismatch, if the broadcast's policy (read then from `store`, so that a
/// change while live counts) is `end`, `end` is notified.
pub async fn run(
    verdicts: Arc<Verdicts>,
    stream: Arc<Stream>,
    mut keys: watch::Receiver<Vec<[u8; 32]>>,
    store: Store,
    end: Arc<Notify>,
    mismatches: prometheus_client::metrics::counter::Counter,
) {
    let id = stream.id.clone();
    let (headers, mut sub) = stream.subscribe_internal();
    let mut pending = headers.frames;
    let mut checker = TagChecker::new(keys.borrow_and_update().clone(), &id);
    let mut batch = Vec::new();
    let mut skipped = 0;
    let mut counted = 0;
    verdicts.set(&id, &checker);
    loop {
        for frame in pending.drain(..) {
            checker.tag(frame.codec, frame.timestamp, &frame.payload);
        }
        let verdict = checker.verdict();
        if let Verdict::Tampered { at_ms, reason } = &verdict
            && verdicts
                .get(&id)
                .is_some_and(|old| !matches!(old, Verdict::Tampered { .. }))
        {
            tracing::warn!(broadcast = %id, at_ms, "signed broadcast tampered with: {reason}");
            verdicts.set(&id, &checker);
            match store.get(&id).await {
                Ok(Some(b)) if b.signature_policy == SignaturePolicy::End => {
                    tracing::warn!(broadcast = %id, "ending the broadcast, as its owner asked for a tampered stream");
                    end.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(broadcast = %id, "cannot read the signature policy: {e:#}"),
            }
        }
        verdicts.set(&id, &checker);
        let now = checker.mismatches();
        if now > counted {
            mismatches.inc_by(now - counted);
            counted = now;
        }
        batch.clear();
        tokio::select! {
            next = sub.next_batch(&mut batch, 1 << 20) => match next {
                Next::Frames => {
                    if sub.skipped > skipped {
                        // This task fell behind and the hub moved it on to a keyframe: a
                        // gap of its own making, not the network's.
                        skipped = sub.skipped;
                        tracing::warn!(broadcast = %id, skipped, "the signature check fell behind");
                        checker.rejoin();
                    }
                    pending.append(&mut batch);
                }
                Next::Ended => break,
            },
            Ok(()) = keys.changed() => {
                let keys = keys.borrow_and_update().clone();
                tracing::info!(broadcast = %id, keys = keys.len(), "the broadcaster's signing keys changed");
                checker.set_keys(keys);
            }
        }
    }
}
