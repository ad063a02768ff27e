//! The measurement study's attack on a broadcaster: a man in the middle of its RTMP
//! connection, who speaks RTMP to both sides (the `rtmp` crate as a server towards the
//! broadcaster and as a client towards livescope) and changes the stream on its way. It
//! notes the media time of every video frame it tampered with, or whose stretch lost its
//! true record, so that a test can check each was flagged.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtmp::{ClientEvent, ClientSession, MediaKind, ServerEvent, ServerSession};
use signed::sei::{self, Codec};

/// What the man in the middle does, to frames with media time in `from..to` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Passes everything as it is.
    None,
    /// Flips a byte in every 10th video frame.
    Rewrite,
    /// Replaces every 10th video frame by the one before it.
    Replace,
    /// Takes the signature records out.
    DropRecords,
    /// Moves each record one stretch later (the last one held is lost).
    Reorder,
    /// Sends, in place of the window, the stream as it was 3 s earlier, its timestamps
    /// moved to fit: older signed media replayed.
    Replay,
}

pub struct Mitm {
    /// The address to publish to (rtmp://ADDR/live/KEY).
    pub addr: String,
    /// Media times (ms) of the video frames that are not what the broadcaster signed.
    pub touched: Arc<Mutex<Vec<u64>>>,
}

/// Starts the man in the middle for one publisher, in front of livescope's RTMP `upstream`.
pub fn start(upstream: &str, attack: Attack, from: u32, to: u32) -> Mitm {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let touched = Arc::new(Mutex::new(Vec::new()));
    let noted = touched.clone();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let (down, _) = listener.accept().unwrap();
        let mut tamper = Tamper {
            attack,
            from,
            to,
            touched: noted,
            previous: None,
            video: 0,
            stretch: Vec::new(),
            held: None,
            recorded: Vec::new(),
        };
        let _ = relay(down, &upstream, &mut tamper);
    });
    Mitm { addr, touched }
}

fn relay(mut down: TcpStream, upstream: &str, tamper: &mut Tamper) -> std::io::Result<()> {
    down.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut server = ServerSession::new(rtmp::Config::default(), [0x11; 1536]);
    let mut up: Option<(TcpStream, ClientSession, String)> = None;
    let mut app = String::from("live");
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match down.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => server.handle_input(&buf[..n]).map_err(std::io::Error::other)?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { app: a } => app = a,
                ServerEvent::Publish { name } => {
                    up = Some(publish_upstream(upstream, &app, &name)?);
                    server.accept_publish().map_err(std::io::Error::other)?;
                }
                ServerEvent::Media(m) => {
                    if let Some((socket, client, _)) = up.as_mut() {
                        for (kind, ts, payload) in tamper.apply(m.kind, m.timestamp, m.payload.to_vec()) {
                            client.send_media(kind, ts, &payload);
                        }
                        while let Some(out) = client.poll_transmit() {
                            socket.write_all(&out)?;
                        }
                    }
                }
                ServerEvent::Unpublish => {
                    if let Some((socket, client, name)) = up.as_mut() {
                        client.unpublish(name);
                        while let Some(out) = client.poll_transmit() {
                            socket.write_all(&out)?;
                        }
                    }
                }
                ServerEvent::Play { .. } => return Ok(()),
            }
        }
        while let Some(out) = server.poll_transmit() {
            down.write_all(&out)?;
        }
        // livescope's acknowledgements and pings.
        if let Some((socket, client, _)) = up.as_mut() {
            socket.set_nonblocking(true)?;
            loop {
                match socket.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => client.handle_input(&buf[..n]).map_err(std::io::Error::other)?,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            socket.set_nonblocking(false)?;
            while client.poll_event().is_some() {}
            while let Some(out) = client.poll_transmit() {
                socket.write_all(&out)?;
            }
        }
    }
}

fn publish_upstream(upstream: &str, app: &str, name: &str) -> std::io::Result<(TcpStream, ClientSession, String)> {
    let mut socket = TcpStream::connect(upstream)?;
    let mut client = ClientSession::new(
        rtmp::Config::default(),
        app,
        &format!("rtmp://{upstream}/{app}"),
        [0x22; 1536],
    );
    let mut buf = vec![0u8; 64 << 10];
    loop {
        while let Some(out) = client.poll_transmit() {
            socket.write_all(&out)?;
        }
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        client.handle_input(&buf[..n]).map_err(std::io::Error::other)?;
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Connected => client.publish(name),
                ClientEvent::PublishStarted => return Ok((socket, client, name.to_owned())),
                ClientEvent::Status { level, description, .. } if level == "error" => {
                    return Err(std::io::Error::other(description));
                }
                _ => {}
            }
        }
    }
}

struct Tamper {
    attack: Attack,
    from: u32,
    to: u32,
    touched: Arc<Mutex<Vec<u64>>>,
    /// The last video frame's body, for `Replace`.
    previous: Option<Vec<u8>>,
    video: u64,
    /// Media times of the video frames since the last record, for the attacks on records.
    stretch: Vec<u64>,
    /// A record taken out, for `Reorder`.
    held: Option<Vec<u8>>,
    /// The messages of the 3 s before the window, for `Replay`.
    recorded: Vec<(MediaKind, u32, Vec<u8>)>,
}

/// An H.264 frame's coded data, behind its 5-byte FLV video header.
fn is_frame(kind: MediaKind, body: &[u8]) -> bool {
    kind == MediaKind::Video && body.len() > 5 && body[0] & 0x0f == 7 && body[1] == 1
}

/// The sample's record units (ours, not certificates) and the sample without them.
fn take_records(sample: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut records = Vec::new();
    let mut rest = Vec::new();
    for unit in sei::nal_units(sample, 4) {
        let is_record = sei::is_ours(unit, Codec::Avc)
            && sei::find(&sei::prepend(&[], 4, &[unit.to_vec()]), 4, Codec::Avc)
                .iter()
                .any(|m| matches!(signed::Message::decode(m), Ok(signed::Message::Record(_))));
        if is_record {
            records.push(unit.to_vec());
        } else {
            rest.push(unit.to_vec());
        }
    }
    (records, sei::prepend(&[], 4, &rest))
}

impl Tamper {
    fn note(&self, ts: &[u64]) {
        self.touched.lock().unwrap().extend_from_slice(ts);
    }

    fn apply(&mut self, kind: MediaKind, ts: u32, mut body: Vec<u8>) -> Vec<(MediaKind, u32, Vec<u8>)> {
        let inside = (self.from..self.to).contains(&ts);
        if self.attack == Attack::Replay {
            if kind != MediaKind::Data && (self.from - 3000..self.to - 3000).contains(&ts) {
                self.recorded.push((kind, ts, body.clone()));
            }
            if inside && kind != MediaKind::Data {
                if kind == MediaKind::Video && ts % 1000 < 40 {
                    // The window's recorded media, sent once, at its start.
                    if !self.recorded.is_empty() {
                        let replayed: Vec<_> = std::mem::take(&mut self.recorded)
                            .into_iter()
                            .map(|(k, t, b)| (k, t + 3000, b))
                            .collect();
                        let times: Vec<u64> = replayed
                            .iter()
                            .filter(|(k, ..)| *k == MediaKind::Video)
                            .map(|(_, t, _)| u64::from(*t))
                            .collect();
                        self.note(&times);
                        return replayed;
                    }
                }
                return Vec::new();
            }
            return vec![(kind, ts, body)];
        }
        if !is_frame(kind, &body) {
            return vec![(kind, ts, body)];
        }
        let n = self.video;
        self.video += 1;
        let (records, bare) = take_records(&body[5..]);
        let boundary = !records.is_empty();
        if boundary && !inside && self.held.is_none() {
            self.stretch.clear();
        }
        match self.attack {
            Attack::Rewrite if inside && n.is_multiple_of(10) => {
                *body.last_mut().unwrap() ^= 0x01;
                self.note(&[u64::from(ts)]);
            }
            Attack::Replace if inside && n.is_multiple_of(10) => {
                if let Some(previous) = &self.previous {
                    let own = body.clone();
                    body = previous.clone();
                    self.previous = Some(own);
                    self.note(&[u64::from(ts)]);
                    self.stretch.push(u64::from(ts));
                    return vec![(kind, ts, body)];
                }
            }
            Attack::DropRecords if inside && boundary => {
                // The stretch this record closed can no longer be vouched for.
                let stretch = std::mem::take(&mut self.stretch);
                self.note(&stretch);
                body.truncate(5);
                body.extend_from_slice(&bare);
            }
            Attack::Reorder if boundary && (inside || self.held.is_some()) => {
                let stretch = std::mem::take(&mut self.stretch);
                self.note(&stretch);
                let own = records.clone();
                let mut units: Vec<Vec<u8>> = Vec::new();
                if let Some(late) = self.held.take() {
                    units.push(late);
                }
                if inside {
                    self.held = own.into_iter().next();
                }
                body.truncate(5);
                body.extend_from_slice(&sei::prepend(&bare, 4, &units));
            }
            _ => {}
        }
        self.stretch.push(u64::from(ts));
        self.previous = Some(body.clone());
        vec![(kind, ts, body)]
    }
}

/// A man in the middle of an RTMP viewer's connection: it plays the stream from livescope's
/// RTMP `upstream` and passes it on to the viewer, flipping a byte of every 30th video
/// frame from the `first`-th on. Returns its address and the media times it tampered with.
pub fn start_play(upstream: &str, first: u64) -> Mitm {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let touched = Arc::new(Mutex::new(Vec::new()));
    let noted = touched.clone();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let (down, _) = listener.accept().unwrap();
        let _ = relay_play(down, &upstream, first, &noted);
    });
    Mitm { addr, touched }
}

fn relay_play(mut down: TcpStream, upstream: &str, first: u64, touched: &Mutex<Vec<u64>>) -> std::io::Result<()> {
    let mut server = ServerSession::new(rtmp::Config::default(), [0x33; 1536]);
    let mut app = String::from("live");
    let mut buf = vec![0u8; 64 << 10];
    // The viewer's set-up, up to its play.
    let name = 'setup: loop {
        let n = down.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        server.handle_input(&buf[..n]).map_err(std::io::Error::other)?;
        while let Some(out) = server.poll_transmit() {
            down.write_all(&out)?;
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { app: a } => app = a,
                ServerEvent::Play { name } => break 'setup name,
                _ => {}
            }
        }
    };
    let mut up = TcpStream::connect(upstream)?;
    let mut client = ClientSession::new(
        rtmp::Config::default(),
        &app,
        &format!("rtmp://{upstream}/{app}"),
        [0x44; 1536],
    );
    let mut video = 0u64;
    let mut started = false;
    down.set_nonblocking(true)?;
    loop {
        while let Some(out) = client.poll_transmit() {
            up.write_all(&out)?;
        }
        let n = up.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        client.handle_input(&buf[..n]).map_err(std::io::Error::other)?;
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Connected => client.play(&name),
                ClientEvent::PlayStarted if !started => {
                    started = true;
                    server.accept_play().map_err(std::io::Error::other)?;
                    down.set_nonblocking(false)?;
                    while let Some(out) = server.poll_transmit() {
                        down.write_all(&out)?;
                    }
                    down.set_nonblocking(true)?;
                }
                ClientEvent::Media(m) => {
                    let mut body = m.payload.to_vec();
                    if is_frame(m.kind, &body) {
                        if video >= first && (video - first).is_multiple_of(30) {
                            *body.last_mut().unwrap() ^= 0x01;
                            touched.lock().unwrap().push(u64::from(m.timestamp));
                        }
                        video += 1;
                    }
                    let out = rtmp::message::encode_media(server.out_chunk_size(), m.kind, m.timestamp, &body);
                    down.set_nonblocking(false)?;
                    down.write_all(&out)?;
                    down.set_nonblocking(true)?;
                }
                _ => {}
            }
        }
        while let Some(out) = server.poll_transmit() {
            down.set_nonblocking(false)?;
            down.write_all(&out)?;
            down.set_nonblocking(true)?;
        }
        // The viewer's acknowledgements.
        match down.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => server.handle_input(&buf[..n]).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        while server.poll_event().is_some() {}
    }
}
