//! Carrying messages in the video bitstream: SEI NAL units (H.264 type 6, HEVC prefix SEI
//! type 39) with one `user_data_unregistered` message (payload type 5) under [`UUID`].
//! Decoders skip SEI they do not know, so a signed stream plays everywhere; a remuxing
//! server copies NAL units, so the messages reach every viewer.
//!
//! Samples are as FLV and CMAF carry them: NAL units each behind a big-endian length of
//! `length_size` bytes (1, 2 or 4).

use crate::UUID;

/// The video codec, which decides the NAL header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Avc,
    Hevc,
}

const USER_DATA_UNREGISTERED: u32 = 5;
/// The largest message carried: far above a record (198 bytes) or certificate.
pub const MAX_PAYLOAD: usize = 4096;

/// Inserts emulation prevention bytes: no `00 00 0x` (x ≤ 3) may appear in a NAL unit.
fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 4);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// SEI's variable-length numbers: 255 per `0xFF` byte, then the rest.
fn push_ff_coded(out: &mut Vec<u8>, mut value: usize) {
    while value >= 255 {
        out.push(0xff);
        value -= 255;
    }
    out.push(value as u8);
}

fn read_ff_coded(data: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    loop {
        let b = *data.get(*at)?;
        *at += 1;
        value = value.checked_add(usize::from(b))?;
        if b != 0xff {
            return Some(value);
        }
    }
}

fn header_len(codec: Codec) -> usize {
    match codec {
        Codec::Avc => 1,
        Codec::Hevc => 2,
    }
}

fn is_sei(nal: &[u8], codec: Codec) -> bool {
    match codec {
        Codec::Avc => nal.first().is_some_and(|h| h & 0x1f == 6),
        Codec::Hevc => nal.first().is_some_and(|h| (h >> 1) & 0x3f == 39),
    }
}

/// A whole SEI NAL unit (header and escaped payload, no length prefix) carrying `payload`.
pub fn nal(codec: Codec, payload: &[u8]) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(payload.len() + 24);
    push_ff_coded(&mut rbsp, USER_DATA_UNREGISTERED as usize);
    push_ff_coded(&mut rbsp, UUID.len() + payload.len());
    rbsp.extend_from_slice(&UUID);
    rbsp.extend_from_slice(payload);
    rbsp.push(0x80); // rbsp_trailing_bits
    let mut out = match codec {
        Codec::Avc => vec![0x06],
        // nal_unit_type 39, layer 0, temporal id 1.
        Codec::Hevc => vec![39 << 1, 0x01],
    };
    out.extend_from_slice(&escape(&rbsp));
    out
}

/// The payloads of livescope's messages in one SEI NAL unit; empty for other NAL units.
/// `foreign` is set when the unit also carries messages of others.
fn messages(nal: &[u8], codec: Codec, foreign: &mut bool) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    if !is_sei(nal, codec) {
        return found;
    }
    let rbsp = flv::unescape(nal.get(header_len(codec)..).unwrap_or_default());
    let mut at = 0;
    // more_rbsp_data: anything left but the trailing bits.
    while at < rbsp.len() && rbsp[at..] != [0x80] {
        let (Some(kind), Some(size)) = (read_ff_coded(&rbsp, &mut at), read_ff_coded(&rbsp, &mut at)) else {
            *foreign = true;
            break;
        };
        let Some(body) = at.checked_add(size).and_then(|end| rbsp.get(at..end)) else {
            *foreign = true;
            break;
        };
        at += size;
        match body.strip_prefix(&UUID[..]) {
            Some(payload) if kind == USER_DATA_UNREGISTERED as usize && payload.len() <= MAX_PAYLOAD => {
                found.push(payload.to_vec())
            }
            _ => *foreign = true,
        }
    }
    found
}

/// The NAL units of a length-prefixed sample; stops at the first that does not fit.
pub fn nal_units(sample: &[u8], length_size: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = if matches!(length_size, 1 | 2 | 4) {
        sample
    } else {
        &[][..]
    };
    std::iter::from_fn(move || {
        let (len, tail) = (rest.get(..length_size)?, rest.get(length_size..)?);
        let len = len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        let unit = tail.get(..len)?;
        rest = &tail[len..];
        Some(unit)
    })
}

/// The payloads of livescope's messages in a sample.
pub fn find(sample: &[u8], length_size: usize, codec: Codec) -> Vec<Vec<u8>> {
    let mut foreign = false;
    nal_units(sample, length_size)
        .flat_map(|unit| messages(unit, codec, &mut foreign))
        .collect()
}

/// Whether a NAL unit is an SEI carrying only livescope's messages: those are left out of
/// what records hash, since they are added after the frame is encoded.
pub fn is_ours(unit: &[u8], codec: Codec) -> bool {
    let mut foreign = false;
    !messages(unit, codec, &mut foreign).is_empty() && !foreign
}

/// Puts `units` (whole NAL units) in front of a sample's own, behind `length_size`-byte
/// lengths (SEI comes before the slices of an access unit).
pub fn prepend(sample: &[u8], length_size: usize, units: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sample.len() + units.iter().map(|u| u.len() + 4).sum::<usize>());
    for unit in units {
        let len = unit.len().to_be_bytes();
        out.extend_from_slice(&len[len.len() - length_size..]);
        out.extend_from_slice(unit);
    }
    out.extend_from_slice(sample);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(units: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for u in units {
            out.extend_from_slice(&(u.len() as u32).to_be_bytes());
            out.extend_from_slice(u);
        }
        out
    }

    #[test]
    fn messages_survive_the_bitstream_whatever_their_bytes() {
        // Zeros that need emulation prevention, and a payload over 255 bytes.
        let payload: Vec<u8> = (0..600u32).map(|i| if i % 7 < 3 { 0 } else { (i % 5) as u8 }).collect();
        for codec in [Codec::Avc, Codec::Hevc] {
            let unit = nal(codec, &payload);
            assert!(!unit.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2), "escaped");
            let slice: &[u8] = if codec == Codec::Avc {
                &[0x65, 0x88, 0x84]
            } else {
                &[0x26, 0x01, 0xaf]
            };
            let s = prepend(&sample(&[slice]), 4, std::slice::from_ref(&unit));
            assert_eq!(find(&s, 4, codec), vec![payload.clone()]);
            let units: Vec<&[u8]> = nal_units(&s, 4).collect();
            assert_eq!(units.len(), 2);
            assert!(is_ours(units[0], codec) && !is_ours(units[1], codec));
        }
    }

    #[test]
    fn other_sei_is_not_ours_and_is_kept() {
        // A picture timing SEI (type 1), as x264 writes, and one mixing ours with another.
        let picture_timing: &[u8] = &[0x06, 0x01, 0x01, 0x00, 0x80];
        assert!(!is_ours(picture_timing, Codec::Avc));
        let mut mixed = vec![0x06, 0x01, 0x01, 0x00];
        mixed.extend_from_slice(&nal(Codec::Avc, b"record")[1..]);
        assert!(!is_ours(&mixed, Codec::Avc), "it also carries another's message");
        assert_eq!(find(&sample(&[&mixed]), 4, Codec::Avc), vec![b"record".to_vec()]);
    }

    #[test]
    fn broken_samples_yield_what_fits_and_never_panic() {
        let s = prepend(&sample(&[&[0x65, 1, 2]]), 4, &[nal(Codec::Avc, b"x")]);
        for len in 0..s.len() {
            let _ = find(&s[..len], 4, Codec::Avc);
        }
        assert!(find(&s, 3, Codec::Avc).is_empty(), "3-byte lengths do not exist");
        let sizes_overflow: &[u8] = &[0x06, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10];
        assert!(!is_ours(sizes_overflow, Codec::Avc));
    }
}
