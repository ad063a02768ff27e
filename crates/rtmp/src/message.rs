//! RTMP message types (RTMP spec sections 5.4, 6.2 and 7.1) and the encodings of the
//! protocol control, user control and command messages both roles send.

use bytes::{BufMut, Bytes, BytesMut};

use crate::amf0::{self, Value};
use crate::chunk;

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF3: u8 = 15;
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;

/// User control event types (spec section 7.1.7).
pub const STREAM_BEGIN: u16 = 0;
pub const STREAM_EOF: u16 = 1;
pub const SET_BUFFER_LENGTH: u16 = 3;
pub const PING_REQUEST: u16 = 6;
pub const PING_RESPONSE: u16 = 7;

/// Chunk stream ids this crate sends on. Protocol control must use 2 (spec 5.4).
pub const CSID_CONTROL: u32 = 2;
pub const CSID_COMMAND: u32 = 3;
pub const CSID_AUDIO: u32 = 4;
pub const CSID_DATA: u32 = 5;
pub const CSID_VIDEO: u32 = 6;

/// The message stream id the server gives every created stream, so that a media message
/// encodes to the same bytes for every viewer.
pub const MEDIA_STREAM_ID: u32 = 1;

/// What a media message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    /// Script data, such as `onMetaData`.
    Data,
}

impl MediaKind {
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => AUDIO,
            MediaKind::Video => VIDEO,
            MediaKind::Data => DATA_AMF0,
        }
    }

    fn csid(self) -> u32 {
        match self {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        }
    }
}

/// One audio, video or data message of a stream. The payload is an FLV tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Encodes a media message as chunks on the media stream, ready for any peer whose
/// outgoing chunk size is `chunk_size`.
pub fn encode_media(chunk_size: u32, kind: MediaKind, timestamp: u32, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    chunk::encode(
        &mut out,
        chunk_size,
        kind.csid(),
        timestamp,
        kind.type_id(),
        MEDIA_STREAM_ID,
        payload,
    );
    out.freeze()
}

pub(crate) fn control(out: &mut BytesMut, chunk_size: u32, type_id: u8, body: &[u8]) {
    chunk::encode(out, chunk_size, CSID_CONTROL, 0, type_id, 0, body);
}

pub(crate) fn set_chunk_size(out: &mut BytesMut, current: u32, new: u32) {
    control(out, current, SET_CHUNK_SIZE, &new.to_be_bytes());
}

pub(crate) fn window_ack_size(out: &mut BytesMut, chunk_size: u32, size: u32) {
    control(out, chunk_size, WINDOW_ACK_SIZE, &size.to_be_bytes());
}

pub(crate) fn set_peer_bandwidth(out: &mut BytesMut, chunk_size: u32, size: u32) {
    let mut body = size.to_be_bytes().to_vec();
    body.push(2); // dynamic
    control(out, chunk_size, SET_PEER_BANDWIDTH, &body);
}

pub(crate) fn acknowledgement(out: &mut BytesMut, chunk_size: u32, sequence: u32) {
    control(out, chunk_size, ACKNOWLEDGEMENT, &sequence.to_be_bytes());
}

pub(crate) fn user_control(out: &mut BytesMut, chunk_size: u32, event: u16, data: &[u8]) {
    let mut body = BytesMut::with_capacity(2 + data.len());
    body.put_u16(event);
    body.put_slice(data);
    control(out, chunk_size, USER_CONTROL, &body);
}

pub(crate) fn command(out: &mut BytesMut, chunk_size: u32, stream_id: u32, values: &[Value]) {
    let body = amf0::encode_all(values);
    chunk::encode(out, chunk_size, CSID_COMMAND, 0, COMMAND_AMF0, stream_id, &body);
}

pub(crate) fn data(out: &mut BytesMut, chunk_size: u32, stream_id: u32, values: &[Value]) {
    let body = amf0::encode_all(values);
    chunk::encode(out, chunk_size, CSID_DATA, 0, DATA_AMF0, stream_id, &body);
}

/// An `onStatus` command (spec section 7.2.2).
pub(crate) fn on_status(
    out: &mut BytesMut,
    chunk_size: u32,
    stream_id: u32,
    level: &str,
    code: &str,
    description: &str,
) {
    command(
        out,
        chunk_size,
        stream_id,
        &[
            Value::string("onStatus"),
            Value::Number(0.0),
            Value::Null,
            Value::object([
                ("level", Value::string(level)),
                ("code", Value::string(code)),
                ("description", Value::string(description)),
            ]),
        ],
    );
}
