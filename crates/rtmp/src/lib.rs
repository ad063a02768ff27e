//! RTMP for livescope: handshake, chunk stream, AMF0 and the command state machines of
//! both roles, sans-io (bytes in; events and bytes out; no sockets, no clock).
//!
//! Follows Adobe's "Real-Time Messaging Protocol (RTMP) Specification" (2012) and the
//! behaviour of the clients that matter: ffmpeg, OBS (librtmp) and nginx-rtmp.
//!
//! A driver feeds received bytes with `handle_input`, then drains `poll_transmit` (bytes to
//! write) and `poll_event` (what happened). See [`ServerSession`] and [`ClientSession`].

pub mod amf0;
pub mod chunk;
mod client;
pub mod handshake;
pub mod message;
mod server;
mod session;

pub use client::{ClientEvent, ClientSession};
pub use message::{Media, MediaKind};
pub use server::{MAX_SETUP_COMMANDS, ServerEvent, ServerSession};
pub use session::Config;

/// Why an RTMP connection cannot go on. One error ends one connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The handshake's first byte named an RTMP version other than 3.
    #[error("unsupported RTMP version {0} in handshake")]
    UnsupportedVersion(u8),
    /// A message header announced more bytes than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} (stream offset {offset})")]
    MessageTooLarge { size: u32, limit: u32, offset: u64 },
    /// Set Chunk Size asked for zero or more than [`chunk::MAX_CHUNK_SIZE`].
    #[error("invalid chunk size {0}")]
    InvalidChunkSize(u32),
    /// A compressed chunk header (fmt 1-3) on a chunk stream that never had a full one.
    #[error("chunk stream {csid} continued without a first header (stream offset {offset})")]
    NoPreviousHeader { csid: u32, offset: u64 },
    /// A fmt 0 or 1 header arrived while a message on the same chunk stream was incomplete.
    #[error("chunk stream {csid} started a new message inside another (stream offset {offset})")]
    InterruptedMessage { csid: u32, offset: u64 },
    /// More chunk streams with state than the configured limit.
    #[error("more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    /// Partially received messages hold more bytes than the configured limit.
    #[error("partial messages exceed {limit} bytes")]
    TooMuchBuffered { limit: usize },
    /// A command or data message is not valid AMF0.
    #[error("bad AMF0 in {context}: {source}")]
    Amf0 {
        context: &'static str,
        source: amf0::DecodeError,
    },
    /// A message is too short or otherwise malformed for its type.
    #[error("malformed {0} message")]
    Malformed(&'static str),
    /// The peer did something the protocol does not allow at this point.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}
