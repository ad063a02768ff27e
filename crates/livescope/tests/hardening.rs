//! The server facing strangers: hostile RTMP before any key is checked, HTTP connections
//! that send nothing or trickle, viewers that stop reading, access withdrawn while live,
//! a leaked key taken back, forged audiences, and TLS with real ffmpeg.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Server, Tracks, clip, finish, get_bytes, http_as, json, publish, temp_dir, watch};

/// Does the RTMP handshake as a client; the socket is then ready for chunks.
fn handshake(addr: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut c0c1 = vec![3u8];
    c0c1.extend([7u8; 1536]);
    s.write_all(&c0c1)?;
    let mut s0s1s2 = [0u8; 3073];
    s.read_exact(&mut s0s1s2)?;
    s.write_all(&s0s1s2[1..1537])?;
    Ok(s)
}

/// Reads until the server closes the connection (or `within` passes): whether it closed.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A broadcast live from a clip of `seconds` and its LL-HLS playlist ready: (id, publisher).
fn live_with_playlist(server: &Server, seconds: u32) -> (String, std::process::Child) {
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, seconds, 500), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let playlist = format!("/hls/{id}/index.m3u8");
    let deadline = Instant::now() + Duration::from_secs(15);
    while get_bytes(&server.http, &playlist).0 != 200 {
        assert!(Instant::now() < deadline, "no playlist");
        std::thread::sleep(Duration::from_millis(200));
    }
    (id, publisher)
}

/// Counts the bytes of a live HTTP-FLV stream in a thread, until `stop`, the server
/// closing the connection or ending the (chunked) response.
fn flv_reader(addr: &str, path: &str, stop: Arc<AtomicBool>) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    if buf[..n].ends_with(b"0\r\n\r\n") {
                        return;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    });
    (received, thread)
}

/// Hundreds of strangers holding partial messages, and others sending AMF0 bombs and
/// oversized commands as fast as they can, cost the server a few MiB, and the live
/// broadcast keeps flowing to its viewer.
#[test]
fn strangers_on_rtmp_cost_little_memory_and_do_not_starve_a_live_broadcast() {
    let server = Server::start_with(&["--max-connections-per-address", "2000"]);
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 30, 1000), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    std::thread::sleep(Duration::from_secs(1));
    let stop = Arc::new(AtomicBool::new(false));
    let (received, reader) = flv_reader(&server.http, &format!("/live/{id}.flv"), stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let before = server.rss_kib();
    let bytes_before = received.load(Ordering::Relaxed);

    // Holders: a message just under the setup limit, all but its last byte, then silence.
    const HOLDERS: usize = 400;
    let mut holders = Vec::new();
    for _ in 0..HOLDERS {
        let mut s = handshake(&server.rtmp).unwrap();
        let mut wire = BytesMut::new();
        rtmp::chunk::encode(&mut wire, 128, 3, 0, 20, 0, &[5u8; 8 << 10]);
        s.write_all(&wire[..wire.len() - 1]).unwrap();
        holders.push(s);
    }
    // Bombers: a command of 8 KiB of nulls, and one announcing 8 MiB, again and again.
    let attack_until = Instant::now() + Duration::from_secs(6);
    let refused = Arc::new(AtomicU64::new(0));
    let bombers: Vec<_> = (0..20)
        .map(|i| {
            let addr = server.rtmp.clone();
            let refused = refused.clone();
            std::thread::spawn(move || {
                while Instant::now() < attack_until {
                    let Ok(mut s) = handshake(&addr) else { continue };
                    let mut wire = BytesMut::new();
                    if i % 2 == 0 {
                        let mut bomb = vec![2u8, 0, 7];
                        bomb.extend(b"connect");
                        bomb.resize(8 << 10, 5);
                        rtmp::chunk::encode(&mut wire, 128, 3, 0, 20, 0, &bomb);
                    } else {
                        rtmp::chunk::encode(&mut wire, 128, 3, 0, 20, 0, &vec![5u8; 8 << 20]);
                        wire.truncate(64 << 10);
                    }
                    let _ = s.write_all(&wire);
                    if closed_within(&mut s, Duration::from_secs(5)) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut peak = 0;
    while Instant::now() < attack_until {
        peak = peak.max(server.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    for b in bombers {
        b.join().unwrap();
    }
    let delivered = received.load(Ordering::Relaxed) - bytes_before;
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();

    let grown_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    eprintln!(
        "RTMP strangers: {HOLDERS} holders and {} bombs refused; RSS {before} KiB before, {peak} KiB at peak (+{grown_mib:.1} MiB); viewer got {delivered} bytes in 6 s",
        refused.load(Ordering::Relaxed)
    );
    assert!(refused.load(Ordering::Relaxed) > 20, "bombs are refused");
    // 400 holders at up to ~16 KiB each is under 7 MiB; allow the allocator its slack.
    assert!(grown_mib < 48.0, "the server grew by {grown_mib:.1} MiB");
    // The clip is 1 Mbit/s: 6 s of it is ~750 KB; the viewer must get most of it.
    assert!(delivered > 400_000, "the viewer got only {delivered} bytes in 6 s");
    // The holders are closed by the setup deadline.
    assert!(closed_within(&mut holders[0], Duration::from_secs(15)));
    drop(publisher);
}

/// A connection that sends nothing, and one that trickles a header a byte at a time, are
/// closed by the header deadline; meanwhile the API answers.
#[test]
fn idle_and_trickling_http_connections_are_closed_by_their_deadline() {
    let server = Server::start();
    let mut idle = TcpStream::connect(&server.http).unwrap();
    let mut trickle = TcpStream::connect(&server.http).unwrap();
    trickle.write_all(b"GET /api/broadcasts HTTP/1.1\r\nX-Slow: ").unwrap();
    trickle.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut trickle_closed = None;
    while started.elapsed() < Duration::from_secs(25) && trickle_closed.is_none() {
        std::thread::sleep(Duration::from_secs(2));
        if trickle.write_all(b"a").is_err() {
            trickle_closed = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match trickle.read(&mut buf) {
            Ok(_) => trickle_closed = Some(started.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => trickle_closed = Some(started.elapsed()),
        }
        let (status, _) = common::http(&server.http, "GET", "/api/broadcasts", b"");
        assert_eq!(status, 200);
    }
    assert!(trickle_closed.is_some(), "a trickled header is still open after 25 s");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)),
        "an idle connection is still open"
    );
}

/// An HTTP-FLV viewer that stops reading is disconnected, and stops counting as a viewer.
#[test]
fn a_stalled_http_flv_viewer_is_dropped() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::VideoOnly, 90, 4000), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let mut stalled = TcpStream::connect(&server.http).unwrap();
    write!(stalled, "GET /live/{id}.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let viewers = || server.broadcast(&id)["viewers"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while viewers() == 0 {
        assert!(Instant::now() < deadline, "the viewer never counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // 4 Mbit/s fills the socket buffers in seconds; then the write stall deadline (30 s).
    let deadline = Instant::now() + Duration::from_secs(75);
    while viewers() > 0 {
        assert!(
            Instant::now() < deadline,
            "a viewer that reads nothing is still connected"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(server.broadcast(&id)["state"], "live");
    assert!(closed_within(&mut stalled, Duration::from_secs(30)));
    drop(publisher);
}

/// Making a live public broadcast private refuses its HLS to anonymous clients at once and
/// drops the anonymous RTMP and HTTP-FLV viewers; removing a viewer revokes the playback
/// token they held.
#[test]
fn a_live_broadcast_made_private_stops_serving_strangers() {
    let server = Server::start();
    let (id, publisher) = live_with_playlist(&server, 40);
    let playlist = format!("/hls/{id}/index.m3u8");
    let stop = Arc::new(AtomicBool::new(false));
    let (flv_bytes, flv) = flv_reader(&server.http, &format!("/live/{id}.flv"), stop.clone());
    let rtmp_out = temp_dir("rtmp-viewer").join("out.flv");
    let rtmp_viewer = watch(&server.rtmp_url(&id), &rtmp_out);
    std::thread::sleep(Duration::from_secs(2));
    assert!(flv_bytes.load(Ordering::Relaxed) > 0);

    let alice = server.user("alice");
    let owner = server.owner_token();
    server.set_viewers(&id, &owner, &["alice"]);
    assert_eq!(
        get_bytes(&server.http, &playlist).0,
        403,
        "HLS refused to strangers at once"
    );
    let ended = Instant::now();
    flv.join().unwrap(); // returns when the server ends the response
    eprintln!("HTTP-FLV viewer dropped after {:?}", ended.elapsed());
    assert!(ended.elapsed() < Duration::from_secs(5), "the HTTP-FLV viewer was kept");
    let (_, err) = finish(rtmp_viewer, Duration::from_secs(10));
    eprintln!("RTMP viewer: {err}");

    // Alice's token works, until she is removed.
    let (status, alice_view) = json(http_as(
        &server.http,
        "GET",
        &format!("/api/broadcasts/{id}"),
        b"",
        Some(&alice),
    ));
    assert_eq!(status, 200);
    let hls = alice_view["watch"]["hls"].as_str().unwrap();
    let with_token = &hls[hls.find("/hls/").unwrap()..];
    assert_eq!(get_bytes(&server.http, with_token).0, 200);
    server.set_viewers(&id, &owner, &[]);
    assert_eq!(
        get_bytes(&server.http, with_token).0,
        403,
        "a removed viewer's token is revoked"
    );
    stop.store(true, Ordering::Relaxed);
    drop(publisher);
}

/// Revoking the stream key ends the publishing session: the publisher is off the air.
#[test]
fn a_revoked_key_ends_the_publisher() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 40, 500), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let (status, _) = http_as(
        &server.http,
        "DELETE",
        &format!("/api/broadcasts/{id}/stream_key"),
        b"",
        Some(&server.owner_token()),
    );
    assert_eq!(status, 204);
    let (ok, err) = finish(publisher, Duration::from_secs(10));
    assert!(!ok, "ffmpeg should fail when evicted");
    eprintln!("ffmpeg after eviction: {err}");
    server.wait_state(&id, "ended");
}

/// Thousands of playlist requests with invented user agents from one address count as a
/// handful of viewers.
#[test]
fn forged_user_agents_do_not_raise_the_viewer_count() {
    let server = Server::start();
    let (id, publisher) = live_with_playlist(&server, 30);
    let playlist = format!("/hls/{id}/index.m3u8");
    let mut s = TcpStream::connect(&server.http).unwrap();
    for i in 0..1000 {
        write!(
            s,
            "GET {playlist} HTTP/1.1\r\nHost: x\r\nUser-Agent: forged/{i}\r\n\r\n"
        )
        .unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let viewers = server.broadcast(&id)["viewers"].as_u64().unwrap();
    eprintln!("viewers after 1000 forged agents: {viewers}");
    assert!(viewers <= 9, "{viewers} viewers");
    drop(publisher);
}

/// ffmpeg publishes over RTMPS and watches over HTTPS (HTTP-FLV and LL-HLS).
#[test]
fn rtmps_publishing_and_https_playback_with_ffmpeg() {
    let data = temp_dir("tls");
    let (id, key) = {
        let plain = Server::start_in(&data);
        let (id, key, _) = plain.create_broadcast();
        (id, key)
    };
    let server = Server::start_in_with(&data, &["--tls-self-signed", "--rtmps", "127.0.0.1:0"]);
    let rtmps = server.rtmps.clone().expect("an RTMPS listener");
    let publisher = publish(
        &clip(Tracks::AudioVideo, 30, 500),
        &format!("rtmps://{rtmps}/live/{key}"),
    );
    std::thread::sleep(Duration::from_secs(3));
    for (what, path, file) in [
        ("HTTP-FLV", format!("/live/{id}.flv"), "out.flv"),
        ("LL-HLS", format!("/hls/{id}/index.m3u8"), "out.ts"),
    ] {
        let out = temp_dir("tls-watch").join(file);
        let viewer = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
            .arg(format!("https://{}{path}", server.http))
            .args(["-t", "3", "-c", "copy"])
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (ok, err) = finish(viewer, Duration::from_secs(30));
        assert!(ok, "HTTPS {what} playback failed: {err}");
        assert!(common::probe(&out).video_packets > 30, "{what}");
    }
    drop(publisher);
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}
