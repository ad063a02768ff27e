//! Codec configuration records: AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1)
//! and AAC's AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1), read far enough to describe
//! a stream (profile, level, sample rate) and to reject garbage before viewers get it.

use bytes::Bytes;

use crate::Error;

/// An H.264 decoder configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl AvcConfig {
    /// Parses the record (the tag body after the 5-byte video header).
    pub fn parse(record: &Bytes) -> Result<AvcConfig, Error> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        let r = &record[..];
        if r.len() < 7 || r[0] != 1 {
            return Err(Error::Malformed(WHAT));
        }
        let nal_length_size = (r[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(Error::Malformed(WHAT));
        }
        let mut pos = 5;
        let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Bytes>, Error> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                let len = r
                    .get(*pos..*pos + 2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                    .ok_or(Error::Malformed(WHAT))?;
                *pos += 2;
                if *pos + len > r.len() {
                    return Err(Error::Malformed(WHAT));
                }
                sets.push(record.slice(*pos..*pos + len));
                *pos += len;
            }
            Ok(sets)
        };
        let sps_count = (r[5] & 0x1f) as usize;
        pos += 1;
        let sps = read_sets(sps_count, &mut pos)?;
        let pps_count = *r.get(pos).ok_or(Error::Malformed(WHAT))? as usize;
        pos += 1;
        let pps = read_sets(pps_count, &mut pos)?;
        if sps.is_empty() {
            return Err(Error::Malformed(WHAT));
        }
        Ok(AvcConfig {
            profile: r[1],
            compatibility: r[2],
            level: r[3],
            nal_length_size,
            sps,
            pps,
        })
    }

    /// The RFC 6381 codec string, for example `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!("avc1.{:02x}{:02x}{:02x}", self.profile, self.compatibility, self.level)
    }
}

/// An AAC AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AudioSpecificConfig {
    /// Parses the config (the tag body after the 2-byte audio header).
    pub fn parse(config: &[u8]) -> Result<AudioSpecificConfig, Error> {
        const WHAT: &str = "AudioSpecificConfig";
        let bits = u32::from_be_bytes([
            *config.first().ok_or(Error::Malformed(WHAT))?,
            *config.get(1).ok_or(Error::Malformed(WHAT))?,
            config.get(2).copied().unwrap_or(0),
            config.get(3).copied().unwrap_or(0),
        ]);
        let object_type = (bits >> 27) as u8;
        let index = (bits >> 23 & 0x0f) as usize;
        let (sample_rate, channel_shift) = if index == 15 {
            if config.len() < 5 {
                return Err(Error::Malformed(WHAT));
            }
            // The 24-bit rate follows the 5-bit object type and the 4-bit index: the last 23
            // bits of `bits`, then the top bit of the fifth byte.
            ((bits & 0x007f_ffff) << 1 | u32::from(config[4] >> 7), 4 + 24)
        } else {
            (*SAMPLE_RATES.get(index).ok_or(Error::Malformed(WHAT))?, 4)
        };
        let channels = if channel_shift == 4 {
            (bits >> 19 & 0x0f) as u8
        } else {
            let c = config.get(4).copied().unwrap_or(0);
            c >> 3 & 0x0f
        };
        // A rate of 0 would make a track with a timescale of 0.
        if object_type == 0 || sample_rate == 0 {
            return Err(Error::Malformed(WHAT));
        }
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate,
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_x264_and_the_aac_encoder_write() {
        let record = Bytes::from_static(&[
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee,
        ]);
        let c = AvcConfig::parse(&record).unwrap();
        assert_eq!(c.codec_string(), "avc1.64001f");
        assert_eq!((c.nal_length_size, c.sps.len(), c.pps.len()), (4, 1, 1));
        for cut in 0..record.len() {
            assert!(AvcConfig::parse(&record.slice(..cut)).is_err());
        }
        // AAC-LC, 44.1 kHz, stereo.
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(
            asc,
            AudioSpecificConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
        );
        assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
    }

    #[test]
    fn reads_a_sample_rate_written_out_and_refuses_a_rate_of_zero() {
        // AAC-LC, index 15 and then the rate itself (44100), stereo: found by the fmp4_sps
        // fuzz target, which read the object type and index into the rate.
        let asc = AudioSpecificConfig::parse(&[0x17, 0x80, 0x56, 0x22, 0x10]).unwrap();
        assert_eq!(
            asc,
            AudioSpecificConfig {
                object_type: 2,
                sample_rate: 44100,
                channels: 2
            }
        );
        let highest = AudioSpecificConfig::parse(&[0x17, 0xff, 0xff, 0xff, 0x88]).unwrap();
        assert_eq!((highest.sample_rate, highest.channels), (0x00ff_ffff, 1));
        assert!(AudioSpecificConfig::parse(&[0x17, 0x80, 0x56, 0x22]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x17, 0x80, 0, 0, 0x10]).is_err());
    }
}
