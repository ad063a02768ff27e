//! Caps on open connections, in total and per client address, checked when a connection
//! is accepted: one address cannot take every socket the process has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A refusal is logged at most this often per listener, so that a flood of connections
/// does not become a flood of log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The open connections of one listener.
pub struct ConnLimiter {
    /// Names the listener in log lines ("RTMP", "HTTP").
    what: &'static str,
    total: usize,
    per_address: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
    /// Refusals since the last log line, and when that was.
    refused: u64,
    logged: Option<Instant>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    addr: IpAddr,
}

impl ConnLimiter {
    pub fn new(what: &'static str, total: usize, per_address: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            what,
            total,
            per_address,
            state: Mutex::default(),
        })
    }

    /// Takes a place for a connection from `addr`, or `None` (logged) when a cap is reached:
    /// the caller closes the connection at once.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<ConnGuard> {
        let mut state = self.state.lock().expect("connection limiter lock");
        let from_addr = state.by_address.get(&addr).copied().unwrap_or(0);
        let full = if state.open >= self.total {
            Some(format!("all {} connections are in use", self.total))
        } else if from_addr >= self.per_address {
            Some(format!("{addr} already has {} connections", self.per_address))
        } else {
            None
        };
        if let Some(why) = full {
            state.refused += 1;
            if state.logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                tracing::warn!(
                    "{} connection from {addr} refused: {why} ({} refused since the last such line)",
                    self.what,
                    state.refused
                );
                state.refused = 0;
                state.logged = Some(Instant::now());
            }
            return None;
        }
        state.open += 1;
        *state.by_address.entry(addr).or_default() += 1;
        Some(ConnGuard {
            limiter: self.clone(),
            addr,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.lock().expect("connection limiter lock").open
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut state = self.limiter.state.lock().expect("connection limiter lock");
        state.open -= 1;
        if let Some(n) = state.by_address.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                state.by_address.remove(&self.addr);
            }
        }
    }
}

impl ConnLimiter {
    /// Accepts the next connection this limiter admits; refused ones are closed at once.
    /// Accept errors (out of descriptors, most likely) back off instead of spinning.
    pub async fn accept(
        self: &Arc<Self>,
        listener: &tokio::net::TcpListener,
    ) -> (tokio::net::TcpStream, std::net::SocketAddr, ConnGuard) {
        let mut backoff = Duration::from_millis(10);
        loop {
            match listener.accept().await {
                Ok((socket, addr)) => {
                    backoff = Duration::from_millis(10);
                    if let Some(guard) = self.admit(addr.ip()) {
                        return (socket, addr, guard);
                    }
                }
                Err(e) => {
                    tracing::warn!("{} accept failed: {e}; retrying in {backoff:?}", self.what);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Waits up to `within` for a connection's first bytes; false if none came (or it closed).
/// Listeners call it before allocating anything for a connection (hyper's buffers, TLS,
/// an RTMP session), so that one that sends nothing costs its socket and a small task.
/// `readable()` would not do: tokio counts a new socket as ready until a read says
/// otherwise, whereas a one-byte peek waits for real data.
pub async fn first_bytes(socket: &tokio::net::TcpStream, within: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(tokio::time::timeout(within, socket.peek(&mut first)).await, Ok(Ok(1)))
}

/// Raises this process's soft limit on open files to its hard limit (often 1024 against
/// 524288): each viewer is a socket, and at the soft limit new publishers, viewers and API
/// requests could not be accepted at all. Returns the limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_the_total_and_frees_places_on_drop() {
        let limiter = ConnLimiter::new("test", 3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none(), "a third from one address");
        let _b1 = limiter.admit(b).unwrap();
        assert!(limiter.admit(b).is_none(), "a fourth in all");
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(b).is_some());
    }
}
