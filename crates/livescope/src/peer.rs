//! Who is at the other end of an HTTP connection: the address, and the socket itself, for
//! the few handlers that tune their connection (a room's WebSocket bounds its send buffer).

use std::net::SocketAddr;
use std::os::fd::RawFd;

#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The connection's socket. Valid while a request on the connection is being handled:
    /// the connection outlives its requests.
    socket: RawFd,
}

impl Peer {
    pub fn new(addr: SocketAddr, socket: RawFd) -> Peer {
        Peer { addr, socket }
    }

    /// Bounds the kernel's send buffer of this connection (and so turns off its automatic
    /// growth, up to 4 MiB on Linux; the kernel doubles `bytes` for its bookkeeping): a
    /// client that reads slowly then holds up writes after that, where the server can see
    /// it, rather than after megabytes of stale data. Only for an HTTP/1 request, handled
    /// now: over HTTP/2 the socket carries other streams, and a stream's handler may
    /// outlive its connection (and the socket's number be reused); then nothing is done.
    pub(crate) fn bound_send_buffer(&self, version: axum::http::Version, bytes: usize) -> std::io::Result<()> {
        if version != axum::http::Version::HTTP_11 && version != axum::http::Version::HTTP_10 {
            return Ok(());
        }
        let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: the socket is open while its request is handled (see `socket`); the
        // option value is a c_int, as SO_SNDBUF expects.
        let done = unsafe {
            libc::setsockopt(
                self.socket,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}
