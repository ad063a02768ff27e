//! What a record's hashes cover, computed the same way by the broadcaster, the server and
//! every viewer, whatever container carried the frames.
//!
//! A video frame counts its coded data (its NAL units with 4-byte lengths, whatever length
//! size the container used, and without the SEI units that carry records), its keyframe
//! flag, its composition offset and its decode time relative to the record's first frame,
//! all in milliseconds, which FLV and livescope's CMAF both keep exactly. An audio frame
//! counts its coded data only (through its own digest): its place in the sequence is what
//! the hash chain fixes, and CMAF gives AAC frames exact sample times that FLV's
//! milliseconds round.

use sha2::{Digest, Sha256};

use crate::sei::{self, Codec};

/// A frame's coded video data as hashed: its NAL units behind 4-byte lengths, without
/// livescope's SEI units.
pub fn coded_data(sample: &[u8], length_size: usize, codec: Codec) -> Vec<u8> {
    let mut out = Vec::with_capacity(sample.len());
    for unit in sei::nal_units(sample, length_size) {
        if !sei::is_ours(unit, codec) {
            out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
            out.extend_from_slice(unit);
        }
    }
    out
}

/// One audio frame's digest.
pub fn audio_digest(coded: &[u8]) -> [u8; 32] {
    Sha256::digest(coded).into()
}

/// Hashes the frames of one record, one track each.
#[derive(Clone)]
pub struct FrameHasher {
    sha: Sha256,
    frames: u32,
    first_dts: Option<u64>,
}

impl Default for FrameHasher {
    fn default() -> Self {
        FrameHasher {
            sha: Sha256::new(),
            frames: 0,
            first_dts: None,
        }
    }
}

impl FrameHasher {
    /// A video frame: decode time (ms, on any clock that keeps the spacing of frames),
    /// composition offset (ms), keyframe flag and [`coded_data`].
    pub fn video(&mut self, dts_ms: u64, composition_ms: i32, keyframe: bool, coded: &[u8]) {
        let first = *self.first_dts.get_or_insert(dts_ms);
        let offset = dts_ms.wrapping_sub(first) as u32;
        self.sha.update(offset.to_be_bytes());
        self.sha.update(composition_ms.to_be_bytes());
        self.sha.update([u8::from(keyframe)]);
        self.sha.update((coded.len() as u32).to_be_bytes());
        self.sha.update(coded);
        self.frames += 1;
    }

    /// An audio frame's coded data.
    pub fn audio(&mut self, coded: &[u8]) {
        self.audio_digest(&audio_digest(coded));
    }

    /// An audio frame by its [`audio_digest`]: a run of audio hashes as the run of its
    /// frames' digests, so that a verifier placing a run among the frames it holds hashes
    /// 32 bytes a frame, not the frames.
    pub fn audio_digest(&mut self, digest: &[u8; 32]) {
        self.sha.update(digest);
        self.frames += 1;
    }

    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The frame count and the hash a record carries.
    pub fn finish(self) -> (u32, [u8; 32]) {
        (self.frames, self.sha.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_the_records_and_the_container_but_not_the_frame() {
        let slice: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x21];
        let mut four = Vec::new();
        four.extend_from_slice(&(slice.len() as u32).to_be_bytes());
        four.extend_from_slice(slice);
        let mut two = Vec::new();
        two.extend_from_slice(&(slice.len() as u16).to_be_bytes());
        two.extend_from_slice(slice);
        let signed = sei::prepend(&four, 4, &[sei::nal(Codec::Avc, b"a record")]);
        let coded = coded_data(&four, 4, Codec::Avc);
        assert_eq!(coded_data(&two, 2, Codec::Avc), coded, "length size does not matter");
        assert_eq!(coded_data(&signed, 4, Codec::Avc), coded, "records are not hashed");

        let digest = |dts: u64, cts: i32, key: bool, data: &[u8]| {
            let mut h = FrameHasher::default();
            h.video(1000 + dts, 0, true, &coded);
            h.video(1033 + dts, cts, key, data);
            h.finish()
        };
        let clean = digest(0, 66, false, &coded);
        assert_eq!(clean.0, 2);
        assert_eq!(digest(5000, 66, false, &coded), clean, "a shifted clock keeps the hash");
        assert_ne!(digest(0, 67, false, &coded), clean, "a changed composition time shows");
        assert_ne!(digest(0, 66, true, &coded), clean, "a changed keyframe flag shows");
        let mut tampered = coded.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_ne!(digest(0, 66, false, &tampered), clean, "a changed byte shows");
    }
}
