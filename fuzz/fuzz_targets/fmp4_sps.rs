//! The LL-HLS path from a publisher's bytes (`crates/livescope/src/hls/segmenter.rs`): FLV
//! video and audio sequence headers and frames, parsed with the `flv` calls the segmenter
//! makes (tag headers, `AvcConfig::parse`, `codec_string`, `fmp4::avc_dimensions`,
//! `AudioSpecificConfig::parse`), then written with `fmp4::init_segment` and
//! `fmp4::fragment` as the segmenter writes them. Nothing panics, and:
//! - the codec strings are what RFC 6381 wants (`avc1.xxxxxx`, `mp4a.40.N`);
//! - an accepted AudioSpecificConfig has a sample rate (the audio track's timescale), and
//!   one written from known fields parses back to them;
//! - the init segment is `ftyp` + `moov` whose box sizes add up to its length, and decodes
//!   back to the tracks, dimensions, decoder configuration and timescales it was made from;
//! - a fragment is `moof` + `mdat` whose sizes add up, whose runs decode back to the
//!   samples given, and whose data offsets point at each run's samples;
//! - `fmp4::read` reads the fragment back to the same samples, and arbitrary bytes to an
//!   error or samples without a panic.
//!
//! Input: `video_len: u16 BE, video tag body, audio_len: u8, audio tag body`, then frames,
//! each `kind: u8 (bit 0: video), delta_ms: u8, len: u8, tag body`; short input ends early.
#![no_main]

use bytes::Bytes;
use fmp4::{AUDIO_TRACK, AudioTrack, Run, Sample, VIDEO_TIMESCALE, VIDEO_TRACK, VideoTrack};
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Any, Atom, Avcc, Codec, Decode, Moof, Moov, TrunEntry};

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn byte(&mut self) -> Option<u8> {
        self.bytes(1).first().copied()
    }
}

fuzz_target!(|data: &[u8]| {
    // A viewer reading CMAF back (`fmp4::read`, for `livescope watch --verify`) from
    // anyone's bytes: an error or samples, never a panic.
    let _ = fmp4::read::tracks(data);
    let _ = fmp4::read::samples(data);
    let mut input = Input(data);
    let video_len = u16::from_be_bytes([input.byte().unwrap_or(0), input.byte().unwrap_or(0)]);
    let video_body = Bytes::copy_from_slice(input.bytes(video_len.into()));
    let audio_len = input.byte().unwrap_or(0);
    let audio_body = Bytes::copy_from_slice(input.bytes(audio_len.into()));

    check_asc_model(&audio_body);
    let video = video_track(&video_body);
    let audio = audio_track(&audio_body);
    if video.is_none() && audio.is_none() {
        return;
    }
    let init = match fmp4::init_segment(video.as_ref(), audio.as_ref()) {
        Ok(init) => init,
        Err(e) => {
            // The one refusal left: a record the flv parser accepts that mp4-atom does not
            // (a malformed profile extension after the parameter sets). The segmenter then
            // keeps waiting for a usable configuration.
            assert!(matches!(e, fmp4::Error::AvcConfig(_)), "{e}");
            assert!(video.is_some());
            return;
        }
    };
    check_init(&init, video.as_ref(), audio.as_ref());

    // Frames, as the segmenter turns them into samples: each sample lasts until the next
    // of its track (the last, a default), composition times scale from ms.
    let mut timestamp = 0u32;
    let mut video_samples: Vec<(u64, Sample)> = Vec::new();
    let mut audio_samples: Vec<(u64, Sample)> = Vec::new();
    while let (Some(kind), Some(delta), Some(len)) = (input.byte(), input.byte(), input.byte()) {
        let body = Bytes::copy_from_slice(input.bytes(len.into()));
        timestamp = timestamp.wrapping_add(delta.into());
        if kind & 1 == 1 {
            let Ok(tag) = flv::VideoTag::parse(&body) else { continue };
            if tag.packet != flv::VideoPacket::Frame || video.is_none() {
                continue;
            }
            video_samples.push((
                u64::from(timestamp) * u64::from(VIDEO_TIMESCALE / 1000),
                Sample {
                    duration: VIDEO_TIMESCALE / 30,
                    keyframe: tag.keyframe,
                    composition_offset: tag.composition_time.saturating_mul((VIDEO_TIMESCALE / 1000) as i32),
                    data: body.slice(tag.header_len.min(body.len())..),
                },
            ));
        } else {
            let Ok(tag) = flv::AudioTag::parse(&body) else { continue };
            let Some(rate) = audio.as_ref().map(|a| u64::from(a.sample_rate)) else {
                continue;
            };
            if tag.sequence_header {
                continue;
            }
            audio_samples.push((
                u64::from(timestamp) * rate / 1000,
                Sample {
                    duration: 1024,
                    keyframe: true,
                    composition_offset: 0,
                    data: body.slice(tag.header_len.min(body.len())..),
                },
            ));
        }
    }
    let mut runs = Vec::new();
    for (track, samples) in [(VIDEO_TRACK, video_samples), (AUDIO_TRACK, audio_samples)] {
        if samples.is_empty() {
            continue;
        }
        let mut run = Run {
            track,
            base_decode_time: samples[0].0,
            samples: Vec::new(),
        };
        for (i, (dts, mut sample)) in samples.iter().cloned().enumerate() {
            if let Some((next, _)) = samples.get(i + 1)
                && *next > dts
            {
                sample.duration = (next - dts).min(u64::from(u32::MAX)) as u32;
            }
            run.samples.push(sample);
        }
        runs.push(run);
    }
    // An empty run too: a chunk of one track must not trip over the other's absence.
    if runs.len() == 1 && data.len() % 2 == 0 {
        let other = if runs[0].track == VIDEO_TRACK {
            AUDIO_TRACK
        } else {
            VIDEO_TRACK
        };
        runs.push(Run {
            track: other,
            base_decode_time: 0,
            samples: Vec::new(),
        });
    }
    let sequence = u32::from(video_len);
    let fragment = fmp4::fragment(sequence, &runs).expect("a fragment of parsed frames encodes");
    check_fragment(&fragment, sequence, &runs);
});

/// The segmenter's `video_config`: an AVC sequence header becomes the video track.
fn video_track(body: &Bytes) -> Option<VideoTrack> {
    let tag = flv::VideoTag::parse(body).ok()?;
    assert!(tag.header_len <= body.len(), "the header is within the tag");
    if tag.packet != flv::VideoPacket::SequenceHeader || tag.codec != flv::VideoCodec::Avc {
        return None;
    }
    let record = body.slice(tag.header_len..);
    let config = flv::AvcConfig::parse(&record).ok()?;
    assert!(!config.sps.is_empty());
    assert!(matches!(config.nal_length_size, 1 | 2 | 4));
    let codec = config.codec_string();
    assert!(
        codec.len() == 11
            && codec.starts_with("avc1.")
            && codec[5..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{codec}"
    );
    let dimensions = fmp4::avc_dimensions(&record);
    if let Some(avcc) = Avcc::decode_body(&mut &record[..]).ok() {
        // Both readers of the record agree on what they both read.
        let sps: Vec<&[u8]> = config.sps.iter().map(|s| &s[..]).collect();
        let avcc_sps: Vec<&[u8]> = avcc.sequence_parameter_sets.iter().map(|s| &s[..]).collect();
        assert_eq!(sps, avcc_sps);
        let pps: Vec<&[u8]> = config.pps.iter().map(|s| &s[..]).collect();
        let avcc_pps: Vec<&[u8]> = avcc.picture_parameter_sets.iter().map(|s| &s[..]).collect();
        assert_eq!(pps, avcc_pps);
        assert_eq!(avcc.length_size, config.nal_length_size);
    } else {
        assert_eq!(dimensions, None);
    }
    let (width, height) = dimensions.unwrap_or((0, 0));
    Some(VideoTrack {
        codec: fmp4::VideoCodec::Avc,
        record,
        width,
        height,
    })
}

/// The segmenter's `audio_config`: an AAC sequence header becomes the audio track.
fn audio_track(body: &Bytes) -> Option<AudioTrack> {
    let tag = flv::AudioTag::parse(body).ok()?;
    assert!(tag.header_len <= body.len(), "the header is within the tag");
    if !tag.sequence_header {
        return None;
    }
    let config = body.slice(tag.header_len..);
    let asc = flv::AudioSpecificConfig::parse(&config).ok()?;
    assert!(asc.sample_rate > 0, "an accepted config has a sample rate: {asc:?}");
    assert!((1..=31).contains(&asc.object_type), "{asc:?}");
    assert!(asc.channels < 16);
    let codec = format!("mp4a.40.{}", asc.object_type);
    assert!(codec.len() <= 10);
    Some(AudioTrack {
        codec: fmp4::AudioCodec::Aac,
        config,
        sample_rate: asc.sample_rate,
        channels: asc.channels,
    })
}

/// An AudioSpecificConfig written from known fields (ISO/IEC 14496-3 1.6.2.1) parses back
/// to them, with the sample rate given by index or explicitly.
fn check_asc_model(seed: &[u8]) {
    let [a, b, c, d, e, ..] = *seed else { return };
    let object_type = 1 + a % 30;
    let channels = b & 0x0f;
    let index = b >> 4;
    let explicit = u32::from_be_bytes([0, c, d, e]);
    let mut bits: u64 = u64::from(object_type);
    let mut width = 5;
    let mut push = |value: u64, n: u32| {
        bits = bits << n | value;
        width += n;
    };
    push(index.into(), 4);
    if index == 15 {
        push(explicit.into(), 24);
    }
    push(channels.into(), 4);
    let pad = (8 - width % 8) % 8;
    let len = ((width + pad) / 8) as usize;
    let bytes = (bits << pad).to_be_bytes();
    let config = &bytes[8 - len..];
    let rates = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let expected_rate = match index {
        15 if explicit > 0 => Some(explicit),
        15 => None,
        i => rates.get(usize::from(i)).copied(),
    };
    match (flv::AudioSpecificConfig::parse(config), expected_rate) {
        (Ok(asc), Some(rate)) => assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channels),
            (object_type, rate, channels),
            "{config:02x?}"
        ),
        (Err(_), None) => {}
        (got, _) => panic!("{config:02x?}: {got:?}, expected a rate of {expected_rate:?}"),
    }
}

/// Top-level boxes: their kinds, each size covering exactly its box, all of `data`.
fn boxes(data: &[u8]) -> Vec<[u8; 4]> {
    let mut kinds = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "a box header is 8 bytes");
        let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let (size, header) = match size {
            1 => (u64::from_be_bytes(rest[8..16].try_into().unwrap()) as usize, 16),
            0 => (rest.len(), 8),
            n => (n, 8),
        };
        assert!(
            size >= header && size <= rest.len(),
            "box size {size} of {}",
            rest.len()
        );
        kinds.push(rest[4..8].try_into().unwrap());
        rest = &rest[size..];
    }
    kinds
}

fn check_init(init: &[u8], video: Option<&VideoTrack>, audio: Option<&AudioTrack>) {
    assert_eq!(boxes(init), [*b"ftyp", *b"moov"]);
    let mut buf = init;
    assert!(matches!(Any::decode(&mut buf).expect("ftyp decodes"), Any::Ftyp(_)));
    let moov = Moov::decode(&mut buf).expect("moov decodes");
    assert!(buf.is_empty());
    let tracks = usize::from(video.is_some()) + usize::from(audio.is_some());
    assert_eq!(moov.trak.len(), tracks);
    assert_eq!(moov.mvex.as_ref().map(|m| m.trex.len()), Some(tracks));
    let mut traks = moov.trak.iter();
    if let Some(v) = video {
        let trak = traks.next().unwrap();
        assert_eq!(trak.tkhd.track_id, VIDEO_TRACK);
        assert_eq!(trak.mdia.mdhd.timescale, VIDEO_TIMESCALE);
        let Codec::Avc1(avc1) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("video is avc1")
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (v.width, v.height));
        let from_record = Avcc::decode_body(&mut &v.record[..]).expect("the record decoded to write it");
        assert_eq!(avc1.avcc, from_record);
    }
    if let Some(a) = audio {
        let trak = traks.next().unwrap();
        assert_eq!(trak.tkhd.track_id, AUDIO_TRACK);
        assert_eq!(trak.mdia.mdhd.timescale, a.sample_rate);
        let Codec::Mp4a(mp4a) = &trak.mdia.minf.stbl.stsd.codecs[0] else {
            panic!("audio is mp4a")
        };
        let specific = mp4a
            .esds
            .es_desc
            .dec_config
            .dec_specific
            .as_ref()
            .expect("the config is kept");
        assert_eq!(specific.raw, &a.config[..]);
    }
}

fn check_fragment(fragment: &[u8], sequence: u32, runs: &[Run]) {
    assert_eq!(boxes(fragment), [*b"moof", *b"mdat"]);
    let mut buf = fragment;
    let moof = Moof::decode(&mut buf).expect("moof decodes");
    let Any::Mdat(mdat) = Any::decode(&mut buf).expect("mdat decodes") else {
        panic!("mdat follows the moof")
    };
    assert!(buf.is_empty());
    assert_eq!(moof.mfhd.sequence_number, sequence);
    assert_eq!(moof.traf.len(), runs.len());
    let all: Vec<u8> = runs
        .iter()
        .flat_map(|r| &r.samples)
        .flat_map(|s| s.data.to_vec())
        .collect();
    assert_eq!(mdat.data, all);
    for (traf, run) in moof.traf.iter().zip(runs) {
        assert_eq!(traf.tfhd.track_id, run.track);
        assert_eq!(
            traf.tfdt.as_ref().map(|t| t.base_media_decode_time),
            Some(run.base_decode_time)
        );
        let [trun] = &traf.trun[..] else {
            panic!("one trun per traf")
        };
        let entries: Vec<TrunEntry> = trun.samples.iter().collect();
        let expected: Vec<(u32, u32, bool, i64)> = run
            .samples
            .iter()
            .map(|s| {
                (
                    s.duration,
                    s.data.len() as u32,
                    s.keyframe,
                    i64::from(s.composition_offset),
                )
            })
            .collect();
        let got: Vec<(u32, u32, bool, i64)> = entries
            .iter()
            .map(|e| {
                let flags = e.flags.expect("every sample has flags");
                (
                    e.duration.unwrap(),
                    e.size.unwrap(),
                    flags & 0x0001_0000 == 0,
                    e.cts.unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected);
        let start = trun.data_offset.expect("a data offset") as usize;
        let data: Vec<u8> = run.samples.iter().flat_map(|s| s.data.to_vec()).collect();
        assert_eq!(&fragment[start..start + data.len()], &data[..]);
    }
    // The reader gives back every sample written, with its times and flags.
    let read = fmp4::read::samples(fragment).expect("a written fragment reads back");
    let mut expected = Vec::new();
    for run in runs {
        let mut dts = run.base_decode_time;
        for s in &run.samples {
            expected.push((
                run.track,
                dts,
                i64::from(s.composition_offset),
                s.keyframe,
                s.data.to_vec(),
            ));
            dts += u64::from(s.duration);
        }
    }
    let got: Vec<_> = read
        .iter()
        .map(|s| (s.track, s.dts, s.composition_offset, s.keyframe, s.data.to_vec()))
        .collect();
    assert_eq!(got, expected);
}
