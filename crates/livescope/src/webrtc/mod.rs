//! WebRTC: going live from a browser or OBS over WHIP (RFC 9725), and watching with the
//! lowest delay over WHEP. Each peer connection is a str0m `Rtc` (sans-io, like the RTMP
//! crate) driven over a UDP socket of its own; the server is ICE-lite, so it only answers
//! the connectivity checks the browser sends to its one host candidate.

pub mod peer;
pub mod sdpfrag;
pub mod sessions;
pub mod whep;
pub mod whip;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The IP address peer connections use: the configured one; else the HTTP listener's,
/// unless it listens on every address, when the address of the interface that routes to
/// the outside world is the one a browser on another machine can reach. (Connecting a
/// UDP socket sends nothing; it only picks the route.)
pub fn media_ip(configured: Option<IpAddr>, http: SocketAddr) -> IpAddr {
    if let Some(ip) = configured {
        return ip;
    }
    if !http.ip().is_unspecified() {
        return http.ip();
    }
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
