//! The server role of an RTMP connection: answers `connect` and `createStream` itself and
//! reports `publish` and `play` for the application to accept or refuse (spec section 7.2).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::Error;
use crate::amf0::Value;
use crate::handshake::{self, Progress};
use crate::message::{self, MEDIA_STREAM_ID, Media};
use crate::session::{Config, Core, Incoming};

/// What the peer asked for or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client connected to an application (the first path segment of the URL).
    Connect { app: String },
    /// The client wants to publish under this name (the stream key, possibly with `?query`).
    Publish { name: String },
    /// The client wants to play this name.
    Play { name: String },
    /// An audio, video or data message from a publisher.
    Media(Media),
    /// The publisher announced the end of its stream (`FCUnpublish`, `deleteStream`).
    Unpublish,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Idle,
    PublishRequested,
    Publishing,
    PlayRequested,
    Playing,
}

/// One RTMP connection seen from the server.
#[derive(Debug)]
pub struct ServerSession {
    handshake: Option<handshake::Server>,
    /// S1's random block, dropped once the handshake is done.
    random: Option<Box<[u8; handshake::BLOCK]>>,
    core: Core,
    events: VecDeque<ServerEvent>,
    mode: Mode,
    /// Commands answered before `publish` or `play`, bounded by [`MAX_SETUP_COMMANDS`].
    setup_commands: usize,
}

/// Most commands a connection may send before `publish` or `play`. Real clients send five
/// (`connect`, `releaseStream`, `FCPublish`, `createStream`, `publish`); the bound keeps a
/// stranger from making the server write much more than it reads.
pub const MAX_SETUP_COMMANDS: usize = 32;

impl ServerSession {
    /// `random` fills S1; any bytes will do, it only needs to differ between connections.
    ///
    /// The session starts with `config.setup_limits` and moves to `config.limits` when a
    /// publish is accepted.
    pub fn new(config: Config, random: [u8; handshake::BLOCK]) -> Self {
        let mut core = Core::new(config);
        core.decoder.set_limits(config.setup_limits);
        Self {
            handshake: Some(handshake::Server::new()),
            random: Some(Box::new(random)),
            core,
            events: VecDeque::new(),
            mode: Mode::Idle,
            setup_commands: 0,
        }
    }

    /// Bytes the session holds for its peer: received but not yet whole, and not yet sent.
    pub fn buffered(&self) -> usize {
        self.core.decoder.buffered() + self.core.out.len()
    }

    /// Feeds bytes read from the peer. An error means the connection must be closed.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<(), Error> {
        if let Some(hs) = &mut self.handshake {
            let random = self.random.as_deref().expect("kept until the handshake is done");
            match hs.handle_input(input, &mut self.core.out, random)? {
                Progress::Pending => return Ok(()),
                Progress::Done(rest) => {
                    self.handshake = None;
                    self.random = None;
                    self.core.decoder.push(&rest);
                }
            }
        } else {
            self.core.decoder.push(input);
        }
        self.decode()
    }

    /// Handles what has arrived, pausing at a `publish` or `play` until the application
    /// answers it: what follows is judged by that answer (a publisher's media, and the
    /// larger limits of an accepted publisher), whatever the sizes of the reads were. A
    /// driver should not feed more input while a request awaits its answer: it is held.
    fn decode(&mut self) -> Result<(), Error> {
        while !matches!(self.mode, Mode::PublishRequested | Mode::PlayRequested) {
            let Some(incoming) = self.core.next()? else { break };
            self.handle(incoming)?;
        }
        Ok(())
    }

    /// Bytes to write to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The chunk size media must be encoded with for this peer (see [`message::encode_media`]).
    pub fn out_chunk_size(&self) -> u32 {
        self.core.out_chunk_size
    }

    /// Accepts the pending `publish`, and handles what the publisher sent after it. An
    /// error there means the connection must be closed.
    pub fn accept_publish(&mut self) -> Result<(), Error> {
        self.expect(Mode::PublishRequested)?;
        self.mode = Mode::Publishing;
        self.core.decoder.set_limits(self.core.config.limits);
        let cs = self.core.out_chunk_size;
        message::user_control(
            &mut self.core.out,
            cs,
            message::STREAM_BEGIN,
            &MEDIA_STREAM_ID.to_be_bytes(),
        );
        message::on_status(
            &mut self.core.out,
            cs,
            MEDIA_STREAM_ID,
            "status",
            "NetStream.Publish.Start",
            "Publishing",
        );
        self.decode()
    }

    /// Refuses the pending `publish`; the caller closes the connection after flushing.
    /// `code` is an RTMP status code such as `NetStream.Publish.BadName`.
    pub fn reject_publish(&mut self, code: &str, description: &str) -> Result<(), Error> {
        self.expect(Mode::PublishRequested)?;
        self.mode = Mode::Idle;
        let cs = self.core.out_chunk_size;
        message::on_status(&mut self.core.out, cs, MEDIA_STREAM_ID, "error", code, description);
        Ok(())
    }

    /// Ends an accepted publish from the server's side (the application withdrew the
    /// publisher's right to publish); the caller closes the connection after flushing.
    /// `code` is an RTMP status code such as `NetStream.Publish.BadName`.
    pub fn end_publish(&mut self, code: &str, description: &str) -> Result<(), Error> {
        self.expect(Mode::Publishing)?;
        self.mode = Mode::Idle;
        let cs = self.core.out_chunk_size;
        message::on_status(&mut self.core.out, cs, MEDIA_STREAM_ID, "error", code, description);
        Ok(())
    }

    /// Accepts the pending `play`, and handles what the viewer sent after it. Media may be
    /// written after the bytes this queues.
    pub fn accept_play(&mut self) -> Result<(), Error> {
        self.expect(Mode::PlayRequested)?;
        self.mode = Mode::Playing;
        let cs = self.core.out_chunk_size;
        let out = &mut self.core.out;
        message::user_control(out, cs, message::STREAM_BEGIN, &MEDIA_STREAM_ID.to_be_bytes());
        message::on_status(
            out,
            cs,
            MEDIA_STREAM_ID,
            "status",
            "NetStream.Play.Reset",
            "Playing and resetting",
        );
        message::on_status(
            out,
            cs,
            MEDIA_STREAM_ID,
            "status",
            "NetStream.Play.Start",
            "Started playing",
        );
        message::data(
            out,
            cs,
            MEDIA_STREAM_ID,
            &[
                Value::string("|RtmpSampleAccess"),
                Value::Boolean(true),
                Value::Boolean(true),
            ],
        );
        self.decode()
    }

    /// Refuses the pending `play`; the caller closes the connection after flushing.
    pub fn reject_play(&mut self, code: &str, description: &str) -> Result<(), Error> {
        self.expect(Mode::PlayRequested)?;
        self.mode = Mode::Idle;
        let cs = self.core.out_chunk_size;
        message::on_status(&mut self.core.out, cs, MEDIA_STREAM_ID, "error", code, description);
        Ok(())
    }

    /// Tells a viewer the stream has ended (Stream EOF and `NetStream.Play.UnpublishNotify`).
    pub fn end_play(&mut self) {
        let cs = self.core.out_chunk_size;
        let out = &mut self.core.out;
        message::user_control(out, cs, message::STREAM_EOF, &MEDIA_STREAM_ID.to_be_bytes());
        message::on_status(
            out,
            cs,
            MEDIA_STREAM_ID,
            "status",
            "NetStream.Play.UnpublishNotify",
            "Stream ended",
        );
        message::on_status(
            out,
            cs,
            MEDIA_STREAM_ID,
            "status",
            "NetStream.Play.Stop",
            "Stopped playing",
        );
        self.mode = Mode::Idle;
    }

    fn expect(&self, mode: Mode) -> Result<(), Error> {
        if self.mode == mode {
            Ok(())
        } else {
            Err(Error::Protocol("no such request pending"))
        }
    }

    fn handle(&mut self, incoming: Incoming) -> Result<(), Error> {
        match incoming {
            Incoming::Media(media) => {
                // Media before an accepted publish is a protocol error, not something to relay.
                if self.mode != Mode::Publishing {
                    return Err(Error::Protocol("media before publish was accepted"));
                }
                self.events.push_back(ServerEvent::Media(media));
            }
            Incoming::Command {
                stream_id,
                name,
                transaction,
                args,
            } => {
                self.command(stream_id, &name, transaction, &args)?;
            }
        }
        Ok(())
    }

    fn command(&mut self, _stream_id: u32, name: &str, transaction: f64, args: &[Value]) -> Result<(), Error> {
        let cs = self.core.out_chunk_size;
        if matches!(self.mode, Mode::Idle | Mode::PublishRequested | Mode::PlayRequested) {
            self.setup_commands += 1;
            if self.setup_commands > MAX_SETUP_COMMANDS {
                return Err(Error::Protocol("too many commands before publish or play"));
            }
        }
        match name {
            "connect" => {
                let app = args
                    .first()
                    .and_then(|o| o.get("app"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned();
                let window = self.core.config.window_ack_size;
                message::window_ack_size(&mut self.core.out, cs, window);
                message::set_peer_bandwidth(&mut self.core.out, cs, window);
                self.core.announce_chunk_size();
                let cs = self.core.out_chunk_size;
                message::command(
                    &mut self.core.out,
                    cs,
                    0,
                    &[
                        Value::string("_result"),
                        Value::Number(transaction),
                        Value::object([
                            ("fmsVer", Value::string("FMS/3,0,1,123")),
                            ("capabilities", Value::Number(31.0)),
                        ]),
                        Value::object([
                            ("level", Value::string("status")),
                            ("code", Value::string("NetConnection.Connect.Success")),
                            ("description", Value::string("Connection succeeded.")),
                            ("objectEncoding", Value::Number(0.0)),
                        ]),
                    ],
                );
                self.events.push_back(ServerEvent::Connect { app });
            }
            "createStream" => {
                let reply = [
                    Value::string("_result"),
                    Value::Number(transaction),
                    Value::Null,
                    Value::Number(f64::from(MEDIA_STREAM_ID)),
                ];
                message::command(&mut self.core.out, cs, 0, &reply);
            }
            "releaseStream" | "FCPublish" if transaction != 0.0 => {
                let reply = [
                    Value::string("_result"),
                    Value::Number(transaction),
                    Value::Null,
                    Value::Undefined,
                ];
                message::command(&mut self.core.out, cs, 0, &reply);
            }
            "publish" | "play" => {
                if self.mode != Mode::Idle {
                    return Err(Error::Protocol("publish or play while already publishing or playing"));
                }
                let stream_name = args
                    .get(1)
                    .and_then(Value::as_str)
                    .ok_or(Error::Malformed("publish/play without a name"))?;
                let stream_name = stream_name.to_owned();
                if name == "publish" {
                    self.mode = Mode::PublishRequested;
                    self.events.push_back(ServerEvent::Publish { name: stream_name });
                } else {
                    self.mode = Mode::PlayRequested;
                    self.events.push_back(ServerEvent::Play { name: stream_name });
                }
            }
            "FCUnpublish" | "deleteStream" | "closeStream" if self.mode == Mode::Publishing => {
                self.mode = Mode::Idle;
                self.events.push_back(ServerEvent::Unpublish);
            }
            // getStreamLength, FCSubscribe, _checkbw and others need no answer from a live server.
            _ => {}
        }
        Ok(())
    }
}
