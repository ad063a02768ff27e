//! H.264 from Annex B into FLV: access units as an RTP depacketizer hands them over
//! (NAL units behind start codes, parameter sets in band) become the tag bodies an RTMP
//! encoder would have sent: an AVCDecoderConfigurationRecord whenever the parameter sets
//! change, then length-prefixed frames.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;

/// The largest parameter set taken (a real SPS or PPS is tens of bytes, a few hundred with
/// scaling lists); the configuration record holds it behind a 16-bit length, and a WebRTC
/// viewer gets the sets together in one RTP packet.
const MAX_PARAMETER_SET: usize = 1024;

/// Whether a NAL unit is one a decoder may be given: `forbidden_zero_bit` clear (a sender
/// sets it on a unit it knows is damaged, RFC 6184 section 5.3) and a type H.264 defines
/// (1 to 23). Types 0 and 24 to 31 are unspecified; RTP uses 24 to 29 for its own
/// aggregation and fragmentation packets, so passing one on would garble a WebRTC viewer's
/// stream.
fn is_decodable_nal(nal: &[u8]) -> bool {
    nal.first()
        .is_some_and(|h| h & 0x80 == 0 && (1..=23).contains(&(h & 0x1f)))
}

/// The NAL units of an Annex B byte stream, without their start codes or trailing zeros.
pub fn nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = stream;
    std::iter::from_fn(move || {
        loop {
            let start = find_start_code(rest)?;
            let body = &rest[start..];
            let end = find_start_code_at(body).unwrap_or(body.len());
            let mut nal = &body[..end];
            rest = &body[end..];
            while let [head @ .., 0] = nal {
                nal = head;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    })
}

/// Where the first NAL unit begins (after `00 00 01`); `None` without a start code.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1]).map(|i| i + 3)
}

/// Where the next start code (`00 00 01`, with a leading zero or not) begins.
fn find_start_code_at(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1])
}

/// The FLV tag bodies one access unit makes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AvcTags {
    /// A new decoder configuration, sent before the frame.
    pub config: Option<Bytes>,
    /// The frame, and whether it is a keyframe (an IDR picture). `None` until a
    /// configuration is known (frames before it cannot be decoded) or when the unit
    /// held only parameter sets.
    pub frame: Option<(Bytes, bool)>,
}

/// Tags the access units of one H.264 stream.
#[derive(Debug, Default)]
pub struct AvcTagger {
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// The parameter sets of the configuration sent last.
    sent: Option<(Bytes, Bytes)>,
}

impl AvcTagger {
    /// Tags one access unit (without B-frames, as WebRTC sends: decode order is
    /// presentation order, so the composition time is 0).
    pub fn push(&mut self, unit: &[u8]) -> Result<AvcTags, Error> {
        let mut keyframe = false;
        let mut slices = Vec::new();
        for nal in nal_units(unit).filter(|nal| is_decodable_nal(nal)) {
            if matches!(nal[0] & 0x1f, NAL_SPS | NAL_PPS) && nal.len() > MAX_PARAMETER_SET {
                return Err(Error::Malformed("parameter set larger than 1024 bytes"));
            }
            match nal[0] & 0x1f {
                // Parameter sets also stay in band: a WebRTC encoder changes resolution
                // as its bandwidth estimate moves, and a decoder that was configured
                // with the first set follows the new one from there.
                NAL_SPS => {
                    if nal.len() < 4 {
                        return Err(Error::Malformed("sequence parameter set"));
                    }
                    self.sps = Some(Bytes::copy_from_slice(nal));
                    slices.push(nal);
                }
                NAL_PPS => {
                    self.pps = Some(Bytes::copy_from_slice(nal));
                    slices.push(nal);
                }
                // Delimiters and padding carry no picture (FLV frames are access units
                // already, and an RTP packetizer drops filler anyway).
                NAL_AUD | NAL_FILLER => {}
                kind => {
                    keyframe |= kind == NAL_IDR;
                    slices.push(nal);
                }
            }
        }
        let mut tags = AvcTags::default();
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps)
            && self.sent.as_ref() != Some(&(sps.clone(), pps.clone()))
        {
            tags.config = Some(config_tag(sps, pps));
            self.sent = Some((sps.clone(), pps.clone()));
        }
        let pictures = slices.iter().any(|n| !matches!(n[0] & 0x1f, NAL_SPS | NAL_PPS));
        if self.sent.is_some() && pictures {
            let size: usize = slices.iter().map(|n| n.len() + 4).sum();
            let mut body = BytesMut::with_capacity(5 + size);
            body.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
            for nal in slices {
                body.put_u32(nal.len() as u32);
                body.put_slice(nal);
            }
            tags.frame = Some((body.freeze(), keyframe));
        }
        Ok(tags)
    }
}

/// An FLV AVC frame's NAL units (length-prefixed, `length_size` bytes each) in Annex B,
/// after the NAL units of `before` (the parameter sets, which a WebRTC decoder needs in
/// band before a keyframe). Units no decoder may be given (damaged, or of a type RTP
/// would read as its own) are left out.
pub fn to_annexb(frame: &[u8], length_size: u8, before: &[Bytes]) -> Result<Vec<u8>, Error> {
    const WHAT: &str = "length-prefixed NAL units";
    let size = usize::from(length_size);
    if !matches!(size, 1 | 2 | 4) {
        return Err(Error::Malformed(WHAT));
    }
    let mut out = Vec::with_capacity(frame.len() + before.iter().map(|n| n.len() + 4).sum::<usize>());
    for nal in before {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    let mut rest = frame;
    while !rest.is_empty() {
        let len_bytes = rest.get(..size).ok_or(Error::Malformed(WHAT))?;
        let len = len_bytes.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        let nal = rest.get(size..size + len).ok_or(Error::Malformed(WHAT))?;
        if is_decodable_nal(nal) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        rest = &rest[size + len..];
    }
    Ok(out)
}

/// A video sequence header: the 5-byte tag header and an AVCDecoderConfigurationRecord
/// with one SPS and one PPS and 4-byte NAL lengths.
fn config_tag(sps: &[u8], pps: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + sps.len() + pps.len());
    b.put_slice(&[0x17, 0, 0, 0, 0]);
    b.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    b.put_u16(sps.len() as u16);
    b.put_slice(sps);
    b.put_u8(1);
    b.put_u16(pps.len() as u16);
    b.put_slice(pps);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AvcConfig, VideoPacket, VideoTag};

    /// A 320x240 High-profile SPS and its PPS, as x264 wrote them.
    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
        0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect()
    }

    #[test]
    fn a_keyframe_brings_its_configuration_once() {
        let mut tagger = AvcTagger::default();
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x21];
        let first = tagger.push(&annexb(&[&[0x09, 0xf0], SPS, PPS, idr])).unwrap();
        let config = first.config.expect("a configuration");
        assert_eq!(VideoTag::parse(&config).unwrap().packet, VideoPacket::SequenceHeader);
        let record = AvcConfig::parse(&config.slice(5..)).unwrap();
        assert_eq!((record.profile, record.level, record.nal_length_size), (0x64, 0x0d, 4));
        assert_eq!((&record.sps[0][..], &record.pps[0][..]), (SPS, PPS));
        let (frame, key) = first.frame.expect("a frame");
        assert!(key);
        let sps_len = [0, 0, 0, SPS.len() as u8];
        let pps_len = [0, 0, 0, PPS.len() as u8];
        let expected = [
            &[0x17, 1, 0, 0, 0][..],
            &sps_len,
            SPS,
            &pps_len,
            PPS,
            &[0, 0, 0, 4],
            idr,
        ]
        .concat();
        assert_eq!(
            &frame[..],
            &expected[..],
            "parameter sets stay in band, the delimiter goes"
        );
        // The same parameter sets again: no new configuration.
        let again = tagger.push(&annexb(&[SPS, PPS, idr])).unwrap();
        assert!(again.config.is_none() && again.frame.is_some());
        // A P-frame with a three-byte start code and trailing zeros.
        let p = tagger.push(&[0, 0, 1, 0x41, 0x9a, 0x02, 0, 0]).unwrap();
        assert_eq!(
            p.frame,
            Some((
                Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x9a, 0x02]),
                false
            ))
        );
    }

    #[test]
    fn frames_go_back_to_annex_b_with_their_parameter_sets() {
        let mut tagger = AvcTagger::default();
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x21];
        let unit = annexb(&[SPS, PPS, idr]);
        let (frame, _) = tagger.push(&unit).unwrap().frame.unwrap();
        assert_eq!(to_annexb(&frame[5..], 4, &[]).unwrap(), unit, "a round trip");
        let sets = [Bytes::from_static(SPS), Bytes::from_static(PPS)];
        let p: &[u8] = &[0, 0, 0, 2, 0x41, 0x9a];
        assert_eq!(to_annexb(p, 4, &sets).unwrap(), annexb(&[SPS, PPS, &[0x41, 0x9a]]));
        assert_eq!(
            to_annexb(&[0, 2, 0x41, 0x9a], 2, &[]).unwrap(),
            [0, 0, 0, 1, 0x41, 0x9a]
        );
        assert!(to_annexb(&[0, 0, 0, 9, 0x41], 4, &[]).is_err(), "a length past the end");
        assert!(to_annexb(&[0, 0], 4, &[]).is_err(), "a cut length");
        assert!(to_annexb(&[], 3, &[]).is_err());
    }

    #[test]
    fn damaged_and_unspecified_nal_units_never_reach_a_decoder() {
        let slice: &[u8] = &[0x65, 0x88, 0x84];
        // A unit marked damaged (forbidden_zero_bit), type 0, and type 28 (which RTP reads
        // as a fragment), around a good slice.
        let unit = annexb(&[SPS, PPS, &[0xe5, 0x88], &[0x00, 0x11], &[0x7c, 0x85, 0x01], slice]);
        let mut tagger = AvcTagger::default();
        let (frame, keyframe) = tagger.push(&unit).unwrap().frame.unwrap();
        assert!(keyframe);
        let back = to_annexb(&frame[5..], 4, &[]).unwrap();
        assert_eq!(nal_units(&back).collect::<Vec<_>>(), [SPS, PPS, slice]);
        // From FLV (an RTMP publisher's frame) to a WebRTC viewer, the same.
        let flv_frame = [&[0, 0, 0, 2, 0x00, 0x11][..], &[0, 0, 0, 3], slice].concat();
        assert_eq!(to_annexb(&flv_frame, 4, &[]).unwrap(), annexb(&[slice]));
        // A parameter set too large to travel is refused.
        let huge = [&[0x67, 0x42, 0xc0, 0x15][..], &[0x11; 2000]].concat();
        assert!(AvcTagger::default().push(&annexb(&[&huge, PPS, slice])).is_err());
    }

    #[test]
    fn frames_before_a_configuration_are_not_tagged() {
        let mut tagger = AvcTagger::default();
        assert_eq!(tagger.push(&annexb(&[&[0x41, 0x9a]])).unwrap(), AvcTags::default());
        assert_eq!(tagger.push(&[1, 2, 3]).unwrap(), AvcTags::default(), "no start code");
        assert!(tagger.push(&annexb(&[&[0x67, 0x64]])).is_err(), "an SPS too short");
    }
}
