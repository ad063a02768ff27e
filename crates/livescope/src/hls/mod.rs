//! LL-HLS origin: every live broadcast gets a rendition (an fMP4 init segment, parts and
//! segments in a sliding window, and its playlists) fed by a segmenter task from the hub;
//! with recording on, finished segments go to disk and stay watchable as a replay.

mod audience;
mod http;
pub mod recording;
mod segmenter;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::Notify;

pub use http::{Serving, routes};
pub use recording::{Recorder, Recordings};
pub use segmenter::{Output, Segmenter, StreamInfo};

use crate::delay::Stage;
use crate::hub::{Next, Stream};
use rtmp::MediaKind;

/// Default part target. A third of a second is ten frames at 30 fps: short enough that
/// a player two parts behind the edge (PART-HOLD-BACK) is under a second from live, long
/// enough that each viewer makes three part requests a second (and three playlist ones).
pub const DEFAULT_PART_TARGET: Duration = Duration::from_millis(334);
/// Segments are cut on the first keyframe after this much media.
pub const DEFAULT_SEGMENT_TARGET: Duration = Duration::from_secs(2);
/// Complete segments listed in a live playlist: 8 of 2 s, more than CAN-SKIP-UNTIL
/// (6 target durations) so delta updates have something to skip.
pub const WINDOW_SEGMENTS: usize = 8;
/// Parts are kept this many target durations back (the playlist lists three); older media
/// is served from its segment.
const PARTS_KEPT_TARGETS: f64 = 4.0;
/// How long an ended rendition stays in memory for players finishing the live window.
const LINGER: Duration = Duration::from_secs(60);

/// PART-HOLD-BACK, in part targets, unless configured: two, the least RFC 8216bis allows.
/// Measured with hls.js (bench/results/ll-hls-latency.md), it puts a viewer 0.86 s behind
/// live, against 1.08 s with three, at no cost to the origin; 200 ms parts with 400 ms
/// would give 0.47 s for 65% more requests per viewer.
pub const DEFAULT_PART_HOLD_BACK_PARTS: u32 = 2;

/// LL-HLS settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub part_target: Duration,
    pub segment_target: Duration,
    /// How far behind the live edge players are asked to stay (PART-HOLD-BACK).
    pub part_hold_back: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            part_target: DEFAULT_PART_TARGET,
            segment_target: DEFAULT_SEGMENT_TARGET,
            part_hold_back: DEFAULT_PART_TARGET * DEFAULT_PART_HOLD_BACK_PARTS,
        }
    }
}

/// The renditions of live (and just ended) broadcasts.
#[derive(Default)]
pub struct Registry {
    renditions: Mutex<HashMap<String, Arc<Rendition>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<Rendition>> {
        self.renditions.lock().expect("registry lock").get(id).cloned()
    }

    /// Each rendition's HLS viewers now.
    pub fn audiences(&self) -> Vec<(String, usize)> {
        let map = self.renditions.lock().expect("registry lock");
        map.iter().map(|(id, r)| (id.clone(), r.audience.len())).collect()
    }

    fn insert(&self, id: &str, rendition: Arc<Rendition>) {
        self.renditions
            .lock()
            .expect("registry lock")
            .insert(id.to_owned(), rendition);
    }

    fn remove(&self, id: &str, rendition: &Arc<Rendition>) {
        let mut map = self.renditions.lock().expect("registry lock");
        if map.get(id).is_some_and(|r| Arc::ptr_eq(r, rendition)) {
            map.remove(id);
        }
    }
}

/// One broadcast's LL-HLS state, shared by the segmenter and the HTTP handlers.
pub struct Rendition {
    /// Who may watch (a private broadcast's requests need a playback token).
    pub gate: Arc<crate::access::Gate>,
    /// Its HLS viewers.
    pub audience: audience::Audience,
    pub state: Mutex<State>,
    /// Woken whenever a part is complete or the stream ends.
    pub changed: Notify,
    /// Woken whenever the part in progress grows, a part is complete or the stream ends.
    pub grew: Notify,
    /// Set once the broadcast ended and its recording is complete: from then on the
    /// recording answers for everything but the parts (see `http::file`).
    pub recorded: AtomicBool,
    /// The broadcast's delay stages (blocking waits are measured per request).
    pub delays: Arc<crate::delay::Delays>,
}

/// What a rendition holds.
pub struct State {
    pub window: ::hls::Window,
    pub init: Option<Bytes>,
    pub info: StreamInfo,
    /// Parts of the segments in the window, by part number.
    pub parts: BTreeMap<u64, Bytes>,
    /// The CMAF chunks of the part in progress (number `window.next_part()`).
    pub building: Vec<Bytes>,
    /// Complete segments in the window.
    pub segments: BTreeMap<u64, Bytes>,
    /// Bytes and seconds of media so far, for the playlist's AVERAGE-BANDWIDTH.
    pub bytes: u64,
    pub seconds: f64,
    /// The highest bit rate of a complete segment, for its BANDWIDTH.
    pub peak: f64,
}

impl State {
    /// A picture of the stream for posters: the init segment and the first part of the
    /// newest segment whose parts are still held, which together are an MP4. Segments are
    /// cut on keyframes, so that part opens with one, and a browser shows it as a video's
    /// first frame. It costs nothing until asked for, and then only two shared buffers.
    pub fn poster(&self) -> Option<[Bytes; 2]> {
        let init = self.init.as_ref()?;
        let newest_first = self.window.current.iter().chain(self.window.segments.iter().rev());
        let part = newest_first
            .filter_map(|segment| self.parts.get(&segment.first_part))
            .next()?;
        Some([init.clone(), part.clone()])
    }

    /// The bit rates the multivariant playlist declares. Before the first segment is
    /// complete, the peak is estimated from the parts so far (their average and a quarter).
    pub fn bandwidth(&self) -> Bandwidth {
        bandwidth(self.bytes, self.seconds, self.peak)
    }
}

/// BANDWIDTH (the peak segment bit rate) and AVERAGE-BANDWIDTH, bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    pub peak: u64,
    pub average: u64,
}

/// The bit rates of `bytes` over `seconds` of media whose highest segment rate is `peak`;
/// a guess of 2 Mbit/s before there is half a second of media.
fn bandwidth(bytes: u64, seconds: f64, peak: f64) -> Bandwidth {
    if seconds < 0.5 {
        return Bandwidth {
            peak: 2_000_000,
            average: 2_000_000,
        };
    }
    let average = bytes as f64 * 8.0 / seconds;
    // Before a whole segment there is no peak to measure: the average and a quarter.
    let peak = if peak > 0.0 { peak.max(average) } else { average * 1.25 };
    Bandwidth {
        peak: peak.max(1.0) as u64,
        average: average.max(1.0) as u64,
    }
}

impl Rendition {
    fn new(config: &Config, gate: Arc<crate::access::Gate>, delays: Arc<crate::delay::Delays>) -> Rendition {
        let mut window = ::hls::Window::new(
            config.part_target.as_secs_f64(),
            config.segment_target.as_secs_f64(),
            WINDOW_SEGMENTS,
        );
        window.part_hold_back = config.part_hold_back.as_secs_f64();
        Rendition {
            gate,
            audience: Default::default(),
            state: Mutex::new(State {
                window,
                init: None,
                info: StreamInfo::default(),
                parts: BTreeMap::new(),
                building: Vec::new(),
                segments: BTreeMap::new(),
                bytes: 0,
                seconds: 0.0,
                peak: 0.0,
            }),
            changed: Notify::new(),
            grew: Notify::new(),
            delays,
            recorded: AtomicBool::new(false),
        }
    }

    /// Applies the segmenter's output; returns a segment completed by it, for recording.
    fn apply(&self, output: Output, info: StreamInfo) -> Option<(u64, Bytes)> {
        let mut st = self.state.lock().expect("rendition lock");
        st.info = info;
        let mut finished = None;
        match output {
            Output::Init(init) => st.init = Some(init),
            Output::Chunk(data) => {
                st.building.push(data);
                drop(st);
                // Only the streams of the part in progress care; playlists do not change.
                self.grew.notify_waiters();
                return None;
            }
            Output::PartEnd {
                duration,
                independent,
                new_segment,
                first_received,
            } => {
                if new_segment && st.window.current.is_some() {
                    finished = finish_segment(&mut st);
                }
                let data = Bytes::from(std::mem::take(&mut st.building).concat());
                st.bytes += data.len() as u64;
                st.seconds += duration;
                let number = st
                    .window
                    .push_part(::hls::Part { duration, independent }, wall_clock_ms(first_received));
                st.parts.insert(number, data);
            }
        }
        drop(st);
        self.changed.notify_waiters();
        self.grew.notify_waiters();
        finished
    }

    /// No more parts will come: the playlist drops its preload hint.
    fn close(&self) {
        self.state.lock().expect("rendition lock").window.closing = true;
        self.changed.notify_waiters();
        self.grew.notify_waiters();
    }

    fn end(&self) -> Option<(u64, Bytes)> {
        let mut st = self.state.lock().expect("rendition lock");
        let finished = finish_segment(&mut st);
        st.window.ended = true;
        drop(st);
        self.changed.notify_waiters();
        self.grew.notify_waiters();
        finished
    }
}

/// Completes the segment in progress: its parts become one segment; what leaves the
/// window is dropped.
fn finish_segment(st: &mut State) -> Option<(u64, Bytes)> {
    let current = st.window.current.as_ref()?;
    let (msn, parts) = (
        current.msn,
        current.first_part..current.first_part + current.parts.len() as u64,
    );
    let segment = Bytes::from(
        st.parts
            .range(parts)
            .map(|(_, b)| b.clone())
            .collect::<Vec<_>>()
            .concat(),
    );
    let seconds = current.duration();
    if seconds >= 0.5 {
        st.peak = st.peak.max(segment.len() as f64 * 8.0 / seconds);
    }
    st.segments.insert(msn, segment.clone());
    if let Some(gone) = st.window.finish_segment() {
        st.segments.remove(&gone.msn);
    }
    // Drop parts of segments that ended more than a few target durations ago: the
    // playlist no longer lists them, and their bytes live on in the segments.
    let keep = PARTS_KEPT_TARGETS * f64::from(st.window.target_duration);
    let mut age = 0.0;
    let mut kept_from = None;
    for segment in st.window.segments.iter().rev() {
        age += segment.duration();
        if age > keep {
            kept_from = Some(segment.first_part + segment.parts.len() as u64);
            break;
        }
    }
    if let Some(kept_from) = kept_from {
        st.parts.retain(|n, _| *n >= kept_from);
    }
    Some((msn, segment))
}

/// The wall-clock time at which something received at `at` was received.
fn wall_clock_ms(at: Instant) -> i64 {
    let ago = Instant::now().saturating_duration_since(at);
    let when = SystemTime::now() - ago;
    when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs the segmenter of one live stream until it ends; records if `recordings` is given.
pub async fn run(
    registry: Arc<Registry>,
    config: Config,
    stream: Arc<Stream>,
    recordings: Option<Arc<Recordings>>,
    gate: Arc<crate::access::Gate>,
    store: crate::store::Store,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let id = stream.id.clone();
    let delays = metrics.delays.of(&id);
    let rendition = Arc::new(Rendition::new(&config, gate, delays.clone()));
    registry.insert(&id, rendition.clone());
    let (headers, mut sub) = stream.subscribe_internal();
    let mut segmenter: Option<Segmenter> = None;
    let mut early = Vec::new();
    // The part being made: its first frame's arrival, its frames, and the sum of their
    // arrivals after the first (for the mean wait).
    let mut part: Option<(std::time::Instant, u32, Duration)> = None;
    let mut pending = headers.frames;
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let target_duration = segmenter::target_duration(config.segment_target.as_secs_f64());
    let mut recorder = recordings.as_ref().map(|r| r.start(&id, target_duration));
    let mut swept = Instant::now();
    loop {
        if swept.elapsed() >= audience::IDLE / 2 {
            swept = Instant::now();
            leave(&store, &metrics, rendition.audience.sweep(audience::IDLE));
        }
        for frame in pending.drain(..) {
            // Whether the stream has video is known once its first media frame arrived:
            // the headers before it (metadata, the audio configuration) may come alone,
            // before the video configuration, and wait for it.
            let seg = match segmenter.as_mut() {
                Some(seg) => seg,
                None if frame.header.is_some() || frame.kind() == MediaKind::Data => {
                    early.push(frame);
                    continue;
                }
                None => {
                    let seg = segmenter.insert(Segmenter::new(
                        config.part_target.as_secs_f64(),
                        config.segment_target.as_secs_f64(),
                        stream.has_video(),
                    ));
                    for header in early.drain(..) {
                        seg.push(&header, &mut out);
                    }
                    seg
                }
            };
            let before = out.len();
            seg.push(&frame, &mut out);
            // Chunking: a part is whole when the frame after it comes; each of its frames
            // waited from its arrival to then. The mean over the frames is what adds up
            // with the other stages to a viewer's delay.
            if out[before..].iter().any(|o| matches!(o, Output::PartEnd { .. }))
                && let Some((first, frames, after_first)) = part.take()
            {
                delays.observe(
                    Stage::Chunking,
                    first.elapsed().saturating_sub(after_first / frames.max(1)),
                );
            }
            if frame.header.is_none() && frame.kind() != MediaKind::Data {
                let p = part.get_or_insert((frame.received, 0, Duration::ZERO));
                p.1 += 1;
                p.2 += frame.received.saturating_duration_since(p.0);
            }
        }
        let info = segmenter.as_ref().map(Segmenter::info).unwrap_or_default();
        publish(&rendition, &mut out, &info, recorder.as_mut(), &metrics).await;
        batch.clear();
        let skipped = sub.skipped;
        match sub.next_batch(&mut batch, 1 << 20).await {
            Next::Frames => pending.append(&mut batch),
            Next::Ended => break,
        }
        if sub.skipped > skipped
            && let Some(seg) = segmenter.as_mut()
        {
            seg.mark_gap();
        }
    }
    if let Some(seg) = segmenter.as_mut() {
        seg.finish(&mut out);
        let info = seg.info();
        publish(&rendition, &mut out, &info, recorder.as_mut(), &metrics).await;
    }
    // The end in two steps: the last parts without a preload hint, then EXT-X-ENDLIST (see
    // `Window::closing`).
    rendition.close();
    tokio::time::sleep(config.part_target * 2).await;
    let last = rendition.end();
    if let Some(mut rec) = recorder {
        let info = segmenter.as_ref().map(Segmenter::info).unwrap_or_default();
        if let Some((msn, segment)) = last {
            record_segment(&rendition, &mut rec, msn, &segment, &info).await;
        }
        let ended = rendition.state.lock().expect("rendition lock").window.render(false);
        rec.finish(&ended).await;
        rendition.recorded.store(true, Ordering::Release);
        rendition.changed.notify_waiters();
    }
    tokio::time::sleep(LINGER).await;
    registry.remove(&id, &rendition);
    leave(&store, &metrics, rendition.audience.sweep(std::time::Duration::ZERO));
}

/// Records HLS viewers leaving: an event for the store's view log, no wait.
fn leave(store: &crate::store::Store, metrics: &crate::metrics::Metrics, views: Vec<i64>) {
    if !views.is_empty() {
        let hls = metrics
            .viewers
            .get_or_create(&crate::store::DeliveryPath::Hls.into())
            .clone();
        hls.dec_by(views.len() as i64);
        store.leave_all(views);
    }
}

/// Hands the segmenter's output to the rendition (and the recorder).
async fn publish(
    rendition: &Rendition,
    out: &mut Vec<Output>,
    info: &StreamInfo,
    mut recorder: Option<&mut Recorder>,
    metrics: &crate::metrics::Metrics,
) {
    for output in out.drain(..) {
        if let (Output::Init(init), Some(rec)) = (&output, recorder.as_deref_mut()) {
            rec.init(init).await;
        }
        if matches!(output, Output::PartEnd { .. }) {
            metrics.hls_parts.inc();
        }
        let segment = rendition.apply(output, info.clone());
        if segment.is_some() {
            metrics.hls_segments.inc();
        }
        if let (Some((msn, segment)), Some(rec)) = (segment, recorder.as_deref_mut()) {
            record_segment(rendition, rec, msn, &segment, info).await;
        }
    }
}

async fn record_segment(rendition: &Rendition, rec: &mut Recorder, msn: u64, segment: &Bytes, info: &StreamInfo) {
    let (duration, poster) = {
        let st = rendition.state.lock().expect("rendition lock");
        // The replay's poster is taken once, from the first two segments (a stream often
        // opens on a black frame, so the second is preferred when there is one).
        let poster = (msn <= 1).then(|| st.poster()).flatten();
        (st.window.segment(msn).map_or(0.0, |s| s.duration()), poster)
    };
    rec.segment(msn, duration, segment, info).await;
    if let Some([init, part]) = poster {
        rec.poster(&[init, part].concat().into()).await;
    }
}
