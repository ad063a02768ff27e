//! Going live from a browser (WHIP) and watching over WebRTC (WHEP), with real clients:
//! headless Chromium with its fake camera and microphone goes live through the studio page
//! (scripts/browser/golive.mjs), ffprobe reads the broadcast over RTMP, HTTP-FLV and
//! LL-HLS, one browser watches over WHEP and one over LL-HLS. And what a hostile or broken
//! client sends (malformed SDP, wrong types, unknown sessions, garbage datagrams) gets a
//! clear error or is dropped and harms nobody else.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{Server, Tracks, clip, publish};

fn flow(viewport: &str) {
    let server = Server::start();
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    let report = common::browser_check(
        "golive.mjs",
        [
            "--base",
            &format!("http://{}", server.http),
            "--out",
            out.to_str().unwrap(),
            "--viewport",
            viewport,
        ],
    );
    eprintln!("{viewport}: {report}");
}

#[test]
fn a_browser_goes_live_and_others_watch_over_webrtc_and_ll_hls() {
    for viewport in ["desktop", "phone"] {
        flow(viewport);
    }
}

/// A raw HTTP request with a content type; (status, body, headers).
fn request(addr: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    common::parse_response(&response)
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .map_or_else(|_| body.to_owned(), |v| v["error"].as_str().unwrap_or("").to_owned())
}

/// An offer as Chromium makes it, trimmed to what matters: H.264 video and Opus audio,
/// bundled, with ICE credentials and a DTLS fingerprint.
const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=msid:- a\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:1001 cname:x\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\na=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\na=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=msid:- b\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=ssrc:1002 cname:x\r\n";

#[test]
fn bad_offers_get_clear_errors_and_garbage_datagrams_harm_nobody() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let whip = format!("/whip/{key}");
    // Not SDP, not UTF-8, no media, no H.264, a wrong type, no key, an unknown key.
    for (path, ty, body, status, error) in [
        (whip.as_str(), "application/sdp", &b"hello"[..], 400, "bad_sdp"),
        (whip.as_str(), "application/sdp", &[0xff, 0xfe, 0][..], 400, "bad_sdp"),
        (whip.as_str(), "application/sdp", &b"v=0\r\n"[..], 400, "bad_sdp"),
        (
            whip.as_str(),
            "application/sdp",
            &b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"[..],
            400,
            "unsupported_codec",
        ),
        (
            whip.as_str(),
            "application/json",
            OFFER.as_bytes(),
            415,
            "unsupported_media_type",
        ),
        ("/whip", "application/sdp", OFFER.as_bytes(), 401, "unauthorized"),
        (
            "/whip/live_nope",
            "application/sdp",
            OFFER.as_bytes(),
            404,
            "unknown_stream_key",
        ),
        ("/whep/nope", "application/sdp", OFFER.as_bytes(), 404, "not_live"),
        (
            "/whip/resource/0123",
            "application/trickle-ice-sdpfrag",
            &b"a=end-of-candidates\r\n"[..],
            404,
            "not_found",
        ),
        (
            "/whip/resource/0123",
            "text/plain",
            &b"a=end-of-candidates\r\n"[..],
            415,
            "unsupported_media_type",
        ),
    ] {
        let method = if path.starts_with("/whip/resource") {
            "PATCH"
        } else {
            "POST"
        };
        let (got, body) = request(&server.http, method, path, ty, body);
        assert_eq!(
            (got, code(&body).as_str()),
            (status, error),
            "{method} {path} ({ty}): {body}"
        );
    }
    let (got, _) = request(&server.http, "DELETE", "/whip/resource/0123", "text/plain", b"");
    assert_eq!(got, 404);
    // A bad offer did not take the broadcast live, nor end it.
    assert_eq!(server.broadcast(&id)["state"], "created");

    // A good offer: an answer, a resource URL and a UDP port; the broadcast goes live
    // only once media can flow, so it is still `created`.
    let (got, answer, location) = post_offer(&server.http, &whip);
    assert_eq!(got, 201, "{answer}");
    assert!(answer.contains("a=ice-lite") && answer.contains("H264"), "{answer}");
    assert_eq!(server.broadcast(&id)["state"], "created");
    let attr = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {answer}"))
            .trim()
            .to_owned()
    };
    let (server_ufrag, server_pwd) = (attr("a=ice-ufrag:"), attr("a=ice-pwd:"));
    let candidate = attr("a=candidate:");
    let port: u16 = candidate.split(' ').nth(5).unwrap().parse().unwrap();
    // Meanwhile another broadcast goes out over RTMP, watched over HTTP-FLV.
    let (other, other_key, _) = server.create_broadcast();
    let clip = clip(Tracks::AudioVideo, 12, 400);
    let mut publisher = publish(&clip, &server.rtmp_url(&other_key));
    server.wait_state(&other, "live");
    // A client that passes the connectivity check (a STUN binding request signed with
    // the server's ICE password, as the offer's owner would send it), so that what it
    // sends next reaches the DTLS and RTP handling, then garbage: random bytes, something
    // like RTP (version 2), like DTLS records, like STUN.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    socket
        .send_to(
            &binding_request(&server_ufrag, "abcd", &server_pwd),
            ("127.0.0.1", port),
        )
        .unwrap();
    let mut reply = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut reply).expect("a STUN answer");
    assert_eq!(&reply[..2], &[0x01, 0x01], "a binding success ({n} bytes)");
    let mut noise = 0u64;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for first in [0x00u8, 0x80, 0x90, 0x16, 0x17, 0x14, 0x15, 0xff] {
            noise = noise
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut datagram = vec![first, 0xfe, 0xfd];
            datagram.extend((0..(noise % 1200) as usize).map(|i| (noise >> (i % 56)) as u8));
            socket.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The other broadcast is unharmed: its FLV viewer gets media.
    let got = flv_bytes_for(&server.http, &other, Duration::from_secs(2));
    assert!(got > 10_000, "the FLV viewer got {got} bytes");
    let _ = publisher.kill();
    let _ = publisher.wait();
    // The session that never connected ends by itself (its resource is gone: a trickled
    // candidate is refused), and leaves the broadcast as it was: the key goes live on the
    // next attempt.
    let candidate = b"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = request(
            &server.http,
            "PATCH",
            &location,
            "application/trickle-ice-sdpfrag",
            candidate,
        );
        if status == 404 {
            break;
        }
        assert_eq!(status, 204, "a trickled candidate for a running session");
        assert!(Instant::now() < deadline, "the unconnected session never ended");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(server.broadcast(&id)["state"], "created");
    let (got, _, location) = post_offer(&server.http, &whip);
    assert_eq!(got, 201);
    let (status, _) = request(&server.http, "DELETE", &location, "text/plain", b"");
    assert_eq!(status, 200);
    assert_eq!(server.broadcast(&id)["state"], "created", "ended before it went live");
    // A DELETE that crosses the session's own end (OBS closes the connection first) is
    // answered as done; a resource that never was is not.
    let (status, _) = request(&server.http, "DELETE", &location, "text/plain", b"");
    assert_eq!(status, 200, "a DELETE of a session that ended lately");
}

/// POSTs [`OFFER`]; (status, body, Location).
fn post_offer(addr: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{OFFER}",
        OFFER.len()
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let location = text
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .unwrap_or("")
        .trim()
        .to_owned();
    let (status, body) = common::parse_response(&response);
    (status, body, location)
}

/// A STUN binding request (RFC 8489) as an ICE agent sends it to a peer whose username
/// fragment is `to` and password `password`: USERNAME, PRIORITY, ICE-CONTROLLING,
/// USE-CANDIDATE, MESSAGE-INTEGRITY and FINGERPRINT.
fn binding_request(to: &str, from: &str, password: &str) -> Vec<u8> {
    use hmac_sha1::{Hmac, Mac};
    let mut attrs = Vec::new();
    let mut attr = |kind: u16, value: &[u8]| {
        attrs.extend_from_slice(&kind.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(value);
        attrs.resize(attrs.len().div_ceil(4) * 4, 0);
    };
    attr(0x0006, format!("{to}:{from}").as_bytes());
    attr(0x0024, &0x6e00_1eff_u32.to_be_bytes());
    attr(0x802a, &0x1234_5678_9abc_def0_u64.to_be_bytes());
    attr(0x0025, &[]);
    let header = |len: usize| {
        let mut h = vec![0x00, 0x01];
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(&0x2112_a442_u32.to_be_bytes());
        h.extend_from_slice(b"livescope-tx");
        h
    };
    // The integrity covers the message with a length that counts it (24 bytes).
    let mut message = [header(attrs.len() + 24), attrs.clone()].concat();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(password.as_bytes()).unwrap();
    mac.update(&message);
    let integrity = mac.finalize().into_bytes();
    message.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
    message.extend_from_slice(&integrity);
    // The fingerprint covers everything before it, with a length that counts it too.
    message[2..4].copy_from_slice(&((attrs.len() + 24 + 8) as u16).to_be_bytes());
    let crc = crc32fast::hash(&message) ^ 0x5354_554e;
    message.extend_from_slice(&[0x80, 0x28, 0x00, 0x04]);
    message.extend_from_slice(&crc.to_be_bytes());
    message
}

/// Bytes an HTTP-FLV viewer of `id` receives in `window`.
fn flv_bytes_for(addr: &str, id: &str, window: Duration) -> usize {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /live/{id}.flv HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let until = Instant::now() + window;
    let (mut total, mut buf) = (0, [0u8; 65536]);
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(_) => {}
        }
    }
    total
}
