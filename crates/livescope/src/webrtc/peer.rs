//! One peer connection: a str0m `Rtc` and the UDP socket its media crosses, driven by
//! tokio. The owner runs the loop: [`Peer::poll`] sends what str0m has and hands over its
//! events, [`Peer::wait`] waits for a datagram or str0m's next timer, [`Peer::feed`]
//! gives str0m what came.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig, RtcError};
use tokio::net::UdpSocket;

/// Datagrams larger than this are not WebRTC's (its MTU is about 1200 bytes).
const DATAGRAM_MAX: usize = 2048;

/// Why an offer was refused: the caller's mistake, said in words.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the SDP offer does not parse: {0}")]
    Malformed(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open a UDP port for media: {0}")]
    Socket(#[from] std::io::Error),
}

/// What [`Peer::wait`] saw.
#[derive(Debug)]
pub enum Woke {
    Datagram(usize, SocketAddr),
    Timer,
    /// The socket reported an error (an ICMP unreachable for an earlier send): ignored.
    SocketError,
}

/// A peer connection and its socket.
pub struct Peer {
    pub rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
    /// The remote ICE username fragment in force (an ICE restart changes it).
    pub remote_ufrag: Option<String>,
    /// The last ICE restart: the client's new username fragment and the server's answer.
    pub restarted: Option<(String, String)>,
}

/// The crypto str0m uses (pure Rust), made once.
fn crypto() -> Arc<str0m::config::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<str0m::config::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}

impl Peer {
    /// An ICE-lite peer with H.264 and Opus, its socket on a free port of `ip`.
    pub async fn new(ip: IpAddr) -> Result<Peer, OfferError> {
        let rtc = RtcConfig::new()
            .set_crypto_provider(crypto())
            .set_ice_lite(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(Instant::now());
        let socket = UdpSocket::bind((ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut peer = Peer {
            rtc,
            socket,
            local,
            buf: vec![0; DATAGRAM_MAX],
            deadline: Instant::now(),
            remote_ufrag: None,
            restarted: None,
        };
        let candidate =
            Candidate::host(local, "udp").map_err(|e| OfferError::Socket(std::io::Error::other(e.to_string())))?;
        peer.rtc.add_local_candidate(candidate);
        Ok(peer)
    }

    /// The local candidate, as an SDP attribute value.
    pub fn candidate(&self) -> String {
        Candidate::host(self.local, "udp")
            .map(|c| c.to_sdp_string())
            .unwrap_or_default()
    }

    /// Answers an offer; the answer is SDP text.
    pub fn accept(&mut self, offer: &str) -> Result<String, OfferError> {
        self.remote_ufrag = offer
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned);
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| OfferError::Malformed(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| OfferError::Unsupported(format!("the offer cannot be answered: {e}")))?;
        Ok(answer.to_sdp_string())
    }

    /// Runs str0m until it waits: sends its datagrams, appends its events.
    pub fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return Ok(());
                }
                // A full socket buffer drops the datagram, as a congested link would:
                // RTP recovers (NACK, keyframe requests), and nothing here waits.
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => events.push(e),
            }
        }
    }

    /// Ends the connection the way the other side hears of at once (RTCP BYE, DTLS
    /// close_notify), sending what that takes.
    pub fn close(&mut self) {
        if self.rtc.close().is_err() {
            self.rtc.disconnect();
        }
        let mut events = Vec::new();
        for _ in 0..16 {
            if !self.rtc.is_alive() || self.poll(&mut events).is_err() {
                break;
            }
            let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
        }
    }

    /// Waits for a datagram or str0m's timer.
    pub async fn wait(&mut self) -> Woke {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        tokio::select! {
            got = self.socket.recv_from(&mut self.buf) => match got {
                Ok((n, from)) => Woke::Datagram(n, from),
                Err(_) => Woke::SocketError,
            },
            () = tokio::time::sleep_until(deadline) => Woke::Timer,
        }
    }

    /// Hands what [`Peer::wait`] saw to str0m. A datagram that is not STUN, DTLS, RTP or
    /// RTCP is dropped.
    pub fn feed(&mut self, woke: Woke) -> Result<(), RtcError> {
        let now = Instant::now();
        match woke {
            Woke::Datagram(n, source) => {
                let Ok(contents) = self.buf[..n].try_into() else {
                    return Ok(());
                };
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                );
                if self.rtc.accepts(&input) {
                    self.rtc.handle_input(input)?;
                }
                Ok(())
            }
            Woke::Timer => self.rtc.handle_input(Input::Timeout(now)),
            Woke::SocketError => Ok(()),
        }
    }
}
