//! HEVC clips as an Enhanced RTMP publisher (OBS 29+, ffmpeg 6.1+) sends them: FLV whose
//! video tags carry the extended header (Veovera's Enhanced RTMP v1) with the `hvc1` FourCC.
//!
//! Debian's ffmpeg 5.1 encodes H.265 (libx265) but cannot put it in FLV, and its FLV
//! reader cannot read such tags back. So ffmpeg only makes the raw bitstream, and the FLV
//! is written here, tag by tag: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
//! 8.3.3.1) built from the stream's own parameter sets, then each access unit with 4-byte
//! length prefixes. Such a file is sent with `publish_flv`, not with ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;

/// NAL unit types (ITU-T H.265 Table 7-1).
const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
const AUD: u8 = 35;
const PREFIX_SEI: u8 = 39;

/// Enhanced RTMP video header: IsExHeader, then FrameType in bits 4-6 and PacketType in
/// the low four bits.
const EX_HEADER: u8 = 0x80;
const KEYFRAME: u8 = 1 << 4;
const INTER_FRAME: u8 = 2 << 4;
const SEQUENCE_START: u8 = 0;
const SEQUENCE_END: u8 = 2;
/// Coded frames without a composition time: the clip has no B-frames, so it would be 0.
const CODED_FRAMES_X: u8 = 3;

/// Frames per second of the clip, and a keyframe every second.
const FPS: u32 = 30;

/// A 320x240, 30 fps H.265 clip (Main profile, no B-frames, an IDR picture every 30
/// frames), with 48 kHz AAC when `with_audio`, as Enhanced FLV. Cached across test runs
/// like `clip`.
pub fn hevc_clip(seconds: u32, with_audio: bool) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clips");
    std::fs::create_dir_all(&dir).unwrap();
    let tracks = if with_audio { "AudioVideo" } else { "VideoOnly" };
    let path = dir.join(format!("hevc-{tracks}-{seconds}s.flv"));
    if path.exists() {
        return path;
    }
    let mut tags = hevc_tags(&encode_hevc(seconds));
    if with_audio {
        tags.extend(aac_tags(seconds));
    }
    // Sequence headers first (video, then audio, as ffmpeg writes them), then by timestamp;
    // the sort is stable, so a video frame stays before an audio frame of the same time.
    tags.sort_by_key(|(kind, timestamp, body)| {
        let header = match kind {
            flv::TagKind::Video => flv::VideoTag::parse(body).unwrap().packet == flv::VideoPacket::SequenceHeader,
            _ => flv::AudioTag::parse(body).unwrap().sequence_header,
        };
        (!header, *timestamp)
    });
    // Last, what an encoder sends when it stops, as ffmpeg ends its H.264 clips.
    let end = tags.last().unwrap().1;
    tags.push((flv::TagKind::Video, end, ex_header(KEYFRAME | SEQUENCE_END)));
    let mut file = flv::encode_header(with_audio, true).to_vec();
    for (kind, timestamp, body) in &tags {
        file.extend_from_slice(&flv::encode_tag(*kind, *timestamp, body));
    }
    // Tests of one process may make the same clip at once: each writes its own file, and
    // the last rename wins (the clips are the same).
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = dir.join(format!(
        "{}.{}-{}.partial.flv",
        path.file_stem().unwrap().to_string_lossy(),
        std::process::id(),
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&partial, file).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// The H.265 of an Enhanced FLV file (a clip, or what a viewer received) as an Annex B
/// elementary stream, parameter sets before each keyframe: what ffmpeg 5.1 can decode
/// (`-f hevc`) when it cannot read the FLV itself.
pub fn hevc_annex_b(flv_file: &[u8]) -> Vec<u8> {
    let mut demuxer = flv::Demuxer::new(16 << 20);
    demuxer.push(flv_file);
    let mut parameter_sets = Vec::new();
    let mut length_size = 4;
    let mut out = Vec::new();
    while let Some(tag) = demuxer.next_tag().unwrap() {
        if tag.kind != flv::TagKind::Video {
            continue;
        }
        let header = flv::VideoTag::parse(&tag.body).unwrap();
        let payload = tag.body.slice(header.header_len..);
        match header.packet {
            flv::VideoPacket::SequenceHeader => {
                let config = flv::HevcConfig::parse(&payload).unwrap();
                length_size = usize::from(config.nal_length_size);
                parameter_sets = [config.vps, config.sps, config.pps].concat();
            }
            flv::VideoPacket::Frame => {
                if header.keyframe {
                    for nal in &parameter_sets {
                        out.extend_from_slice(&[0, 0, 0, 1]);
                        out.extend_from_slice(nal);
                    }
                }
                let mut rest = &payload[..];
                while !rest.is_empty() {
                    let len = rest[..length_size].iter().fold(0, |n, &b| n << 8 | usize::from(b));
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(&rest[length_size..length_size + len]);
                    rest = &rest[length_size + len..];
                }
            }
            _ => {}
        }
    }
    out
}

/// libx265's Annex B stream of the test pattern.
fn encode_hevc(seconds: u32) -> Vec<u8> {
    let keyint = FPS.to_string();
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size=320x240:rate={FPS}")])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        // A keyframe exactly every second and no B-frames, like a low-latency encoder;
        // closed GOPs, so each keyframe is an IDR picture a player can start from. An access
        // unit delimiter starts each picture, which makes access units easy to find; ffmpeg
        // repeats the parameter sets before each keyframe (this stream has no global
        // header), so the first access unit has them. No version SEI (`info=0`).
        .args([
            "-x265-params",
            &format!(
                "keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:bframes=0:aud=1:info=0:log-level=error"
            ),
        ])
        .args(["-f", "hevc", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg could not encode H.265: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The video tags of an Annex B stream: the sequence start, then each access unit.
fn hevc_tags(annex_b: &[u8]) -> Vec<(flv::TagKind, u32, Vec<u8>)> {
    let units = access_units(&nal_units(annex_b));
    let first = units.first().expect("ffmpeg wrote no pictures");
    let find = |t: u8| {
        *first
            .iter()
            .find(|nal| nal_type(nal) == t)
            .unwrap_or_else(|| panic!("no NAL unit of type {t} in the first access unit"))
    };
    let mut sequence_start = ex_header(KEYFRAME | SEQUENCE_START);
    sequence_start.extend(decoder_configuration(find(VPS), find(SPS), find(PPS)));
    let mut tags = vec![(flv::TagKind::Video, 0, sequence_start)];
    for (n, unit) in units.iter().enumerate() {
        // IDR (19, 20) or CRA (21); BLA (16-18) never comes out of an encoder.
        let keyframe = unit.iter().any(|nal| (16..=21).contains(&nal_type(nal)));
        let mut body = ex_header(if keyframe { KEYFRAME } else { INTER_FRAME } | CODED_FRAMES_X);
        // An `hvc1` sample carries no access unit delimiter, and its parameter sets are
        // those of the sequence start.
        let sample = unit
            .iter()
            .filter(|nal| !matches!(nal_type(nal), VPS | SPS | PPS | AUD));
        for nal in sample {
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
        }
        // Milliseconds rounded up: the times ffmpeg gives the H.264 clips' frames (0, 34,
        // 67, 100...), so both kinds of clip last as long and show 30 fps to the server.
        tags.push((flv::TagKind::Video, (n as u32 * 1000).div_ceil(FPS), body));
    }
    tags
}

/// The first bytes of an Enhanced RTMP `hvc1` video tag.
fn ex_header(frame_and_packet_type: u8) -> Vec<u8> {
    let mut body = vec![EX_HEADER | frame_and_packet_type];
    body.extend_from_slice(b"hvc1");
    body
}

/// The AAC tags (sequence header first) of a sine tone ffmpeg puts in FLV itself.
fn aac_tags(seconds: u32) -> Vec<(flv::TagKind, u32, Vec<u8>)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg could not encode AAC: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut demuxer = flv::Demuxer::new(16 << 20);
    demuxer.push(&out.stdout);
    let mut tags = Vec::new();
    // onMetaData (and anything else but audio) is left out: it would describe this file.
    while let Some(tag) = demuxer.next_tag().unwrap() {
        if tag.kind == flv::TagKind::Audio {
            tags.push((tag.kind, tag.timestamp, tag.body.to_vec()));
        }
    }
    tags
}

/// The NAL units of an Annex B stream, without start codes.
fn nal_units(annex_b: &[u8]) -> Vec<&[u8]> {
    // Every unit starts after a 00 00 01 (a 4-byte start code is a zero byte more).
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(annex_b.len(), |next| next - 3);
        // Trailing zeros belong to the next start code (or are trailing_zero_8bits).
        while end > start && annex_b[end - 1] == 0 {
            end -= 1;
        }
        if end > start {
            units.push(&annex_b[start..end]);
        }
    }
    units
}

fn nal_type(nal: &[u8]) -> u8 {
    nal[0] >> 1 & 0x3f
}

/// Groups NAL units into access units (H.265 7.4.2.4.4): a new one starts at an access
/// unit delimiter, or at a parameter set, prefix SEI or first slice of a picture once the
/// current one has a picture.
fn access_units<'a>(nals: &[&'a [u8]]) -> Vec<Vec<&'a [u8]>> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut has_picture = false;
    for &nal in nals {
        let t = nal_type(nal);
        let vcl = t < 32;
        // first_slice_segment_in_pic_flag: the first bit after the 2-byte header.
        let first_slice = vcl && nal.get(2).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = t == AUD || (has_picture && (matches!(t, VPS | SPS | PPS | PREFIX_SEI) || first_slice));
        if starts_unit || units.is_empty() {
            units.push(Vec::new());
            has_picture = false;
        }
        has_picture |= vcl;
        units.last_mut().unwrap().push(nal);
    }
    units.retain(|unit| unit.iter().any(|nal| nal_type(nal) < 32));
    units
}

/// The HEVCDecoderConfigurationRecord for one VPS, SPS and PPS, as ffmpeg's MP4 and FLV
/// writers make it: the profile, tier and level copied from the SPS, nothing promised
/// about segmentation, parallelism or frame rate, 4-byte NAL unit lengths.
fn decoder_configuration(vps: &[u8], sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let sps_fields = SpsFields::read(sps);
    let mut r = vec![1]; // configurationVersion
    // general_profile_space .. general_level_idc: the 12 bytes of profile_tier_level.
    r.extend_from_slice(&sps_fields.general_profile_tier_level);
    r.extend_from_slice(&[0xf0, 0x00]); // reserved '1111', min_spatial_segmentation_idc 0
    r.push(0xfc); // reserved '111111', parallelismType 0 (unknown)
    r.push(0xfc | sps_fields.chroma_format_idc);
    r.push(0xf8 | sps_fields.bit_depth_luma_minus8);
    r.push(0xf8 | sps_fields.bit_depth_chroma_minus8);
    r.extend_from_slice(&[0, 0]); // avgFrameRate: unspecified
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    r.push(sps_fields.sub_layers << 3 | u8::from(sps_fields.temporal_id_nesting) << 2 | 3);
    r.push(3); // numOfArrays
    for nal in [vps, sps, pps] {
        // array_completeness 1: these are all the sets of their type the stream uses.
        r.push(0x80 | nal_type(nal));
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        r.extend_from_slice(nal);
    }
    r
}

/// What the record repeats from the SPS (H.265 7.3.2.2).
struct SpsFields {
    general_profile_tier_level: [u8; 12],
    sub_layers: u8,
    temporal_id_nesting: bool,
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
}

impl SpsFields {
    fn read(sps: &[u8]) -> SpsFields {
        let rbsp = flv::unescape(&sps[2..]);
        let mut r = Bits { data: &rbsp, pos: 0 };
        r.bits(4); // sps_video_parameter_set_id
        let max_sub_layers_minus1 = r.bits(3);
        let temporal_id_nesting = r.bits(1) == 1;
        // With sub-layers, profile_tier_level goes on with their flags; x265 makes one
        // unless asked for temporal layers, which this clip is not.
        assert_eq!(max_sub_layers_minus1, 0, "an SPS with sub-layers");
        let general_profile_tier_level: [u8; 12] = rbsp[1..13].try_into().unwrap();
        r.pos += 12 * 8;
        r.ue(); // sps_seq_parameter_set_id
        let chroma_format_idc = r.ue();
        if chroma_format_idc == 3 {
            r.bits(1); // separate_colour_plane_flag
        }
        r.ue(); // pic_width_in_luma_samples
        r.ue(); // pic_height_in_luma_samples
        if r.bits(1) == 1 {
            for _ in 0..4 {
                r.ue(); // conf_win_left/right/top/bottom_offset
            }
        }
        let bit_depth_luma_minus8 = r.ue();
        let bit_depth_chroma_minus8 = r.ue();
        SpsFields {
            general_profile_tier_level,
            sub_layers: max_sub_layers_minus1 as u8 + 1,
            temporal_id_nesting,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
            bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
        }
    }
}

/// Reads an SPS most significant bit first; a short one is a broken encoder: panics.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bits(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |value, _| {
            let bit = self.data[self.pos / 8] >> (7 - self.pos % 8) & 1;
            self.pos += 1;
            value << 1 | u32::from(bit)
        })
    }

    /// An Exp-Golomb ue(v) (H.265 9.2).
    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.bits(1) == 0 {
            zeros += 1;
        }
        (1 << zeros) - 1 + self.bits(zeros)
    }
}
