//! The hub: one [`Stream`] per live broadcast, fanning frames out from the publisher to
//! every viewer.
//!
//! Fan-out uses one shared ring per stream instead of a queue per viewer: the publisher
//! appends a frame once (O(1), never blocking), and each viewer keeps a cursor into the
//! ring. The ring is bounded by bytes, so a viewer's backlog is bounded by the same
//! budget however many viewers there are; a viewer whose cursor falls off the ring's start
//! has lagged and skips to the oldest keyframe still held. The ring always keeps the
//! current GOP (from the latest keyframe), which is what a new viewer starts with.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flv::TagKind;
use rtmp::MediaKind;
use tokio::sync::Notify;

/// How far behind the current GOP a viewer may fall before it skips ahead: frames older
/// than this (and not in the current GOP) leave the ring. Two seconds ride out a congested
/// link; a viewer further behind than that is better served by the live edge.
pub const RING_AGE: Duration = Duration::from_secs(2);

/// Bytes a stream keeps beyond the current GOP, whatever their age: 4 MiB is 8 s of a
/// 4 Mbit/s stream, and bounds the ring of a high-bitrate stream.
pub const RING_BYTES: usize = 4 << 20;

/// The current GOP is kept whole up to this size (a 20 Mbit/s stream with 6 s GOPs);
/// beyond it the oldest frames go and new viewers wait for the next keyframe.
pub const MAX_GOP_BYTES: usize = 16 << 20;

/// The chunk size of every RTMP viewer session, so one encoding of a frame serves all.
pub const RTMP_CHUNK_SIZE: u32 = 4096;

/// One audio, video or data message, parsed once and serialized once per output format.
#[derive(Debug)]
pub struct Frame {
    /// The tag header, parsed once at ingest so no consumer parses it again.
    pub codec: Codec,
    /// Decode timestamp in milliseconds on the broadcast's timeline (see `timeline`):
    /// unwrapped to 64 bits and steady across an encoder's jumps. RTMP and FLV viewers
    /// get its low 32 bits, as those formats carry.
    pub timestamp: u64,
    /// A point a viewer can start from: a video keyframe, or any audio frame of a stream
    /// without video.
    pub sync_point: bool,
    /// A codec configuration or metadata, which every viewer needs before frames.
    pub header: Option<HeaderKind>,
    /// The FLV tag body: the same bytes RTMP carries in a media message.
    pub payload: Bytes,
    /// When the frame reached the server.
    pub received: Instant,
    rtmp: OnceLock<Bytes>,
    flv: OnceLock<Bytes>,
}

/// What a frame's tag header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Video(flv::VideoTag),
    Audio(flv::AudioTag),
    /// Script data (metadata, cue points): relayed as it is.
    Data,
}

impl Codec {
    /// Parses the tag header of a message; an error names what is not relayed.
    pub fn parse(kind: MediaKind, payload: &[u8]) -> Result<Codec, flv::Error> {
        Ok(match kind {
            MediaKind::Video => Codec::Video(flv::VideoTag::parse(payload)?),
            MediaKind::Audio => Codec::Audio(flv::AudioTag::parse(payload)?),
            MediaKind::Data => Codec::Data,
        })
    }

    pub fn kind(&self) -> MediaKind {
        match self {
            Codec::Video(_) => MediaKind::Video,
            Codec::Audio(_) => MediaKind::Audio,
            Codec::Data => MediaKind::Data,
        }
    }
}

/// Which stream header a frame replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    Metadata,
    VideoConfig,
    AudioConfig,
}

impl Frame {
    pub fn new(codec: Codec, timestamp: u64, sync_point: bool, header: Option<HeaderKind>, payload: Bytes) -> Self {
        Self {
            codec,
            timestamp,
            sync_point,
            header,
            payload,
            received: Instant::now(),
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        }
    }

    /// The frame as RTMP chunks for a viewer session with [`RTMP_CHUNK_SIZE`]; encoded on
    /// first use and shared by every RTMP viewer.
    pub fn rtmp_chunks(&self) -> &Bytes {
        self.rtmp.get_or_init(|| {
            rtmp::message::encode_media(RTMP_CHUNK_SIZE, self.kind(), self.timestamp as u32, &self.payload)
        })
    }

    /// The frame as an FLV tag; encoded on first use and shared by every HTTP-FLV viewer.
    pub fn flv_tag(&self) -> &Bytes {
        self.flv.get_or_init(|| {
            let kind = match self.kind() {
                MediaKind::Audio => TagKind::Audio,
                MediaKind::Video => TagKind::Video,
                MediaKind::Data => TagKind::Script,
            };
            flv::encode_tag(kind, self.timestamp as u32, &self.payload)
        })
    }

    pub fn kind(&self) -> MediaKind {
        self.codec.kind()
    }

    fn size(&self) -> usize {
        self.payload.len()
    }
}

/// The live broadcasts of this process.
#[derive(Debug, Default)]
pub struct Hub {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    /// How long frames may wait so that viewers get several in one write (see [`Stream`]).
    batch: Duration,
}

/// Why a stream cannot be opened.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("broadcast already has a publisher")]
    AlreadyLive,
}

impl Hub {
    /// A hub whose streams wake viewers at most once per `batch` (zero: at every frame).
    pub fn new(batch: Duration) -> Hub {
        Hub {
            streams: Mutex::default(),
            batch,
        }
    }

    /// Opens the stream of a broadcast for its one publisher. With a batch window, this
    /// starts the stream's flusher task, so it must run inside a tokio runtime.
    pub fn open(&self, id: &str) -> Result<Arc<Stream>, OpenError> {
        let mut streams = self.streams.lock().expect("hub lock");
        if streams.contains_key(id) {
            return Err(OpenError::AlreadyLive);
        }
        let stream = Arc::new(Stream::new(id.to_owned(), self.batch));
        if !self.batch.is_zero() {
            tokio::spawn(flusher(stream.clone()));
        }
        streams.insert(id.to_owned(), stream.clone());
        Ok(stream)
    }

    /// Ends a stream: viewers drain what they have and see the end.
    pub fn close(&self, stream: &Stream) {
        stream.end();
        let mut streams = self.streams.lock().expect("hub lock");
        if streams
            .get(&stream.id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), stream))
        {
            streams.remove(&stream.id);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.streams.lock().expect("hub lock").get(id).cloned()
    }

    /// Each stream's RTMP and HTTP-FLV viewers.
    pub fn viewers_by_stream(&self) -> HashMap<String, usize> {
        let streams = self.streams.lock().expect("hub lock");
        streams.iter().map(|(id, s)| (id.clone(), s.viewers())).collect()
    }
}

/// One live broadcast's media.
///
/// Waking a viewer costs one write to its socket, and on loopback most of a server's CPU
/// is those writes. With a batch window, a frame waits up to that long for the frames
/// after it, and each viewer writes them together: fewer writes, a bounded extra delay.
#[derive(Debug)]
pub struct Stream {
    pub id: String,
    ring: Mutex<Ring>,
    /// Woken when frames are released to viewers or the stream ends.
    changed: Notify,
    viewers: AtomicUsize,
    /// The newest media timestamp (ms): where the live edge is in stream time.
    edge: AtomicU64,
    batch: Duration,
    /// Frames are waiting for the flusher.
    pending: AtomicBool,
    /// Tells the flusher a batch window has opened.
    flush: Notify,
    /// A viewer that starts at the next keyframe (WebRTC) asked for one: a publisher that
    /// can make one on demand (a WHIP session) listens.
    keyframe_wanted: Notify,
}

/// Releases each batch of frames to viewers when its window closes.
async fn flusher(stream: Arc<Stream>) {
    loop {
        stream.flush.notified().await;
        tokio::time::sleep(stream.batch).await;
        stream.pending.store(false, Ordering::Release);
        stream.changed.notify_waiters();
        if stream.ring.lock().expect("ring lock").ended {
            return;
        }
    }
}

#[derive(Debug, Default)]
struct Ring {
    frames: VecDeque<Arc<Frame>>,
    /// Sequence number of `frames[0]`.
    first_seq: u64,
    bytes: usize,
    /// Sequence number of the latest sync point, if the ring still holds it.
    last_sync: Option<u64>,
    metadata: Option<Arc<Frame>>,
    video_config: Option<Arc<Frame>>,
    audio_config: Option<Arc<Frame>>,
    has_video: bool,
    has_audio: bool,
    ended: bool,
}

impl Ring {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.frames.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Arc<Frame>> {
        self.frames.get(seq.checked_sub(self.first_seq)? as usize)
    }

    /// The first sync point at or after `seq`.
    fn sync_at_or_after(&self, seq: u64) -> Option<u64> {
        let start = seq.saturating_sub(self.first_seq) as usize;
        self.frames
            .iter()
            .skip(start)
            .position(|f| f.sync_point)
            .map(|i| self.first_seq + (start + i) as u64)
    }

    /// What a consumer joining now needs before any frame.
    fn headers(&self) -> Headers {
        let frames = self
            .metadata
            .iter()
            .chain(&self.video_config)
            .chain(&self.audio_config)
            .cloned()
            .collect();
        Headers {
            has_video: self.has_video,
            has_audio: self.has_audio,
            frames,
        }
    }

    fn pop_front(&mut self) {
        if let Some(f) = self.frames.pop_front() {
            self.bytes -= f.size();
            self.first_seq += 1;
            if self.last_sync.is_some_and(|s| s < self.first_seq) {
                self.last_sync = None;
            }
        }
    }
}

/// What the headers of a stream are when a viewer joins.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub has_video: bool,
    pub has_audio: bool,
    /// Metadata and codec configurations, to send before any frame.
    pub frames: Vec<Arc<Frame>>,
}

impl Stream {
    fn new(id: String, batch: Duration) -> Self {
        Self {
            id,
            ring: Mutex::new(Ring::default()),
            changed: Notify::new(),
            viewers: AtomicUsize::new(0),
            edge: AtomicU64::new(0),
            batch,
            pending: AtomicBool::new(false),
            flush: Notify::new(),
            keyframe_wanted: Notify::new(),
        }
    }

    /// Asks the publisher for a keyframe, if it can make one (one request is kept until
    /// the publisher looks).
    pub fn want_keyframe(&self) {
        self.keyframe_wanted.notify_one();
    }

    /// Resolves when a viewer asked for a keyframe.
    pub async fn keyframe_wanted(&self) {
        self.keyframe_wanted.notified().await;
    }

    /// Appends a frame and wakes the viewers. Never waits for any viewer.
    pub fn push(&self, frame: Frame) {
        if frame.header.is_none() && frame.kind() != MediaKind::Data {
            self.edge.fetch_max(frame.timestamp, Ordering::Relaxed);
        }
        let frame = Arc::new(frame);
        {
            let mut ring = self.ring.lock().expect("ring lock");
            match frame.header {
                Some(HeaderKind::Metadata) => ring.metadata = Some(frame.clone()),
                Some(HeaderKind::VideoConfig) => ring.video_config = Some(frame.clone()),
                Some(HeaderKind::AudioConfig) => ring.audio_config = Some(frame.clone()),
                None => {}
            }
            match frame.kind() {
                MediaKind::Video => ring.has_video = true,
                MediaKind::Audio => ring.has_audio = true,
                MediaKind::Data => {}
            }
            if frame.sync_point {
                ring.last_sync = Some(ring.next_seq());
            }
            ring.bytes += frame.size();
            ring.frames.push_back(frame);
            // Trim frames that are too old or over the budget, but never the current GOP
            // unless it is itself over its own cap.
            let now = Instant::now();
            while let Some(front) = ring.frames.front() {
                let in_current_gop = ring.last_sync.is_some_and(|sync| sync <= ring.first_seq);
                let trim = if in_current_gop {
                    ring.bytes > MAX_GOP_BYTES
                } else {
                    ring.bytes > RING_BYTES || now.duration_since(front.received) > RING_AGE
                };
                if !trim || ring.frames.len() == 1 {
                    break;
                }
                ring.pop_front();
            }
        }
        if self.batch.is_zero() {
            self.changed.notify_waiters();
        } else if !self.pending.swap(true, Ordering::AcqRel) {
            self.flush.notify_one();
        }
    }

    /// Whether the stream has video (a viewer joining a stream without video needs no keyframe).
    pub fn has_video(&self) -> bool {
        self.ring.lock().expect("ring lock").has_video
    }

    fn end(&self) {
        self.ring.lock().expect("ring lock").ended = true;
        self.changed.notify_waiters();
        // Let the flusher see the end and exit.
        self.flush.notify_one();
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// The stream time (ms) at the live edge: the newest audio or video frame's timestamp.
    pub fn edge_ms(&self) -> u64 {
        self.edge.load(Ordering::Relaxed)
    }

    /// Joins as a viewer, starting at the current GOP.
    pub fn subscribe(self: &Arc<Self>) -> (Headers, Subscription) {
        self.subscribe_from_gop(true)
    }

    /// Joins as a viewer at the live edge: from the next keyframe on. For a player that
    /// plays frames as they come (WebRTC), where the current GOP sent at once would put it
    /// that far behind for good.
    pub fn subscribe_at_edge(self: &Arc<Self>) -> (Headers, Subscription) {
        let ring = self.ring.lock().expect("ring lock");
        let headers = ring.headers();
        let cursor = ring.next_seq();
        drop(ring);
        self.viewers.fetch_add(1, Ordering::Relaxed);
        (
            headers,
            Subscription {
                stream: self.clone(),
                cursor,
                need_sync: true,
                skipped: 0,
                counted: true,
            },
        )
    }

    /// Joins as another node's relay: as a viewer does, but not counted as one (that
    /// node counts its own viewers).
    pub fn subscribe_relay(self: &Arc<Self>) -> (Headers, Subscription) {
        self.subscribe_from_gop(false)
    }

    fn subscribe_from_gop(self: &Arc<Self>, counted: bool) -> (Headers, Subscription) {
        let ring = self.ring.lock().expect("ring lock");
        let headers = ring.headers();
        let (cursor, need_sync) = match ring.last_sync {
            Some(seq) => (seq, false),
            None => (ring.next_seq(), true),
        };
        drop(ring);
        if counted {
            self.viewers.fetch_add(1, Ordering::Relaxed);
        }
        (
            headers,
            Subscription {
                stream: self.clone(),
                cursor,
                need_sync,
                skipped: 0,
                counted,
            },
        )
    }

    /// Joins as a consumer inside the server (the LL-HLS segmenter): every frame from now
    /// on, headers included, and not counted as a viewer.
    pub fn subscribe_internal(self: &Arc<Self>) -> (Headers, Subscription) {
        let ring = self.ring.lock().expect("ring lock");
        let headers = ring.headers();
        let cursor = ring.next_seq();
        drop(ring);
        (
            headers,
            Subscription {
                stream: self.clone(),
                cursor,
                need_sync: false,
                skipped: 0,
                counted: false,
            },
        )
    }
}

/// A viewer's position in a stream. Dropping it leaves the stream.
#[derive(Debug)]
pub struct Subscription {
    stream: Arc<Stream>,
    cursor: u64,
    /// Waiting for a sync point before sending frames (joined before one, or lagged).
    need_sync: bool,
    /// Frames this viewer skipped because it lagged.
    pub skipped: u64,
    /// Counted in the stream's viewers.
    counted: bool,
}

/// What [`Subscription::next_batch`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Frames were added to the batch.
    Frames,
    /// The stream ended and everything was delivered.
    Ended,
}

impl Subscription {
    /// Waits until frames after the cursor exist and appends them to `batch`, up to about
    /// `max_bytes`.
    pub async fn next_batch(&mut self, batch: &mut Vec<Arc<Frame>>, max_bytes: usize) -> Next {
        let stream = self.stream.clone();
        loop {
            let changed = stream.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(next) = self.try_batch(batch, max_bytes) {
                return next;
            }
            changed.await;
        }
    }

    /// Takes what is available now; `None` when nothing is.
    pub fn try_batch(&mut self, batch: &mut Vec<Arc<Frame>>, max_bytes: usize) -> Option<Next> {
        let ring = self.stream.ring.lock().expect("ring lock");
        if self.cursor < ring.first_seq {
            // Lagged off the ring: skip to the latest sync point, back to the live edge.
            let to = ring.last_sync.or_else(|| ring.sync_at_or_after(ring.first_seq));
            let target = to.unwrap_or(ring.next_seq());
            self.skipped += target - self.cursor;
            self.cursor = target;
            self.need_sync = to.is_none();
        }
        let before = batch.len();
        if self.need_sync {
            // Frames before the sync point cannot be decoded and are skipped, but the
            // headers among them are what every frame after needs: a viewer who joined
            // before the publisher sent its codec configuration gets it here.
            loop {
                match ring.get(self.cursor) {
                    Some(frame) if frame.sync_point => {
                        self.need_sync = false;
                        break;
                    }
                    Some(frame) => {
                        if frame.header.is_some() {
                            batch.push(frame.clone());
                        }
                        self.cursor += 1;
                    }
                    None if batch.len() > before => return Some(Next::Frames),
                    None => return ring.ended.then_some(Next::Ended),
                }
            }
        }
        let mut bytes = 0;
        while let Some(frame) = ring.get(self.cursor) {
            if bytes > 0 && bytes + frame.size() > max_bytes {
                break;
            }
            bytes += frame.size();
            batch.push(frame.clone());
            self.cursor += 1;
        }
        if batch.len() > before {
            Some(Next::Frames)
        } else if ring.ended {
            Some(Next::Ended)
        } else {
            None
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.counted {
            self.stream.viewers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ts: u64, key: bool, size: usize) -> Frame {
        let body = vec![if key { 0x17 } else { 0x27 }; size];
        Frame::new(
            Codec::parse(MediaKind::Video, &body).unwrap(),
            ts,
            key,
            None,
            Bytes::from(body),
        )
    }

    #[tokio::test]
    async fn a_viewer_who_joins_before_the_codec_configuration_still_gets_it() {
        let hub = Hub::new(Duration::ZERO);
        let stream = hub.open("b").unwrap();
        let (headers, mut sub) = stream.subscribe();
        assert!(headers.frames.is_empty());
        let config = Frame::new(
            Codec::parse(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]).unwrap(),
            0,
            false,
            Some(HeaderKind::VideoConfig),
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        );
        stream.push(config);
        stream.push(video(0, false, 10)); // not decodable without a keyframe first
        stream.push(video(33, true, 10));
        let mut batch = Vec::new();
        sub.next_batch(&mut batch, 1 << 20).await;
        let got: Vec<(Option<HeaderKind>, u64)> = batch.iter().map(|f| (f.header, f.timestamp)).collect();
        assert_eq!(got, vec![(Some(HeaderKind::VideoConfig), 0), (None, 33)]);
    }

    #[tokio::test]
    async fn a_new_viewer_starts_at_the_last_keyframe_with_headers() {
        let hub = Hub::new(Duration::ZERO);
        let stream = hub.open("b").unwrap();
        assert_eq!(hub.open("b").unwrap_err(), OpenError::AlreadyLive);
        stream.push(Frame::new(
            Codec::parse(MediaKind::Video, b"\x17\x00cfg").unwrap(),
            0,
            false,
            Some(HeaderKind::VideoConfig),
            Bytes::from_static(b"\x17\x00cfg"),
        ));
        for i in 0..10 {
            stream.push(video(i * 33, i % 4 == 0, 100));
        }
        let (headers, mut sub) = stream.subscribe();
        assert_eq!(headers.frames.len(), 1);
        assert_eq!(stream.viewers(), 1);
        let mut batch = Vec::new();
        assert_eq!(sub.next_batch(&mut batch, usize::MAX).await, Next::Frames);
        let ts: Vec<u64> = batch.iter().map(|f| f.timestamp).collect();
        assert_eq!(ts, vec![8 * 33, 9 * 33], "starts at the keyframe of frame 8");
        hub.close(&stream);
        batch.clear();
        assert_eq!(sub.next_batch(&mut batch, usize::MAX).await, Next::Ended);
        drop(sub);
        assert_eq!(stream.viewers(), 0);
        assert!(hub.get("b").is_none());
    }

    #[tokio::test]
    async fn a_stalled_viewer_costs_bounded_memory_and_skips_to_a_keyframe() {
        let stream = Hub::new(Duration::ZERO).open("b").unwrap();
        stream.push(video(0, true, 1000));
        let (_, mut slow) = stream.subscribe();
        // 40 MiB pass while the slow viewer reads nothing.
        let frame_size = 64 << 10;
        for i in 1..=640u64 {
            stream.push(video(i * 33, i % 30 == 0, frame_size));
            let ring = stream.ring.lock().unwrap();
            assert!(
                ring.bytes <= RING_BYTES + frame_size * 30,
                "ring holds {} bytes",
                ring.bytes
            );
        }
        let mut batch = Vec::new();
        assert_eq!(slow.next_batch(&mut batch, usize::MAX).await, Next::Frames);
        assert!(batch[0].sync_point, "resumes on a keyframe");
        assert_eq!(batch[0].timestamp, 630 * 33, "the latest one");
        assert!(slow.skipped > 500, "skipped {}", slow.skipped);
        assert_eq!(batch.last().unwrap().timestamp, 640 * 33, "and is live again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_window_releases_frames_together_and_no_later() {
        let hub = Hub::new(Duration::from_millis(20));
        let stream = hub.open("b").unwrap();
        stream.push(video(0, true, 10));
        let (_, mut sub) = stream.subscribe();
        let mut batch = Vec::new();
        assert_eq!(
            sub.next_batch(&mut batch, usize::MAX).await,
            Next::Frames,
            "what is there is taken at once"
        );
        batch.clear();
        let started = tokio::time::Instant::now();
        let publish = async {
            stream.push(video(33, false, 10));
            tokio::time::sleep(Duration::from_millis(5)).await;
            stream.push(video(66, false, 10));
        };
        let (next, ()) = tokio::join!(sub.next_batch(&mut batch, usize::MAX), publish);
        assert_eq!(next, Next::Frames);
        assert_eq!(batch.len(), 2, "frames of one window come together");
        assert_eq!(started.elapsed(), Duration::from_millis(20), "after exactly one window");
        hub.close(&stream);
        batch.clear();
        assert_eq!(sub.next_batch(&mut batch, usize::MAX).await, Next::Ended);
    }

    #[test]
    fn frames_are_serialized_once_per_format() {
        let f = video(5, true, 10);
        assert!(std::ptr::eq(f.flv_tag().as_ptr(), f.flv_tag().as_ptr()));
        assert!(std::ptr::eq(f.rtmp_chunks().as_ptr(), f.rtmp_chunks().as_ptr()));
        assert_eq!(f.flv_tag().len(), 11 + 10 + 4);
    }
}
