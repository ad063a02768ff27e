//! Bad input gets a clear refusal and hurts no one else: unknown, reused and contended
//! stream keys, unknown ids, malformed RTMP and FLV, and a viewer that stops reading.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, Tracks, clip, finish, http, http_as, probe, publish, temp_dir, watch};

#[test]
fn unknown_ended_and_contended_keys_are_refused() {
    let server = Server::start();
    let clip = clip(Tracks::AudioVideo, 4, 500);

    let (ok, err) = finish(
        publish(&clip, &server.rtmp_url("live_nosuchkey")),
        Duration::from_secs(20),
    );
    assert!(!ok, "an unknown key must be refused");
    assert!(err.contains("unknown stream key"), "ffmpeg says why: {err}");

    let (status, body) = http(&server.http, "POST", "/ingest/live_nosuchkey.flv", b"FLV");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"error\":\"unknown_stream_key\""), "{body}");

    let (id, key, _) = server.create_broadcast();
    let first = publish(&clip, &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let (ok, err) = finish(publish(&clip, &server.rtmp_url(&key)), Duration::from_secs(20));
    assert!(!ok, "a second publisher must be refused");
    assert!(err.contains("already has a publisher"), "{err}");
    let (status, _) = http(&server.http, "POST", &format!("/ingest/{key}.flv"), b"FLV");
    assert_eq!(status, 409);
    // The first publisher is unaffected.
    let (ok, err) = finish(first, Duration::from_secs(20));
    assert!(ok, "{err}");
    server.wait_state(&id, "ended");

    let (ok, err) = finish(publish(&clip, &server.rtmp_url(&key)), Duration::from_secs(20));
    assert!(!ok, "an ended broadcast cannot be published to again");
    assert!(err.contains("ended"), "{err}");
    assert_eq!(server.broadcast(&id)["state"], "ended");
}

#[test]
fn unknown_ids_and_api_mistakes_get_4xx_json() {
    let server = Server::start();
    let out = temp_dir("refuse").join("x.flv");
    let (ok, _) = finish(watch(&server.rtmp_url("nosuchid"), &out), Duration::from_secs(20));
    assert!(!ok, "playing an unknown id fails");
    let (status, body) = http(&server.http, "GET", "/live/nosuchid.flv", b"");
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(&server.http, "GET", "/api/broadcasts/nosuchid", b"");
    assert_eq!(
        (status, body.contains("\"error\":\"not_found\"")),
        (404, true),
        "{body}"
    );
    let (status, body) = http(&server.http, "POST", "/api/broadcasts", b"{}");
    assert_eq!((status, body.contains("login_required")), (401, true), "{body}");
    let token = Some(server.owner_token());
    let token = token.as_deref();
    let (status, body) = http_as(&server.http, "POST", "/api/broadcasts", b"{not json", token);
    assert_eq!((status, body.contains("invalid_json")), (400, true), "{body}");
    let long = format!(r#"{{"title":"{}"}}"#, "x".repeat(201));
    let (status, _) = http_as(&server.http, "POST", "/api/broadcasts", long.as_bytes(), token);
    assert_eq!(status, 422);
    let (status, _) = http_as(&server.http, "POST", "/api/broadcasts", &vec![b' '; 100_000], token);
    assert_eq!(status, 413, "request bodies are limited");
    // A created broadcast that never went live is not watchable yet.
    let (id, _, _) = server.create_broadcast();
    let (status, body) = http(&server.http, "GET", &format!("/live/{id}.flv"), b"");
    assert_eq!((status, body.contains("not_live")), (404, true), "{body}");
}

/// Sends `bytes` as a fresh RTMP connection and reports whether the server closed it.
fn closed_after(server: &Server, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(&server.rtmp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn malformed_rtmp_and_flv_close_one_connection_and_nothing_else() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 6, 500), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let out = temp_dir("malformed").join("out.flv");
    let viewer = watch(&server.flv_url(&id), &out);

    // Wrong handshake version.
    assert!(closed_after(&server, &[6; 1537]));
    // A valid handshake followed by garbage chunks: a continuation with no first header,
    // a message larger than any limit, a command that is not AMF0.
    let mut handshake = vec![3u8];
    handshake.extend_from_slice(&[0u8; 1536 * 2]);
    for garbage in [
        vec![0xc5, 1, 2, 3],
        vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0],
        vec![0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0xff, 0xfe, 0xfd],
    ] {
        let mut bytes = handshake.clone();
        bytes.extend_from_slice(&garbage);
        assert!(
            closed_after(&server, &bytes),
            "garbage {garbage:?} closes the connection"
        );
    }
    // Random bytes of every length up to a few KiB never take the server down.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in (0..4096).step_by(97) {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut s = TcpStream::connect(&server.rtmp).unwrap();
        let _ = s.write_all(&bytes);
    }
    // Bad FLV over HTTP ingest: a clear 400, not a 500.
    let (id2, key2, _) = server.create_broadcast();
    let (status, body) = http(
        &server.http,
        "POST",
        &format!("/ingest/{key2}.flv"),
        b"GIF89a not an flv",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not an FLV stream"), "{body}");
    assert_eq!(server.broadcast(&id2)["state"], "ended");

    // The publisher and the viewer never noticed.
    let (ok, err) = finish(publisher, Duration::from_secs(30));
    assert!(ok, "{err}");
    let (ok, err) = finish(viewer, Duration::from_secs(15));
    assert!(ok, "{err}");
    let p = probe(&out);
    assert!(p.duration > 4.0, "{p:?}");
}

#[test]
fn a_stalled_viewer_neither_slows_others_nor_grows_memory_and_skips_to_a_keyframe() {
    // Push delivery alone: LL-HLS keeps a window of segments, a fixed cost measured elsewhere.
    let server = Server::start_with(&["--hls", "false"]);
    let (id, key, _) = server.create_broadcast();
    // 30 s at 8 Mbit/s sent at four times real time: 30 MB, far more than socket buffers
    // and the server's ring hold.
    let clip = clip(Tracks::VideoOnly, 30, 8000);
    let published_bytes = std::fs::metadata(&clip).unwrap().len();
    let baseline_kib = server.rss_kib();

    // The stalled viewer: asks for the stream, then reads nothing until the end.
    let publisher = common::publish_at(&clip, &server.rtmp_url(&key), 4.0);
    server.wait_state(&id, "live");
    let mut stalled = TcpStream::connect(&server.http).unwrap();
    write!(
        stalled,
        "GET /live/{id}.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let out = temp_dir("stall").join("out.flv");
    let reader = watch(&server.flv_url(&id), &out);

    let mut peak_kib = 0;
    let mut publisher = Some(publisher);
    while let Some(mut p) = publisher.take() {
        peak_kib = peak_kib.max(server.rss_kib());
        match p.try_wait().unwrap() {
            Some(status) => assert!(status.success(), "publisher failed"),
            None => {
                publisher = Some(p);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // The ring is 4 MiB plus the current GOP; everything else stays in socket buffers.
    assert!(
        peak_kib < baseline_kib + 40 * 1024,
        "server grew from {baseline_kib} KiB to {peak_kib} KiB"
    );

    // The reading viewer got everything.
    let (ok, err) = finish(reader, Duration::from_secs(30));
    assert!(ok, "{err}");
    let p = probe(&out);
    assert!(p.duration > 29.0, "the reading viewer got {} s", p.duration);

    // The stalled viewer, reading at last, finds a gap that resumes on a keyframe.
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut received = Vec::new();
    let _ = stalled.read_to_end(&mut received);
    let start = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = dechunk(&received[start..]);
    assert!(
        (body.len() as u64) < published_bytes * 3 / 4,
        "the stalled viewer skipped frames ({} of {published_bytes} bytes)",
        body.len()
    );
    let mut demuxer = flv::Demuxer::new(16 << 20);
    demuxer.push(&body);
    let mut last_ts = None;
    let mut jumps = 0;
    while let Ok(Some(tag)) = demuxer.next_tag() {
        if tag.kind != flv::TagKind::Video || tag.body.get(1) != Some(&1) {
            continue;
        }
        if last_ts.is_some_and(|last| tag.timestamp > last + 1000) {
            jumps += 1;
            assert_eq!(tag.body[0] >> 4, 1, "after a skip the next frame is a keyframe");
        }
        last_ts = Some(tag.timestamp);
    }
    assert!(jumps >= 1, "the stalled viewer skipped ahead");
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 || body.len() < end + 2 + size {
            out.extend_from_slice(&body[(end + 2).min(body.len())..]);
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
    out
}

#[test]
fn unknown_codecs_are_refused_with_a_reason() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    // Sorenson H.263 video and MP3 audio: valid FLV that livescope does not relay.
    let publisher = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3"])
        .args(["-c:v", "flv1", "-f", "flv"])
        .arg(server.rtmp_url(&key))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, _) = finish(publisher, Duration::from_secs(20));
    assert!(!ok, "ffmpeg must see its stream refused");
    let ended = server.wait_state(&id, "ended");
    assert_eq!(ended["viewers"], 0);
    // Nothing of it was relayed: the broadcast cannot be watched.
    let (status, _) = http(&server.http, "GET", &format!("/live/{id}.flv"), b"");
    assert_eq!(status, 404);
}
