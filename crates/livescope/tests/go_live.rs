//! Going live and watching, end to end with real ffmpeg: RTMP and HTTP POST ingest, RTMP
//! and HTTP-FLV viewers, the GOP cache, the end of a broadcast, and audio- or video-only
//! streams.

mod common;

use std::time::Duration;

use common::{Server, Tracks, clip, finish, probe, publish, temp_dir, watch};

#[test]
fn rtmp_publish_reaches_rtmp_and_http_flv_viewers_from_a_keyframe() {
    let server = Server::start();
    let (id, key, created) = server.create_broadcast();
    assert_eq!(created["state"], "created");
    assert_eq!(
        created["publish"]["rtmp"],
        format!("rtmp://127.0.0.1:{}/live/{key}", server.rtmp.split(':').nth(1).unwrap())
    );
    assert!(
        created["watch"]["flv"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/live/{id}.flv"))
    );
    assert!(!key.contains(&id), "the key is not derived from the id");

    let clip = clip(Tracks::AudioVideo, 8, 800);
    let publisher = publish(&clip, &server.rtmp_url(&key));
    let live = server.wait_state(&id, "live");
    assert!(live["started_at"].is_string());
    // Join mid-stream: the GOP cache must hand the first picture over at once.
    std::thread::sleep(Duration::from_millis(1500));
    let dir = temp_dir("watch");
    let over_rtmp = watch(&server.rtmp_url(&id), &dir.join("rtmp.flv"));
    let over_flv = watch(&server.flv_url(&id), &dir.join("http.flv"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.broadcast(&id)["viewers"], 2);

    let (ok, err) = finish(publisher, Duration::from_secs(30));
    assert!(ok, "publisher failed: {err}");
    // Viewers see the end of the stream and exit cleanly on their own.
    for (name, viewer) in [("rtmp", over_rtmp), ("http", over_flv)] {
        let (ok, err) = finish(viewer, Duration::from_secs(15));
        assert!(ok, "{name} viewer failed: {err}");
        let p = probe(&dir.join(format!("{name}.flv")));
        assert_eq!(p.codecs, ["h264", "aac"], "{name}: {p:?}");
        assert_eq!((p.width, p.height), (Some(320), Some(240)), "{name}");
        assert!(p.first_video_is_key, "{name} starts on a keyframe");
        // Joined 1.5 s into an 8 s clip with 1 s GOPs: from the keyframe before the join,
        // 6.5 s of frames arrive; a player that took another second to start on a busy
        // machine (its join then falls after the next keyframe) still gets 5.5 s.
        assert!(p.duration > 5.4, "{name}: only {} s arrived", p.duration);
        assert!(
            p.video_packets >= 5 * 30,
            "{name}: only {} video frames",
            p.video_packets
        );
    }
    let ended = server.wait_state(&id, "ended");
    assert!(ended["ended_at"].is_string());
    assert_eq!(ended["viewers"], 0);
}

#[test]
fn http_post_ingest_works_like_rtmp() {
    let server = Server::start();
    let (id, key, created) = server.create_broadcast();
    let url = created["publish"]["http"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("http://{}/ingest/{key}.flv", server.http));
    let publisher = publish(&clip(Tracks::AudioVideo, 5, 800), &url);
    server.wait_state(&id, "live");
    let out = temp_dir("post").join("out.flv");
    let viewer = watch(&server.flv_url(&id), &out);
    let (ok, err) = finish(publisher, Duration::from_secs(30));
    assert!(ok, "publisher failed: {err}");
    let (ok, err) = finish(viewer, Duration::from_secs(15));
    assert!(ok, "viewer failed: {err}");
    let p = probe(&out);
    assert_eq!(p.codecs, ["h264", "aac"]);
    assert!(p.first_video_is_key);
    assert!(p.duration > 3.0, "{p:?}");
    server.wait_state(&id, "ended");
}

#[test]
fn audio_only_and_video_only_streams_are_relayed() {
    let server = Server::start();
    for (tracks, codecs) in [(Tracks::AudioOnly, vec!["aac"]), (Tracks::VideoOnly, vec!["h264"])] {
        let (id, key, _) = server.create_broadcast();
        let publisher = publish(&clip(tracks, 4, 500), &server.rtmp_url(&key));
        server.wait_state(&id, "live");
        std::thread::sleep(Duration::from_millis(500));
        let out = temp_dir("tracks").join("out.flv");
        let viewer = watch(&server.flv_url(&id), &out);
        assert!(finish(publisher, Duration::from_secs(30)).0);
        let (ok, err) = finish(viewer, Duration::from_secs(15));
        assert!(ok, "{tracks:?} viewer failed: {err}");
        let p = probe(&out);
        assert_eq!(p.codecs, codecs, "{tracks:?}");
        assert!(p.duration > 2.0, "{tracks:?}: {p:?}");
    }
}

#[test]
fn many_viewers_play_at_once() {
    let server = Server::start();
    let report = temp_dir("loadgen").join("report.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_livescope"))
        .args([
            "loadgen",
            "--api",
            &format!("http://{}", server.http),
            "--viewers",
            "200",
            "--ramp",
            "1",
        ])
        .args([
            "--warmup",
            "1",
            "--duration",
            "3",
            "--kbps",
            "300",
            "--server-pid",
            &server.pid().to_string(),
        ])
        .arg("--work")
        .arg(temp_dir("loadgen-work"))
        .arg("--json")
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success());
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["playing"], 200, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["stalled_at_end"], 0, "{r}");
    assert_eq!(
        r["unmatched_frames"], 0,
        "every frame received is one that was published: {r}"
    );
    // Every viewer got about 3 s of ~73 frames/s.
    assert!(r["frames_received"].as_u64().unwrap() > 200 * 150, "{r}");
}
