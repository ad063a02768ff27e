//! The load generator's publisher: plays the clip in real time, in a loop, to any RTMP
//! server, and notes when each frame was handed to the socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flv::{Tag, TagKind};
use rtmp::{ClientEvent, ClientSession, MediaKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net::RtmpUrl;
use super::probe::{self, SendTimes};

/// Publishes until `stop` is set. `started` is told once the server accepted the publish.
pub async fn run(
    url: RtmpUrl,
    tags: Arc<Vec<Tag>>,
    sent: Arc<SendTimes>,
    stop: Arc<AtomicBool>,
    started: std::sync::mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let (mut socket, mut session) = start(&url).await?;
    let mut buf = vec![0; 64 << 10];
    let _ = started.send(());

    let first_ts = tags[0].timestamp;
    let clip_ms = tags.last().map_or(0, |t| t.timestamp - first_ts) + 33;
    let start = tokio::time::Instant::now();
    for lap in 0u32.. {
        for tag in tags.iter() {
            if stop.load(Ordering::Relaxed) {
                session.unpublish(&url.name);
                while let Some(out) = session.poll_transmit() {
                    socket.write_all(&out).await?;
                }
                return Ok(());
            }
            if lap > 0 && tag.kind == TagKind::Script {
                continue;
            }
            let ts = tag.timestamp - first_ts + lap * clip_ms;
            let due = start + Duration::from_millis(u64::from(ts));
            // Answer the server (acknowledgements, pings) while waiting for the frame's time.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    n = read(&mut socket, &mut buf) => {
                        let n = n?;
                        if n == 0 {
                            bail!("server closed the publishing connection");
                        }
                        session.handle_input(&buf[..n])?;
                        while session.poll_event().is_some() {}
                        while let Some(out) = session.poll_transmit() {
                            socket.write_all(&out).await?;
                        }
                    }
                }
            }
            let kind = match tag.kind {
                TagKind::Audio => MediaKind::Audio,
                TagKind::Video => MediaKind::Video,
                TagKind::Script => MediaKind::Data,
            };
            session.send_media(kind, ts, &tag.body);
            let now = Instant::now();
            sent.record(probe::key(tag.kind as u8, &tag.body), now);
            if tag.kind == TagKind::Video {
                sent.record_video_ts(ts, now);
            }
            while let Some(out) = session.poll_transmit() {
                socket.write_all(&out).await?;
            }
        }
    }
    Ok(())
}

/// Connects to an RTMP server and publishes `url`'s stream name; returns once the server
/// said yes.
pub async fn start(url: &RtmpUrl) -> anyhow::Result<(TcpStream, ClientSession)> {
    let socket = TcpStream::connect(&url.addr)
        .await
        .with_context(|| format!("connecting to {}", url.addr))?;
    socket.set_nodelay(true)?;
    start_on(socket, url).await
}

/// As [`start`], on a connection made already (RTMPS: TLS over TCP).
pub async fn start_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    url: &RtmpUrl,
) -> anyhow::Result<(S, ClientSession)> {
    let mut session = ClientSession::new(rtmp::Config::default(), &url.app, &url.tc_url, [0xa5; 1536]);
    let mut buf = vec![0; 64 << 10];
    // Set up: connect, publish, wait for the server's yes.
    loop {
        while let Some(out) = session.poll_transmit() {
            socket.write_all(&out).await?;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), read(&mut socket, &mut buf))
            .await
            .context("publish setup timed out")??;
        if n == 0 {
            bail!("server closed the connection during setup");
        }
        session.handle_input(&buf[..n])?;
        let mut go = false;
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Connected => session.publish(&url.name),
                ClientEvent::PublishStarted => go = true,
                ClientEvent::Status {
                    level,
                    code,
                    description,
                } if level == "error" => bail!("publish refused: {code} {description}"),
                ClientEvent::CommandError { command, description } => bail!("{command} failed: {description}"),
                _ => {}
            }
        }
        if go {
            break;
        }
    }
    Ok((socket, session))
}

pub async fn read<S: AsyncRead + Unpin>(socket: &mut S, buf: &mut [u8]) -> anyhow::Result<usize> {
    use tokio::io::AsyncReadExt;
    Ok(socket.read(buf).await?)
}
