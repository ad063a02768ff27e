//! The RTMP chunk stream (RTMP spec section 5.3): splitting messages into chunks and
//! reassembling them.
//!
//! The decoder is incremental and bounded: it tells "need more bytes" (`Ok(None)`) apart
//! from "invalid at stream offset N" (`Err`), and the limits on message size, the number of
//! interleaved chunk streams and the bytes held in partial messages are set on it.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;

/// The chunk size every peer starts with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The spec allows chunk sizes up to 2^31 - 1; nothing real uses more than 64 KiB, and a
/// smaller cap bounds the work of one chunk.
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;
/// Timestamp field value announcing an extended (32-bit) timestamp.
const EXTENDED: u32 = 0xff_ffff;

/// A complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream the message arrived on.
    pub csid: u32,
    /// Message timestamp in milliseconds (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (RTMP spec section 5.4 and 7.1).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    pub payload: Bytes,
}

/// Limits applied by [`Decoder`].
///
/// What a peer can make the decoder hold is at most `max_partial_bytes` in partial messages
/// plus one incomplete chunk (at most `max_message_size` and a header) in the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted.
    pub max_message_size: u32,
    /// Most chunk streams with state at once. Real peers use fewer than ten.
    pub max_chunk_streams: usize,
    /// Most bytes held across all partially received messages.
    pub max_partial_bytes: usize,
}

impl Limits {
    /// For a peer whose stream key or access has been accepted and that sends media: a
    /// 20 Mbit/s keyframe is under 2 MiB, so 8 MiB leaves room for any real encoder, and
    /// audio and video interleaved mid-message need two partial messages at most.
    pub const MEDIA: Limits = Limits {
        max_message_size: 8 << 20,
        max_chunk_streams: 64,
        max_partial_bytes: 16 << 20,
    };

    /// Before a peer is trusted (handshake to `publish` or `play`), and for viewers, which
    /// only ever send commands and control messages: the largest command a real client
    /// sends is `connect` (under 1 KiB from ffmpeg, OBS and librtmp, with Enhanced RTMP's
    /// codec lists), so 8 KiB is generous, and a stranger can make the decoder hold at most
    /// about 16 KiB (see [`Limits`]).
    pub const SETUP: Limits = Limits {
        max_message_size: 8 << 10,
        max_chunk_streams: 8,
        max_partial_bytes: 8 << 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::MEDIA
    }
}

#[derive(Debug, Default)]
struct StreamState {
    timestamp: u32,
    /// Last timestamp field read: absolute after fmt 0, a delta after fmt 1 and 2.
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last header's 24-bit timestamp was 0xFFFFFF, so fmt 3 chunks carry 4 more bytes.
    extended: bool,
    has_header: bool,
    partial: BytesMut,
}

/// Reassembles messages from chunks.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, StreamState>,
    limits: Limits,
    partial_bytes: usize,
    /// Bytes consumed so far, for error offsets and acknowledgements.
    offset: u64,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            limits,
            partial_bytes: 0,
            offset: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// Changes the limits, for example once a publisher has been accepted. Messages already
    /// in progress keep what they hold.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Bytes held for the peer: partial messages and the unconsumed input.
    pub fn buffered(&self) -> usize {
        self.partial_bytes + self.buf.len()
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), Error> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(Error::InvalidChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Drops a partially received message (Abort Message, spec section 5.4.2).
    pub fn abort(&mut self, csid: u32) {
        if let Some(state) = self.streams.get_mut(&csid) {
            self.partial_bytes -= state.partial.len();
            state.partial = BytesMut::new();
        }
    }

    /// Bytes consumed from the peer so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns the next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.next_chunk()? {
                Chunk::NeedMore => {
                    if self.buf.is_empty() {
                        // Idle connections keep no receive allocation.
                        self.buf = BytesMut::new();
                    }
                    return Ok(None);
                }
                Chunk::Partial => continue,
                Chunk::Complete(msg) => return Ok(Some(msg)),
            }
        }
    }

    fn next_chunk(&mut self) -> Result<Chunk, Error> {
        let buf = &self.buf[..];
        let Some(&first) = buf.first() else {
            return Ok(Chunk::NeedMore);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(Chunk::NeedMore),
            },
            1 => match buf.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(Chunk::NeedMore),
            },
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        let Some(header) = buf.get(pos..pos + header_len) else {
            return Ok(Chunk::NeedMore);
        };
        pos += header_len;

        if !self.streams.contains_key(&csid) && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(Error::TooManyChunkStreams(self.limits.max_chunk_streams));
        }
        let at = self.offset;
        let state = self.streams.entry(csid).or_default();
        if fmt != 0 && !state.has_header {
            return Err(Error::NoPreviousHeader { csid, offset: at });
        }
        let starts_message = state.partial.is_empty();

        // Parse the header into locals first: nothing changes until the whole chunk is here.
        let mut ts_field = state.ts_field;
        let mut length = state.length;
        let mut type_id = state.type_id;
        let mut stream_id = state.stream_id;
        let mut extended = state.extended;
        if fmt <= 2 {
            ts_field = u24(&header[0..3]);
            extended = ts_field == EXTENDED;
        }
        if fmt <= 1 {
            length = u24(&header[3..6]);
            type_id = header[6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
        }
        if extended {
            let Some(ext) = buf.get(pos..pos + 4) else {
                return Ok(Chunk::NeedMore);
            };
            pos += 4;
            if fmt <= 2 || starts_message {
                ts_field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
        }
        if fmt <= 1 && !starts_message {
            // A new header in the middle of a message: the sender abandoned it.
            return Err(Error::InterruptedMessage { csid, offset: at });
        }
        if length > self.limits.max_message_size {
            return Err(Error::MessageTooLarge {
                size: length,
                limit: self.limits.max_message_size,
                offset: at,
            });
        }
        let remaining = length as usize - state.partial.len();
        let take = remaining.min(self.chunk_size as usize);
        if buf.len() < pos + take {
            return Ok(Chunk::NeedMore);
        }
        if self.partial_bytes + take > self.limits.max_partial_bytes && take < remaining {
            return Err(Error::TooMuchBuffered {
                limit: self.limits.max_partial_bytes,
            });
        }

        if starts_message {
            state.timestamp = if fmt == 0 {
                ts_field
            } else {
                state.timestamp.wrapping_add(ts_field)
            };
        }
        state.ts_field = ts_field;
        state.length = length;
        state.type_id = type_id;
        state.stream_id = stream_id;
        state.extended = extended;
        state.has_header = true;

        self.buf.advance(pos);
        let data = self.buf.split_to(take);
        self.offset += (pos + take) as u64;

        if take == remaining && state.partial.is_empty() {
            // The whole message in one chunk: hand out the received bytes without a copy.
            return Ok(Chunk::Complete(Message {
                csid,
                timestamp: state.timestamp,
                type_id,
                stream_id,
                payload: data.freeze(),
            }));
        }
        state.partial.extend_from_slice(&data);
        self.partial_bytes += take;
        if take < remaining {
            return Ok(Chunk::Partial);
        }
        let payload = std::mem::take(&mut state.partial).freeze();
        self.partial_bytes -= payload.len();
        Ok(Chunk::Complete(Message {
            csid,
            timestamp: state.timestamp,
            type_id,
            stream_id,
            payload,
        }))
    }
}

enum Chunk {
    NeedMore,
    Partial,
    Complete(Message),
}

fn u24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

/// Appends `payload` as a message, split into chunks of `chunk_size`.
///
/// Every message starts with a full (fmt 0) header, so the bytes depend only on the
/// arguments, never on what was sent before: one encoding of a media message can be
/// shared by every viewer that uses the same chunk size.
pub fn encode(
    out: &mut BytesMut,
    chunk_size: u32,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
) {
    let extended = timestamp >= EXTENDED;
    let ts_field = if extended { EXTENDED } else { timestamp };
    let chunks = payload.len().div_ceil(chunk_size as usize).max(1);
    out.reserve(payload.len() + 18 + chunks * 7);
    put_basic_header(out, 0, csid);
    put_u24(out, ts_field);
    put_u24(out, payload.len() as u32);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    for (i, chunk) in payload.chunks(chunk_size as usize).enumerate() {
        if i > 0 {
            put_basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(chunk);
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt << 6 | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_u8((v >> 16) as u8);
    out.put_u8((v >> 8) as u8);
    out.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut Decoder) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = decoder.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn round_trips_interleaved_sizes_and_extended_timestamps() {
        let mut wire = BytesMut::new();
        let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        encode(&mut wire, 128, 6, 40, 9, 1, &big);
        encode(&mut wire, 128, 4, 0x0100_0000, 8, 1, b"audio");
        encode(&mut wire, 128, 400, 7, 20, 0, &big[..300]);
        encode(&mut wire, 128, 3, 0, 20, 0, b"");
        let expected = vec![
            Message {
                csid: 6,
                timestamp: 40,
                type_id: 9,
                stream_id: 1,
                payload: Bytes::from(big.clone()),
            },
            Message {
                csid: 4,
                timestamp: 0x0100_0000,
                type_id: 8,
                stream_id: 1,
                payload: Bytes::from_static(b"audio"),
            },
            Message {
                csid: 400,
                timestamp: 7,
                type_id: 20,
                stream_id: 0,
                payload: Bytes::copy_from_slice(&big[..300]),
            },
            Message {
                csid: 3,
                timestamp: 0,
                type_id: 20,
                stream_id: 0,
                payload: Bytes::new(),
            },
        ];
        // Whole, and split at every offset: partial reads must never change the result.
        for split in 0..wire.len() {
            let mut d = Decoder::new(Limits::default());
            d.push(&wire[..split]);
            let mut got = decode_all(&mut d);
            d.push(&wire[split..]);
            got.extend(decode_all(&mut d));
            assert_eq!(got, expected, "split at {split}");
            assert_eq!(d.offset(), wire.len() as u64);
        }
    }

    #[test]
    fn applies_deltas_from_compressed_headers() {
        // fmt 0 at ts 100, then a fmt 1 delta of 33, then fmt 3 repeating the delta.
        let wire = [
            &[0x06, 0, 0, 100, 0, 0, 1, 9, 1, 0, 0, 0, 0xaa][..],
            &[0x46, 0, 0, 33, 0, 0, 1, 9, 0xbb],
            &[0xc6, 0xcc],
        ]
        .concat();
        let mut d = Decoder::new(Limits::default());
        d.push(&wire);
        let ts: Vec<u32> = decode_all(&mut d).iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![100, 133, 166]);
    }

    #[test]
    fn enforces_limits() {
        let mut d = Decoder::new(Limits {
            max_message_size: 10,
            ..Limits::default()
        });
        let mut wire = BytesMut::new();
        encode(&mut wire, 128, 6, 0, 9, 1, &[0; 11]);
        d.push(&wire);
        assert!(matches!(d.next_message(), Err(Error::MessageTooLarge { size: 11, .. })));

        let mut d = Decoder::new(Limits::default());
        d.push(&[0xc7, 1, 2, 3]);
        assert!(matches!(d.next_message(), Err(Error::NoPreviousHeader { csid: 7, .. })));

        let mut d = Decoder::new(Limits {
            max_chunk_streams: 2,
            ..Limits::default()
        });
        for csid in 3..6 {
            let mut wire = BytesMut::new();
            encode(&mut wire, 128, csid, 0, 9, 1, &[0; 200]);
            d.push(&wire[..140]); // the first chunk only
        }
        assert!(matches!(d.next_message(), Err(Error::TooManyChunkStreams(2))));
        assert!(Decoder::new(Limits::default()).set_chunk_size(0).is_err());
    }
}
