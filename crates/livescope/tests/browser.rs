//! A real browser plays a live broadcast: hls.js in low-latency mode, in headless Chromium
//! (scripts/browser/play.mjs), near the live edge, with no errors.

mod common;

use std::time::Duration;

use common::{Server, Tracks, clip, finish, publish};

#[test]
fn hls_js_plays_a_live_broadcast_about_a_second_behind_the_edge() {
    let server = Server::start();
    let (id, key, created) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 20, 800), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let report = common::browser_check("play.mjs", [created["watch"]["hls"].as_str().unwrap(), "10"]);
    assert_eq!(report["supported"], true, "{report}");
    let fatal: Vec<_> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.as_str().unwrap().contains("fatal"))
        .collect();
    assert!(fatal.is_empty(), "{report}");
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(320), Some(240)),
        "{report}"
    );
    assert!(
        report["currentTime"].as_f64().unwrap() > 5.0,
        "playback advanced: {report}"
    );
    // hls.js aims at PART-HOLD-BACK (0.67 s) behind the live edge; 3 s would mean it fell back
    // to segment-based playback.
    let latency = report["latency"].as_f64().unwrap();
    assert!(latency > 0.3 && latency < 3.0, "{report}");
    let _ = finish(publisher, Duration::from_secs(30));
}
