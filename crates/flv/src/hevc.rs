//! HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1), what an Enhanced RTMP `hvc1`
//! sequence start carries: read far enough to name the stream for HLS (the RFC 6381 codec
//! string of 14496-15 Annex E), to size the picture from its SPS (ITU-T H.265 7.3.2.2) and
//! to reject garbage before viewers get it.

use bytes::Bytes;

use crate::Error;

const WHAT: &str = "HEVCDecoderConfigurationRecord";
/// The fixed part of the record, up to and including numOfArrays.
const FIXED_LEN: usize = 23;
/// NAL unit types (H.265 Table 7-1) of the parameter sets a decoder needs.
const VPS_NUT: u8 = 32;
const SPS_NUT: u8 = 33;
const PPS_NUT: u8 = 34;

/// An H.265 decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// general_profile_space: 0 for every profile defined so far.
    pub profile_space: u8,
    /// general_tier_flag: the High tier rather than the Main tier.
    pub high_tier: bool,
    /// general_profile_idc: 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions.
    pub profile_idc: u8,
    /// general_profile_compatibility_flags as coded: flag 0 is the most significant bit.
    pub compatibility_flags: u32,
    /// general_constraint_indicator_flags, starting with the byte that holds
    /// general_progressive_source_flag.
    pub constraint_flags: [u8; 6],
    /// general_level_idc: 30 times the level (93 is level 3.1).
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl HevcConfig {
    /// Parses the record (the tag body after the video header's `header_len` bytes).
    pub fn parse(record: &Bytes) -> Result<HevcConfig, Error> {
        let r = &record[..];
        if r.len() < FIXED_LEN || r[0] != 1 {
            return Err(Error::Malformed(WHAT));
        }
        // lengthSizeMinusOne = 2 would be 3-byte prefixes, which 14496-15 does not allow.
        let nal_length_size = (r[21] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(Error::Malformed(WHAT));
        }
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        let mut pos = FIXED_LEN;
        let u16_at = |pos: usize| {
            r.get(pos..pos + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        };
        // Every NAL unit takes at least its 2-byte length, so the counts (up to 255 arrays of
        // up to 65535 units) cannot make this loop outlast the record.
        for _ in 0..r[22] {
            let nal_type = r.get(pos).ok_or(Error::Malformed(WHAT))? & 0x3f;
            let count = u16_at(pos + 1).ok_or(Error::Malformed(WHAT))?;
            pos += 3;
            for _ in 0..count {
                let len = u16_at(pos).ok_or(Error::Malformed(WHAT))?;
                pos += 2;
                if pos + len > r.len() {
                    return Err(Error::Malformed(WHAT));
                }
                let nal = record.slice(pos..pos + len);
                pos += len;
                let sets = match nal_type {
                    VPS_NUT => &mut vps,
                    SPS_NUT => &mut sps,
                    PPS_NUT => &mut pps,
                    // SEI and anything else: relayed in hvcC as they are, not needed here.
                    _ => continue,
                };
                // A parameter set whose own header says otherwise (or that has no header) is
                // a broken record: a player would look for it under one type or the other.
                if nal.len() < 2 || nal[0] & 0x80 != 0 || nal[0] >> 1 != nal_type {
                    return Err(Error::Malformed(WHAT));
                }
                sets.push(nal);
            }
        }
        // An `hvc1` track carries its parameter sets only in the sample entry: without all
        // three, nothing could decode it.
        if vps.is_empty() || sps.is_empty() || pps.is_empty() {
            return Err(Error::Malformed(WHAT));
        }
        Ok(HevcConfig {
            profile_space: r[1] >> 6,
            high_tier: r[1] & 0x20 != 0,
            profile_idc: r[1] & 0x1f,
            compatibility_flags: u32::from_be_bytes([r[2], r[3], r[4], r[5]]),
            constraint_flags: [r[6], r[7], r[8], r[9], r[10], r[11]],
            level_idc: r[12],
            nal_length_size,
            vps,
            sps,
            pps,
        })
    }

    /// The RFC 6381 codec string of ISO/IEC 14496-15 Annex E, as Apple writes it: for
    /// example `hvc1.1.6.L93.B0` (Main, compatible with Main and Main 10, Main tier level
    /// 3.1, progressive and frame-only).
    pub fn codec_string(&self) -> String {
        use std::fmt::Write;
        let mut s = String::from("hvc1.");
        // Profile space 0 has no letter; 1-3 are A-C.
        match self.profile_space & 0x03 {
            0 => {}
            space => s.push(char::from(b'A' + space - 1)),
        }
        // The compatibility flags in reverse bit order (flag 31 first), so that the usual
        // ones (flags 1 and 2 for Main) come out short; hex without leading zeros.
        let tier = if self.high_tier { 'H' } else { 'L' };
        let _ = write!(
            s,
            "{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        // Each constraint byte in hex, up to the last nonzero one.
        let used = self
            .constraint_flags
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        for byte in &self.constraint_flags[..used] {
            let _ = write!(s, ".{byte:X}");
        }
        s
    }

    /// Width and height in pixels, cropped to the conformance window, from the first SPS;
    /// `None` if it does not parse or the picture does not fit 16 bits.
    pub fn dimensions(&self) -> Option<(u16, u16)> {
        sps_dimensions(self.sps.first()?)
    }
}

/// The picture size an SPS NAL unit (with its 2-byte header) declares, cropped.
fn sps_dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    if nal.get(..2)?[0] >> 1 & 0x3f != SPS_NUT {
        return None;
    }
    let rbsp = unescape(&nal[2..]);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue()?; // sps_seq_parameter_set_id
    // SubWidthC and SubHeightC (H.265 Table 6-1): how many luma samples a conformance
    // window offset counts for.
    let (sub_width, sub_height) = match r.ue()? {
        0 => (1, 1),
        1 => (2, 2),
        2 => (2, 1),
        3 => {
            // separate_colour_plane_flag: with or without it, 4:4:4 crops in luma samples.
            r.skip(1)?;
            (1, 1)
        }
        _ => return None,
    };
    let mut width = u64::from(r.ue()?);
    let mut height = u64::from(r.ue()?);
    if r.bit()? {
        // conf_win_left/right/top/bottom_offset; encoders pad to a multiple of the minimum
        // coding block (1080 lines coded as 1088) and crop back here.
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.checked_sub(sub_width * (u64::from(left) + u64::from(right)))?;
        height = height.checked_sub(sub_height * (u64::from(top) + u64::from(bottom)))?;
    }
    if width == 0 || height == 0 {
        return None;
    }
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// Skips profile_tier_level(1, maxNumSubLayersMinus1) (H.265 7.3.3).
fn skip_profile_tier_level(r: &mut BitReader<'_>, max_sub_layers_minus1: usize) -> Option<()> {
    // Profile space, tier, profile idc, 32 compatibility flags, 48 bits of constraint flags
    // (88 bits), then general_level_idc.
    r.skip(88 + 8)?;
    // sps_max_sub_layers_minus1 is at most 6; 7 is not a valid SPS.
    if max_sub_layers_minus1 > 6 {
        return None;
    }
    let mut present = [(false, false); 6];
    for layer in &mut present[..max_sub_layers_minus1] {
        *layer = (r.bit()?, r.bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        // reserved_zero_2bits up to eight sub-layers.
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for &(profile_present, level_present) in &present[..max_sub_layers_minus1] {
        if profile_present {
            r.skip(88)?;
        }
        if level_present {
            r.skip(8)?; // sub_layer_level_idc
        }
    }
    Some(())
}

/// The RBSP of a NAL unit payload (H.264 or HEVC): each emulation prevention byte (the 3
/// of `00 00 03`) removed.
pub fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits most significant first; every read is `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    /// In bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = byte >> (7 - self.pos % 8) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// Up to 32 bits as an unsigned number.
    fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut value = 0u32;
        for _ in 0..n {
            value = value << 1 | u32::from(self.bit()?);
        }
        Some(value)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// An Exp-Golomb ue(v) (H.265 9.2); `None` for codes over 32 bits, which no valid
    /// syntax element has.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        // At most 2^31 - 1 + 2^31 - 1.
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What libx265 3.5 wrote (through ffmpeg 5.1, `-tag:v hvc1 -x265-params info=0`) for
    // the testsrc pattern; ffprobe's profile, level and size are in each comment.

    /// 320x240 yuv420p: Main, level 60 (2.0).
    const MAIN_320X240: &str = "0101600000009000000000003cf000fcfdf8f800000f03a00001001840010c01ffff01600000030090000003000003003c959809a10001002a42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003c10a2000100074401c172b46240";
    /// 1920x1080 with `min-cu-size=16`: coded as 1920x1088 with a conformance window
    /// (conf_win_bottom_offset 4, in chroma rows). Main, level 120 (4.0).
    const MAIN_1080_CODED_1088: &str = "01016000000090000000000078f000fcfdf8f800000f03a00001001840010c01ffff016000000300900000030000030078959809a10001002b420101016000000300900000030000030078a003c0801107cb965664e4caf0168080000003008000000f04a2000100074401c172b46240";
    /// 640x360 yuv420p10le: Main 10, level 63 (2.1).
    const MAIN10_640X360: &str = "0102200000009000000000003ff000fcfdfafa00000f03a00001001840010c01ffff02200000030090000003000003003f959809a10001002b42010102200000030090000003000003003fa005020169365959a4932bc05a020000030002000003003c10a2000100074401c172b46240";
    /// 426x240 with `temporal-layers=1`: sps_max_sub_layers_minus1 = 1, so the SPS has the
    /// sub-layer part of profile_tier_level; coded 432 wide, cropped by 3 chroma columns.
    const TWO_SUB_LAYERS_426X240: &str = "0101600000009000000000003cf000fcfdf8f800001303a00001001c40010c02ffff01600000030090000003000003003c00009594aca048a10001002f42010201600000030090000003000003003c0000a00d880f1c9e59594acb24995e02d010000003001000000301e080a2000100074401c172b46240";
    /// 322x242 yuv444p: range extensions, coded 328x248, cropped 6 luma samples each way.
    const REXT_444_322X242: &str = "0104080000009e08000000003cf000fcfff8f800000f03a00001001740010c01ffff0408000003009e0800000300003c959809a10001002b4201010408000003009e0800000300003c90014901f39e7cb2b349265780b4040000030004000003007820a2000100084401c172860c4624";
    /// 322x242 yuv422p: coded 328x248, cropped by 3 chroma columns (6 luma) and 6 rows.
    const REXT_422_322X242: &str = "0104080000009d08000000003cf000fcfef8f800000f03a00001001740010c01ffff0408000003009d0800000300003c959809a10001002a4201010408000003009d0800000300003cb00a480f9c93e5959a4932bc05a020000003002000000303c1a2000100074401c172b46240";

    fn hex(s: &str) -> Bytes {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn parses_what_x265_writes() {
        let c = HevcConfig::parse(&hex(MAIN_320X240)).unwrap();
        assert_eq!(
            (c.profile_space, c.high_tier, c.profile_idc, c.level_idc),
            (0, false, 1, 60)
        );
        assert_eq!(c.compatibility_flags, 0x6000_0000);
        assert_eq!(c.constraint_flags, [0x90, 0, 0, 0, 0, 0]);
        assert_eq!(c.nal_length_size, 4);
        assert_eq!((c.vps.len(), c.sps.len(), c.pps.len()), (1, 1, 1));
        assert_eq!((c.vps[0].len(), c.sps[0].len(), c.pps[0].len()), (24, 42, 7));
        assert_eq!(c.sps[0][..2], [0x42, 0x01]);
    }

    #[test]
    fn codec_strings_follow_annex_e() {
        // Main is compatible with Main and Main 10 (flags 1 and 2: reversed, 6); x265 sets
        // progressive_source and frame_only (0x90) and no other constraint byte.
        for (record, codec) in [
            (MAIN_320X240, "hvc1.1.6.L60.90"),
            (MAIN_1080_CODED_1088, "hvc1.1.6.L120.90"),
            (MAIN10_640X360, "hvc1.2.4.L63.90"),
            (TWO_SUB_LAYERS_426X240, "hvc1.1.6.L60.90"),
            // Range extensions set constraint flags in the second byte too.
            (REXT_444_322X242, "hvc1.4.10.L60.9E.8"),
            (REXT_422_322X242, "hvc1.4.10.L60.9D.8"),
        ] {
            assert_eq!(HevcConfig::parse(&hex(record)).unwrap().codec_string(), codec);
        }
        let mut c = HevcConfig::parse(&hex(MAIN_320X240)).unwrap();
        // Apple's example: progressive, non-packed and frame-only, level 3.1.
        c.constraint_flags[0] = 0xb0;
        c.level_idc = 93;
        assert_eq!(c.codec_string(), "hvc1.1.6.L93.B0");
        c.profile_space = 1;
        c.high_tier = true;
        assert_eq!(c.codec_string(), "hvc1.A1.6.H93.B0");
        // Zero bytes inside the constraints stay; trailing ones, all of them here, go.
        c.constraint_flags = [0, 0, 0x01, 0, 0, 0];
        assert_eq!(c.codec_string(), "hvc1.A1.6.H93.0.0.1");
        c.constraint_flags = [0; 6];
        c.compatibility_flags = 0xffff_fffe;
        assert_eq!(c.codec_string(), "hvc1.A1.7FFFFFFF.H93");
    }

    #[test]
    fn reads_dimensions_through_the_conformance_window() {
        for (record, dimensions) in [
            (MAIN_320X240, (320, 240)),
            (MAIN_1080_CODED_1088, (1920, 1080)),
            (MAIN10_640X360, (640, 360)),
            (TWO_SUB_LAYERS_426X240, (426, 240)),
            (REXT_444_322X242, (322, 242)),
            (REXT_422_322X242, (322, 242)),
        ] {
            let c = HevcConfig::parse(&hex(record)).unwrap();
            assert_eq!(c.dimensions(), Some(dimensions), "{record}");
        }
    }

    #[test]
    fn a_short_or_odd_sps_has_no_dimensions() {
        let mut c = HevcConfig::parse(&hex(MAIN_1080_CODED_1088)).unwrap();
        let sps = c.sps[0].clone();
        // Cut anywhere before the end of the conformance window, the SPS has no size; after
        // it (the rest of the SPS is not read), the right one.
        let sizes: Vec<_> = (0..sps.len())
            .map(|cut| {
                c.sps = vec![sps.slice(..cut)];
                c.dimensions()
            })
            .collect();
        let first = sizes.iter().position(Option::is_some).unwrap();
        assert!(first > 20, "{first}");
        assert!(sizes[..first].iter().all(Option::is_none));
        assert!(sizes[first..].iter().all(|&d| d == Some((1920, 1080))));
        // A PPS where the SPS should be.
        c.sps = vec![c.pps[0].clone()];
        assert_eq!(c.dimensions(), None);
        c.sps = Vec::new();
        assert_eq!(c.dimensions(), None);
        // A window wider than the picture.
        assert_eq!(sps_dimensions(&window_sps(8, 8, 5)), None);
        assert_eq!(sps_dimensions(&window_sps(8, 8, 3)), Some((2, 8)));
    }

    /// An SPS for 4:2:0 `width`x`height` with a conformance window of `right` chroma columns.
    fn window_sps(width: u32, height: u32, right: u32) -> Vec<u8> {
        let mut bits = String::from("0000000"); // vps id, max_sub_layers_minus1 0
        bits.push('1'); // temporal_id_nesting
        bits.push_str(&"0".repeat(96)); // general profile_tier_level
        let ue = |v: u32| {
            let code = format!("{:b}", v + 1);
            "0".repeat(code.len() - 1) + &code
        };
        for v in [0, 1, width, height] {
            bits.push_str(&ue(v));
        }
        bits.push('1');
        for v in [0, right, 0, 0] {
            bits.push_str(&ue(v));
        }
        bits.push('1');
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let mut nal = vec![0x42, 0x01];
        nal.extend(
            (0..bits.len())
                .step_by(8)
                .map(|i| u8::from_str_radix(&bits[i..i + 8], 2).unwrap()),
        );
        nal
    }

    #[test]
    fn removes_emulation_prevention_bytes() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]), [0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(unescape(&[0, 3, 0, 0, 0, 3]), [0, 3, 0, 0, 0]);
    }

    #[test]
    fn refuses_truncated_and_broken_records() {
        let record = hex(MAIN_320X240);
        for cut in 0..record.len() {
            assert!(HevcConfig::parse(&record.slice(..cut)).is_err(), "{cut}");
        }
        let broken = |at: usize, value: u8| {
            let mut r = record.to_vec();
            r[at] = value;
            HevcConfig::parse(&Bytes::from(r))
        };
        assert!(broken(0, 0).is_err(), "configurationVersion 0");
        assert!(broken(21, 0xf2).is_err(), "3-byte NAL unit lengths");
        assert!(broken(21, 0xf1).is_ok(), "2-byte NAL unit lengths");
        assert!(broken(22, 2).is_err(), "no PPS");
        assert!(broken(22, 4).is_err(), "an array past the end");
        // The SPS array (at 23 + 3 + 2 + 24) declared as a PPS array: its unit says SPS.
        assert!(broken(52, 0x22).is_err());
        // An SEI array between the sets is fine.
        let mut with_sei = record[..FIXED_LEN].to_vec();
        with_sei[22] = 4;
        with_sei.extend([0x27, 0, 1, 0, 3, 0x4e, 0x01, 0x80]);
        with_sei.extend(&record[FIXED_LEN..]);
        assert!(HevcConfig::parse(&Bytes::from(with_sei)).is_ok());
        // Trailing bytes after the arrays are ignored.
        let mut longer = record.to_vec();
        longer.push(0);
        assert!(HevcConfig::parse(&Bytes::from(longer)).is_ok());
    }

    #[test]
    fn garbage_does_not_panic() {
        // xorshift: deterministic noise, with the first byte forced to version 1 half the time
        // and a plausible numOfArrays so the array loop is reached.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut r: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && len > 22 {
                r[0] = 1;
                r[22] = (next() % 4) as u8;
            }
            if let Ok(c) = HevcConfig::parse(&Bytes::from(r)) {
                let _ = (c.codec_string(), c.dimensions());
            }
        }
        // Random SPS payloads behind a valid header.
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut nal = vec![0x42, 0x01];
            nal.extend((0..len).map(|_| next() as u8));
            let _ = sps_dimensions(&nal);
        }
    }
}
