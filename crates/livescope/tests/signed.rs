//! Signed broadcasts checked at ingest and by viewers: a broadcaster registers an account key, publishes a
//! real ffmpeg clip signed as `signed::Signer` signs (records in SEI units of the H.264
//! itself), and the API says what the server found: verified for the clean stream,
//! tampered (from the stretch it happened in) for one with a byte changed after signing,
//! unsigned for a plain clip.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, Tracks, clip, http_as, publish_flv, temp_dir};
use ed25519_dalek::SigningKey;
use signed::sei::Codec;
use signed::{SessionKey, Signer};

/// Signs an FLV clip (H.264 with 4-byte NAL lengths, AAC) for `broadcast`; with `tamper`,
/// changes a byte of that video frame after signing, as a man in the middle would.
fn sign(clip: &Path, account: &SigningKey, broadcast: &str, tamper: Option<usize>) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let session = SessionKey::new(account, [42; 32], broadcast, now - 60_000, 3_600_000);
    let mut signer = Signer::new(session, Codec::Avc, 4, 30);
    let mut demuxer = flv::Demuxer::new(16 << 20);
    demuxer.push(&std::fs::read(clip).unwrap());
    let mut out = flv::encode_header(true, true).to_vec();
    let mut video_frames = 0;
    while let Some(tag) = demuxer.next_tag().unwrap() {
        let mut body = tag.body.to_vec();
        match tag.kind {
            // An AVC NALU packet: frame type, codec 7, packet type 1, composition time.
            flv::TagKind::Video if body.len() > 5 && body[0] & 0x0f == 7 && body[1] == 1 => {
                let keyframe = body[0] >> 4 == 1;
                let cts = i32::from_be_bytes([0, body[2], body[3], body[4]]) << 8 >> 8;
                let mut signed = signer.video(u64::from(tag.timestamp), cts, keyframe, &body[5..]);
                if tamper == Some(video_frames) {
                    *signed.last_mut().unwrap() ^= 0x01;
                }
                video_frames += 1;
                body.truncate(5);
                body.extend_from_slice(&signed);
            }
            flv::TagKind::Audio if body.len() > 2 && body[1] == 1 => signer.audio(&body[2..]),
            _ => {}
        }
        out.extend_from_slice(&flv::encode_tag(tag.kind, tag.timestamp, &body));
    }
    let path = temp_dir("signed").join(format!("{broadcast}.flv"));
    std::fs::write(&path, out).unwrap();
    path
}

/// Publishes each (stream key, FLV file) over HTTP ingest at once, each in a thread.
fn publish_all<const N: usize>(
    server: &Server,
    files: [(String, PathBuf); N],
) -> Vec<std::thread::JoinHandle<Result<(), String>>> {
    files
        .into_iter()
        .map(|(key, file)| {
            let http = server.http.clone();
            std::thread::spawn(move || publish_flv(&http, &key, &file, |ts| ts))
        })
        .collect()
}

/// The broadcast's signature state as the API shows it, once it is `want` (or the deadline).
fn signature(server: &Server, id: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let signature = server.broadcast(id)["signature"].clone();
        if signature["state"] == want || Instant::now() > deadline {
            return signature;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Registers `account`'s public key for the server's owner.
fn register(server: &Server, account: &SigningKey) {
    let public = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(account.verifying_key().to_bytes())
    };
    let body = serde_json::json!({ "public_key": public }).to_string();
    let (status, answer) = http_as(
        &server.http,
        "POST",
        "/api/keys",
        body.as_bytes(),
        Some(&server.owner_token()),
    );
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn the_server_checks_signatures_at_ingest_and_says_what_it_found() {
    let server = Server::start();
    let account = SigningKey::from_bytes(&[3; 32]);
    register(&server, &account);

    let source = clip(Tracks::AudioVideo, 8, 400);
    let (clean, clean_key, _) = server.create_broadcast();
    let (tampered, tampered_key, _) = server.create_broadcast();
    let (plain, plain_key, _) = server.create_broadcast();
    let files = [
        (clean_key, sign(&source, &account, &clean, None)),
        // Frame 100 is 3.33 s in: in the stretch from the keyframe at 3 s.
        (tampered_key, sign(&source, &account, &tampered, Some(100))),
        (plain_key, source.clone()),
    ];
    let publishers = publish_all(&server, files);
    for p in publishers {
        p.join().unwrap().unwrap();
    }

    let verified = signature(&server, &clean, "verified");
    assert_eq!(verified["state"], "verified", "{verified}");
    assert!(
        verified["records"].as_u64().unwrap() >= 6,
        "a record a second: {verified}"
    );
    let caught = signature(&server, &tampered, "tampered");
    assert_eq!(caught["state"], "tampered", "{caught}");
    assert_eq!(
        caught["tampered_at_ms"], 3000,
        "from the stretch it happened in: {caught}"
    );
    let unsigned = signature(&server, &plain, "unsigned");
    assert_eq!(unsigned["state"], "unsigned", "{unsigned}");
}

/// The owner's policy for a tampered stream: `end` cuts the publisher off at the first
/// mismatch; `drop` relays only stretches whose record matched, so viewers (and the
/// recording) never get the changed frames, only a gap in the chain of records; a clean
/// stream under `drop` loses nothing but its last, unsigned-for stretch.
#[test]
fn the_owners_policy_ends_a_tampered_broadcast_or_drops_what_does_not_match() {
    let server = Server::start();
    let account = SigningKey::from_bytes(&[5; 32]);
    register(&server, &account);
    let source = clip(Tracks::AudioVideo, 8, 400);
    let policy = |id: &str, policy: &str| {
        let body = serde_json::json!({ "signature_policy": policy }).to_string();
        let (status, answer) = http_as(
            &server.http,
            "PUT",
            &format!("/api/broadcasts/{id}/signature_policy"),
            body.as_bytes(),
            Some(&server.owner_token()),
        );
        assert_eq!(status, 200, "{answer}");
        let view: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(view["signature_policy"], policy);
    };
    let (ended, ended_key, created) = server.create_broadcast();
    assert_eq!(created["signature_policy"], "alert", "the default");
    policy(&ended, "end");
    let (dropped, dropped_key, _) = server.create_broadcast();
    policy(&dropped, "drop");
    let (clean, clean_key, _) = server.create_broadcast();
    policy(&clean, "drop");
    let set = |id: &str, body: &[u8]| {
        http_as(
            &server.http,
            "PUT",
            &format!("/api/broadcasts/{id}/signature_policy"),
            body,
            Some(&server.owner_token()),
        )
        .0
    };
    assert_eq!(
        set(&clean, br#"{"signature_policy": "explode"}"#),
        400,
        "an unknown policy is the caller's mistake"
    );

    let files = [
        // Frame 100 (3.33 s) changed: the stretch from 3 s does not match.
        (ended_key, sign(&source, &account, &ended, Some(100))),
        (dropped_key, sign(&source, &account, &dropped, Some(100))),
        (clean_key, sign(&source, &account, &clean, None)),
    ];
    let publishers = publish_all(&server, files);
    // While live, `drop` is neither chosen nor left: it decides how ingest was set up.
    server.wait_state(&clean, "live");
    server.wait_state(&ended, "live");
    assert_eq!(set(&clean, br#"{"signature_policy": "alert"}"#), 409);
    assert_eq!(set(&ended, br#"{"signature_policy": "drop"}"#), 409);
    let results: Vec<_> = publishers.into_iter().map(|p| p.join().unwrap()).collect();

    // `end`: cut off a moment after the stretch from 3 s closed, long before the clip's 8 s.
    let cut = &results[0];
    assert!(cut.is_err(), "the publisher was cut off: {cut:?}");
    let b = server.wait_state(&ended, "ended");
    assert_eq!(b["signature"]["state"], "tampered", "{b}");
    let time = |field: &str| humantime::parse_rfc3339(b[field].as_str().unwrap()).unwrap();
    let lasted = time("ended_at").duration_since(time("started_at")).unwrap();
    assert!(lasted < Duration::from_secs(7), "ended after {lasted:?}");

    // `drop`: the server saw the changed stretch; its recording has a gap where it was.
    assert!(results[1].is_ok() && results[2].is_ok(), "{results:?}");
    let seen = server.wait_state(&dropped, "ended")["signature"].clone();
    assert_eq!(
        (seen["state"].as_str(), seen["tampered_at_ms"].as_u64()),
        (Some("tampered"), Some(3000)),
        "{seen}"
    );
    let recording = |id: &str| {
        let out = watch(&[&format!("http://{}/hls/{id}/recording.m3u8", server.http)])
            .wait_with_output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
    };
    let after = recording(&dropped);
    assert_eq!(after["verdict"], "tampered", "{after}");
    assert!(
        after["reason"].as_str().unwrap().contains("missing"),
        "the viewer sees a stretch cut out, not changed frames: {after}"
    );
    let whole = server.wait_state(&clean, "ended")["signature"].clone();
    assert_eq!(whole["state"], "verified", "{whole}");
    let replay = recording(&clean);
    assert_eq!(
        replay["verdict"], "verified",
        "nothing dropped from a clean stream: {replay}"
    );
    assert!(replay["records"].as_u64().unwrap() >= 6, "{replay}");
}

/// `livescope broadcast` publishes over RTMPS too, checking the server's certificate: one
/// the broadcaster was told to trust (`--ca`) goes through and is verified; without it the
/// broadcaster refuses the server, as it should a stranger in the middle.
#[test]
fn livescope_broadcast_signs_over_rtmps_and_checks_the_servers_certificate() {
    let dir = temp_dir("rtmps-broadcast");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    // Accounts, the key and the broadcast are set up over plain HTTP, then the server
    // comes back with TLS on the same data.
    let data = temp_dir("rtmps-data");
    let (key_file, id, stream_key) = {
        let plain = Server::start_in(&data);
        let (key_file, _) = register_new_key(&plain);
        let (id, stream_key, _) = plain.create_broadcast();
        (key_file, id, stream_key)
    };
    let server = Server::start_in_with(
        &data,
        &["--tls-cert", &cert, "--tls-key", &key, "--rtmps", "127.0.0.1:0"],
    );
    let port = server.rtmps.as_ref().unwrap().rsplit(':').next().unwrap().to_owned();
    let https_port = server.http.rsplit(':').next().unwrap().to_owned();
    let state = || {
        let body = https_get(
            &format!("localhost:{https_port}"),
            &format!("/api/broadcasts/{id}"),
            &dir.join("cert.pem"),
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let url = format!("rtmps://localhost:{port}/live/{stream_key}");
    let broadcast = |ca: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_livescope"));
        cmd.args(["broadcast", "--to", &url, "--id", &id, "--key"])
            .arg(&key_file);
        if let Some(ca) = ca {
            cmd.args(["--ca", ca]);
        }
        cmd.arg("--input")
            .arg(clip(Tracks::AudioVideo, 4, 400))
            .output()
            .unwrap()
    };
    let refused = broadcast(None);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("TLS") || said.contains("certificate"), "{said}");
    assert_eq!(state()["state"], "created", "nothing reached the server");
    let sent = broadcast(Some(&cert));
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = state();
    while b["state"] != "ended" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        b = state();
    }
    assert_eq!(b["signature"]["state"], "verified", "{b}");
}

/// GETs `path` over HTTPS from `addr` (whose certificate `ca` vouches for), with rustls: the
/// body.
fn https_get(addr: &str, path: &str, ca: &Path) -> String {
    use std::io::{Read, Write};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = addr.split(':').next().unwrap().to_owned();
    let connection =
        rustls::ClientConnection::new(std::sync::Arc::new(config), host.clone().try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    common::parse_response(&answer).1
}

/// A key revoked while its broadcast is live stops verifying there and then: the server's
/// check, which follows the owner's keys, refuses the next certificate the revoked key made.
#[test]
fn a_key_revoked_while_live_stops_verifying() {
    let server = Server::start();
    let (key_file, fingerprint) = register_new_key(&server);
    let (id, broadcaster) = go_live_signed(&server, &key_file, 12);
    let live = signature(&server, &id, "verified");
    assert_eq!(live["state"], "verified", "{live}");
    let path = format!("/api/keys/{}", fingerprint.replace('/', "%2F").replace('+', "%2B"));
    let (status, answer) = http_as(&server.http, "DELETE", &path, b"", Some(&server.owner_token()));
    assert_eq!(status, 204, "{answer}");
    let after = signature(&server, &id, "tampered");
    assert_eq!(after["state"], "tampered", "{after}");
    assert!(after["reason"].as_str().unwrap().contains("revoked"), "{after}");
    let mut broadcaster = broadcaster;
    let _ = broadcaster.kill();
    let _ = broadcaster.wait();
}

/// The study's attack between the broadcaster and the server, on real ffmpeg output signed
/// by `livescope broadcast`: a man in the middle of the RTMP connection rewrites frames,
/// replaces frames, takes records out, moves records, or replays older signed media. Every
/// frame he touched lies in a span the server flagged, and in one a viewer flagged (over
/// HTTP-FLV, and over LL-HLS through the nginx edge); the clean stream through the same
/// proxy, and through the edge, raises no alarm.
#[test]
fn every_frame_a_man_in_the_middle_touches_is_flagged_by_the_server_and_the_viewers() {
    use common::rtmp_mitm::{self, Attack};
    let server = Server::start();
    let (key_file, _) = register_new_key(&server);
    let (nginx, edge, _dir) = common::start_edge(&server.http);
    let _nginx = Stop(Some(nginx));
    let attacks = [
        Attack::None,
        Attack::Rewrite,
        Attack::Replace,
        Attack::DropRecords,
        Attack::Reorder,
        Attack::Replay,
    ];
    let runs: Vec<_> = attacks
        .iter()
        .map(|&attack| {
            // The window starts 5 s in: every viewer has joined by then, on a slow machine
            // too.
            let mitm = rtmp_mitm::start(&server.rtmp, attack, 5000, 7000);
            let (id, broadcaster) = go_live_signed_via(&server, &key_file, 11, &mitm.addr);
            (attack, mitm, id, broadcaster)
        })
        .collect();
    let viewers: Vec<_> = runs
        .iter()
        .map(|(attack, _, id, _)| {
            server.wait_state(id, "live");
            let flv = watch(&[&format!("http://{}/live/{id}.flv", server.http)]);
            let through_edge = matches!(attack, Attack::None | Attack::Rewrite).then(|| {
                watch(&[
                    &format!("http://{edge}/hls/{id}/index.m3u8"),
                    "--api",
                    &format!("http://{}", server.http),
                ])
            });
            (flv, through_edge)
        })
        .collect();
    let covered = |flagged: &serde_json::Value, t: u64| {
        flagged.as_array().into_iter().flatten().any(|span| {
            let (a, b) = (span[0].as_u64().unwrap(), span[1].as_u64().unwrap());
            a <= t && t < b
        })
    };
    for ((attack, mitm, id, broadcaster), (flv, through_edge)) in runs.into_iter().zip(viewers) {
        let (_, published) = common::finish(broadcaster, Duration::from_secs(60));
        let ended = server.wait_state(&id, "ended");
        let mut at_server = ended["signature"].clone();
        at_server["log"] = format!("{published} {} to {}", ended["started_at"], ended["ended_at"]).into();
        let touched = mitm.touched.lock().unwrap().clone();
        let mut seen = vec![("server", at_server)];
        for (path, viewer) in [
            ("HTTP-FLV viewer", Some(flv)),
            ("LL-HLS viewer through the edge", through_edge),
        ] {
            let Some(viewer) = viewer else { continue };
            let out = viewer.wait_with_output().unwrap();
            let line: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{attack:?} {path}: {}", String::from_utf8_lossy(&out.stderr)));
            // The CLI says "verdict"; the API "state".
            let mut v = line.clone();
            v["state"] = line["verdict"].clone();
            v["log"] = String::from_utf8_lossy(&out.stderr).into();
            seen.push((path, v));
        }
        for (who, v) in seen {
            if attack == Attack::None {
                assert_eq!(v["state"], "verified", "{attack:?} at the {who}: {v}");
                assert!(v.get("flagged_ms").is_none(), "no false alarm at the {who}: {v}");
                continue;
            }
            assert_eq!(v["state"], "tampered", "{attack:?} at the {who}: {v}");
            assert!(!touched.is_empty(), "{attack:?}: the attack happened");
            if who == "LL-HLS viewer through the edge" {
                continue; // it joined at the live edge, after some of the touched frames
            }
            for &t in &touched {
                assert!(
                    covered(&v["flagged_ms"], t),
                    "{attack:?}: frame at {t} ms not flagged by the {who}: {v}"
                );
            }
            // Once the attack is over, the stream checks out again: at most the stretch
            // the chain resumes in is flagged after the window (5 s to 7 s).
            for span in v["flagged_ms"].as_array().unwrap() {
                assert!(
                    span[0].as_u64().unwrap() < 8000,
                    "{attack:?}: a false alarm after the attack at the {who}: {v}"
                );
            }
        }
    }
}

/// Stops nginx when the test ends, also by a failed assertion (an orphan would hold the
/// test's output open).
struct Stop(Option<std::process::Child>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            common::stop_edge(child);
        }
    }
}

/// The broadcaster's tools end to end: `livescope keygen` makes the account key, its public
/// half is registered, and `livescope broadcast` encodes a file with ffmpeg, signs it and
/// publishes it over RTMP; the server finds it verified.
/// `livescope keygen` makes an account key and its public half is registered for the
/// server's owner: the key file and the fingerprint keygen printed.
fn register_new_key(server: &Server) -> (PathBuf, String) {
    let key_file = temp_dir("broadcaster").join("livescope.key");
    let keygen = std::process::Command::new(env!("CARGO_BIN_EXE_livescope"))
        .args(["keygen", "--out"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let printed = String::from_utf8(keygen.stdout).unwrap();
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let body = serde_json::json!({ "public_key": field("public key:") }).to_string();
    let (status, answer) = http_as(
        &server.http,
        "POST",
        "/api/keys",
        body.as_bytes(),
        Some(&server.owner_token()),
    );
    assert_eq!(status, 201, "{answer}");
    (key_file, field("fingerprint:"))
}

/// Starts `livescope broadcast` of a `seconds`-long ffmpeg clip to a new broadcast: its id
/// and the process.
fn go_live_signed(server: &Server, key_file: &Path, seconds: u32) -> (String, std::process::Child) {
    go_live_signed_via(server, key_file, seconds, &server.rtmp)
}

/// As [`go_live_signed`], publishing to the RTMP server at `rtmp` (a man in the middle).
fn go_live_signed_via(server: &Server, key_file: &Path, seconds: u32, rtmp: &str) -> (String, std::process::Child) {
    let (id, key, _) = server.create_broadcast();
    let broadcaster = std::process::Command::new(env!("CARGO_BIN_EXE_livescope"))
        .args([
            "broadcast",
            "--to",
            &format!("rtmp://{rtmp}/live/{key}"),
            "--id",
            &id,
            "--key",
        ])
        .arg(key_file)
        .arg("--input")
        .arg(clip(Tracks::AudioVideo, seconds, 400))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (id, broadcaster)
}

#[test]
fn livescope_broadcast_signs_what_ffmpeg_encodes() {
    let server = Server::start();
    let (key_file, fingerprint) = register_new_key(&server);
    let (id, broadcaster) = go_live_signed(&server, &key_file, 10);
    let live = signature(&server, &id, "verified");
    assert_eq!(live["state"], "verified", "while live: {live}");

    // Viewers check for themselves, on each push path, and through a man in the middle
    // who changes one byte of one video frame on its way to the viewer.
    let api = format!("http://{}", server.http);
    let rtmp = watch(&[&server.rtmp_url(&id), "--api", &api]);
    let flv = watch(&[
        &format!("http://{}/live/{id}.flv", server.http),
        "--trust",
        &fingerprint,
    ]);
    let hls = watch(&[&format!("http://{}/hls/{id}/index.m3u8", server.http)]);
    let proxy = flv_man_in_the_middle(&server.http, 90);
    let attacked = watch(&[&format!("http://{proxy}/live/{id}.flv"), "--api", &api]);
    let rtmp_mitm = common::rtmp_mitm::start_play(&server.rtmp, 40);
    let rtmp_attacked = watch(&[&format!("rtmp://{}/live/{id}", rtmp_mitm.addr), "--api", &api]);
    let (hls_proxy, hls_touched) = hls_man_in_the_middle(&server.http, 0);
    let hls_attacked = watch(&[&format!("http://{hls_proxy}/hls/{id}/index.m3u8"), "--api", &api]);
    for (path, viewer, want, code, touched) in [
        ("RTMP", rtmp, "verified", 0, None),
        ("HTTP-FLV", flv, "verified", 0, None),
        ("LL-HLS", hls, "verified", 0, None),
        ("HTTP-FLV through the attacker", attacked, "tampered", 3, None),
        (
            "RTMP through the attacker",
            rtmp_attacked,
            "tampered",
            3,
            Some(rtmp_mitm.touched.clone()),
        ),
        (
            "LL-HLS through the attacker",
            hls_attacked,
            "tampered",
            3,
            Some(hls_touched.clone()),
        ),
    ] {
        let out = viewer.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let verdict: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("{path}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(verdict["verdict"], want, "{path}: {verdict}");
        assert_eq!(out.status.code(), Some(code), "{path}");
        // Every frame the attacker changed lies in a span the viewer flagged, but for those
        // of the last stretch, which no record follows: the viewer says from where it could
        // not check, at most a second (30 frames) before the end.
        let touched = touched.map(|t| t.lock().unwrap().clone()).unwrap_or_default();
        let unchecked = verdict["unchecked_from_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(unchecked == u64::MAX || unchecked >= 8900, "{path}: {verdict}");
        for t in touched.into_iter().filter(|&t| t < unchecked) {
            let flagged = verdict["flagged_ms"].as_array().unwrap();
            assert!(
                flagged
                    .iter()
                    .any(|s| s[0].as_u64().unwrap() <= t && t < s[1].as_u64().unwrap()),
                "{path}: the frame at {t} ms was not flagged: {verdict}"
            );
        }
    }

    let (ok, err) = common::finish(broadcaster, Duration::from_secs(60));
    assert!(ok, "livescope broadcast: {err}");
    let done = server.broadcast(&id)["signature"].clone();
    assert_eq!(done["state"], "verified", "{done}");
    assert!(done["records"].as_u64().unwrap() >= 4, "{done}");
}

/// The web player checks signatures itself (WebCrypto Ed25519 in Chromium, records read
/// from what hls.js and mpegts.js download): its badge says verified on a clean signed
/// broadcast over LL-HLS and HTTP-FLV, and tampered when a man in the middle between the
/// server and the browser changes media bytes (scripts/browser/signed.mjs). Screenshots are
/// left in `<cargo target tmp>/signed/`.
#[test]
fn the_web_player_shows_whether_a_broadcast_is_verified() {
    let server = Server::start();
    let (key_file, fingerprint) = register_new_key(&server);
    let (id, mut broadcaster) = go_live_signed(&server, &key_file, 90);
    let live = signature(&server, &id, "verified");
    assert_eq!(live["state"], "verified", "{live}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("signed");
    let (base, token) = (format!("http://{}", server.http), server.owner_token());
    let run = |viewport: &str, runs: &str| {
        let report = common::browser_check(
            "signed.mjs",
            [
                "--base",
                &base,
                "--id",
                &id,
                "--viewport",
                viewport,
                "--runs",
                runs,
                "--owner-token",
                &token,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        report["visits"].as_array().unwrap().clone()
    };
    let mut visits = run("desktop", "hls,flv,hls-tamper,flv-tamper");
    visits.extend(run("phone", "hls,studio"));
    assert_eq!(visits.len(), 6);
    for visit in &visits {
        let name = visit["run"].as_str().unwrap();
        if name == "studio" {
            // The owner's dashboard shows the server's check and sets the policy.
            assert!(visit["text"].as_str().unwrap().starts_with("Verified"), "{visit}");
            assert_eq!(visit["drop_offered"], false, "live: {visit}");
            // The dashboard breaks the delay down by stage, the viewers' buffers included.
            let stages = visit["delay_stages"].to_string();
            for stage in ["upload", "chunking", "player_buffer"] {
                assert!(stages.contains(stage), "{stage}: {visit}");
            }
            assert!(visit["errors"].as_array().unwrap().is_empty(), "{visit}");
            continue;
        }
        let states: Vec<&str> = visit["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or("hidden"))
            .collect();
        if name.ends_with("-tamper") {
            assert_eq!(visit["final"], "tampered", "{visit}");
            assert!(visit["tampered_responses"].as_u64().unwrap() > 0, "{visit}");
        } else {
            assert_eq!(visit["final"], "verified", "{visit}");
            assert!(!states.contains(&"tampered"), "no false alarm: {visit}");
            assert!(
                visit["title"].as_str().unwrap().contains(&fingerprint),
                "the badge names the key: {visit}"
            );
            assert!(visit["playing"].as_f64().unwrap() > 2.0, "{visit}");
        }
        assert!(visit["errors"].as_array().unwrap().is_empty(), "{visit}");
    }
    // What the browser saw tampered was tampered on the way to it, not at the server.
    let after = server.broadcast(&id);
    assert_eq!(after["signature"]["state"], "verified", "{after}");
    assert_eq!(after["signature_policy"], "end", "set in the studio: {after}");
    let _ = broadcaster.kill();
    let _ = broadcaster.wait();
}

/// Starts `livescope watch URL --verify ...` for the rest of the broadcast.
fn watch(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_livescope"))
        .arg("watch")
        .arg(args[0])
        .arg("--verify")
        .args(&args[1..])
        .args(["--seconds", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// An HTTP proxy in front of `upstream` for an LL-HLS viewer, request by request, which
/// flips the last byte of the 5th video frame of every segment from `from` on. Returns its
/// address and the media times (ms) it tampered with.
fn hls_man_in_the_middle(upstream: &str, from: u64) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let touched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = touched.clone();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let mut video: Option<(u32, u32)> = None; // track id, timescale
        for viewer in listener.incoming() {
            let Ok(mut viewer) = viewer else { return };
            let mut request = BufReader::new(viewer.try_clone().unwrap());
            let mut line = String::new();
            if request.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, _, mut body) = common::get_bytes(&upstream, &path);
            if path.ends_with("init.mp4") {
                video = fmp4::read::tracks(&body)
                    .ok()
                    .and_then(|t| t.iter().find(|t| t.video.is_some()).map(|t| (t.id, t.timescale)));
            }
            let segment = path
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix("seg")?.strip_suffix(".m4s")?.parse::<u64>().ok());
            if let (Some(n), Some((track, scale))) = (segment, video)
                && n >= from
                && let Ok(samples) = fmp4::read::samples(&body)
                && let Some(sample) = samples.iter().filter(|s| s.track == track).nth(4)
                && let Some(at) = body.windows(sample.data.len()).position(|w| w == &sample.data[..])
            {
                let end = at + sample.data.len() - 1;
                body[end] ^= 0x01;
                noted.lock().unwrap().push(sample.dts * 1000 / u64::from(scale));
            }
            let _ = write!(
                viewer,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = viewer.write_all(&body);
            let _ = viewer.flush();
            let _ = request.read(&mut [0u8; 0]);
        }
    });
    (addr, touched)
}

/// An HTTP proxy in front of `upstream` for one HTTP-FLV viewer, which passes the stream
/// on tag by tag and flips a bit of the `nth` video frame: the attack of a network between
/// the server and a viewer. Returns its address.
fn flv_man_in_the_middle(upstream: &str, nth: usize) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let (mut viewer, _) = listener.accept().unwrap();
        let mut request = BufReader::new(viewer.try_clone().unwrap());
        let mut line = String::new();
        request.read_line(&mut line).unwrap();
        let path = line.split_whitespace().nth(1).unwrap().to_owned();
        // HTTP/1.0: the server answers with a plain body up to the end of the connection.
        let mut server = std::net::TcpStream::connect(&upstream).unwrap();
        write!(server, "GET {path} HTTP/1.0\r\nHost: {upstream}\r\n\r\n").unwrap();
        let mut answer = BufReader::new(server);
        loop {
            let mut header = String::new();
            if answer.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                break;
            }
        }
        write!(
            viewer,
            "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        viewer.write_all(&flv::encode_header(true, true)).unwrap();
        let mut demuxer = flv::Demuxer::new(16 << 20);
        let mut buf = vec![0u8; 64 << 10];
        let mut video = 0;
        loop {
            let Ok(n) = answer.read(&mut buf) else { return };
            if n == 0 {
                return;
            }
            demuxer.push(&buf[..n]);
            while let Ok(Some(tag)) = demuxer.next_tag() {
                let mut body = tag.body.to_vec();
                if tag.kind == flv::TagKind::Video && body.len() > 5 && body[1] == 1 {
                    if video == nth {
                        *body.last_mut().unwrap() ^= 0x04;
                    }
                    video += 1;
                }
                if viewer
                    .write_all(&flv::encode_tag(tag.kind, tag.timestamp, &body))
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    addr
}
