//! FLV for livescope: the container (Adobe FLV specification v10.1, annex E) and the
//! audio/video tag headers that say codec, keyframe and sequence header, including
//! Enhanced RTMP's extended headers (FourCC codecs such as HEVC and Opus); and H.264 from
//! Annex B (as WebRTC carries it) into FLV tags.
//!
//! No I/O: the [`Demuxer`] takes bytes as they arrive and hands out tags whose payloads
//! are slices of the received buffer.

mod annexb;
mod avc;
mod hevc;
mod media;
mod opus;
mod tag;

pub use annexb::{AvcTagger, AvcTags, nal_units, to_annexb};
pub use avc::{AudioSpecificConfig, AvcConfig};
pub use hevc::{HevcConfig, unescape};
pub use media::{AudioCodec, AudioTag, VideoCodec, VideoPacket, VideoTag};
pub use opus::OpusHead;
pub use tag::{Demuxer, FILE_HEADER_LEN, Tag, TagKind, encode_header, encode_tag};

/// Why bytes are not valid FLV. One error ends one stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream does not start with the `FLV` signature.
    #[error("not an FLV stream (bad signature)")]
    BadSignature,
    /// A tag type other than audio (8), video (9) or script data (18).
    #[error("unknown tag type {tag_type} at byte {offset}")]
    UnknownTagType { tag_type: u8, offset: u64 },
    /// A tag larger than the demuxer's limit.
    #[error("tag of {size} bytes exceeds the limit of {limit} at byte {offset}")]
    TagTooLarge { size: u32, limit: u32, offset: u64 },
    /// A tag body too short for its header.
    #[error("{0} tag is truncated")]
    Truncated(&'static str),
    /// A codec this server does not relay.
    #[error("unsupported {kind} codec {name}")]
    UnsupportedCodec { kind: &'static str, name: String },
    /// A codec configuration record that does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
}
