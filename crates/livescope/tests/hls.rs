//! LL-HLS end to end: real ffmpeg publishes; playlists, blocking reload with concurrent
//! clients, parts, segments and replays are fetched over HTTP and decoded by ffprobe and
//! ffmpeg.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, Tracks, clip, finish, get_bytes, http, probe, publish, publish_at, temp_dir};

fn playlist(server: &Server, id: &str, query: &str) -> (u16, String, String) {
    let (status, head, body) = get_bytes(&server.http, &format!("/hls/{id}/index.m3u8{query}"));
    (status, head, String::from_utf8(body).unwrap())
}

/// Downloads init and every segment of a playlist into one fMP4 file.
fn download(server: &Server, id: &str, text: &str, out: &std::path::Path) {
    let (status, _, mut data) = get_bytes(&server.http, &format!("/hls/{id}/init.mp4"));
    assert_eq!(status, 200);
    for uri in text.lines().filter(|l| l.starts_with("seg")) {
        let (status, _, seg) = get_bytes(&server.http, &format!("/hls/{id}/{uri}"));
        assert_eq!(status, 200, "{uri}");
        data.extend_from_slice(&seg);
    }
    std::fs::write(out, data).unwrap();
}

/// The poster is a small MP4 that opens on a keyframe of the stream.
/// A raw request with extra header lines; the answer's status, head and body.
fn request(addr: &str, head: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(s, "{head}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text, response[end + 4..].to_vec())
}

/// A browser's CORS preflight is answered, and byte ranges of media are served as a CDN
/// and a browser expect.
fn ranges_and_preflight(server: &Server, id: &str) {
    let init = format!("/hls/{id}/init.mp4");
    let (status, _, whole) = get_bytes(&server.http, &init);
    assert_eq!(status, 200);
    let (status, head, first) = request(&server.http, &format!("GET {init} HTTP/1.1\r\nRange: bytes=0-7\r\n"));
    assert_eq!(status, 206, "{head}");
    assert!(
        head.contains(&format!("content-range: bytes 0-7/{}", whole.len())),
        "{head}"
    );
    assert_eq!(first, whole[..8]);
    let (status, _, tail) = request(&server.http, &format!("GET {init} HTTP/1.1\r\nRange: bytes=-4\r\n"));
    assert_eq!((status, tail.as_slice()), (206, &whole[whole.len() - 4..]));
    let (status, head, _) = request(
        &server.http,
        &format!("GET {init} HTTP/1.1\r\nRange: bytes={}-\r\n", whole.len()),
    );
    assert_eq!(status, 416, "{head}");
    assert!(
        head.contains(&format!("content-range: bytes */{}", whole.len())),
        "{head}"
    );
    for path in [init, format!("/live/{id}.flv")] {
        let (status, head, _) = request(
            &server.http,
            &format!(
                "OPTIONS {path} HTTP/1.1\r\nOrigin: https://elsewhere.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: range\r\n"
            ),
        );
        assert_eq!(status, 204, "{path}: {head}");
        assert!(head.contains("access-control-allow-origin: *"), "{head}");
        assert!(head.contains("access-control-allow-headers: range"), "{head}");
    }
}

fn assert_poster(server: &Server, id: &str) {
    let (status, head, data) = get_bytes(&server.http, &format!("/hls/{id}/poster.mp4"));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: video/mp4"), "{head}");
    assert!(data.len() < 100_000, "a poster is a picture, not {} bytes", data.len());
    let file = temp_dir("poster").join("poster.mp4");
    std::fs::write(&file, data).unwrap();
    let p = probe(&file);
    assert!(p.first_video_is_key && p.video_packets >= 1, "{p:?}");
    assert_eq!((p.width, p.height), (Some(320), Some(240)));
}

#[test]
fn a_live_broadcast_is_an_ll_hls_stream_that_decodes() {
    let server = Server::start();
    let (id, key, created) = server.create_broadcast();
    assert_eq!(
        created["watch"]["hls"],
        format!("http://{}/hls/{id}/index.m3u8", server.http)
    );
    let publisher = publish(&clip(Tracks::AudioVideo, 8, 800), &server.rtmp_url(&key));
    server.wait_state(&id, "live");

    // The first request waits for the first part rather than failing.
    let (status, head, text) = playlist(&server, &id, "");
    assert_eq!(status, 200, "{text}");
    assert!(head.contains("content-type: application/vnd.apple.mpegurl"));
    assert!(head.contains("access-control-allow-origin: *"));
    for tag in [
        "#EXT-X-MAP:URI=\"init.mp4\"",
        "#EXT-X-PART-INF:PART-TARGET=0.334",
        "CAN-BLOCK-RELOAD=YES",
        "PART-HOLD-BACK=0.668",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "#EXT-X-PART:DURATION=",
    ] {
        assert!(text.contains(tag), "{tag} missing from\n{text}");
    }
    assert!(text.contains("INDEPENDENT=YES"), "{text}");

    assert_poster(&server, &id);
    ranges_and_preflight(&server, &id);
    let (status, _, master) = get_bytes(&server.http, &format!("/hls/{id}/master.m3u8"));
    let master = String::from_utf8(master).unwrap();
    assert_eq!(status, 200);
    assert!(
        master.contains("CODECS=\"avc1.") && master.contains(",mp4a.40.2\""),
        "{master}"
    );
    assert!(master.contains("RESOLUTION=320x240"), "{master}");

    // Blocking reload: twenty players ask for the hinted part at once; all are held, then
    // answered with a playlist that holds it. The hinted part itself is held too.
    let (number, msn, part) = hls::next_position(&text).unwrap();
    let http_addr = server.http.clone();
    let part_request = {
        let (addr, id) = (http_addr.clone(), id.clone());
        std::thread::spawn(move || get_bytes(&addr, &format!("/hls/{id}/part{number}.m4s")))
    };
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            let (addr, id) = (http_addr.clone(), id.clone());
            std::thread::spawn(move || {
                get_bytes(&addr, &format!("/hls/{id}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"))
            })
        })
        .collect();
    for w in waiters {
        let (status, head, body) = w.join().unwrap();
        assert_eq!(status, 200);
        assert!(head.contains("cache-control: public, max-age=6"), "{head}");
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains(&format!("\"part{number}.m4s\""))
        );
    }
    let (status, head, bytes) = part_request.join().unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("immutable"), "{head}");
    assert_eq!(&bytes[4..8], b"moof", "a part is a CMAF fragment");

    // The hinted part is streamed while it is produced: its first CMAF chunk arrives while
    // the playlist does not yet list the part as complete. (A few tries, in case a busy
    // machine delays this test past the part's third of a second.)
    let early = (0..5).any(|_| hinted_part_arrives_before_it_is_complete(&server, &id));
    assert!(early, "the hinted part's first bytes came only once it was complete");

    // Too far ahead, or nonsense, is a 400.
    let (status, _, _) = playlist(&server, &id, &format!("?_HLS_msn={}", msn + 5));
    assert_eq!(status, 400);
    let (status, _, _) = playlist(&server, &id, "?_HLS_part=1");
    assert_eq!(status, 400);
    let (status, _, _) = playlist(&server, &id, "?_HLS_msn=x");
    assert_eq!(status, 400);

    // A plain HLS player (ffmpeg) plays the same playlist from its segments, once there is
    // a complete one (it ignores parts).
    let (status, _, _) = playlist(&server, &id, "?_HLS_msn=1&_HLS_part=0");
    assert_eq!(status, 200);
    let dir = temp_dir("hls");
    let player = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(format!("http://{}/hls/{id}/index.m3u8", server.http))
        .args(["-c", "copy", "-f", "mp4"])
        .arg(dir.join("player.mp4"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    assert!(finish(publisher, Duration::from_secs(30)).0);
    let (ok, err) = finish(player, Duration::from_secs(60));
    assert!(ok, "ffmpeg could not play the playlist: {err}");
    let p = probe(&dir.join("player.mp4"));
    assert_eq!(p.codecs, ["h264", "aac"]);
    assert!(p.duration > 3.0, "{p:?}");

    // The ended playlist is complete; its segments decode cleanly, B-frames and all.
    server.wait_state(&id, "ended");
    let (_, _, text) = ended_playlist(&server, &id);
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let file = dir.join("all.mp4");
    download(&server, &id, &text, &file);
    let p = probe(&file);
    assert_eq!(p.codecs, ["h264", "aac"]);
    assert_eq!((p.width, p.height), (Some(320), Some(240)));
    assert!(p.duration > 7.0, "{p:?}");
    assert!(p.first_video_is_key);
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
    let packets = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts,dts",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let packets: Vec<(i64, i64)> = String::from_utf8_lossy(&packets.stdout)
        .lines()
        .filter_map(|l| l.split_once(',').map(|(p, d)| (p.parse().unwrap(), d.parse().unwrap())))
        .collect();
    assert!(packets.windows(2).all(|w| w[1].1 > w[0].1), "decode times increase");
    assert!(
        packets.iter().any(|(pts, dts)| pts != dts),
        "B-frames keep their composition offsets"
    );
    assert!(packets.iter().all(|(pts, dts)| pts >= dts));
}

/// Asks for the hinted part, reads its first chunk, and checks whether the playlist still
/// lists the part as in progress; then reads the rest, which must be the complete part.
fn hinted_part_arrives_before_it_is_complete(server: &Server, id: &str) -> bool {
    use std::io::{BufRead, BufReader, Read, Write};
    let (_, _, text) = playlist(server, id, "");
    let (number, _, _) = hls::next_position(&text).unwrap();
    let mut socket = std::net::TcpStream::connect(&server.http).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        socket,
        "GET /hls/{id}/part{number}.m4s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(socket);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "{head}");
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    let mut chunk = || -> Vec<u8> {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let size = usize::from_str_radix(line.trim(), 16).unwrap();
        let mut data = vec![0; size + 2];
        reader.read_exact(&mut data).unwrap();
        data.truncate(size);
        data
    };
    let mut body = chunk();
    assert_eq!(&body[4..8], b"moof", "the first chunk is a CMAF chunk");
    let (_, _, now) = playlist(server, id, "");
    let listed = now
        .lines()
        .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&format!("\"part{number}.m4s\"")));
    loop {
        let more = chunk();
        if more.is_empty() {
            break;
        }
        body.extend_from_slice(&more);
    }
    let (status, _, whole) = get_bytes(&server.http, &format!("/hls/{id}/part{number}.m4s"));
    assert_eq!(status, 200);
    assert_eq!(body, whole, "the streamed part is the complete part");
    assert!(body.len() > 8 + u32::from_be_bytes(body[..4].try_into().unwrap()) as usize);
    !listed
}

/// The live playlist once it says the broadcast ended: a moment after the broadcast did,
/// since the end comes in two steps (the last parts, then EXT-X-ENDLIST).
fn ended_playlist(server: &Server, id: &str) -> (u16, String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, head, text) = playlist(server, id, "");
        if text.contains("#EXT-X-ENDLIST") || std::time::Instant::now() > deadline {
            return (status, head, text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a media playlist says: its MEDIA-SEQUENCE and each segment's number and duration.
fn listed(text: &str) -> (u64, Vec<(u64, String)>) {
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .expect("MEDIA-SEQUENCE")
        .parse()
        .unwrap();
    let mut segments = Vec::new();
    let mut duration = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = Some(d.trim_end_matches(',').to_owned());
        } else if let Some(n) = line.strip_prefix("seg").and_then(|l| l.strip_suffix(".m4s")) {
            segments.push((n.parse().unwrap(), duration.take().unwrap()));
        }
    }
    (first, segments)
}

fn seconds(text: &str) -> f64 {
    listed(text).1.iter().map(|(_, d)| d.parse::<f64>().unwrap()).sum()
}

/// A live playlist never contradicts what it said (RFC 8216bis 6.2.1): when the broadcast
/// ends it keeps its media sequence numbers and gains EXT-X-ENDLIST, and the whole
/// broadcast is the replay's, at its own URL, which the multivariant playlist and the API
/// name from then on.
#[test]
fn the_live_playlist_ends_true_to_itself_and_the_replay_is_the_whole_broadcast() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    // 24 s of media (longer than the 16 s live window), sent at four times real time.
    let mut publisher = publish_at(&clip(Tracks::AudioVideo, 24, 300), &server.rtmp_url(&key), 4.0);
    server.wait_state(&id, "live");
    let mut last_live = String::new();
    while publisher.try_wait().unwrap().is_none() {
        let (status, _, text) = playlist(&server, &id, "");
        if status == 200 && !text.contains("#EXT-X-ENDLIST") {
            last_live = text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(publisher.wait().unwrap().success());
    server.wait_state(&id, "ended");
    // Asked once, as soon as the API says the broadcast ended (its playlist does not say so
    // yet): the multivariant playlist waits for the recording rather than name the window.
    let (_, _, first) = get_bytes(&server.http, &format!("/hls/{id}/master.m3u8"));
    let first = String::from_utf8(first).unwrap();
    assert!(first.ends_with("\nrecording.m3u8\n"), "{first}");
    let (status, head, ended) = ended_playlist(&server, &id);
    assert_eq!(status, 200, "{ended}");
    assert!(
        ended.ends_with("#EXT-X-ENDLIST\n") && !ended.contains("#EXT-X-PART:"),
        "{ended}"
    );
    assert!(head.contains("immutable"), "it will not change: {head}");
    let (live_first, live_segments) = listed(&last_live);
    let (ended_first, ended_segments) = listed(&ended);
    assert!(ended_first >= live_first, "{last_live}\n{ended}");
    for (msn, duration) in &ended_segments {
        if let Some((_, before)) = live_segments.iter().find(|(m, _)| m == msn) {
            assert_eq!(duration, before, "segment {msn} kept its duration");
        }
    }
    assert!(seconds(&ended) < 20.0, "the live window, not the recording: {ended}");

    // The replay: the API and the multivariant playlist name the recording's playlist.
    let watch = server.broadcast(&id)["watch"]["hls"].as_str().unwrap().to_owned();
    assert_eq!(watch, format!("http://{}/hls/{id}/master.m3u8", server.http));
    let (_, _, master) = get_bytes(&server.http, &format!("/hls/{id}/master.m3u8"));
    let master = String::from_utf8(master).unwrap();
    assert!(master.ends_with("\nrecording.m3u8\n"), "{master}");
    assert!(
        master.contains("AVERAGE-BANDWIDTH=") && master.contains("FRAME-RATE=30.000"),
        "{master}"
    );
    let (status, _, text) = get_bytes(&server.http, &format!("/hls/{id}/recording.m3u8"));
    let text = String::from_utf8(text).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && text.ends_with("#EXT-X-ENDLIST\n"),
        "{text}"
    );
    assert_eq!(listed(&text).0, 0, "from the first segment");
    assert!(seconds(&text) > 23.0, "the whole broadcast: {text}");
    let file = temp_dir("replay-now").join("replay.mp4");
    download(&server, &id, &text, &file);
    assert!(probe(&file).duration > 23.0, "every segment it lists is served");
    // The ended live playlist is served as it was (segments from memory or the recording).
    let file = temp_dir("ended-now").join("ended.mp4");
    download(&server, &id, &ended, &file);
    assert!(probe(&file).duration > 8.0);
}

#[test]
fn an_ended_broadcast_is_a_replay_even_after_a_restart() {
    let data = temp_dir("replay");
    let (id, ended) = {
        let server = Server::start_in(&data);
        let (id, key, _) = server.create_broadcast();
        let publisher = publish(&clip(Tracks::AudioVideo, 5, 500), &server.rtmp_url(&key));
        assert!(finish(publisher, Duration::from_secs(30)).0);
        server.wait_state(&id, "ended");
        let (_, _, ended) = ended_playlist(&server, &id);
        // The recording is complete once the replay's multivariant playlist names it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8(get_bytes(&server.http, &format!("/hls/{id}/master.m3u8")).2)
            .unwrap()
            .contains("recording.m3u8")
        {
            assert!(std::time::Instant::now() < deadline, "the recording did not complete");
            std::thread::sleep(Duration::from_millis(50));
        }
        (id, ended)
    };
    let server = Server::start_in(&data);
    // The live playlist's URL still says what it said when the broadcast ended.
    let (status, head, text) = playlist(&server, &id, "");
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, ended);
    assert!(head.contains("immutable"));
    let (status, head, text) = get_bytes(&server.http, &format!("/hls/{id}/recording.m3u8"));
    let text = String::from_utf8(text).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert!(head.contains("immutable"));
    let file = temp_dir("replay-out").join("replay.mp4");
    download(&server, &id, &text, &file);
    let p = probe(&file);
    assert_eq!(p.codecs, ["h264", "aac"]);
    assert!(p.duration > 4.0, "{p:?}");
    let (status, _, master) = get_bytes(&server.http, &format!("/hls/{id}/master.m3u8"));
    assert_eq!(status, 200);
    let master = String::from_utf8(master).unwrap();
    assert!(
        master.contains("RESOLUTION=320x240") && master.contains("recording.m3u8"),
        "{master}"
    );
    assert_poster(&server, &id);
    drop(server);
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn unknown_and_never_live_broadcasts_are_404() {
    let server = Server::start();
    let (status, body) = http(&server.http, "GET", "/hls/nosuchid/index.m3u8", b"");
    assert_eq!(status, 404, "{body}");
    let (id, _, _) = server.create_broadcast();
    for file in ["index.m3u8", "master.m3u8", "init.mp4", "seg0.m4s", "part0.0.m4s"] {
        let (status, _) = http(&server.http, "GET", &format!("/hls/{id}/{file}"), b"");
        assert_eq!(status, 404, "{file}");
    }
    let (status, _) = http(&server.http, "GET", &format!("/hls/{id}/../../livescope.db"), b"");
    assert_eq!(status, 404);
    assert_eq!(server.broadcast(&id)["state"], "created");
}
