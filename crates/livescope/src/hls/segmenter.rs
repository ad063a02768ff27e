//! Cuts a stream's frames into CMAF parts and segments for LL-HLS: segments start on
//! keyframes and last at least the segment target; parts last about the part target.
//!
//! A sample's duration is only known when the next sample of its track arrives, so each
//! track holds its newest sample back. Each finished video frame (or, without video, about
//! [`CHUNK_TARGET`] of audio) becomes a CMAF chunk (its own `moof` + `mdat`) the moment it
//! is finished, so that the part in progress can be streamed to players as it grows; a part
//! ends when a video frame (or an audio frame) arrives and the part has reached its target.

use std::time::Instant;

use bytes::Bytes;
use flv::{AudioSpecificConfig, AudioTag, AvcConfig, VideoPacket, VideoTag};
use fmp4::{AUDIO_TRACK, AudioTrack, Run, Sample, VIDEO_TIMESCALE, VIDEO_TRACK, VideoTrack};

use crate::hub::{Codec, Frame, HeaderKind};

/// A chunk holds at least this much of the driving track: one frame of 30 fps video, two
/// of 60 fps video or of AAC. Shorter chunks would add a `moof` (about 100 bytes per track)
/// for too little media.
pub const CHUNK_TARGET: f64 = 0.03;

/// What the segmenter produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The init segment, once, before any part.
    Init(Bytes),
    /// The next CMAF chunk of the part in progress.
    Chunk(Bytes),
    /// The part in progress is complete: it is the chunks since the previous `PartEnd`.
    /// `new_segment`: it starts a segment (and so starts with a keyframe).
    PartEnd {
        duration: f64,
        independent: bool,
        new_segment: bool,
        first_received: Instant,
    },
}

/// Codec information for the multivariant playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// RFC 6381 codec strings, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
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
}

impl Track {
    /// Gives the held-back sample its duration and moves it into the part.
    fn finish_pending(&mut self, next_dts: Option<u64>) {
        let Some(p) = self.pending.take() else { return };
        let duration = match next_dts {
            Some(next) if next > p.dts => (next - p.dts).min(u64::from(u32::MAX)) as u32,
            _ => self.last_duration,
        };
        self.last_duration = duration;
        self.start.get_or_insert(p.dts);
        self.first_received.get_or_insert(p.received);
        self.samples.push(Sample {
            duration,
            keyframe: p.keyframe,
            composition_offset: p.composition_offset,
            data: p.data,
        });
    }

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
    video_config: Option<VideoTrack>,
    video_codec: Option<String>,
    audio_config: Option<AudioTrack>,
    audio_codec: Option<String>,
    started: bool,
    has_video: bool,
    video: Track,
    audio: Track,
    /// Seconds in the segment being built, counting parts already cut.
    segment_elapsed: f64,
    part_starts_segment: bool,
    part: PartProgress,
    sequence: u32,
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

impl Segmenter {
    /// `has_video`: whether the stream has video (then video drives the cuts).
    pub fn new(part_target: f64, segment_target: f64, has_video: bool) -> Segmenter {
        Segmenter {
            part_target,
            segment_target,
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
                last_duration: 1024,
                ..Track::default()
            },
            segment_elapsed: 0.0,
            part_starts_segment: true,
            part: PartProgress::default(),
            sequence: 0,
        }
    }

    pub fn info(&self) -> StreamInfo {
        let codecs: Vec<&str> = self
            .video_codec
            .iter()
            .chain(&self.audio_codec)
            .map(String::as_str)
            .collect();
        StreamInfo {
            codecs: codecs.join(","),
            resolution: self.video_config.as_ref().map(|v| (v.width, v.height)),
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

    /// Ends the stream: the held-back samples make a last part.
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        self.video.finish_pending(None);
        self.audio.finish_pending(None);
        self.flush(out);
        self.end_part(out);
    }

    /// The driving track's timescale (video's when there is video).
    fn timescale(&self) -> f64 {
        if self.has_video {
            f64::from(VIDEO_TIMESCALE)
        } else {
            f64::from(self.audio_config.as_ref().map_or(1, |a| a.sample_rate))
        }
    }

    /// Seconds of the part in progress, counting the samples not yet in a chunk.
    fn part_seconds(&self) -> f64 {
        let driving = if self.has_video { &self.video } else { &self.audio };
        (self.part.ticks + driving.duration()) as f64 / self.timescale()
    }

    /// A finished sample of the driving track: it makes a chunk when there is enough, and
    /// ends the part (and maybe the segment) when `boundary` allows a cut there.
    fn driving_sample_finished(&mut self, boundary: bool, out: &mut Vec<Output>) {
        let part = self.part_seconds();
        if boundary && self.segment_elapsed + part >= self.segment_target {
            self.flush(out);
            self.end_part(out);
            self.part_starts_segment = true;
        } else if part >= self.part_target {
            self.flush(out);
            self.end_part(out);
        } else {
            let driving = if self.has_video { &self.video } else { &self.audio };
            if driving.duration() as f64 / self.timescale() >= CHUNK_TARGET {
                self.flush(out);
            }
        }
    }

    fn video_config(&mut self, tag: VideoTag, payload: &Bytes) {
        let record = payload.slice(tag.header_len..);
        // Only H.264 becomes LL-HLS for now; a mid-stream change of configuration keeps
        // the first (a new init segment would need a discontinuity).
        if self.video_config.is_some() || tag.codec != flv::VideoCodec::Avc {
            return;
        }
        let Ok(config) = AvcConfig::parse(&record) else { return };
        let (width, height) = fmp4::avc_dimensions(&record).unwrap_or((0, 0));
        self.video_codec = Some(config.codec_string());
        self.video_config = Some(VideoTrack { record, width, height });
    }

    fn audio_config(&mut self, tag: AudioTag, payload: &Bytes) {
        let config = payload.slice(tag.header_len..);
        if self.audio_config.is_some() {
            return;
        }
        let Ok(asc) = AudioSpecificConfig::parse(&config) else {
            return;
        };
        self.audio_codec = Some(format!("mp4a.40.{}", asc.object_type));
        self.audio_config = Some(AudioTrack {
            config,
            sample_rate: asc.sample_rate,
            channels: asc.channels,
        });
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
        let dts = u64::from(frame.timestamp) * u64::from(VIDEO_TIMESCALE / 1000);
        self.video.finish_pending(Some(dts));
        // A segment may only be cut before a keyframe.
        self.driving_sample_finished(tag.keyframe, out);
        self.video.pending = Some(Pending {
            dts,
            keyframe: tag.keyframe,
            composition_offset: tag.composition_time.saturating_mul((VIDEO_TIMESCALE / 1000) as i32),
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
        let dts = u64::from(frame.timestamp) * rate / 1000;
        self.audio.finish_pending(Some(dts));
        if !self.has_video {
            self.driving_sample_finished(true, out);
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
        let driving_ticks = if self.has_video {
            self.video.duration()
        } else {
            self.audio.duration()
        };
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
        let duration = part.ticks as f64 / self.timescale();
        let Some(first_received) = part.first_received.filter(|_| duration > 0.0) else {
            return;
        };
        if self.part_starts_segment {
            self.segment_elapsed = 0.0;
        }
        out.push(Output::PartEnd {
            duration,
            independent: part.independent.unwrap_or(true),
            new_segment: std::mem::take(&mut self.part_starts_segment),
            first_received,
        });
        self.segment_elapsed += duration;
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

    fn frames(seconds: u32) -> Vec<Frame> {
        let record: Vec<u8> = (0..AVC_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&AVC_RECORD[i..i + 2], 16).unwrap())
            .collect();
        let mut out = vec![
            header(
                MediaKind::Video,
                HeaderKind::VideoConfig,
                [&[0x17, 0, 0, 0, 0][..], &record].concat(),
            ),
            header(MediaKind::Audio, HeaderKind::AudioConfig, vec![0xaf, 0, 0x12, 0x10]),
        ];
        // 30 fps video with a keyframe every second, AAC frames every 23 ms, in DTS order.
        let mut audio_ts = 0u32;
        for i in 0..seconds * 30 {
            let ts = i * 1000 / 30;
            while audio_ts <= ts {
                let aac = [0xaf, 1, 0x21, 0x10];
                out.push(Frame::new(
                    Codec::parse(MediaKind::Audio, &aac).unwrap(),
                    audio_ts,
                    false,
                    None,
                    Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
                ));
                audio_ts += 23;
            }
            let key = i % 30 == 0;
            let body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88];
            out.push(Frame::new(
                Codec::parse(MediaKind::Video, &body).unwrap(),
                ts,
                key,
                None,
                Bytes::from(body),
            ));
        }
        out
    }

    #[test]
    fn cuts_parts_near_the_target_and_segments_on_keyframes() {
        let mut seg = Segmenter::new(0.334, 2.0, true);
        let mut out = Vec::new();
        for f in frames(10) {
            seg.push(&f, &mut out);
        }
        seg.finish(&mut out);
        assert!(matches!(out[0], Output::Init(_)), "the init segment comes first");
        let mut parts: Vec<(f64, bool, bool)> = Vec::new();
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
                    // One chunk per 30 fps frame: a part of ~10 frames streams in ~10 pieces.
                    let frames = (duration * 30.0).round() as usize;
                    assert_eq!(chunks_in_part, frames, "chunks of a part of {duration} s");
                    chunks_in_part = 0;
                    parts.push((*duration, *independent, *new_segment));
                }
                Output::Init(_) => panic!("one init segment only"),
            }
        }
        assert_eq!(chunks_in_part, 0, "the last chunk belongs to a finished part");
        let total: f64 = parts.iter().map(|p| p.0).sum();
        assert!((total - 10.0).abs() < 0.05, "all media is in parts: {total}");
        for (i, (duration, _, _)) in parts.iter().enumerate() {
            // At most one frame over the target; shorter only where a segment ends.
            let ends_segment = parts.get(i + 1).is_none_or(|next| next.2);
            assert!(
                *duration <= 0.4 && (ends_segment || *duration >= 0.3),
                "part {i} of {duration} s"
            );
        }
        let segment_starts: Vec<usize> = parts.iter().enumerate().filter(|(_, p)| p.2).map(|(i, _)| i).collect();
        assert_eq!(segment_starts.len(), 5, "2 s segments in 10 s: {parts:?}");
        for &i in &segment_starts {
            assert!(parts[i].1, "a segment starts with an independent part");
        }
        assert_eq!(seg.info().codecs, "avc1.4d400d,mp4a.40.2");
        assert_eq!(seg.info().resolution, Some((320, 240)));
    }

    #[test]
    fn waits_for_a_keyframe_and_an_audio_only_stream_cuts_by_time() {
        let mut seg = Segmenter::new(0.334, 2.0, true);
        let mut out = Vec::new();
        // Frames before the first keyframe are not playable: nothing comes out.
        let all = frames(2);
        for f in all
            .iter()
            .filter(|f| !f.sync_point && f.header.is_none() && f.kind() == MediaKind::Video)
            .take(5)
        {
            seg.push(f, &mut out);
        }
        assert!(out.is_empty());

        let mut audio_only = Segmenter::new(0.334, 2.0, false);
        for f in all.iter().filter(|f| f.kind() == MediaKind::Audio) {
            audio_only.push(f, &mut out);
        }
        audio_only.finish(&mut out);
        assert!(matches!(out[0], Output::Init(_)));
        assert!(out.len() > 4, "{} outputs", out.len());
        assert_eq!(audio_only.info().codecs, "mp4a.40.2");
    }
}
