//! The HTTP listener: admits connections within the caps, speaks TLS when configured, and
//! serves the router over HTTP/1.1 with a deadline for every phase of a connection.
//!
//! Deadlines: TLS handshake [`TLS_HANDSHAKE_TIMEOUT`]; request headers, and the wait for
//! the next request on a kept-alive connection, [`HEADER_READ_TIMEOUT`] (hyper runs one
//! timer whenever a connection waits for a request head); a response the client stops
//! taking, [`WRITE_STALL_TIMEOUT`] ([`StallGuard`]); a handler's answer, the router's
//! request timeout (see [`crate::http::router`]).
//!
//! HTTP/2 is not offered: hyper's HTTP/2 server has no idle or header deadline of its
//! own, and the clients that matter (browsers, players, CDN edges fetching from an
//! origin) all speak HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::conn_limit::{ConnGuard, ConnLimiter};
use crate::peer::Peer;
use crate::stall::StallGuard;

/// A client's TLS handshake must be done within this.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's headers must arrive within this of the connection (or the previous
/// response) being ready for them; an idle kept-alive connection is closed after it.
/// Browsers reopen connections at once, so a short wait costs them nothing.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A response that the client takes no byte of for this long is abandoned, as RTMP
/// viewers are.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes hyper buffers for one connection's request head. Real heads are a few
/// KiB (cookies included); nginx's default allows 4 x 8 KiB. hyper's default is 400 KiB,
/// which let 500 half-sent heads hold 165 MiB.
pub const MAX_HEAD_BYTES: usize = 32 << 10;
/// How long open connections get to finish their requests when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limiter: Arc<ConnLimiter>,
    tls: Option<TlsAcceptor>,
    nodelay: bool,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (socket, addr, guard) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = limiter.accept(&listener) => accepted,
        };
        let _ = socket.set_nodelay(nodelay);
        let conn = Connection {
            router: router.clone(),
            tls: tls.clone(),
            stop: stop_rx.clone(),
            _guard: guard,
        };
        tokio::spawn(conn.run(socket, addr));
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while limiter.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Connection {
    router: Router,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
    /// Holds the connection's place under the caps until it closes.
    _guard: ConnGuard,
}

impl Connection {
    async fn run(self, socket: TcpStream, addr: SocketAddr) {
        let peer = Peer::new(addr, socket.as_raw_fd());
        // Nothing is allocated for a connection until its first bytes arrive; one that
        // sends nothing is closed by the header deadline.
        if !crate::conn_limit::first_bytes(&socket, HEADER_READ_TIMEOUT).await {
            return;
        }
        // Boxed, so that the task of a connection still waiting above holds a pointer, not
        // the whole state of hyper's connection (and of TLS) inline.
        match self.tls.clone() {
            None => Box::pin(self.http(socket, peer)).await,
            Some(acceptor) => {
                Box::pin(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => self.http(stream, peer).await,
                        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                })
                .await
            }
        }
    }

    async fn http<S>(mut self, io: S, peer: Peer)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|e| match e {})) }
        });
        let io = TokioIo::new(StallGuard::new(io, WRITE_STALL_TIMEOUT));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        let outcome = tokio::select! {
            outcome = conn.as_mut() => outcome,
            () = stopping(&mut self.stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = outcome {
            tracing::debug!(addr = %peer.addr, "HTTP connection closed: {e}");
        }
    }
}

/// Resolves when the server starts to stop.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
