//! Reading CMAF back, as a viewer that checks a stream's content needs it: the tracks of
//! an init segment, and the samples of a run of fragments (a part or a segment), with their
//! decode times, composition offsets, sync flags and data. It reads what [`crate::fragment`]
//! writes and what packagers commonly write (one or more `trun` per `traf`, offsets from
//! the `moof`); anything else is an error, never a panic.

use bytes::Bytes;
use mp4_atom::{Any, Codec, Decode, Moof, Moov};

use crate::{Error, VideoCodec};

/// A track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: u32,
    pub timescale: u32,
    /// For video: the codec and the NAL length size of its samples.
    pub video: Option<(VideoCodec, u8)>,
}

/// One sample read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSample {
    pub track: u32,
    /// In the track's timescale.
    pub dts: u64,
    pub composition_offset: i64,
    pub keyframe: bool,
    pub data: Bytes,
}

/// The most samples read from one buffer: far more than any segment holds.
const MAX_SAMPLES: usize = 1 << 20;

fn read_error(what: impl std::fmt::Display) -> Error {
    Error::Read(what.to_string())
}

/// The tracks an init segment (`ftyp` + `moov`) declares.
pub fn tracks(init: &[u8]) -> Result<Vec<TrackInfo>, Error> {
    let mut buf = init;
    while !buf.is_empty() {
        match Any::decode(&mut buf).map_err(read_error)? {
            Any::Moov(moov) => return Ok(moov_tracks(&moov)),
            _ => continue,
        }
    }
    Err(read_error("no moov in the init segment"))
}

fn moov_tracks(moov: &Moov) -> Vec<TrackInfo> {
    moov.trak
        .iter()
        .map(|trak| {
            let video = trak.mdia.minf.stbl.stsd.codecs.iter().find_map(|codec| match codec {
                Codec::Avc1(avc1) => Some((VideoCodec::Avc, avc1.avcc.length_size)),
                Codec::Hvc1(hvc1) => Some((VideoCodec::Hevc, hvc1.hvcc.length_size_minus_one + 1)),
                Codec::Hev1(hev1) => Some((VideoCodec::Hevc, hev1.hvcc.length_size_minus_one + 1)),
                _ => None,
            });
            TrackInfo {
                id: trak.tkhd.track_id,
                timescale: trak.mdia.mdhd.timescale,
                video,
            }
        })
        .collect()
}

/// The samples of consecutive fragments (`moof` + `mdat` pairs, as in a part or a
/// segment), in order within each track.
pub fn samples(fragments: &[u8]) -> Result<Vec<ReadSample>, Error> {
    let mut out = Vec::new();
    let mut buf = fragments;
    while !buf.is_empty() {
        let start = fragments.len() - buf.len();
        let moof = match Any::decode(&mut buf).map_err(read_error)? {
            Any::Moof(moof) => moof,
            _ => continue, // mdat (read through the moof's offsets), styp, sidx, ...
        };
        read_moof(&moof, fragments, start, &mut out)?;
    }
    Ok(out)
}

fn read_moof(moof: &Moof, all: &[u8], moof_start: usize, out: &mut Vec<ReadSample>) -> Result<(), Error> {
    for traf in &moof.traf {
        let mut dts = traf
            .tfdt
            .as_ref()
            .map(|t| t.base_media_decode_time)
            .ok_or_else(|| read_error("a traf without tfdt"))?;
        if traf.tfhd.base_data_offset.is_some() {
            return Err(read_error("explicit base data offsets are not read"));
        }
        for trun in &traf.trun {
            let offset = trun
                .data_offset
                .ok_or_else(|| read_error("a trun without a data offset"))?;
            let mut at = i64::try_from(moof_start)
                .ok()
                .and_then(|s| s.checked_add(i64::from(offset)))
                .and_then(|a| usize::try_from(a).ok())
                .ok_or_else(|| read_error("a data offset outside the fragment"))?;
            for entry in trun.samples.iter() {
                // A size written per sample may be 0 (it cost the trun four bytes); a default
                // of 0 would let a stated count make samples from nothing.
                let size = match entry.size {
                    Some(size) => size,
                    None => traf
                        .tfhd
                        .default_sample_size
                        .filter(|&size| size > 0)
                        .ok_or_else(|| read_error("a sample without a size"))?,
                } as usize;
                if out.len() >= MAX_SAMPLES {
                    return Err(read_error("too many samples"));
                }
                let duration = entry.duration.or(traf.tfhd.default_sample_duration).unwrap_or(0);
                let flags = entry.flags.or(traf.tfhd.default_sample_flags).unwrap_or(0);
                let end = at.checked_add(size).filter(|&e| e <= all.len());
                let data = end
                    .map(|end| Bytes::copy_from_slice(&all[at..end]))
                    .ok_or_else(|| read_error("sample data beyond the fragment"))?;
                out.push(ReadSample {
                    track: traf.tfhd.track_id,
                    dts,
                    composition_offset: entry.cts.unwrap_or(0),
                    // sample_is_non_sync_sample
                    keyframe: flags & 0x0001_0000 == 0,
                    data,
                });
                at += size;
                dts = dts.saturating_add(u64::from(duration));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AUDIO_TRACK, AudioTrack, Run, Sample, VIDEO_TRACK, VideoTrack};

    /// What x264 wrote for a 320x240 clip.
    const AVC_RECORD: &str =
        "014d400dffe10022674d400deca0a0fd8088000003000800000301e301000f420003d09c92600f14299601000468ce3c80";

    fn sample(duration: u32, keyframe: bool, cts: i32, data: &'static [u8]) -> Sample {
        Sample {
            duration,
            keyframe,
            composition_offset: cts,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn what_the_writer_writes_reads_back() {
        let record: Vec<u8> = (0..AVC_RECORD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&AVC_RECORD[i..i + 2], 16).unwrap())
            .collect();
        let video = VideoTrack {
            codec: VideoCodec::Avc,
            record: record.into(),
            width: 320,
            height: 240,
        };
        let audio = AudioTrack {
            codec: crate::AudioCodec::Aac,
            config: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        };
        let init = crate::init_segment(Some(&video), Some(&audio)).unwrap();
        let tracks = tracks(&init).unwrap();
        assert_eq!(tracks.len(), 2);
        assert_eq!(
            (tracks[0].id, tracks[0].timescale, tracks[0].video),
            (VIDEO_TRACK, 90_000, Some((VideoCodec::Avc, 4)))
        );
        assert_eq!(
            (tracks[1].id, tracks[1].timescale, tracks[1].video),
            (AUDIO_TRACK, 48_000, None)
        );

        let runs = [
            Run {
                track: VIDEO_TRACK,
                base_decode_time: 9_000,
                samples: vec![
                    sample(3000, true, 6000, b"\0\0\0\x02\x65\x88"),
                    sample(3000, false, 0, b"\0\0\0\x01\x41"),
                ],
            },
            Run {
                track: AUDIO_TRACK,
                base_decode_time: 4_800,
                samples: vec![sample(1024, true, 0, b"aac1"), sample(1024, true, 0, b"aac2")],
            },
        ];
        let mut two = crate::fragment(1, &runs).unwrap().to_vec();
        two.extend_from_slice(&crate::fragment(2, &runs[1..]).unwrap());
        let read = samples(&two).unwrap();
        let seen: Vec<(u32, u64, i64, bool, &[u8])> = read
            .iter()
            .map(|s| (s.track, s.dts, s.composition_offset, s.keyframe, &s.data[..]))
            .collect();
        assert_eq!(
            seen,
            [
                (VIDEO_TRACK, 9_000, 6000, true, &b"\0\0\0\x02\x65\x88"[..]),
                (VIDEO_TRACK, 12_000, 0, false, &b"\0\0\0\x01\x41"[..]),
                (AUDIO_TRACK, 4_800, 0, true, &b"aac1"[..]),
                (AUDIO_TRACK, 5_824, 0, true, &b"aac2"[..]),
                (AUDIO_TRACK, 4_800, 0, true, &b"aac1"[..]),
                (AUDIO_TRACK, 5_824, 0, true, &b"aac2"[..]),
            ]
        );
        // Cut anywhere: an error or fewer samples, never a panic.
        for len in 0..two.len() {
            let _ = samples(&two[..len]);
        }
        assert!(super::tracks(b"not an init segment").is_err());
    }
}
