//! The client role of an RTMP connection, as used by `livescope loadgen` and
//! `livescope broadcast`: connect, create a stream, then publish or play (spec section 7.2).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::Error;
use crate::amf0::Value;
use crate::chunk;
use crate::handshake::{self, Progress};
use crate::message::{self, Media, MediaKind};
use crate::session::{Config, Core, Incoming};

/// What the server answered or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded; call [`ClientSession::publish`] or [`ClientSession::play`].
    Connected,
    /// The server accepted the publish: media may be sent.
    PublishStarted,
    /// The server accepted the play: media follows.
    PlayStarted,
    /// A media message from the server.
    Media(Media),
    /// Any other status; `level` is `"error"` for refusals.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// The server refused a command (`_error`).
    CommandError { command: &'static str, description: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Publish,
    Play,
}

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 4.0;

/// One RTMP connection seen from the client.
#[derive(Debug)]
pub struct ClientSession {
    handshake: Option<handshake::Client>,
    core: Core,
    events: VecDeque<ClientEvent>,
    app: String,
    tc_url: String,
    want: Option<(Want, String)>,
    stream_id: u32,
}

impl ClientSession {
    /// Starts a connection to `tc_url` (for example `rtmp://host:1935/live`) and application
    /// `app`; the handshake is queued for transmission at once.
    pub fn new(config: Config, app: &str, tc_url: &str, random: [u8; handshake::BLOCK]) -> Self {
        let mut core = Core::new(config);
        let hs = handshake::Client::start(&mut core.out, &random);
        Self {
            handshake: Some(hs),
            core,
            events: VecDeque::new(),
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            want: None,
            stream_id: 0,
        }
    }

    pub fn handle_input(&mut self, input: &[u8]) -> Result<(), Error> {
        if let Some(hs) = &mut self.handshake {
            match hs.handle_input(input, &mut self.core.out)? {
                Progress::Pending => return Ok(()),
                Progress::Done(rest) => {
                    self.handshake = None;
                    self.core.decoder.push(&rest);
                    self.send_connect();
                }
            }
        } else {
            self.core.decoder.push(input);
        }
        while let Some(incoming) = self.core.next()? {
            self.handle(incoming)?;
        }
        Ok(())
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Asks to publish `name` (after [`ClientEvent::Connected`]).
    pub fn publish(&mut self, name: &str) {
        let cs = self.core.out_chunk_size;
        let out = &mut self.core.out;
        message::command(
            out,
            cs,
            0,
            &[
                Value::string("releaseStream"),
                Value::Number(2.0),
                Value::Null,
                Value::string(name),
            ],
        );
        message::command(
            out,
            cs,
            0,
            &[
                Value::string("FCPublish"),
                Value::Number(3.0),
                Value::Null,
                Value::string(name),
            ],
        );
        self.create_stream(Want::Publish, name);
    }

    /// Asks to play `name` (after [`ClientEvent::Connected`]).
    pub fn play(&mut self, name: &str) {
        self.create_stream(Want::Play, name);
    }

    /// Queues one media message (after [`ClientEvent::PublishStarted`]).
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) {
        let cs = self.core.out_chunk_size;
        let csid = match kind {
            MediaKind::Audio => message::CSID_AUDIO,
            MediaKind::Video => message::CSID_VIDEO,
            MediaKind::Data => message::CSID_DATA,
        };
        chunk::encode(
            &mut self.core.out,
            cs,
            csid,
            timestamp,
            kind.type_id(),
            self.stream_id,
            payload,
        );
    }

    /// Queues `FCUnpublish` and `deleteStream`, the polite end of a publish.
    pub fn unpublish(&mut self, name: &str) {
        let cs = self.core.out_chunk_size;
        let out = &mut self.core.out;
        message::command(
            out,
            cs,
            0,
            &[
                Value::string("FCUnpublish"),
                Value::Number(0.0),
                Value::Null,
                Value::string(name),
            ],
        );
        message::command(
            out,
            cs,
            0,
            &[
                Value::string("deleteStream"),
                Value::Number(0.0),
                Value::Null,
                Value::Number(f64::from(self.stream_id)),
            ],
        );
    }

    fn create_stream(&mut self, want: Want, name: &str) {
        self.want = Some((want, name.to_owned()));
        let cs = self.core.out_chunk_size;
        message::command(
            &mut self.core.out,
            cs,
            0,
            &[
                Value::string("createStream"),
                Value::Number(TXN_CREATE_STREAM),
                Value::Null,
            ],
        );
    }

    fn send_connect(&mut self) {
        self.core.announce_chunk_size();
        let cs = self.core.out_chunk_size;
        let command_object = Value::object([
            ("app", Value::string(self.app.clone())),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string("FMLE/3.0 (compatible; livescope)")),
            ("tcUrl", Value::string(self.tc_url.clone())),
        ]);
        message::command(
            &mut self.core.out,
            cs,
            0,
            &[Value::string("connect"), Value::Number(TXN_CONNECT), command_object],
        );
    }

    fn handle(&mut self, incoming: Incoming) -> Result<(), Error> {
        match incoming {
            Incoming::Media(media) => self.events.push_back(ClientEvent::Media(media)),
            Incoming::Command {
                name,
                transaction,
                args,
                ..
            } => match name.as_str() {
                "_result" if transaction == TXN_CONNECT => self.events.push_back(ClientEvent::Connected),
                "_result" if transaction == TXN_CREATE_STREAM => {
                    let id = args
                        .get(1)
                        .and_then(Value::as_f64)
                        .ok_or(Error::Malformed("createStream result"))?;
                    self.stream_id = id as u32;
                    self.start();
                }
                "_error" => {
                    let command = match transaction {
                        t if t == TXN_CONNECT => "connect",
                        t if t == TXN_CREATE_STREAM => "createStream",
                        _ => "command",
                    };
                    let description = status_field(&args, "description");
                    self.events
                        .push_back(ClientEvent::CommandError { command, description });
                }
                "onStatus" => {
                    let level = status_field(&args, "level");
                    let code = status_field(&args, "code");
                    let description = status_field(&args, "description");
                    let event = match code.as_str() {
                        "NetStream.Publish.Start" => ClientEvent::PublishStarted,
                        "NetStream.Play.Start" => ClientEvent::PlayStarted,
                        _ => ClientEvent::Status {
                            level,
                            code,
                            description,
                        },
                    };
                    self.events.push_back(event);
                }
                _ => {}
            },
        }
        Ok(())
    }

    fn start(&mut self) {
        let Some((want, name)) = self.want.clone() else {
            return;
        };
        let cs = self.core.out_chunk_size;
        let sid = self.stream_id;
        let out = &mut self.core.out;
        match want {
            Want::Publish => {
                message::command(
                    out,
                    cs,
                    sid,
                    &[
                        Value::string("publish"),
                        Value::Number(5.0),
                        Value::Null,
                        Value::string(name),
                        Value::string("live"),
                    ],
                );
            }
            Want::Play => {
                let play = [
                    Value::string("play"),
                    Value::Number(5.0),
                    Value::Null,
                    Value::string(name),
                    Value::Number(-1000.0),
                ];
                message::command(out, cs, sid, &play);
                let mut data = sid.to_be_bytes().to_vec();
                data.extend_from_slice(&1000u32.to_be_bytes());
                message::user_control(out, cs, message::SET_BUFFER_LENGTH, &data);
            }
        }
    }
}

fn status_field(args: &[Value], key: &str) -> String {
    args.iter()
        .find_map(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
