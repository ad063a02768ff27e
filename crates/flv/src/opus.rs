//! Opus's identification header, OpusHead (RFC 7845 5.1): what an Enhanced RTMP Opus
//! sequence start carries, and what an MP4 `dOps` box is made from.

use crate::Error;

/// The fields of an OpusHead that a container needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    /// Samples (at 48 kHz) the decoder discards at the start.
    pub pre_skip: u16,
    /// The rate the encoder was fed: informative only, Opus always decodes at 48 kHz.
    pub input_sample_rate: u32,
    /// In Q7.8 dB.
    pub output_gain: i16,
    /// 0: mono or stereo without a mapping table, the only family WebRTC sends.
    pub mapping_family: u8,
}

const MAGIC: &[u8; 8] = b"OpusHead";

impl OpusHead {
    /// A WebRTC Opus stream's header: stereo is the SDP's `stereo=1`, otherwise mono (RFC
    /// 7587 lets the sender mix down); 312 samples of pre-skip is libopus's at 48 kHz.
    pub fn webrtc(channels: u8) -> OpusHead {
        OpusHead {
            channels: channels.clamp(1, 2),
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
            mapping_family: 0,
        }
    }

    /// Parses the header (the tag body after the 5-byte audio header).
    pub fn parse(b: &[u8]) -> Result<OpusHead, Error> {
        const WHAT: &str = "OpusHead";
        if b.len() < 19 || &b[..8] != MAGIC || b[8] >> 4 != 0 {
            return Err(Error::Malformed(WHAT));
        }
        let head = OpusHead {
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_sample_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
            mapping_family: b[18],
        };
        // Family 0 is mono or stereo; the others need a table this server does not map.
        if head.channels == 0 || head.mapping_family != 0 || head.channels > 2 {
            return Err(Error::Malformed(WHAT));
        }
        Ok(head)
    }

    /// The header's 19 bytes (family 0).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(19);
        b.extend_from_slice(MAGIC);
        b.push(1);
        b.push(self.channels);
        b.extend_from_slice(&self.pre_skip.to_le_bytes());
        b.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        b.extend_from_slice(&self.output_gain.to_le_bytes());
        b.push(self.mapping_family);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_head_parses_back_and_garbage_does_not() {
        let head = OpusHead::webrtc(2);
        assert_eq!(OpusHead::parse(&head.encode()), Ok(head));
        // What ffmpeg's libopus wrapper writes for stereo 48 kHz.
        let ffmpeg = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let parsed = OpusHead::parse(ffmpeg).unwrap();
        assert_eq!(
            (parsed.channels, parsed.pre_skip, parsed.input_sample_rate),
            (2, 312, 48_000)
        );
        assert!(OpusHead::parse(b"OpusHead\x01").is_err());
        assert!(OpusHead::parse(b"OpusTags\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00").is_err());
        let mut surround = ffmpeg.to_vec();
        surround[18] = 1;
        assert!(OpusHead::parse(&surround).is_err(), "a mapping table is not read");
    }
}
