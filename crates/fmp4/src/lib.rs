//! CMAF (ISO/IEC 23000-19) for livescope: the init segment of an H.264 or HEVC / AAC or Opus
//! stream and the fragments (`moof` + `mdat`) that carry its samples, as ISO/IEC 14496-12
//! and -15 lay them out. Boxes are built with `mp4-atom`; nothing here does I/O.
//!
//! Track 1 is video (90 kHz timescale), track 2 audio (timescale = sample rate).

use bytes::{Bytes, BytesMut};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Atom, Audio, Avc1, Avcc, Codec, Dinf, Dops, Dref, DrefEntry, Encode, Esds, Ftyp, Hdlr, Hvc1, Hvcc, Mdat, Mdhd,
    Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd,
    Traf, Trak, Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

pub mod read;

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
/// The usual video timescale: every common frame rate has an integral frame duration.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Why boxes could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The AVCDecoderConfigurationRecord did not parse.
    #[error("bad AVC configuration: {0}")]
    AvcConfig(String),
    /// The HEVCDecoderConfigurationRecord did not parse.
    #[error("bad HEVC configuration: {0}")]
    HevcConfig(String),
    /// A box did not encode (a field out of range).
    /// Boxes read back (init segment or fragments) did not make sense.
    #[error("cannot read: {0}")]
    Read(String),
    #[error("cannot encode {0}")]
    Encode(String),
}

/// The video codecs a track can carry. Samples are length-prefixed NAL units for both, as
/// FLV carries them, so only the sample entry differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264: an `avc1` sample entry with `avcC`.
    Avc,
    /// H.265: an `hvc1` sample entry with `hvcC` (the entry Apple's players require).
    Hevc,
}

/// An H.264 or HEVC track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    /// The AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord, as FLV carries
    /// it.
    pub record: Bytes,
    pub width: u16,
    pub height: u16,
}

/// An audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    pub codec: AudioCodec,
    /// AAC's AudioSpecificConfig, as FLV carries it (empty for Opus, whose few fields are
    /// in [`AudioCodec::Opus`]).
    pub config: Bytes,
    /// The track's timescale: the AAC sample rate, or 48 kHz for Opus.
    pub sample_rate: u32,
    pub channels: u8,
}

/// An audio track's codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    /// Opus in ISOBMFF (the `Opus` sample entry and its `dOps` box).
    Opus {
        pre_skip: u16,
        input_sample_rate: u32,
    },
}

/// One sample: a video frame (length-prefixed NAL units) or an AAC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    pub keyframe: bool,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
    pub data: Bytes,
}

/// The samples of one track in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub track: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

fn encode_into(atom: &impl Encode, out: &mut BytesMut) -> Result<(), Error> {
    atom.encode(out).map_err(|e| Error::Encode(e.to_string()))
}

/// The init segment (`ftyp` + `moov`) for the given tracks.
pub fn init_segment(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> Result<Bytes, Error> {
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let mut traks = Vec::new();
    let mut trex = Vec::new();
    if let Some(v) = video {
        traks.push(video_trak(v)?);
        trex.push(Trex {
            track_id: VIDEO_TRACK,
            default_sample_description_index: 1,
            ..Default::default()
        });
    }
    if let Some(a) = audio {
        traks.push(audio_trak(a));
        trex.push(Trex {
            track_id: AUDIO_TRACK,
            default_sample_description_index: 1,
            ..Default::default()
        });
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: 3,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak: traks,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_into(&ftyp, &mut out)?;
    encode_into(&moov, &mut out)?;
    Ok(out.freeze())
}

fn sample_tables(codec: Codec) -> Stbl {
    Stbl {
        stsd: Stsd { codecs: vec![codec] },
        stts: Stts::default(),
        stsc: Stsc::default(),
        stsz: Stsz::default(),
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

fn data_information() -> Dinf {
    Dinf {
        dref: Dref {
            entries: vec![DrefEntry::Url(Url {
                location: String::new(),
            })],
        },
    }
}

/// The `hvcC` box for an `hvc1` sample entry, from the record FLV carries.
fn hevc_configuration(record: &[u8]) -> Result<Hvcc, Error> {
    let mut hvcc = Hvcc::decode_body(&mut &record[..]).map_err(|e| Error::HevcConfig(e.to_string()))?;
    // mp4-atom reads any version; 1 is the only one defined, and players check it.
    if hvcc.configuration_version != 1 {
        return Err(Error::HevcConfig(format!(
            "configurationVersion {}",
            hvcc.configuration_version
        )));
    }
    // `hvc1` means every parameter set is in the sample entry (ISO/IEC 14496-15 8.4.1.1:
    // array_completeness 1 for VPS, SPS and PPS). Publishers' records often say 0 (ffmpeg's
    // FLV muxer writes 0 when it builds the record from an encoder's parameter sets), which
    // describes an `hev1` track instead.
    for array in &mut hvcc.arrays {
        if matches!(array.nal_unit_type, 32..=34) {
            array.completeness = true;
        }
    }
    Ok(hvcc)
}

fn video_trak(v: &VideoTrack) -> Result<Trak, Error> {
    let visual = Visual {
        data_reference_index: 1,
        width: v.width,
        height: v.height,
        ..Default::default()
    };
    let codec = match v.codec {
        VideoCodec::Avc => Codec::Avc1(Avc1 {
            visual,
            avcc: Avcc::decode_body(&mut &v.record[..]).map_err(|e| Error::AvcConfig(e.to_string()))?,
            ..Default::default()
        }),
        VideoCodec::Hevc => Codec::Hvc1(Hvc1 {
            visual,
            hvcc: hevc_configuration(&v.record)?,
            ..Default::default()
        }),
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: v.width.into(),
            height: v.height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: VIDEO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"vide".into(),
                name: "livescope video".into(),
            },
            minf: Minf {
                vmhd: Some(Vmhd::default()),
                dinf: data_information(),
                stbl: sample_tables(codec),
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

fn audio_trak(a: &AudioTrack) -> Trak {
    let raw = a.config.to_vec();
    let audio = Audio {
        data_reference_index: 1,
        channel_count: u16::from(a.channels.max(1)),
        sample_size: 16,
        // The 16.16 field cannot hold 88.2 and 96 kHz; the decoder reads the config.
        sample_rate: (a.sample_rate.min(65_535) as u16).into(),
    };
    let codec = match a.codec {
        AudioCodec::Aac => aac_entry(audio, raw),
        AudioCodec::Opus {
            pre_skip,
            input_sample_rate,
        } => Codec::Opus(Opus {
            audio,
            dops: Dops {
                output_channel_count: a.channels.max(1),
                pre_skip,
                input_sample_rate,
                output_gain: 0,
                channel_mapping: None,
            },
            btrt: None,
        }),
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            enabled: true,
            in_movie: true,
            alternate_group: 1,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: a.sample_rate,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"soun".into(),
                name: "livescope audio".into(),
            },
            minf: Minf {
                smhd: Some(Smhd::default()),
                dinf: data_information(),
                stbl: sample_tables(codec),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// AAC's sample entry: `mp4a` with the AudioSpecificConfig in its `esds`.
fn aac_entry(audio: Audio, raw: Vec<u8>) -> Codec {
    Codec::Mp4a(Mp4a {
        audio,
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: AUDIO_TRACK as u16,
                dec_config: DecoderConfig {
                    object_type_indication: 0x40, // MPEG-4 Audio
                    stream_type: 0x05,            // audio
                    up_stream: 0,
                    dec_specific: Some(DecoderSpecific {
                        profile: 0,
                        freq_index: 0,
                        chan_conf: 0,
                        raw,
                    }),
                    ..Default::default()
                },
                sl_config: SLConfig::default(),
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    })
}

/// Sample flags (ISO/IEC 14496-12 8.8.3.1): a sync sample depends on nothing; any other
/// depends on others and is not a sync sample.
fn sample_flags(keyframe: bool) -> u32 {
    if keyframe { 0x0200_0000 } else { 0x0101_0000 }
}

/// One fragment (`moof` + `mdat`) holding the given runs, in order.
pub fn fragment(sequence: u32, runs: &[Run]) -> Result<Bytes, Error> {
    let build = |offsets: &[i32]| Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: runs
            .iter()
            .zip(offsets)
            .map(|(run, &offset)| Traf {
                tfhd: Tfhd {
                    track_id: run.track,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: run.base_decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(offset),
                    samples: TrunSamples::Explicit(
                        run.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: Some(sample_flags(s.keyframe)),
                                cts: Some(i64::from(s.composition_offset)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // The offsets depend on the size of the moof, which does not depend on their values.
    let mut sized = BytesMut::new();
    encode_into(&build(&vec![0; runs.len()]), &mut sized)?;
    let mdat_header = 8;
    let mut offset = sized.len() + mdat_header;
    let mut offsets = Vec::with_capacity(runs.len());
    for run in runs {
        offsets.push(i32::try_from(offset).map_err(|_| Error::Encode("fragment over 2 GiB".into()))?);
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut out = BytesMut::with_capacity(offset);
    encode_into(&build(&offsets), &mut out)?;
    let mut data = Vec::with_capacity(offset - out.len() - mdat_header);
    for sample in runs.iter().flat_map(|r| &r.samples) {
        data.extend_from_slice(&sample.data);
    }
    encode_into(&Mdat { data }, &mut out)?;
    Ok(out.freeze())
}

/// Re-exported so callers can check what they produce.
pub use mp4_atom::Decode;

/// Width and height in pixels from the first SPS of an AVCDecoderConfigurationRecord.
pub fn avc_dimensions(record: &[u8]) -> Option<(u16, u16)> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{BitReader, decode_nal};
    let avcc = Avcc::decode_body(&mut &record[..]).ok()?;
    // h264-reader 0.9's decode_nal panics on an empty NAL unit (it subtracts 2 from its length).
    let sps = avcc.sequence_parameter_sets.first().filter(|sps| !sps.is_empty())?;
    let rbsp = decode_nal(sps).ok()?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
    let (width, height) = sps.pixel_dimensions().ok()?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, Decode};

    /// What x264 wrote for a 320x240 main-profile clip, and AAC-LC 44.1 kHz mono.
    const AVC_RECORD: &str =
        "014d400dffe10022674d400deca0a0fd8088000003000800000301e301000f420003d09c92600f14299601000468ce3c80";
    const ASC: &[u8] = &[0x12, 0x08];
    /// What libx265 wrote for a 320x240 Main clip (`hvc1.1.6.L60.90`), and the one frame of
    /// a flat blue 320x240 picture it coded with the same parameter sets: a 57-byte IDR
    /// slice, length-prefixed as FLV carries it.
    const HEVC_RECORD: &str = "0101600000009000000000003cf000fcfdf8f800000f03a00001001840010c01ffff01600000030090000003000003003c959809a10001002a42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003c10a2000100074401c172b46240";
    const HEVC_KEYFRAME: &str = "000000392801af08485b20d0f9ee977ffb27dfbcdc67c2137466bcba04eb49282cc63ca8524941661e26b988930a52e800058c870000030000030057c0";

    fn hex(s: &str) -> Bytes {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .into()
    }

    fn tracks() -> (VideoTrack, AudioTrack) {
        let record = hex(AVC_RECORD);
        let (width, height) = avc_dimensions(&record).unwrap();
        (
            VideoTrack {
                codec: VideoCodec::Avc,
                record,
                width,
                height,
            },
            AudioTrack {
                codec: AudioCodec::Aac,
                config: Bytes::from_static(ASC),
                sample_rate: 44_100,
                channels: 1,
            },
        )
    }

    #[test]
    fn reads_dimensions_from_the_sps() {
        assert_eq!(avc_dimensions(&hex(AVC_RECORD)), Some((320, 240)));
        assert_eq!(avc_dimensions(&[1, 2, 3]), None);
        // An empty SPS (found by the fmp4_sps fuzz target) has no dimensions; it panicked.
        assert_eq!(
            avc_dimensions(&[1, 0x4d, 0x40, 0x0d, 0xff, 0xe1, 0, 0, 1, 0, 2, 0x68, 0xee]),
            None
        );
    }

    #[test]
    fn the_init_segment_decodes_back_with_both_tracks() {
        let (video, audio) = tracks();
        let init = init_segment(Some(&video), Some(&audio)).unwrap();
        let mut buf = &init[..];
        assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
            panic!("no moov")
        };
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, VIDEO_TIMESCALE);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 44_100);
        assert!(matches!(&moov.trak[0].mdia.minf.stbl.stsd.codecs[0], Codec::Avc1(a) if a.visual.width == 320));
        assert_eq!(moov.mvex.unwrap().trex.len(), 2);
        assert!(buf.is_empty());
        assert!(init_segment(None, Some(&audio)).is_ok());
        assert!(
            init_segment(
                Some(&VideoTrack {
                    codec: VideoCodec::Avc,
                    record: Bytes::from_static(b"junk"),
                    width: 1,
                    height: 1
                }),
                None
            )
            .is_err()
        );
    }

    fn hevc_track(record: Bytes) -> VideoTrack {
        VideoTrack {
            codec: VideoCodec::Hevc,
            record,
            width: 320,
            height: 240,
        }
    }

    /// The body of the first box of type `kind` anywhere in `bytes`.
    fn box_body<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        let at = bytes.windows(4).position(|w| w == kind)?;
        let size = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
        bytes.get(at + 4..at - 4 + size)
    }

    #[test]
    fn an_hevc_track_gets_an_hvc1_entry_holding_the_record() {
        let (_, audio) = tracks();
        let record = hex(HEVC_RECORD);
        let init = init_segment(Some(&hevc_track(record.clone())), Some(&audio)).unwrap();
        assert!(init.windows(4).any(|w| w == b"hvc1"));
        assert!(!init.windows(4).any(|w| w == b"avc1"));
        // x265's record already says complete arrays, so hvcC is the record byte for byte.
        assert_eq!(box_body(&init, b"hvcC"), Some(&record[..]));
        let mut buf = &init[..];
        assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::decode(&mut buf).unwrap() else {
            panic!("no moov")
        };
        let Codec::Hvc1(hvc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            panic!("no hvc1")
        };
        assert_eq!((hvc1.visual.width, hvc1.visual.height), (320, 240));
        let types: Vec<u8> = hvc1.hvcc.arrays.iter().map(|a| a.nal_unit_type).collect();
        assert_eq!(types, [32, 33, 34]);
        assert_eq!(hvc1.hvcc.length_size_minus_one, 3);
        assert!(buf.is_empty());
    }

    #[test]
    fn hvcc_says_the_parameter_sets_are_complete() {
        // As ffmpeg's FLV muxer writes it: array_completeness 0 on every array.
        let mut record = hex(HEVC_RECORD).to_vec();
        let mut pos = 23;
        for _ in 0..record[22] {
            record[pos] &= 0x7f;
            let count = u16::from_be_bytes([record[pos + 1], record[pos + 2]]);
            pos += 3;
            for _ in 0..count {
                pos += 2 + usize::from(u16::from_be_bytes([record[pos], record[pos + 1]]));
            }
        }
        assert_eq!(pos, record.len());
        let init = init_segment(Some(&hevc_track(Bytes::from(record))), None).unwrap();
        assert_eq!(box_body(&init, b"hvcC"), Some(&hex(HEVC_RECORD)[..]));
    }

    #[test]
    fn a_bad_hevc_record_is_an_error() {
        for record in [&b"junk"[..], &[], &hex(HEVC_RECORD)[..40]] {
            let err = init_segment(Some(&hevc_track(Bytes::copy_from_slice(record))), None).unwrap_err();
            assert!(matches!(err, Error::HevcConfig(_)), "{err}");
        }
        let mut version_0 = hex(HEVC_RECORD).to_vec();
        version_0[0] = 0;
        assert!(matches!(
            init_segment(Some(&hevc_track(Bytes::from(version_0))), None),
            Err(Error::HevcConfig(_))
        ));
    }

    /// ffprobe (which the test suite installs) decodes what a player would get: the init
    /// segment and a fragment holding one HEVC keyframe.
    #[test]
    fn ffprobe_decodes_an_hevc_init_segment_and_fragment() {
        let init = init_segment(Some(&hevc_track(hex(HEVC_RECORD))), None).unwrap();
        let fragment = fragment(
            1,
            &[Run {
                track: VIDEO_TRACK,
                base_decode_time: 0,
                samples: vec![Sample {
                    duration: VIDEO_TIMESCALE / 30,
                    keyframe: true,
                    composition_offset: 0,
                    data: hex(HEVC_KEYFRAME),
                }],
            }],
        )
        .unwrap();
        let path = std::env::temp_dir().join(format!("fmp4-hevc-{}.mp4", std::process::id()));
        std::fs::write(&path, [&init[..], &fragment[..]].concat()).unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-show_entries"])
            .arg("stream=codec_name,codec_tag_string,profile,width,height,nb_read_frames")
            .args(["-of", "default=noprint_wrappers=1"])
            .arg(&path)
            .output();
        let _ = std::fs::remove_file(&path);
        let probe = probe.expect("running ffprobe (is ffmpeg installed?)");
        let (out, err) = (
            String::from_utf8_lossy(&probe.stdout),
            String::from_utf8_lossy(&probe.stderr),
        );
        assert!(probe.status.success() && err.is_empty(), "{err}");
        for line in [
            "codec_name=hevc",
            "codec_tag_string=hvc1",
            "profile=Main",
            "width=320",
            "height=240",
            "nb_read_frames=1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in {out}");
        }
    }

    #[test]
    fn fragment_offsets_point_at_each_tracks_samples() {
        let video = Run {
            track: VIDEO_TRACK,
            base_decode_time: 90_000,
            samples: vec![
                Sample {
                    duration: 3000,
                    keyframe: true,
                    composition_offset: 6000,
                    data: Bytes::from_static(b"KEY!"),
                },
                Sample {
                    duration: 3000,
                    keyframe: false,
                    composition_offset: -3000,
                    data: Bytes::from_static(b"b"),
                },
            ],
        };
        let audio = Run {
            track: AUDIO_TRACK,
            base_decode_time: 44_100,
            samples: vec![Sample {
                duration: 1024,
                keyframe: true,
                composition_offset: 0,
                data: Bytes::from_static(b"aac"),
            }],
        };
        let frag = fragment(7, &[video, audio]).unwrap();
        let mut buf = &frag[..];
        let Any::Moof(moof) = Any::decode(&mut buf).unwrap() else {
            panic!("no moof")
        };
        assert_eq!(moof.mfhd.sequence_number, 7);
        let starts: Vec<usize> = moof
            .traf
            .iter()
            .map(|t| t.trun[0].data_offset.unwrap() as usize)
            .collect();
        assert_eq!(&frag[starts[0]..starts[0] + 5], b"KEY!b");
        assert_eq!(&frag[starts[1]..starts[1] + 3], b"aac");
        let entries: Vec<TrunEntry> = moof.traf[0].trun[0].samples.iter().collect();
        assert_eq!(entries[1].cts, Some(-3000), "negative offsets survive (trun version 1)");
        assert_eq!(moof.traf[1].tfdt.as_ref().unwrap().base_media_decode_time, 44_100);
        assert!(matches!(Any::decode(&mut buf).unwrap(), Any::Mdat(_)));
    }
}
