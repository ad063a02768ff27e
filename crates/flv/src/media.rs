//! Audio and video tag headers (FLV specification E.4.2-E.4.3, and Enhanced RTMP v1's
//! extended video header): which codec, keyframe or not, configuration or frame.

use crate::Error;

/// Video codecs livescope relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (FLV codec id 7, or Enhanced RTMP `avc1`).
    Avc,
    /// H.265 (Enhanced RTMP `hvc1`, or the widespread non-standard codec id 12).
    Hevc,
}

/// What a video tag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// The decoder configuration record (AVCDecoderConfigurationRecord, HEVC's likewise).
    SequenceHeader,
    /// Coded frames.
    Frame,
    /// The end of the sequence.
    EndOfSequence,
    /// Anything else a newer publisher may send (metadata, multitrack): relayed, not decoded.
    Other,
}

/// A parsed video tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub packet: VideoPacket,
    /// Presentation minus decode time, in milliseconds (B-frames make it positive).
    pub composition_time: i32,
    /// Where the codec payload starts within the tag body.
    pub header_len: usize,
}

impl VideoTag {
    pub fn parse(body: &[u8]) -> Result<VideoTag, Error> {
        let first = *body.first().ok_or(Error::Truncated("video"))?;
        let frame_type = (first >> 4) & 0x07;
        let keyframe = frame_type == 1;
        if first & 0x80 != 0 {
            // Enhanced RTMP: [IsExHeader|FrameType(3)|PacketType(4)] FourCC ...
            let fourcc = body.get(1..5).ok_or(Error::Truncated("video"))?;
            let codec = match fourcc {
                b"avc1" => VideoCodec::Avc,
                b"hvc1" => VideoCodec::Hevc,
                other => {
                    return Err(Error::UnsupportedCodec {
                        kind: "video",
                        name: String::from_utf8_lossy(other).into_owned(),
                    });
                }
            };
            let (packet, composition_time, header_len) = match first & 0x0f {
                0 => (VideoPacket::SequenceHeader, 0, 5),
                1 => (
                    VideoPacket::Frame,
                    cts(body.get(5..8).ok_or(Error::Truncated("video"))?),
                    8,
                ),
                2 => (VideoPacket::EndOfSequence, 0, 5),
                3 => (VideoPacket::Frame, 0, 5),
                _ => (VideoPacket::Other, 0, 5),
            };
            return Ok(VideoTag {
                codec,
                keyframe,
                packet,
                composition_time,
                header_len,
            });
        }
        let codec = match first & 0x0f {
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            id => {
                return Err(Error::UnsupportedCodec {
                    kind: "video",
                    name: legacy_video_name(id).to_owned(),
                });
            }
        };
        let header = body.get(1..5).ok_or(Error::Truncated("video"))?;
        let packet = match header[0] {
            0 => VideoPacket::SequenceHeader,
            1 => VideoPacket::Frame,
            2 => VideoPacket::EndOfSequence,
            _ => VideoPacket::Other,
        };
        Ok(VideoTag {
            codec,
            keyframe,
            packet,
            composition_time: cts(&header[1..4]),
            header_len: 5,
        })
    }
}

/// A signed 24-bit composition time offset.
fn cts(b: &[u8]) -> i32 {
    (i32::from(b[0]) << 24 | i32::from(b[1]) << 16 | i32::from(b[2]) << 8) >> 8
}

fn legacy_video_name(id: u8) -> &'static str {
    match id {
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        _ => "unknown",
    }
}

/// Audio codecs livescope relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    /// Opus (Enhanced RTMP v2 `Opus`): what browsers send over WebRTC.
    Opus,
}

/// A parsed audio tag header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag {
    pub codec: AudioCodec,
    /// An AudioSpecificConfig rather than a raw frame.
    pub sequence_header: bool,
    /// Where the codec payload starts within the tag body.
    pub header_len: usize,
}

impl AudioTag {
    pub fn parse(body: &[u8]) -> Result<AudioTag, Error> {
        let first = *body.first().ok_or(Error::Truncated("audio"))?;
        match first >> 4 {
            10 => {
                let packet_type = *body.get(1).ok_or(Error::Truncated("audio"))?;
                Ok(AudioTag {
                    codec: AudioCodec::Aac,
                    sequence_header: packet_type == 0,
                    header_len: 2,
                })
            }
            9 => {
                // Enhanced RTMP v2: [SoundFormat 9|AudioPacketType(4)] FourCC ...
                let fourcc = body.get(1..5).ok_or(Error::Truncated("audio"))?;
                let codec = match fourcc {
                    b"Opus" => AudioCodec::Opus,
                    other => {
                        return Err(Error::UnsupportedCodec {
                            kind: "audio",
                            name: String::from_utf8_lossy(other).into_owned(),
                        });
                    }
                };
                Ok(AudioTag {
                    codec,
                    sequence_header: first & 0x0f == 0,
                    header_len: 5,
                })
            }
            id => Err(Error::UnsupportedCodec {
                kind: "audio",
                name: legacy_audio_name(id).to_owned(),
            }),
        }
    }

    /// The header of an Enhanced RTMP Opus tag: the OpusHead (`config`) or coded frames.
    pub fn opus_header(config: bool) -> [u8; 5] {
        [0x90 | u8::from(!config), b'O', b'p', b'u', b's']
    }
}

fn legacy_audio_name(id: u8) -> &'static str {
    match id {
        0 | 3 => "PCM",
        1 => "ADPCM",
        2 | 14 => "MP3",
        4..=6 => "Nellymoser",
        7 | 8 => "G.711",
        9 => "Enhanced audio (FourCC)",
        11 => "Speex",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_enhanced_opus_tags_and_refuses_other_fourccs() {
        let head = AudioTag::parse(&AudioTag::opus_header(true)).unwrap();
        assert_eq!(
            (head.codec, head.sequence_header, head.header_len),
            (AudioCodec::Opus, true, 5)
        );
        let frame = AudioTag::parse(&[&AudioTag::opus_header(false)[..], &[0xfc]].concat()).unwrap();
        assert!(!frame.sequence_header);
        assert!(matches!(
            AudioTag::parse(b"\x91fLaC"),
            Err(Error::UnsupportedCodec { kind: "audio", .. })
        ));
        assert_eq!(AudioTag::parse(&[0x91, b'O']), Err(Error::Truncated("audio")));
    }

    #[test]
    fn reads_avc_keyframes_configs_and_negative_composition_times() {
        let config = VideoTag::parse(&[0x17, 0, 0, 0, 0, 1, 0x64]).unwrap();
        assert_eq!(
            (config.codec, config.keyframe, config.packet),
            (VideoCodec::Avc, true, VideoPacket::SequenceHeader)
        );
        let b_frame = VideoTag::parse(&[0x27, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 1]).unwrap();
        assert_eq!(
            (b_frame.keyframe, b_frame.packet, b_frame.composition_time),
            (false, VideoPacket::Frame, -33)
        );
        let p = VideoTag::parse(&[0x27, 1, 0, 0, 67]).unwrap();
        assert_eq!(p.composition_time, 67);
    }

    #[test]
    fn reads_enhanced_hevc_and_refuses_unknown_codecs() {
        let hevc = VideoTag::parse(b"\x91hvc1\x00\x00\x21").unwrap();
        assert_eq!(
            (hevc.codec, hevc.keyframe, hevc.packet, hevc.composition_time),
            (VideoCodec::Hevc, true, VideoPacket::Frame, 33)
        );
        assert_eq!(
            VideoTag::parse(b"\x90av01").unwrap_err(),
            Error::UnsupportedCodec {
                kind: "video",
                name: "av01".into()
            }
        );
        assert!(VideoTag::parse(&[0x12, 0]).is_err());
        assert!(VideoTag::parse(&[]).is_err());
        assert!(VideoTag::parse(&[0x17]).is_err());
        let aac = AudioTag::parse(&[0xaf, 0, 0x12, 0x10]).unwrap();
        assert!(aac.sequence_header);
        assert_eq!(
            AudioTag::parse(&[0x2f]).unwrap_err(),
            Error::UnsupportedCodec {
                kind: "audio",
                name: "MP3".into()
            }
        );
    }
}
