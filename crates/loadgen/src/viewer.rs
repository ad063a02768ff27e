//! Load generator viewers: RTMP players and HTTP-FLV readers that time every frame they
//! receive. They run on one thread and read through one shared buffer, so each costs a
//! socket and a little state, which keeps the generator much cheaper than the server.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rtmp::{ClientEvent, ClientSession};
use std::io::{Read, Write};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::net::{self, Chunked, RtmpUrl};
use super::probe::{self, SendTimes};
use super::stats::Latencies;

/// A gap this long between two video frames while the publisher sends counts as a stall.
pub const STALL_GAP: Duration = Duration::from_secs(1);

/// How often a bulk viewer reads. Its socket buffer holds far more than this much stream.
pub const BULK_READ_INTERVAL: Duration = Duration::from_millis(100);

/// What all viewers add to.
#[derive(Debug, Default)]
pub struct Tally {
    pub measuring: bool,
    pub latencies: Latencies,
    pub video_latencies: Latencies,
    /// HLS only: until the first byte of a part arrived (a streamed part starts early).
    pub first_byte_latencies: Latencies,
    pub bytes: u64,
    pub messages: u64,
    pub unmatched: u64,
    pub stalls: u64,
    pub playing: usize,
    pub failed: usize,
    pub first_errors: Vec<String>,
    /// Last video arrival per viewer, for stalls at the end of the run.
    pub last_video: Vec<Option<Instant>>,
}

thread_local! {
    /// One read buffer for all viewers of the thread.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 << 10]);
}

pub struct Viewer {
    pub index: usize,
    /// Probes read every frame the moment it arrives and time it; the others (bulk) read
    /// what has arrived every [`BULK_READ_INTERVAL`], which costs the generator a fraction
    /// of a probe, so that it stays far cheaper than the server it loads.
    pub probe: bool,
    pub tally: Rc<RefCell<Tally>>,
    pub sent: Arc<SendTimes>,
}

impl Viewer {
    pub async fn run(self, target: Target) {
        let result = match &target {
            Target::Rtmp(url) => self.rtmp(url).await,
            Target::Flv(url) => self.flv(url).await,
            Target::Hls(url) => super::hls::follow(&self, url).await,
        };
        let mut tally = self.tally.borrow_mut();
        tally.failed += 1;
        let reason = match result {
            Ok(()) => "stream ended".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if tally.first_errors.len() < 5 {
            tally.first_errors.push(reason);
        }
    }

    fn on_media(&self, type_id: u8, body: &[u8], size: usize) {
        let now = Instant::now();
        let mut tally = self.tally.borrow_mut();
        if !tally.measuring {
            if type_id == 9 {
                tally.last_video[self.index] = Some(now);
            }
            return;
        }
        tally.messages += 1;
        tally.bytes += size as u64;
        if type_id == 9 {
            if tally.last_video[self.index].is_some_and(|last| now.duration_since(last) > STALL_GAP) {
                tally.stalls += 1;
            }
            tally.last_video[self.index] = Some(now);
        }
        if type_id == 18 {
            return;
        }
        match self.sent.get(probe::key(type_id, body)) {
            Some(_) if !self.probe => {}
            Some(at) => {
                let latency = now.saturating_duration_since(at);
                tally.latencies.record(latency);
                if type_id == 9 {
                    tally.video_latencies.record(latency);
                }
            }
            None => tally.unmatched += 1,
        }
    }

    async fn rtmp(&self, url: &RtmpUrl) -> anyhow::Result<()> {
        let stream = TcpStream::connect(&url.addr)
            .await
            .with_context(|| format!("connecting to {}", url.addr))?;
        stream.set_nodelay(true)?;
        let mut socket = Socket::Ready(stream);
        let mut session = ClientSession::new(rtmp::Config::default(), &url.app, &url.tc_url, [0x5a; 1536]);
        loop {
            while let Some(out) = session.poll_transmit() {
                socket.write_all(&out).await?;
            }
            let n = socket
                .read(|bytes| session.handle_input(bytes).map_err(anyhow::Error::from))
                .await?;
            if n == 0 {
                return Ok(());
            }
            while let Some(event) = session.poll_event() {
                match event {
                    ClientEvent::Connected => session.play(&url.name),
                    ClientEvent::PlayStarted => {
                        self.tally.borrow_mut().playing += 1;
                        if !self.probe {
                            socket = socket.into_polled()?;
                        }
                    }
                    ClientEvent::Media(m) => self.on_media(m.kind.type_id(), &m.payload, m.payload.len()),
                    ClientEvent::Status {
                        level,
                        code,
                        description,
                    } if level == "error" => {
                        bail!("server refused: {code} {description}")
                    }
                    ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => {
                        return Ok(());
                    }
                    ClientEvent::CommandError { command, description } => bail!("{command} failed: {description}"),
                    _ => {}
                }
            }
        }
    }

    async fn flv(&self, url: &str) -> anyhow::Result<()> {
        let (addr, path) = net::parse_http(url)?;
        let stream = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut socket = Socket::Ready(stream);
        socket
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut response = Response::Head(Vec::new());
        let mut body = Vec::new();
        let mut demuxer = flv::Demuxer::new(16 << 20);
        loop {
            body.clear();
            let was_head = matches!(response, Response::Head(_));
            let n = socket.read(|bytes| response.feed(bytes, &mut body)).await?;
            if n == 0 {
                return Ok(());
            }
            if was_head && !matches!(response, Response::Head(_)) {
                self.tally.borrow_mut().playing += 1;
                if !self.probe {
                    socket = socket.into_polled()?;
                }
            }
            demuxer.push(&body);
            while let Some(tag) = demuxer.next_tag()? {
                self.on_media(tag.kind as u8, &tag.body, tag.body.len() + 15);
            }
        }
    }
}

/// An HTTP response being read: its head, then a chunked or a plain body.
enum Response {
    Head(Vec<u8>),
    Chunked(Chunked),
    /// No transfer encoding: the body runs to the end of the connection.
    Plain,
}

impl Response {
    /// Takes received bytes, appending body bytes to `body`.
    fn feed(&mut self, bytes: &[u8], body: &mut Vec<u8>) -> anyhow::Result<()> {
        match self {
            Response::Chunked(c) => c.decode(bytes, body),
            Response::Plain => {
                body.extend_from_slice(bytes);
                Ok(())
            }
            Response::Head(head) => {
                head.extend_from_slice(bytes);
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return Ok(());
                };
                let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let status = net::parse_status(&text)?;
                if status != 200 {
                    bail!("HTTP status {status}");
                }
                let rest = head[end + 4..].to_vec();
                *self = if text.contains("transfer-encoding: chunked") {
                    Response::Chunked(Chunked::default())
                } else {
                    Response::Plain
                };
                self.feed(&rest, body)
            }
        }
    }
}

/// A viewer's socket: read as soon as bytes arrive (through tokio's reactor), or, for bulk
/// viewers, polled on a timer and unknown to the reactor, so arriving bytes wake nobody.
enum Socket {
    Ready(TcpStream),
    Polled(std::net::TcpStream),
}

impl Socket {
    fn into_polled(self) -> anyhow::Result<Socket> {
        Ok(match self {
            Socket::Ready(s) => Socket::Polled(s.into_std()?),
            polled => polled,
        })
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Socket::Ready(s) => Ok(s.write_all(bytes).await?),
            Socket::Polled(s) => {
                while !bytes.is_empty() {
                    match s.write(bytes) {
                        Ok(n) => bytes = &bytes[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }

    /// Reads what is there into the thread's shared buffer, handing it to `f`. Returns the
    /// byte count (0 at end of stream).
    async fn read(&mut self, mut f: impl FnMut(&[u8]) -> anyhow::Result<()>) -> anyhow::Result<usize> {
        loop {
            let result = match self {
                Socket::Ready(socket) => {
                    socket.readable().await?;
                    READ_BUF.with(|buf| {
                        let mut buf = buf.borrow_mut();
                        match socket.try_read(&mut buf) {
                            Ok(0) => Ok(Some(0)),
                            Ok(n) => f(&buf[..n]).map(|()| Some(n)),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
                            Err(e) => Err(anyhow::Error::from(e)),
                        }
                    })?
                }
                Socket::Polled(socket) => {
                    tokio::time::sleep(BULK_READ_INTERVAL).await;
                    READ_BUF.with(|buf| {
                        let mut buf = buf.borrow_mut();
                        let mut total = 0;
                        loop {
                            match socket.read(&mut buf) {
                                Ok(0) => return Ok(Some(total)),
                                Ok(n) => {
                                    f(&buf[..n])?;
                                    total += n;
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                    return Ok((total > 0).then_some(total));
                                }
                                Err(e) => return Err(anyhow::Error::from(e)),
                            }
                        }
                    })?
                }
            };
            if let Some(n) = result {
                return Ok(n);
            }
        }
    }
}

/// What a viewer connects to.
#[derive(Debug, Clone)]
pub enum Target {
    Rtmp(RtmpUrl),
    Flv(String),
    /// An LL-HLS media playlist URL.
    Hls(String),
}
