//! The part of an RTMP connection both roles share after the handshake: chunk decoding,
//! protocol control messages (spec section 5.4), pings, acknowledgements and the outgoing
//! byte queue.

use bytes::{Buf, Bytes, BytesMut};

use crate::Error;
use crate::amf0::{self, Value};
use crate::chunk::{self, Decoder, Limits, Message};
use crate::message::{self, Media, MediaKind};

/// Settings of one session.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Limits once media flows: for a client, and for a server's accepted publisher.
    pub limits: Limits,
    /// Limits of a server's connection until its `publish` is accepted, and of its viewers.
    pub setup_limits: Limits,
    /// Chunk size this side sends with. Larger chunks mean fewer headers and less work per
    /// message; 4096 is what nginx-rtmp and OBS use.
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size announced to the peer.
    pub window_ack_size: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::MEDIA,
            setup_limits: Limits::SETUP,
            out_chunk_size: 4096,
            window_ack_size: 5_000_000,
        }
    }
}

/// A decoded message that is not handled here.
pub(crate) enum Incoming {
    Command {
        stream_id: u32,
        name: String,
        transaction: f64,
        args: Vec<Value>,
    },
    Media(Media),
}

#[derive(Debug)]
pub(crate) struct Core {
    pub config: Config,
    pub decoder: Decoder,
    pub out: BytesMut,
    /// Current outgoing chunk size (the default until we announce ours).
    pub out_chunk_size: u32,
    /// The peer's Window Acknowledgement Size: we acknowledge after this many bytes.
    peer_window: u32,
    last_ack: u64,
}

impl Core {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            decoder: Decoder::new(config.limits),
            out: BytesMut::new(),
            out_chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            peer_window: 0,
            last_ack: 0,
        }
    }

    /// Announces and switches to the configured outgoing chunk size.
    pub fn announce_chunk_size(&mut self) {
        message::set_chunk_size(&mut self.out, self.out_chunk_size, self.config.out_chunk_size);
        self.out_chunk_size = self.config.out_chunk_size;
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        // Take the whole buffer rather than split it, so that an idle connection (a viewer
        // after setup) holds no transmit allocation at all.
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    /// Returns the next message for the role to handle, dealing with control messages itself.
    pub fn next(&mut self) -> Result<Option<Incoming>, Error> {
        while let Some(msg) = self.decoder.next_message()? {
            self.acknowledge();
            if let Some(incoming) = self.handle(msg)? {
                return Ok(Some(incoming));
            }
        }
        self.acknowledge();
        Ok(None)
    }

    fn acknowledge(&mut self) {
        let received = self.decoder.offset();
        if self.peer_window > 0 && received - self.last_ack >= u64::from(self.peer_window) {
            self.last_ack = received;
            // The sequence number wraps like every other RTMP counter.
            message::acknowledgement(&mut self.out, self.out_chunk_size, received as u32);
        }
    }

    fn handle(&mut self, msg: Message) -> Result<Option<Incoming>, Error> {
        let mut body = msg.payload.clone();
        match msg.type_id {
            message::SET_CHUNK_SIZE => {
                let size = be_u32(&body, "Set Chunk Size")?;
                self.decoder.set_chunk_size(size & 0x7fff_ffff)?;
            }
            message::ABORT => self.decoder.abort(be_u32(&body, "Abort")?),
            message::ACKNOWLEDGEMENT => {}
            message::WINDOW_ACK_SIZE => self.peer_window = be_u32(&body, "Window Acknowledgement Size")?,
            message::SET_PEER_BANDWIDTH => {
                // We do not throttle our output; the announcement is informative only.
            }
            message::USER_CONTROL => {
                if body.len() < 2 {
                    return Err(Error::Malformed("User Control"));
                }
                let event = body.get_u16();
                if event == message::PING_REQUEST {
                    message::user_control(&mut self.out, self.out_chunk_size, message::PING_RESPONSE, &body);
                }
            }
            message::AUDIO | message::VIDEO | message::DATA_AMF0 | message::DATA_AMF3 => {
                let kind = match msg.type_id {
                    message::AUDIO => MediaKind::Audio,
                    message::VIDEO => MediaKind::Video,
                    _ => MediaKind::Data,
                };
                if msg.type_id == message::DATA_AMF3 {
                    // An AMF3 data message is AMF0 behind one format byte.
                    skip_one(&mut body, "AMF3 data")?;
                }
                if kind == MediaKind::Data {
                    body = strip_set_data_frame(body);
                }
                return Ok(Some(Incoming::Media(Media {
                    kind,
                    timestamp: msg.timestamp,
                    payload: body,
                })));
            }
            message::COMMAND_AMF0 | message::COMMAND_AMF3 => {
                if msg.type_id == message::COMMAND_AMF3 {
                    skip_one(&mut body, "AMF3 command")?;
                }
                let mut values = amf0::decode_all(&body)
                    .map_err(|source| Error::Amf0 {
                        context: "command",
                        source,
                    })?
                    .into_iter();
                let name = match values.next() {
                    Some(Value::String(name)) => name,
                    _ => return Err(Error::Malformed("command without a name")),
                };
                let transaction = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
                return Ok(Some(Incoming::Command {
                    stream_id: msg.stream_id,
                    name,
                    transaction,
                    args: values.collect(),
                }));
            }
            _ => {} // Shared object, aggregate and unknown messages are ignored.
        }
        Ok(None)
    }
}

fn be_u32(body: &[u8], what: &'static str) -> Result<u32, Error> {
    body.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(Error::Malformed(what))
}

fn skip_one(body: &mut Bytes, what: &'static str) -> Result<(), Error> {
    if body.is_empty() {
        return Err(Error::Malformed(what));
    }
    body.advance(1);
    Ok(())
}

/// Publishers wrap metadata as `@setDataFrame("onMetaData", {...})`; viewers expect the bare
/// `onMetaData` call, so the wrapper is cut off (a slice, no copy).
fn strip_set_data_frame(body: Bytes) -> Bytes {
    match amf0::decode_one(&body) {
        Ok((Value::String(name), used)) if name == "@setDataFrame" => body.slice(used..),
        _ => body,
    }
}
