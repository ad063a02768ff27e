//! Cuts a stream's frames into CMAF parts and segments for LL-HLS, keeping the promises a
//! playlist makes (RFC 8216bis): no part longer than PART-TARGET, no segment whose rounded
//! duration exceeds EXT-X-TARGETDURATION, which is fixed from the segment target before the
//! first segment and never changes.
//!
//! A sample's duration is only known when the next sample of its track arrives, so each
//! track holds its newest sample back. Each finished video frame (or, without video, about
//! [`CHUNK_TARGET`] of audio) becomes a CMAF chunk (its own `moof` + `mdat`) the moment it
//! is finished, so that the part in progress can be streamed to players as it grows.
//!
//! Cuts are decided in the driving track's own ticks (video's 90 kHz, or the audio sample
//! rate without video), never in summed floating-point seconds:
//! - a part ends before a sample that would take it past the part target, and early when
//!   the next sample (assumed as long as this one) would not fit;
//! - a segment ends before the first keyframe at or after the segment target;
//! - a segment also ends, keyframe or not, before a sample that would make its duration
//!   round above the target duration. An encoder with keyframes further apart than that
//!   (or none after the first, as with intra refresh) gets segments that start on a
//!   non-independent part; its parts still say which are INDEPENDENT, where players join,
//!   and the memory a segment holds stays bounded.

use std::time::Instant;

use bytes::Bytes;
use flv::{AudioSpecificConfig, AudioTag, AvcConfig, HevcConfig, VideoPacket, VideoTag};
use fmp4::{AUDIO_TRACK, AudioTrack, Run, Sample, VIDEO_TIMESCALE, VIDEO_TRACK, VideoCodec, VideoTrack};

use crate::hub::{Codec, Frame, HeaderKind};

/// A chunk holds at least this much of the driving track: one frame of 30 fps video, two
/// of 60 fps video or of AAC. Shorter chunks would add a `moof` (about 100 bytes per track)
/// for too little media.
pub const CHUNK_TARGET: f64 = 0.03;

/// Samples in an AAC frame: its exact duration in the track's timescale (the sample rate).
/// FLV's millisecond timestamps would make it 1008 or 1056 ticks at 48 kHz.
const AAC_FRAME: u64 = 1024;

/// AAC frames that may wait for a video frame to carry them: five seconds at 48 kHz.
const MAX_AUDIO_WAITING: usize = 240;

/// What the segmenter produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The init segment, once, before any part.
    Init(Bytes),
    /// The next CMAF chunk of the part in progress.
    Chunk(Bytes),
    /// The part in progress is complete: it is the chunks since the previous `PartEnd`.
    /// `new_segment`: it starts a segment.
    PartEnd {
        duration: f64,
        independent: bool,
        new_segment: bool,
        first_received: Instant,
    },
}

/// Codec information for the multivariant playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamInfo {
    /// RFC 6381 codec strings, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
    /// Video frames per second, measured over the stream so far.
    pub frame_rate: Option<f64>,
}

#[derive(Debug)]
struct Pending {
    dts: u64,
    keyframe: bool,
    composition_offset: i32,
    data: Bytes,
    received: Instant,
}

#[derive(Debug, Default)]
struct Track {
    pending: Option<Pending>,
    /// Finished samples of the chunk being built, and the decode time of the first.
    samples: Vec<Sample>,
    start: Option<u64>,
    first_received: Option<Instant>,
    last_duration: u32,
    /// Samples and ticks finished over the whole stream, as far as they tell the rate.
    total_samples: u64,
    total_ticks: u64,
}

impl Track {
    /// The longest the held-back sample may last: before a known gap (`gap`), as long as
    /// the sample before it, at most `part_limit` ticks; otherwise any span.
    fn longest_pending(&self, gap: bool, part_limit: u64) -> u64 {
        if gap {
            u64::from(self.last_duration).clamp(1, part_limit.max(1))
        } else {
            u64::MAX
        }
    }

    /// The held-back sample's duration, once the next sample's decode time is known: the
    /// span to the next sample, at most `longest` ticks. A longer span is a gap (frames
    /// lost upstream, or skipped by a segmenter that fell behind the hub's ring): it stays
    /// a gap in the timeline rather than one sample that would outgrow every part.
    fn pending_duration(&self, next_dts: Option<u64>, longest: u64) -> Option<u32> {
        let p = self.pending.as_ref()?;
        Some(match next_dts {
            Some(next) if next > p.dts => (next - p.dts).min(longest.max(1)).min(u64::from(u32::MAX)) as u32,
            _ => self.last_duration,
        })
    }

    /// Gives the held-back sample its duration and moves it into the chunk being built.
    fn finish_pending(&mut self, next_dts: Option<u64>, longest: u64) {
        let Some(duration) = self.pending_duration(next_dts, longest) else {
            return;
        };
        let Some(p) = self.pending.take() else { return };
        self.last_duration = duration;
        // The frame rate's measure leaves out durations far from the usual one: the frame
        // before a gap or a re-based jump of the timeline says nothing of the rate.
        let usual = self.total_ticks.checked_div(self.total_samples).unwrap_or(0);
        let d = u64::from(duration);
        if self.total_samples < 3 || (d * 4 >= usual * 3 && d * 4 <= usual * 5) {
            self.total_samples += 1;
            self.total_ticks += d;
        }
        self.start.get_or_insert(p.dts);
        self.first_received.get_or_insert(p.received);
        self.samples.push(Sample {
            duration,
            keyframe: p.keyframe,
            composition_offset: p.composition_offset,
            data: p.data,
        });
    }

    /// Ticks of the finished samples not yet in a chunk.
    fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    fn take_run(&mut self, track: u32) -> Option<Run> {
        let base = self.start.take()?;
        self.first_received = None;
        Some(Run {
            track,
            base_decode_time: base,
            samples: std::mem::take(&mut self.samples),
        })
    }
}

/// The LL-HLS segmenter of one stream.
#[derive(Debug)]
pub struct Segmenter {
    part_target: f64,
    segment_target: f64,
    target_duration: u32,
    video_config: Option<VideoTrack>,
    video_codec: Option<String>,
    audio_config: Option<AudioTrack>,
    audio_codec: Option<String>,
    started: bool,
    has_video: bool,
    video: Track,
    audio: Track,
    /// Where the next AAC frame's decode time falls if the encoder's clock is right.
    audio_next: Option<u64>,
    /// The newest video keyframe's decode time, and the ticks since the one before: the
    /// GOP the cuts expect.
    last_keyframe: Option<u64>,
    gop: Option<u64>,
    /// Driving-track ticks in the segment being built, counting parts already ended.
    segment_ticks: u64,
    part_starts_segment: bool,
    part: PartProgress,
    sequence: u32,
    /// Frames were skipped before the next video and audio sample (see
    /// [`Segmenter::mark_gap`]).
    gap: [bool; 2],
}

/// What the chunks of the part in progress add up to.
#[derive(Debug, Default)]
struct PartProgress {
    /// Duration so far, in the driving track's timescale.
    ticks: u64,
    /// Whether the part starts with a keyframe, once its first video sample is known.
    independent: Option<bool>,
    first_received: Option<Instant>,
}

/// The frame rate an encoder was set to, from one measured on millisecond timestamps: the
/// common rate within 0.3% of it, or the measure itself.
fn nominal_frame_rate(measured: f64) -> f64 {
    const COMMON: [f64; 10] = [
        24_000.0 / 1001.0,
        24.0,
        25.0,
        30_000.0 / 1001.0,
        30.0,
        48.0,
        50.0,
        60_000.0 / 1001.0,
        60.0,
        120.0,
    ];
    COMMON
        .into_iter()
        .filter(|rate| (measured - rate).abs() / rate < 0.003)
        .min_by(|a, b| (measured - a).abs().total_cmp(&(measured - b).abs()))
        .unwrap_or(measured)
}

/// EXT-X-TARGETDURATION for a segment target: the target rounded up to whole seconds.
pub fn target_duration(segment_target: f64) -> u32 {
    segment_target.ceil().max(1.0) as u32
}

impl Segmenter {
    /// `has_video`: whether the stream has video (then video drives the cuts).
    pub fn new(part_target: f64, segment_target: f64, has_video: bool) -> Segmenter {
        Segmenter {
            part_target,
            segment_target,
            target_duration: target_duration(segment_target),
            video_config: None,
            video_codec: None,
            audio_config: None,
            audio_codec: None,
            started: false,
            has_video,
            video: Track {
                last_duration: VIDEO_TIMESCALE / 30,
                ..Track::default()
            },
            audio: Track {
                last_duration: AAC_FRAME as u32,
                ..Track::default()
            },
            audio_next: None,
            last_keyframe: None,
            gop: None,
            segment_ticks: 0,
            part_starts_segment: true,
            part: PartProgress::default(),
            sequence: 0,
            gap: [false; 2],
        }
    }

    pub fn info(&self) -> StreamInfo {
        let codecs: Vec<&str> = self
            .video_codec
            .iter()
            .chain(&self.audio_codec)
            .map(String::as_str)
            .collect();
        let frame_rate = (self.video.total_ticks > 0).then(|| {
            nominal_frame_rate(
                self.video.total_samples as f64 * f64::from(VIDEO_TIMESCALE) / self.video.total_ticks as f64,
            )
        });
        StreamInfo {
            codecs: codecs.join(","),
            resolution: self.video_config.as_ref().map(|v| (v.width, v.height)),
            frame_rate,
        }
    }

    /// Feeds one frame; appends what it completes to `out`.
    pub fn push(&mut self, frame: &Frame, out: &mut Vec<Output>) {
        match (frame.header, frame.codec) {
            (Some(HeaderKind::VideoConfig), Codec::Video(tag)) => self.video_config(tag, &frame.payload),
            (Some(HeaderKind::AudioConfig), Codec::Audio(tag)) => self.audio_config(tag, &frame.payload),
            (_, Codec::Video(tag)) => self.video_frame(tag, frame, out),
            (_, Codec::Audio(tag)) => self.audio_frame(tag, frame, out),
            _ => {}
        }
    }

    /// Frames are missing before the next ones (the segmenter fell behind the hub's ring
    /// and was moved on to a keyframe): the sample held back before the gap lasts as long
    /// as the one before it, the rest of the gap stays a gap in the timeline (rather than
    /// one sample spanning it and outgrowing every part), and the keyframe after it starts
    /// a segment. Without a known gap a long sample keeps its duration: a stream at a low
    /// frame rate is not a gap.
    pub fn mark_gap(&mut self) {
        self.gap = [true; 2];
    }

    /// Ends the stream: the held-back samples make a last part.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        // Audio first, so that its last frames travel with the last video frame.
        if self.has_video {
            self.audio.finish_pending(None, u64::MAX);
        }
        self.driving_sample(None, false, out);
        self.flush(out);
        self.end_part(out);
    }

    /// The driving track's timescale (video's when there is video).
    fn timescale(&self) -> u64 {
        if self.has_video {
            u64::from(VIDEO_TIMESCALE)
        } else {
            self.audio_config.as_ref().map_or(1, |a| u64::from(a.sample_rate))
        }
    }

    fn driving(&mut self) -> &mut Track {
        if self.has_video {
            &mut self.video
        } else {
            &mut self.audio
        }
    }

    /// Ticks of the part in progress, counting the samples not yet in a chunk.
    fn part_ticks(&mut self) -> u64 {
        self.part.ticks + self.driving().duration()
    }

    /// Driving ticks of the segment being built in the parts already ended.
    fn segment_so_far(&self) -> u64 {
        if self.part_starts_segment {
            0
        } else {
            self.segment_ticks
        }
    }

    /// The longest a part may be, in driving ticks.
    fn part_limit(&self) -> u64 {
        (self.part_target * self.timescale() as f64) as u64
    }

    /// The longest a segment may be: its duration must round to at most the target
    /// duration, with a millisecond to spare for the playlist's printed decimals.
    fn segment_limit(&self) -> u64 {
        let ts = self.timescale();
        u64::from(self.target_duration) * ts + ts / 2 - ts / 1000
    }

    /// Whether the segment of `elapsed` ticks should end before the sample at `next_dts`
    /// (`boundary`: a keyframe, or any audio frame without video).
    fn segment_due(&self, next_dts: Option<u64>, boundary: bool, elapsed: u64) -> bool {
        let (Some(next_dts), ts) = (next_dts, self.timescale()) else {
            return false;
        };
        // Millisecond timestamps put a keyframe a tick or two either side of the target.
        let due = ((self.segment_target * ts as f64) as u64).saturating_sub(ts / 500);
        let limit = self.segment_limit();
        if boundary {
            // At the target; or earlier, when the next keyframe (a GOP away, as far as the
            // last one tells) would come too late for this segment.
            return elapsed >= due
                || (elapsed >= self.part_limit() && self.gop.is_some_and(|gop| elapsed + gop > limit));
        }
        // Between keyframes. Without a known GOP (one keyframe so far, or intra refresh),
        // cut at the target.
        let (Some(key), Some(gop)) = (self.last_keyframe, self.gop) else {
            return elapsed >= due;
        };
        // The span from this segment's start to the next keyframe: if it does not fit one
        // segment, it is cut into equal pieces that do, so that the keyframe still starts
        // a segment (and no piece is a sliver).
        let span = elapsed + (key + gop).saturating_sub(next_dts);
        if span <= limit {
            return false;
        }
        elapsed >= span / span.div_ceil(limit)
    }

    /// The driving track's next sample arrived (decode time `next_dts`, `None` at the
    /// end; `boundary`: a segment may begin with it): finishes the held-back sample,
    /// cutting the part or segment around it as the limits demand.
    fn driving_sample(&mut self, next_dts: Option<u64>, boundary: bool, out: &mut Vec<Output>) {
        let track = usize::from(!self.has_video);
        let (gap, part_limit) = (self.gap[track], self.part_limit());
        let longest = self.driving().longest_pending(gap, part_limit);
        let Some(duration) = self.driving().pending_duration(next_dts, longest).map(u64::from) else {
            return;
        };
        // Cut before the sample when it would not fit.
        let part = self.part_ticks();
        if self.segment_so_far() + part + duration > self.segment_limit() {
            if part > 0 {
                self.flush(out);
                self.end_part(out);
            }
            self.part_starts_segment = true;
        } else if part > 0 && part + duration > self.part_limit() {
            self.flush(out);
            self.end_part(out);
        }
        self.driving().finish_pending(next_dts, longest);
        let after_gap = std::mem::take(&mut self.gap[track]);
        // Cut after it where a segment should start, or when the next would not fit. The
        // keyframe after a gap starts a segment whatever its length: the part cut short
        // by the gap is then its segment's last, the one part allowed to be short.
        let part = self.part_ticks();
        if (after_gap && boundary) || self.segment_due(next_dts, boundary, self.segment_so_far() + part) {
            self.flush(out);
            self.end_part(out);
            self.part_starts_segment = true;
        } else if part + duration > self.part_limit() {
            self.flush(out);
            self.end_part(out);
        } else if self.driving().duration() as f64 >= CHUNK_TARGET * self.timescale() as f64 {
            self.flush(out);
        }
    }

    fn video_config(&mut self, tag: VideoTag, payload: &Bytes) {
        let record = payload.slice(tag.header_len.min(payload.len())..);
        // A mid-stream change of configuration keeps the first (a new init segment would
        // need a discontinuity, and encoders repeat the same one).
        if self.video_config.is_some() {
            return;
        }
        let (codec, codec_string, dimensions) = match tag.codec {
            flv::VideoCodec::Avc => {
                let Ok(config) = AvcConfig::parse(&record) else { return };
                (VideoCodec::Avc, config.codec_string(), fmp4::avc_dimensions(&record))
            }
            flv::VideoCodec::Hevc => {
                let Ok(config) = HevcConfig::parse(&record) else { return };
                (VideoCodec::Hevc, config.codec_string(), config.dimensions())
            }
        };
        let (width, height) = dimensions.unwrap_or((0, 0));
        self.video_codec = Some(codec_string);
        self.video_config = Some(VideoTrack {
            codec,
            record,
            width,
            height,
        });
    }

    fn audio_config(&mut self, tag: AudioTag, payload: &Bytes) {
        let config = payload.slice(tag.header_len.min(payload.len())..);
        if self.audio_config.is_some() {
            return;
        }
        let track = match tag.codec {
            flv::AudioCodec::Aac => {
                let Ok(asc) = AudioSpecificConfig::parse(&config) else {
                    return;
                };
                self.audio_codec = Some(format!("mp4a.40.{}", asc.object_type));
                AudioTrack {
                    codec: fmp4::AudioCodec::Aac,
                    config,
                    sample_rate: asc.sample_rate,
                    channels: asc.channels,
                }
            }
            flv::AudioCodec::Opus => {
                let Ok(head) = flv::OpusHead::parse(&config) else {
                    return;
                };
                self.audio_codec = Some("opus".to_owned());
                AudioTrack {
                    codec: fmp4::AudioCodec::Opus {
                        pre_skip: head.pre_skip,
                        input_sample_rate: head.input_sample_rate,
                    },
                    config: Bytes::new(),
                    sample_rate: 48_000,
                    channels: head.channels,
                }
            }
        };
        self.audio_config = Some(track);
    }

    /// Emits the init segment at the first sync point, with the tracks known by then.
    fn start(&mut self, out: &mut Vec<Output>) -> bool {
        if self.started {
            return true;
        }
        let video = self.video_config.as_ref().filter(|_| self.has_video);
        let audio = self.audio_config.as_ref();
        if (self.has_video && video.is_none()) || (video.is_none() && audio.is_none()) {
            return false;
        }
        match fmp4::init_segment(video, audio) {
            Ok(init) => {
                out.push(Output::Init(init));
                self.started = true;
                true
            }
            Err(e) => {
                tracing::warn!("cannot make an init segment: {e}");
                false
            }
        }
    }

    fn video_frame(&mut self, tag: VideoTag, frame: &Frame, out: &mut Vec<Output>) {
        if tag.packet != VideoPacket::Frame || self.video_config.is_none() {
            return;
        }
        if !(self.started || tag.keyframe && self.start(out)) {
            return;
        }
        let ticks_per_ms = u64::from(VIDEO_TIMESCALE / 1000);
        let dts = frame.timestamp * ticks_per_ms;
        if tag.keyframe {
            if let Some(last) = self.last_keyframe {
                self.gop = Some(dts.saturating_sub(last)).filter(|gop| *gop > 0);
            }
            self.last_keyframe = Some(dts);
        }
        // A segment may only be cut before a keyframe.
        self.driving_sample(Some(dts), tag.keyframe, out);
        self.video.pending = Some(Pending {
            dts,
            keyframe: tag.keyframe,
            composition_offset: tag.composition_time.saturating_mul(ticks_per_ms as i32),
            data: frame.payload.slice(tag.header_len.min(frame.payload.len())..),
            received: frame.received,
        });
    }

    fn audio_frame(&mut self, tag: AudioTag, frame: &Frame, out: &mut Vec<Output>) {
        let Some(rate) = self.audio_config.as_ref().map(|a| u64::from(a.sample_rate)) else {
            return;
        };
        if tag.sequence_header {
            return;
        }
        if !self.has_video && !self.start(out) {
            return;
        }
        if !self.started {
            // Audio before the first video keyframe is not played by anyone.
            return;
        }
        // AAC frames are 1024 samples: the decode time counts them, and follows the
        // encoder's millisecond clock only where it says a frame is missing or extra.
        // Opus frames vary (2.5 to 120 ms), and WebRTC's are whole milliseconds at 48 kHz:
        // the clock is exact.
        let stamped = frame.timestamp * rate / 1000;
        let dts = match self.audio_next {
            Some(next) if tag.codec == flv::AudioCodec::Aac && stamped.abs_diff(next) < AAC_FRAME => next,
            _ => stamped,
        };
        self.audio_next = Some(dts + AAC_FRAME);
        if self.has_video {
            // Audio's part limit is in its own timescale.
            let longest = self
                .audio
                .longest_pending(self.gap[1], (self.part_target * rate as f64) as u64);
            self.audio.finish_pending(Some(dts), longest);
            self.gap[1] = false;
            // Audio waits for video to carry it into a chunk. If the video stops while
            // the audio goes on, what waits is dropped rather than held without end.
            if self.audio.samples.len() > MAX_AUDIO_WAITING {
                self.audio.samples.clear();
                self.audio.start = None;
                self.audio.first_received = None;
            }
        } else {
            self.driving_sample(Some(dts), true, out);
        }
        self.audio.pending = Some(Pending {
            dts,
            keyframe: true,
            composition_offset: 0,
            data: frame.payload.slice(tag.header_len.min(frame.payload.len())..),
            received: frame.received,
        });
    }

    /// Turns the finished samples into a chunk of the part in progress.
    fn flush(&mut self, out: &mut Vec<Output>) {
        let driving_ticks = self.driving().duration();
        if self.has_video && self.part.independent.is_none() {
            self.part.independent = self.video.samples.first().map(|s| s.keyframe);
        }
        let first_received = [
            self.video.first_received,
            self.audio.first_received,
            self.part.first_received,
        ]
        .into_iter()
        .flatten()
        .min();
        let runs: Vec<Run> = [self.video.take_run(VIDEO_TRACK), self.audio.take_run(AUDIO_TRACK)]
            .into_iter()
            .flatten()
            .collect();
        if runs.is_empty() {
            return;
        }
        self.sequence += 1;
        match fmp4::fragment(self.sequence, &runs) {
            Ok(data) => {
                out.push(Output::Chunk(data));
                self.part.ticks += driving_ticks;
                self.part.first_received = first_received;
            }
            Err(e) => tracing::warn!("cannot make a fragment: {e}"),
        }
    }

    /// Ends the part in progress, if it holds any media.
    fn end_part(&mut self, out: &mut Vec<Output>) {
        let part = std::mem::take(&mut self.part);
        let Some(first_received) = part.first_received.filter(|_| part.ticks > 0) else {
            return;
        };
        if self.part_starts_segment {
            self.segment_ticks = 0;
        }
        out.push(Output::PartEnd {
            duration: part.ticks as f64 / self.timescale() as f64,
            independent: part.independent.unwrap_or(true),
            new_segment: std::mem::take(&mut self.part_starts_segment),
            first_received,
        });
        self.segment_ticks += part.ticks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtmp::MediaKind;

    /// What x264 wrote for a 320x240 clip, as an FLV video sequence header.
    const AVC_RECORD: &str =
        "014d400dffe10022674d400deca0a0fd8088000003000800000301e301000f420003d09c92600f14299601000468ce3c80";

    fn header(kind: MediaKind, header: HeaderKind, body: Vec<u8>) -> Frame {
        Frame::new(
            Codec::parse(kind, &body).unwrap(),
            0,
            false,
            Some(header),
            Bytes::from(body),
        )
    }

    /// An encoder's settings.
    #[derive(Clone, Copy)]
    struct Encoder {
        seconds: u64,
        fps: u64,
        /// Seconds between keyframes; 0: only the first frame is one (intra refresh).
        keyframes: f64,
        video: bool,
        /// AAC at 48 kHz.
        audio: bool,
    }

    const DEFAULT: Encoder = Encoder {
        seconds: 10,
        fps: 30,
        keyframes: 1.0,
        video: true,
        audio: true,
    };

    /// Frames as an encoder sends them over RTMP: millisecond timestamps, in DTS order.
    fn frames(e: Encoder) -> Vec<Frame> {
        let record: Vec<u8> = (0..AVC_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&AVC_RECORD[i..i + 2], 16).unwrap())
            .collect();
        let mut out = Vec::new();
        if e.video {
            out.push(header(
                MediaKind::Video,
                HeaderKind::VideoConfig,
                [&[0x17, 0, 0, 0, 0][..], &record].concat(),
            ));
        }
        if e.audio {
            // AAC-LC, 48 kHz, stereo.
            out.push(header(
                MediaKind::Audio,
                HeaderKind::AudioConfig,
                vec![0xaf, 0, 0x11, 0x90],
            ));
        }
        let end_ms = e.seconds * 1000;
        let gop = (e.keyframes * e.fps as f64).round() as u64;
        let (mut video_n, mut audio_n) = (0u64, 0u64);
        loop {
            let video_ts = video_n * 1000 / e.fps;
            let audio_ts = audio_n * 1024 * 1000 / 48_000;
            let video_next = e.video && video_ts < end_ms;
            let audio_next = e.audio && audio_ts < end_ms;
            if audio_next && (!video_next || audio_ts <= video_ts) {
                let aac = [0xaf, 1, 0x21, 0x10];
                out.push(Frame::new(
                    Codec::parse(MediaKind::Audio, &aac).unwrap(),
                    audio_ts,
                    false,
                    None,
                    Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
                ));
                audio_n += 1;
            } else if video_next {
                let key = video_n == 0 || (gop > 0 && video_n % gop == 0);
                let body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88];
                out.push(Frame::new(
                    Codec::parse(MediaKind::Video, &body).unwrap(),
                    video_ts,
                    key,
                    None,
                    Bytes::from(body),
                ));
                video_n += 1;
            } else {
                break;
            }
        }
        out
    }

    /// A part as the segmenter ended it: duration, independent, starts a segment.
    type Part = (f64, bool, bool);

    fn segment(e: Encoder, part_target: f64, segment_target: f64) -> (Segmenter, Vec<Part>) {
        let mut seg = Segmenter::new(part_target, segment_target, e.video);
        let mut out = Vec::new();
        for f in frames(e) {
            seg.push(&f, &mut out);
        }
        seg.finish(&mut out);
        assert!(matches!(out[0], Output::Init(_)), "the init segment comes first");
        let mut parts = Vec::new();
        let mut chunks_in_part = 0;
        for o in &out[1..] {
            match o {
                Output::Chunk(data) => {
                    assert_eq!(&data[4..8], b"moof", "a chunk is a moof + mdat");
                    chunks_in_part += 1;
                }
                Output::PartEnd {
                    duration,
                    independent,
                    new_segment,
                    ..
                } => {
                    assert!(chunks_in_part > 0, "a part has chunks");
                    chunks_in_part = 0;
                    parts.push((*duration, *independent, *new_segment));
                }
                Output::Init(_) => panic!("one init segment only"),
            }
        }
        assert_eq!(chunks_in_part, 0, "the last chunk belongs to a finished part");
        let total: f64 = parts.iter().map(|p| p.0).sum();
        assert!(
            (total - e.seconds as f64).abs() < 0.05,
            "all media is in parts: {total}"
        );
        assert!(parts[0].2, "the first part starts a segment");
        (seg, parts)
    }

    /// Segment durations, and whether each starts with an independent part.
    fn segments(parts: &[Part]) -> Vec<(f64, bool)> {
        let mut out: Vec<(f64, bool)> = Vec::new();
        for &(duration, independent, new_segment) in parts {
            match out.last_mut() {
                Some(last) if !new_segment => last.0 += duration,
                _ => out.push((duration, independent)),
            }
        }
        out
    }

    /// What RFC 8216bis asks of every playlist: parts at most PART-TARGET, segments that
    /// round to at most the target duration.
    fn assert_by_the_book(parts: &[Part], part_target: f64, target_duration: u32) {
        for (i, p) in parts.iter().enumerate() {
            assert!(p.0 <= part_target + 1e-9, "part {i} of {} s: {parts:?}", p.0);
            // Only the last part of a segment may be shorter than 85% of the target.
            let ends_segment = parts.get(i + 1).is_none_or(|next| next.2);
            assert!(
                ends_segment || p.0 >= 0.85 * part_target - 1e-9,
                "part {i} of {} s mid-segment: {parts:?}",
                p.0
            );
        }
        for (i, s) in segments(parts).iter().enumerate() {
            assert!(s.0.round() as u32 <= target_duration, "segment {i} of {} s", s.0);
        }
    }

    #[test]
    fn parts_never_exceed_the_target_and_segments_are_cut_on_keyframes() {
        for fps in [25, 30, 60] {
            let e = Encoder { fps, ..DEFAULT };
            let (seg, parts) = segment(e, 0.334, 2.0);
            assert_by_the_book(&parts, 0.334, 2);
            let segs = segments(&parts);
            assert_eq!(segs.len(), 5, "{fps} fps: 2 s segments in 10 s: {segs:?}");
            for (duration, independent) in &segs {
                assert!(*independent && (duration - 2.0).abs() < 0.002, "{fps} fps: {segs:?}");
            }
            // Whole segments aside, parts are as long as the target allows: within a frame.
            for (i, p) in parts.iter().enumerate() {
                let ends_segment = parts.get(i + 1).is_none_or(|next| next.2);
                assert!(
                    ends_segment || p.0 > 0.334 - 1.0 / fps as f64,
                    "{fps} fps part {i}: {parts:?}"
                );
            }
            assert_eq!(seg.info().codecs, "avc1.4d400d,mp4a.40.2");
            assert_eq!(seg.info().resolution, Some((320, 240)));
            let rate = seg.info().frame_rate.unwrap();
            assert!((rate - fps as f64).abs() < 0.05, "{rate} fps measured, {fps} sent");
        }
    }

    #[test]
    fn the_target_duration_holds_whatever_the_keyframe_interval() {
        for keyframes in [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 0.0] {
            for segment_target in [1.0, 2.0, 4.0] {
                let e = Encoder {
                    seconds: 30,
                    keyframes,
                    ..DEFAULT
                };
                let (_, parts) = segment(e, 0.334, segment_target);
                let target = target_duration(segment_target);
                assert_by_the_book(&parts, 0.334, target);
                let segs = segments(&parts);
                // Keyframes at the target or closer: every segment starts on one.
                if keyframes > 0.0 && keyframes <= segment_target {
                    assert!(segs.iter().all(|s| s.1), "{keyframes} s GOPs: {segs:?}");
                }
                // Segments are never much shorter than the target or the GOP, save the last
                // and those of the first GOP (the GOP is learnt from its end).
                let gop = if keyframes > 0.0 { keyframes } else { segment_target };
                let mut start = 0.0;
                for s in &segs[..segs.len() - 1] {
                    start += s.0;
                    if start <= gop + 0.01 {
                        continue;
                    }
                    assert!(
                        s.0 >= segment_target.min(gop) / 2.0 - 0.04,
                        "{keyframes} s GOPs, {segment_target} s target: {segs:?}"
                    );
                }
                // Where GOPs are longer than segments, a segment still starts on each
                // keyframe.
                let starts_on_keyframes = segs.iter().filter(|s| s.1).count() as f64;
                if keyframes >= segment_target {
                    assert!(
                        starts_on_keyframes >= (30.0 / keyframes).floor(),
                        "{keyframes} s GOPs: {segs:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn audio_only_and_video_only_streams_follow_the_same_rules() {
        let audio_only = Encoder {
            video: false,
            ..DEFAULT
        };
        let (seg, parts) = segment(audio_only, 0.334, 2.0);
        assert_by_the_book(&parts, 0.334, 2);
        assert_eq!(seg.info().codecs, "mp4a.40.2");
        // 15 AAC frames of 1024 samples fit 0.334 s: 0.32 s parts.
        assert!(parts.iter().all(|p| p.0 <= 0.334 && p.1));
        let video_only = Encoder {
            audio: false,
            ..DEFAULT
        };
        let (seg, parts) = segment(video_only, 0.2, 2.0);
        assert_by_the_book(&parts, 0.2, 2);
        assert_eq!(seg.info().codecs, "avc1.4d400d");
        assert_eq!(segments(&parts).len(), 5);
    }

    #[test]
    fn a_gap_in_the_stream_stays_a_gap_and_no_part_outgrows_the_target() {
        // A segmenter that fell 1.9 s behind the hub's ring skips to the next keyframe:
        // the frame before the gap must not last the whole gap.
        let mut seg = Segmenter::new(0.334, 2.0, true);
        let mut out = Vec::new();
        let mut marked = false;
        for f in frames(DEFAULT)
            .iter()
            .filter(|f| !(4_100..6_000).contains(&f.timestamp))
        {
            // As the LL-HLS task does when the hub moved it on: before the first frame after.
            if f.timestamp >= 6_000 && !marked {
                seg.mark_gap();
                marked = true;
            }
            seg.push(f, &mut out);
        }
        seg.finish(&mut out);
        let parts: Vec<Part> = out
            .iter()
            .filter_map(|o| match o {
                Output::PartEnd {
                    duration,
                    independent,
                    new_segment,
                    ..
                } => Some((*duration, *independent, *new_segment)),
                _ => None,
            })
            .collect();
        assert_by_the_book(&parts, 0.334, 2);
        let total: f64 = parts.iter().map(|p| p.0).sum();
        assert!(total < 8.5, "the 1.9 s gap is not media: {total} s in parts");
    }

    #[test]
    fn aac_frames_last_exactly_1024_samples() {
        let (seg, _) = segment(DEFAULT, 0.334, 2.0);
        assert!(seg.audio.total_samples > 400);
        assert_eq!(seg.audio.total_ticks, seg.audio.total_samples * AAC_FRAME);
    }

    #[test]
    fn waits_for_a_keyframe() {
        let mut seg = Segmenter::new(0.334, 2.0, true);
        let mut out = Vec::new();
        // Frames before the first keyframe are not playable: nothing comes out.
        for f in frames(DEFAULT)
            .iter()
            .filter(|f| !f.sync_point && f.header.is_none() && f.kind() == MediaKind::Video)
            .take(5)
        {
            seg.push(f, &mut out);
        }
        assert!(out.is_empty());
    }
}
