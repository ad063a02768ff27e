//! LL-HLS by the book, whatever the encoder: real publishers with the settings a user may
//! choose (keyframes every 0.5 s to 10 s, B-frames or not, audio only, video only, HEVC,
//! timestamps that wrap at 32 or 31 bits or jump back or forward), each checked three ways:
//! a strict validator (the npm `hls-parser` in strict mode plus the RFC 8216bis rules it
//! leaves out, `scripts/browser/validate.mjs`) on the live, ended, replay and
//! multivariant playlists; ffmpeg decoding the recording (init + every segment) without
//! an error, with decode times that only go forward; and hls.js in Chromium playing each
//! broadcast through, from live to its end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, Tracks, clip, clip_with, get_bytes, hevc::hevc_clip, publish, publish_flv, temp_dir};

/// Seconds of media a broadcast sends.
const SECONDS: u32 = 12;
/// Seconds of media of a broadcast with 10 s GOPs, whose viewers join at a keyframe.
const LONG: u32 = 32;

/// How a broadcast is published.
enum Publisher {
    /// ffmpeg sends the clip over RTMP, as it is.
    Ffmpeg(PathBuf),
    /// Our own encoder sends the clip over HTTP ingest with the timestamps `stamp` makes.
    Own(PathBuf, fn(u32) -> u32),
    /// Our own RTMP client (`livescope loadgen --clip`) sends the clip's tags as they are:
    /// Enhanced RTMP for an Enhanced FLV clip.
    Rtmp(PathBuf),
}

struct Case {
    name: &'static str,
    /// Seconds of media it sends.
    seconds: u32,
    publisher: Publisher,
    /// What ffprobe must find in the recording.
    codecs: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let av = || clip_with(Tracks::AudioVideo, SECONDS, 400, 30, 2);
    let only = std::env::var("LL_HLS_CASE").unwrap_or_default();
    let all = vec![
        Case {
            name: "keyframes every 0.5 s, B-frames",
            seconds: SECONDS,
            publisher: Publisher::Ffmpeg(clip_with(Tracks::AudioVideo, SECONDS, 400, 15, 2)),
            codecs: &["h264", "aac"],
        },
        Case {
            name: "keyframes every 10 s",
            seconds: LONG,
            publisher: Publisher::Ffmpeg(clip_with(Tracks::AudioVideo, LONG, 400, 300, 2)),
            codecs: &["h264", "aac"],
        },
        Case {
            name: "keyframes every 2 s, no B-frames",
            seconds: SECONDS,
            publisher: Publisher::Ffmpeg(clip_with(Tracks::AudioVideo, SECONDS, 400, 60, 0)),
            codecs: &["h264", "aac"],
        },
        Case {
            name: "audio only",
            seconds: SECONDS,
            publisher: Publisher::Ffmpeg(clip(Tracks::AudioOnly, SECONDS, 400)),
            codecs: &["aac"],
        },
        Case {
            name: "video only",
            seconds: SECONDS,
            publisher: Publisher::Ffmpeg(clip(Tracks::VideoOnly, SECONDS, 400)),
            codecs: &["h264"],
        },
        Case {
            name: "32-bit timestamp wrap",
            seconds: SECONDS,
            publisher: Publisher::Own(av(), |ts| ts.wrapping_add(u32::MAX - 4_000)),
            codecs: &["h264", "aac"],
        },
        Case {
            // ffmpeg's FLV writer keeps 31 bits.
            name: "31-bit timestamp wrap",
            seconds: SECONDS,
            publisher: Publisher::Own(av(), |ts| ts.wrapping_add((1 << 31) - 4_000) & 0x7fff_ffff),
            codecs: &["h264", "aac"],
        },
        Case {
            name: "encoder restart: timestamps jump back 50 s",
            seconds: SECONDS,
            publisher: Publisher::Own(av(), |ts| if ts < 6_000 { ts + 50_000 } else { ts }),
            codecs: &["h264", "aac"],
        },
        Case {
            name: "clock change: timestamps jump an hour forward",
            seconds: SECONDS,
            publisher: Publisher::Own(av(), |ts| if ts < 6_000 { ts } else { ts + 3_600_000 }),
            codecs: &["h264", "aac"],
        },
        Case {
            // Enhanced RTMP's HEVC, which Debian's ffmpeg 5.1 cannot send.
            name: "HEVC over Enhanced RTMP",
            seconds: SECONDS,
            publisher: Publisher::Rtmp(hevc_clip(SECONDS, true)),
            codecs: &["hevc", "aac"],
        },
    ];
    // LL_HLS_CASE picks the cases whose name holds it, to look at one closely.
    all.into_iter().filter(|c| c.name.contains(&only)).collect()
}

fn script(name: &str) -> String {
    format!("{}/../../scripts/browser/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the strict validator on playlist URLs; returns each failure with its playlist.
fn validate(urls: &[String]) -> Vec<String> {
    let out = Command::new("node")
        .arg(script("validate.mjs"))
        .args(urls)
        .output()
        .expect("node is installed (scripts/test.sh installs the browser check's packages)");
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        reports.len(),
        urls.len(),
        "the validator reported on every playlist: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    reports
        .into_iter()
        .filter(|r| r["ok"] != true)
        .map(|r| r.to_string())
        .collect()
}

/// Decodes init + every segment a playlist lists; returns ffmpeg's complaints, the codecs,
/// and the largest step between two decode times of a stream (negative if one goes back).
fn decode(server: &Server, id: &str, playlist: &str, out: &Path) -> (String, Vec<String>, f64) {
    let (status, _, mut data) = get_bytes(&server.http, &format!("/hls/{id}/init.mp4"));
    assert_eq!(status, 200);
    for uri in playlist.lines().filter(|l| l.starts_with("seg")) {
        let (status, _, seg) = get_bytes(&server.http, &format!("/hls/{id}/{uri}"));
        assert_eq!(status, 200, "{uri}");
        data.extend_from_slice(&seg);
    }
    std::fs::write(out, data).unwrap();
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let p = common::probe(out);
    let packets = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,dts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(out)
        .output()
        .unwrap();
    let mut last: std::collections::HashMap<String, f64> = Default::default();
    let mut largest_step = 0.0f64;
    for line in String::from_utf8_lossy(&packets.stdout).lines() {
        let Some((stream, dts)) = line.split_once(',') else {
            continue;
        };
        let Ok(dts) = dts.parse::<f64>() else { continue };
        if let Some(prev) = last.get(stream) {
            let step = dts - prev;
            largest_step = if step <= 0.0 {
                largest_step.min(step)
            } else {
                largest_step.max(step)
            };
        }
        last.insert(stream.to_owned(), dts);
    }
    (
        String::from_utf8_lossy(&decoded.stderr).into_owned(),
        p.codecs,
        largest_step,
    )
}

/// The seconds a media playlist lists.
fn listed_seconds(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

fn text(server: &Server, id: &str, file: &str) -> String {
    let (status, _, body) = get_bytes(&server.http, &format!("/hls/{id}/{file}"));
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{file}: {body}");
    body
}

/// The tests of this file each keep a browser busy playing; one at a time, so that a
/// 2-core machine plays each in real time.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_encoder_setting_plays_by_the_book() {
    let _browser = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let cases = cases();
    let mut broadcasts = Vec::new();
    for case in &cases {
        let (id, key, _) = server.create_broadcast();
        let running = match &case.publisher {
            Publisher::Ffmpeg(file) => Ok(publish(file, &server.rtmp_url(&key))),
            Publisher::Rtmp(file) => Ok(Command::new(env!("CARGO_BIN_EXE_livescope"))
                .args(["loadgen", "--publish", &server.rtmp_url(&key), "--play"])
                .arg(server.rtmp_url(&id))
                .args(["--viewers", "1", "--probes", "1", "--ramp", "0", "--warmup", "0"])
                .args(["--duration", &SECONDS.to_string(), "--clip"])
                .arg(file)
                .arg("--work")
                .arg(temp_dir("loadgen"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the load generator")),
            Publisher::Own(file, stamp) => {
                let (http, file, stamp) = (server.http.clone(), file.clone(), *stamp);
                Err(std::thread::spawn(move || publish_flv(&http, &key, &file, stamp)))
            }
        };
        broadcasts.push((id, running));
    }
    for (id, _) in &broadcasts {
        server.wait_state(id, "live");
    }
    // A viewer for each, in one browser, for the whole event.
    let urls: Vec<String> = broadcasts
        .iter()
        .map(|(id, _)| format!("http://{}/hls/{id}/index.m3u8", server.http))
        .collect();
    let players = Command::new("node")
        .arg(script("play-through.mjs"))
        .arg((LONG + 30).to_string())
        .args(&urls)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");

    // Mid-stream: the live and multivariant playlists, with parts, preload hint, a window
    // of several segments, across the wraps and jumps (at 4 to 6 s).
    std::thread::sleep(Duration::from_secs(8));
    let mut live = Vec::new();
    for (id, _) in &broadcasts {
        live.push(format!("http://{}/hls/{id}/index.m3u8", server.http));
        live.push(format!("http://{}/hls/{id}/master.m3u8", server.http));
    }
    let failures = validate(&live);
    assert!(failures.is_empty(), "live playlists:\n{}", failures.join("\n"));

    let mut ids = Vec::new();
    for (case, (id, running)) in cases.iter().zip(broadcasts) {
        match running {
            Ok(child) => {
                let (ok, err) = common::finish(child, Duration::from_secs(60));
                assert!(ok, "{}: the publisher: {err}", case.name);
            }
            Err(thread) => thread.join().unwrap().unwrap_or_else(|e| panic!("{}: {e}", case.name)),
        }
        server.wait_state(&id, "ended");
        ids.push(id);
    }
    // Ended: the live playlist, the recording and the replay's multivariant playlist.
    let dir = temp_dir("ll-hls");
    for (case, id) in cases.iter().zip(&ids) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !text(&server, id, "master.m3u8").contains("recording.m3u8") {
            assert!(std::time::Instant::now() < deadline, "{}: no replay", case.name);
            std::thread::sleep(Duration::from_millis(100));
        }
        let urls: Vec<String> = ["index.m3u8", "recording.m3u8", "master.m3u8"]
            .iter()
            .map(|f| format!("http://{}/hls/{id}/{f}", server.http))
            .collect();
        let failures = validate(&urls);
        assert!(
            failures.is_empty(),
            "{}: ended playlists:\n{}",
            case.name,
            failures.join("\n")
        );
        let master = text(&server, id, "master.m3u8");
        for attribute in ["BANDWIDTH=", "AVERAGE-BANDWIDTH=", "CODECS="] {
            assert!(master.contains(attribute), "{}: {master}", case.name);
        }
        if case.codecs[0] != "aac" {
            assert!(
                master.contains("RESOLUTION=320x240") && master.contains("FRAME-RATE=30.000"),
                "{}: {master}",
                case.name
            );
        }
        if case.codecs[0] == "hevc" {
            assert!(master.contains("CODECS=\"hvc1."), "{master}");
        }

        let recording = text(&server, id, "recording.m3u8");
        let file = dir.join(format!("{id}.mp4"));
        let (errors, codecs, step) = decode(&server, id, &recording, &file);
        assert!(
            errors.is_empty(),
            "{}: ffmpeg decoding the recording: {errors}",
            case.name
        );
        assert_eq!(codecs, case.codecs, "{}", case.name);
        // One steady timeline: decode times go forward, by a frame or so, across the
        // wraps and jumps.
        assert!(
            step > 0.0 && step < 0.2,
            "{}: a step of {step} s between frames",
            case.name
        );
        let seconds = listed_seconds(&recording);
        let sent = f64::from(case.seconds);
        // The load generator publishes for its measuring time plus its set-up, looping the
        // clip: a few seconds more than the clip on a busy machine.
        let over = if matches!(case.publisher, Publisher::Rtmp(_)) {
            6.0
        } else {
            1.5
        };
        assert!(
            seconds > sent - 1.5 && seconds < sent + over,
            "{}: {seconds} s recorded",
            case.name
        );
    }

    let out = players.wait_with_output().unwrap();
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        reports.len(),
        cases.len(),
        "hls.js reported on every broadcast: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (case, report) in cases.iter().zip(&reports) {
        if case.codecs[0] == "hevc" && report["hevcSupported"] == false {
            // Chromium decodes HEVC only where the platform does; ffmpeg played it above.
            eprintln!("this Chromium cannot decode HEVC: the HEVC broadcast was checked with ffmpeg only");
            continue;
        }
        let start = report["start"].as_f64().unwrap_or(0.0);
        let end = report["end"].as_f64().unwrap_or(0.0);
        assert!(report["fatal"] == false, "{}: {report}", case.name);
        assert!(report["live"] == false, "{}: hls.js saw the end: {report}", case.name);
        // Played through: from where it joined (a second or two in) to the end, never
        // stepping back and never skipping far ahead.
        // A viewer starts at a keyframe. With 10 s GOPs hls.js, having joined between the
        // first two, starts at the third (20 s): at least a GOP of it is played. The others
        // join a few seconds in (later when the machine is busy: ten publishers, ffmpeg
        // decoders and Chromium share two cores).
        let join = if case.seconds == LONG { 22.0 } else { 6.5 };
        assert!(
            end - start > f64::from(case.seconds) - join,
            "{}: played {start} to {end}: {report}",
            case.name
        );
        // The end comes in two steps, so hls.js plays to the last frame and says so.
        assert!(report["endedEvent"] == true, "{}: no `ended`: {report}", case.name);
        let timeline_end = report["timelineEnd"].as_f64().unwrap_or(0.0);
        assert!(
            end > timeline_end - 1.0,
            "{}: stopped before the end: {report}",
            case.name
        );
        assert!(report["maxStepBack"].as_f64().unwrap() < 0.1, "{}: {report}", case.name);
        assert!(
            report["maxStepForward"].as_f64().unwrap() < 2.0,
            "{}: {report}",
            case.name
        );
    }
}

/// Runs Shaka Player (scripts/browser/shaka.mjs) on a playlist; its one-line report.
fn shaka(args: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(script("shaka.mjs"))
        .args(args)
        .output()
        .expect("node is installed");
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|_| {
        panic!(
            "shaka.mjs printed no report: {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A second player: Shaka Player plays the live stream (with `sequenceMode`, which its
/// low-latency HLS needs until its issue #10589 is fixed in a release) and then the replay,
/// with its defaults, to the `ended` event.
#[test]
fn shaka_player_plays_the_live_stream_and_the_replay() {
    let _browser = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 16, 400), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    // A viewer opening the page of a live broadcast finds a segment or two, as here.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !text(&server, &id, "index.m3u8").contains("\nseg") {
        assert!(std::time::Instant::now() < deadline, "no segment");
        std::thread::sleep(Duration::from_millis(100));
    }
    let live_url = format!("http://{}/hls/{id}/index.m3u8", server.http);
    let live = shaka(&[
        "--config",
        r#"{"manifest":{"hls":{"sequenceMode":true}}}"#,
        &live_url,
        "8",
    ]);
    assert!(live["fatal"] == false && live["live"] == true, "{live}");
    assert!(live["currentTime"].as_f64().unwrap() > 3.0, "played: {live}");
    assert_eq!(
        (live["width"].as_u64(), live["height"].as_u64()),
        (Some(320), Some(240)),
        "{live}"
    );

    let (ok, err) = common::finish(publisher, Duration::from_secs(60));
    assert!(ok, "{err}");
    server.wait_state(&id, "ended");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !text(&server, &id, "master.m3u8").contains("recording.m3u8") {
        assert!(std::time::Instant::now() < deadline, "no replay");
        std::thread::sleep(Duration::from_millis(100));
    }
    let replay_url = format!("http://{}/hls/{id}/master.m3u8", server.http);
    let replay = shaka(&["--vod", &replay_url, "60"]);
    assert!(replay["fatal"] == false && replay["ended"] == true, "{replay}");
    assert!(
        replay["endedAt"].as_f64().unwrap() > 15.0,
        "played to the end: {replay}"
    );
}
