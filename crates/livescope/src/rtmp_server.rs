//! The RTMP listener: drives one [`rtmp::ServerSession`] per connection over tokio,
//! publishing into the hub (`rtmp://host/live/<stream_key>`) or playing from it
//! (`rtmp://host/live/<id>`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use rtmp::{ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::access::{AccessCheck, Credentials};
use crate::app::{App, PublishError, Publishing, Watching};
use crate::conn_limit::{ConnGuard, ConnLimiter, first_bytes};
use crate::hub::{self, Next};
use crate::send;
use crate::store::DeliveryPath;

/// The only RTMP application name: URLs are `rtmp://host/live/<name>`.
pub const APP_NAME: &str = "live";
/// A connection must reach `publish` or `play` within this time.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher silent this long is gone.
const PUBLISH_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// What a publisher is told when its broadcast's owner rotates or revokes the key.
pub const EVICTED: &str = "the stream key was rotated or revoked by the broadcast's owner";
/// A viewer that accepts no bytes for this long is disconnected, freeing its ring cursor.
const VIEWER_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes taken from a socket per read.
const READ_BYTES: usize = 64 << 10;
/// Bytes decrypted per read from an RTMPS socket. rustls holds whole records itself; this
/// buffer is part of every RTMPS connection's state while it waits, strangers' too.
const TLS_READ_BYTES: usize = 4 << 10;
/// Bytes a viewer takes from the ring per wake-up.
const VIEWER_BATCH_BYTES: usize = 256 << 10;

fn session_config() -> rtmp::Config {
    rtmp::Config {
        out_chunk_size: hub::RTMP_CHUNK_SIZE,
        ..rtmp::Config::default()
    }
}

/// Accepts connections until the process ends, within the caps of `limiter`. With `tls`,
/// the listener is RTMPS and accepts publishers only.
pub async fn serve(app: Arc<App>, listener: TcpListener, limiter: Arc<ConnLimiter>, tls: Option<TlsAcceptor>) {
    loop {
        let (socket, peer, guard) = limiter.accept(&listener).await;
        let _ = socket.set_nodelay(app.config.tcp_nodelay);
        let app = app.clone();
        match tls.clone() {
            None => tokio::spawn(connection(app, socket, peer, guard)),
            Some(tls) => tokio::spawn(secure_connection(app, socket, tls, peer, guard)),
        };
    }
}

/// How a connection's bytes are read: plain TCP reads into a buffer shared by the thread's
/// connections (one held per connection would be 64 KiB for every idle viewer and every
/// stranger); TLS decrypts into a per-read buffer of one record.
pub(crate) trait Transport: AsyncWrite + Unpin + Send + 'static {
    /// Waits for bytes and feeds them to the session; the count, 0 at end of stream.
    fn read_into(&mut self, session: &mut ServerSession) -> impl Future<Output = anyhow::Result<usize>> + Send;
}

impl Transport for TcpStream {
    async fn read_into(&mut self, session: &mut ServerSession) -> anyhow::Result<usize> {
        loop {
            self.readable().await.context("read")?;
            if let Some(n) = try_read(self, session)? {
                return Ok(n);
            }
        }
    }
}

impl Transport for TlsStream<TcpStream> {
    async fn read_into(&mut self, session: &mut ServerSession) -> anyhow::Result<usize> {
        let mut buf = [0u8; TLS_READ_BYTES];
        let n = self.read(&mut buf).await.context("read")?;
        session.handle_input(&buf[..n]).context("malformed RTMP")?;
        Ok(n)
    }
}

/// One non-blocking read into the thread's buffer, fed to the session: the byte count (0
/// at end of stream), or `None` when nothing has arrived.
fn try_read(socket: &TcpStream, session: &mut ServerSession) -> anyhow::Result<Option<usize>> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        match socket.try_read(&mut buf) {
            Ok(n) => {
                session.handle_input(&buf[..n]).context("malformed RTMP")?;
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(anyhow::Error::from(e).context("read")),
        }
    })
}

struct Conn<S> {
    socket: S,
    session: ServerSession,
}

thread_local! {
    /// The read buffer of every plain connection served by this thread: a connection
    /// between reads holds none, which matters with thousands of viewers.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BYTES]);
}

impl<S: Transport> Conn<S> {
    /// Reads once and feeds the session; false at end of stream.
    async fn read(&mut self) -> anyhow::Result<bool> {
        let n = self.socket.read_into(&mut self.session).await?;
        self.flush().await?;
        Ok(n > 0)
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket.write_all(&bytes).await.context("write")?;
        }
        Ok(())
    }
}

impl Conn<TcpStream> {
    /// Reads what has already arrived without waiting, queueing any answer in `out`; false
    /// when the peer has closed.
    fn read_available(&mut self, out: &mut Vec<Bytes>) -> anyhow::Result<bool> {
        loop {
            let read = try_read(&self.socket, &mut self.session)?;
            out.extend(std::iter::from_fn(|| self.session.poll_transmit()));
            match read {
                Some(0) => return Ok(false),
                Some(_) => continue,
                None => return Ok(true),
            }
        }
    }
}

/// Runs one connection: the setup, then publishing here or playing in a task of its own.
///
/// A viewer's play loop gets its own task so that what it keeps for hours is only its own
/// state (about 1 KiB), not also the larger state of the setup that came before.
async fn connection(app: Arc<App>, socket: TcpStream, peer: SocketAddr, guard: ConnGuard) {
    let closed = move |e: anyhow::Error| tracing::info!(%peer, "RTMP connection closed: {e:#}");
    // No session (a few KiB) until the first bytes arrive.
    if !first_bytes(&socket, SETUP_TIMEOUT).await {
        return;
    }
    // Boxed: the task of a connection still waiting above holds a pointer, not the state
    // of a session inline.
    match Box::pin(setup(socket)).await {
        Ok((conn, app_name, ServerEvent::Publish { name })) => {
            if let Err(e) = Box::pin(publish(app, conn, &app_name, strip_query(&name), peer)).await {
                closed(e);
            }
        }
        Ok((conn, app_name, ServerEvent::Play { name })) => {
            tokio::spawn(async move {
                if let Err(e) = play(app, conn, &app_name, &name, peer).await {
                    closed(e);
                }
                drop(guard);
            });
        }
        Ok(_) => unreachable!("only publish and play end the setup"),
        Err(e) => closed(e),
    }
}

/// An RTMPS connection: the TLS handshake, then as plain RTMP, for publishers only.
async fn secure_connection(app: Arc<App>, socket: TcpStream, tls: TlsAcceptor, peer: SocketAddr, _guard: ConnGuard) {
    let closed = move |e: anyhow::Error| tracing::info!(%peer, "RTMPS connection closed: {e:#}");
    // No TLS state until the first bytes arrive.
    if !first_bytes(&socket, SETUP_TIMEOUT).await {
        return;
    }
    let stream = match tokio::time::timeout(SETUP_TIMEOUT, tls.accept(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return closed(anyhow::Error::from(e).context("TLS handshake")),
        Err(_) => return closed(anyhow::anyhow!("TLS handshake timed out")),
    };
    match setup(stream).await {
        Ok((conn, app_name, ServerEvent::Publish { name })) => {
            if let Err(e) = publish(app, conn, &app_name, strip_query(&name), peer).await {
                closed(e);
            }
        }
        Ok((mut conn, _, ServerEvent::Play { .. })) => {
            let why = "RTMPS is for publishing; watch over rtmp:// or https://";
            let _ = conn.session.reject_play("NetStream.Play.Failed", why);
            let _ = conn.flush().await;
            closed(anyhow::anyhow!("play refused: {why}"));
        }
        Ok(_) => unreachable!("only publish and play end the setup"),
        Err(e) => closed(e),
    }
}

/// Handshake, `connect` and `createStream`, up to the `publish` or `play` request.
async fn setup<S: Transport>(socket: S) -> anyhow::Result<(Conn<S>, String, ServerEvent)> {
    let mut random = [0u8; rtmp::handshake::BLOCK];
    getrandom::fill(&mut random).context("random")?;
    let mut conn = Conn {
        socket,
        session: ServerSession::new(session_config(), random),
    };
    let mut app_name = String::new();
    let request = tokio::time::timeout(SETUP_TIMEOUT, async {
        loop {
            if !conn.read().await? {
                bail!("closed before publish or play");
            }
            while let Some(event) = conn.session.poll_event() {
                match event {
                    ServerEvent::Connect { app } => app_name = app,
                    request @ (ServerEvent::Publish { .. } | ServerEvent::Play { .. }) => {
                        return Ok(request);
                    }
                    _ => {}
                }
            }
        }
    })
    .await
    .context("setup timed out")??;
    Ok((conn, app_name, request))
}

/// `key?token=...`: clients put query strings in stream names; the name is before `?`.
fn strip_query(name: &str) -> &str {
    name.split('?').next().unwrap_or_default()
}

async fn publish<S: Transport>(
    app: Arc<App>,
    mut conn: Conn<S>,
    app_name: &str,
    key: &str,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    let refused = if app_name != APP_NAME {
        Err((
            "NetStream.Publish.BadName",
            format!("unknown application {app_name:?}; publish to /{APP_NAME}/<stream key>"),
        ))
    } else {
        Publishing::begin(&app, key).await.map_err(|e| {
            let code = match e {
                PublishError::AlreadyLive => "NetStream.Publish.BadName",
                PublishError::Internal(_) => "NetStream.Publish.Failed",
                _ => "NetStream.Publish.BadName",
            };
            (code, e.to_string())
        })
    };
    let mut publishing = match refused {
        Ok(p) => p,
        Err((code, reason)) => {
            conn.session.reject_publish(code, &reason)?;
            conn.flush().await?;
            let _ = conn.socket.shutdown().await;
            bail!("publish refused: {reason}");
        }
    };
    tracing::info!(broadcast = %publishing.broadcast_id, %peer, "RTMP publisher connected");
    // The session runs to its end, then the broadcast is ended in the store before the
    // connection goes: whoever asks after the publisher left sees it ended.
    let outcome = relay(&mut conn, &mut publishing).await;
    publishing.finish().await;
    outcome
}

/// Relays an accepted publisher's media until it stops, goes silent, sends what we will
/// not relay, or is evicted.
async fn relay<S: Transport>(conn: &mut Conn<S>, publishing: &mut Publishing) -> anyhow::Result<()> {
    conn.session.accept_publish()?;
    conn.flush().await?;
    loop {
        while let Some(event) = conn.session.poll_event() {
            match event {
                ServerEvent::Media(m) => {
                    publishing
                        .push(m.kind, m.timestamp, m.payload)
                        .context("refusing the stream")?;
                }
                ServerEvent::Unpublish => return Ok(()),
                _ => {}
            }
        }
        let read = tokio::select! {
            read = tokio::time::timeout(PUBLISH_IDLE_TIMEOUT, conn.read()) => read,
            why = publishing.evicted() => {
                conn.session.end_publish("NetStream.Publish.BadName", why)?;
                conn.flush().await?;
                let _ = conn.socket.shutdown().await;
                bail!("publisher evicted: {why}");
            }
        };
        match read {
            Err(_) => bail!("publisher idle for {PUBLISH_IDLE_TIMEOUT:?}"),
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// `name` is `<id>` or, for a private broadcast, `<id>?token=<playback token>`.
async fn play(
    app: Arc<App>,
    mut conn: Conn<TcpStream>,
    app_name: &str,
    name: &str,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    let id = strip_query(name);
    let viewer = Credentials {
        token: name
            .split_once('?')
            .and_then(|(_, q)| crate::playback::token_in_query(q))
            .map(str::to_owned),
        user: None,
    };
    // Access first: a stranger learns nothing of a private broadcast, not even whether it
    // is live.
    let gate = app.admission.gate(id).await?;
    let admitted = gate
        .as_ref()
        .is_some_and(|g| app.admission.admits(id, &g.access(), &viewer));
    let stream = if app_name == APP_NAME && admitted {
        app.relays.stream(id).await
    } else {
        None
    };
    let refusal = if gate
        .as_ref()
        .is_some_and(|g| !app.admission.admits(id, &g.access(), &viewer))
    {
        Some((
            "NetStream.Play.Forbidden",
            "this broadcast is private: play it with ?token=<playback token>",
        ))
    } else if stream.is_none() {
        Some(("NetStream.Play.StreamNotFound", "no live broadcast with this id"))
    } else {
        None
    };
    let (Some(stream), Some(gate), None) = (stream, gate, refusal) else {
        let (code, why) = refusal.unwrap_or(("NetStream.Play.StreamNotFound", "no live broadcast with this id"));
        conn.session.reject_play(code, why)?;
        conn.flush().await?;
        let _ = conn.socket.shutdown().await;
        bail!("play of {id:?} refused: {why}");
    };
    let _watching = Watching::begin(
        &app.store,
        &app.metrics,
        id,
        None,
        &peer.ip().to_string(),
        DeliveryPath::Rtmp,
    );
    conn.session.accept_play()?;
    conn.flush().await?;
    let (headers, mut sub) = stream.subscribe();
    let mut out: Vec<Bytes> = headers.frames.iter().map(|f| f.rtmp_chunks().clone()).collect();
    let mut batch = Vec::new();
    let mut access = AccessCheck::new(&gate);
    drop(gate);
    let mut tally = app.metrics.sent(DeliveryPath::Rtmp, app.metrics.delays.of(id));
    let mut skipped = 0;
    // The arrival of the newest frame in `out`, for the delivery stage.
    let mut newest: Option<std::time::Instant> = None;
    loop {
        if !access.still_admitted(|a| app.admission.admits(id, a, &viewer)) {
            conn.session.end_play();
            conn.flush().await?;
            bail!("viewer of {id:?} no longer admitted");
        }
        tally.sent(out.len() as u64, out.iter().map(|b| b.len() as u64).sum());
        send::send_all(&conn.socket, &mut out, VIEWER_WRITE_TIMEOUT).await?;
        if let Some(arrived) = newest.take() {
            tally.delivered(arrived);
        }
        // A player's messages after play (acknowledgements, buffer length) need no answer
        // from a live server, so they are read when they happen to be there rather than
        // waited for: a viewer costs one wake-up per batch, not two.
        if !conn.read_available(&mut out)? {
            return Ok(());
        }
        batch.clear();
        match sub.next_batch(&mut batch, VIEWER_BATCH_BYTES).await {
            Next::Frames => {
                out.extend(batch.iter().map(|f| f.rtmp_chunks().clone()));
                newest = batch.last().map(|f| f.received);
            }
            Next::Ended => break,
        }
        if sub.skipped > skipped {
            app.metrics.viewer_skipped_frames.inc_by(sub.skipped - skipped);
            skipped = sub.skipped;
        }
    }
    conn.session.end_play();
    conn.flush().await?;
    let _ = conn.socket.shutdown().await;
    Ok(())
}
