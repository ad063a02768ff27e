//! Signed broadcasts, sans-io: what a broadcaster's encoder puts in its own video bitstream
//! so that the server and every viewer can tell the stream is the broadcaster's, unchanged.
//!
//! The broadcaster alone holds its account key (Ed25519). For each broadcast it makes a
//! short-lived session key and a [`Certificate`] that the account key signs; then, as it
//! encodes, a [`Record`] for each stretch of frames (sequence number, time range, hashes of
//! the coded video and audio, the previous record's hash) signed by the session key. Both
//! travel in the video itself, in SEI `user_data_unregistered` messages under
//! [`UUID`] ([`sei`]): a server that remuxes RTMP into HTTP-FLV and CMAF keeps the coded
//! video, so the records survive every path, where signatures over container bytes would
//! not.
//!
//! What is hashed ([`hash`]) is what every path keeps: each frame's coded data (its NAL
//! units, without the SEI messages carrying records), its keyframe flag and composition
//! offset, and its decode time relative to the record's first frame.

pub mod hash;
pub mod record;
pub mod sei;
pub mod stream;

pub use hash::{FrameHasher, coded_data};
pub use record::{Certificate, Message, Record, SessionKey};
pub use stream::{Signer, Stretch, Verdict, Verifier};

/// The UUID of livescope's SEI messages (`user_data_unregistered`).
pub const UUID: [u8; 16] = [
    0x38, 0x10, 0x94, 0x88, 0x85, 0x7e, 0x49, 0x6c, 0x9a, 0x70, 0xd7, 0xed, 0xa4, 0x5a, 0xde, 0x11,
];

/// Why bytes are not a record, or a record does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("unknown version {0}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("bad signature on the {0}")]
    Signature(&'static str),
}
