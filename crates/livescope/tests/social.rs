//! The social control plane end to end over real HTTP with real ffmpeg: register, follow,
//! go live, the follower hears of it at once, the global list and the feed show it; views
//! are counted; a private broadcast plays only for the people it is for, on every path.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Events, Server, Tracks, clip, finish, get_bytes, http, http_as, json, probe, publish, temp_dir, watch};
use serde_json::Value;

fn ids(list: &Value) -> Vec<String> {
    list["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_follower_is_told_when_someone_goes_live_and_finds_the_broadcast() {
    let server = Server::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let (status, _) = http_as(&server.http, "PUT", "/api/users/alice/follow", b"", Some(&bob));
    assert_eq!(status, 204);
    let mut events = Events::connect(&server.http, &bob);

    let (status, created) = json(http_as(
        &server.http,
        "POST",
        "/api/broadcasts",
        br#"{"title":"hello followers"}"#,
        Some(&alice),
    ));
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["stream_key"].as_str().unwrap();
    let publisher = publish(&clip(Tracks::AudioVideo, 8, 500), &server.rtmp_url(key));

    let started = events.next_event("broadcast_started");
    assert_eq!(started["broadcast_id"], id.as_str());
    assert_eq!(started["owner"], "alice");
    assert_eq!(started["title"], "hello followers");

    server.wait_state(&id, "live");
    for sort in ["recent", "viewers", "random"] {
        let (status, list) = json(http(
            &server.http,
            "GET",
            &format!("/api/broadcasts?state=live&sort={sort}"),
            b"",
        ));
        assert_eq!(status, 200);
        assert!(ids(&list).contains(&id), "{sort}: {list}");
    }
    let (_, feed) = json(http_as(&server.http, "GET", "/api/feed", b"", Some(&bob)));
    assert_eq!(ids(&feed), std::slice::from_ref(&id));
    let (_, feed) = json(http_as(&server.http, "GET", "/api/feed", b"", Some(&alice)));
    assert!(ids(&feed).is_empty(), "alice follows nobody");
    let (_, stored) = json(http_as(&server.http, "GET", "/api/me/notifications", b"", Some(&bob)));
    assert_eq!(stored["notifications"][0]["broadcast_id"], id.as_str());
    assert_eq!(stored["notifications"][0]["type"], "broadcast_started");

    // Viewers over LL-HLS, HTTP-FLV and RTMP: their views are recorded.
    let hls = created["watch"]["hls"].as_str().unwrap();
    // ffmpeg plays whole segments: wait for the first to be complete.
    let (status, _) = http(
        &server.http,
        "GET",
        &format!("/hls/{id}/index.m3u8?_HLS_msn=1&_HLS_part=0"),
        b"",
    );
    assert_eq!(status, 200);
    assert!(plays(hls), "{hls}");
    let (_, now) = json(http(&server.http, "GET", &format!("/api/broadcasts/{id}"), b""));
    // Two HLS clients (this test's playlist request and ffmpeg: other user agents); each
    // counts until it has been idle a while.
    assert_eq!(now["viewers"], 2, "{now}");
    let dir = temp_dir("social");
    let flv = watch(&server.flv_url(&id), &dir.join("a.flv"));
    let rtmp = watch(&server.rtmp_url(&id), &dir.join("b.flv"));
    assert!(finish(publisher, Duration::from_secs(30)).0);
    assert!(finish(flv, Duration::from_secs(30)).0);
    assert!(finish(rtmp, Duration::from_secs(30)).0);
    server.wait_state(&id, "ended");
    let (status, stats) = json(http(&server.http, "GET", &format!("/api/broadcasts/{id}/stats"), b""));
    assert_eq!(status, 200);
    assert_eq!(stats["views"], 4, "{stats}");
    assert_eq!(stats["unique_viewers"], 1, "all from one address, anonymous: {stats}");
    assert!(stats["peak_concurrent_viewers"].as_u64() >= Some(2), "{stats}");

    // Ended broadcasts stay listed, as replays; the profile lists it too.
    let (_, replays) = json(http(&server.http, "GET", "/api/broadcasts?state=ended", b""));
    assert!(ids(&replays).contains(&id));
    let (_, profile) = json(http(&server.http, "GET", "/api/users/alice", b""));
    assert_eq!(profile["followers"], 1);
    assert_eq!(profile["broadcasts"][0]["id"], id.as_str());
}

/// Whether ffmpeg can read any media from `url`.
fn plays(url: &str) -> bool {
    play(url).0
}

/// Whether ffmpeg can read any media from `url`, and what it said.
fn play(url: &str) -> (bool, String) {
    let out = temp_dir("private").join("out.mp4");
    let run = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-rw_timeout",
            "5000000",
            "-i",
            url,
        ])
        .args(["-t", "1", "-c", "copy"])
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.success() && probe(&out).duration > 0.0, said)
}

#[test]
fn a_private_broadcast_plays_only_for_the_people_it_is_for() {
    let server = Server::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let eve = server.user("eve");
    // eve follows alice, but the broadcast is not for her: she must not even hear of it.
    http_as(&server.http, "PUT", "/api/users/alice/follow", b"", Some(&eve));
    let mut bob_events = Events::connect(&server.http, &bob);
    let mut eve_events = Events::connect(&server.http, &eve);

    let (_, created) = json(http_as(
        &server.http,
        "POST",
        "/api/broadcasts",
        br#"{"title":"for bob","viewers":["bob"]}"#,
        Some(&alice),
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["stream_key"].as_str().unwrap();
    let mut publisher = publish(&clip(Tracks::AudioVideo, 20, 500), &server.rtmp_url(key));
    assert_eq!(bob_events.next_event("broadcast_started")["broadcast_id"], id.as_str());
    server.wait_state_as(&id, "live", &alice);

    let (watch, token) = server.watch_as(&id, &bob);

    // The stranger: refused by the API and on every delivery path, with or without a
    // made-up token; absent from the global list and from her notifications.
    let (status, _) = http_as(&server.http, "GET", &format!("/api/broadcasts/{id}"), b"", Some(&eve));
    assert_eq!(status, 403);
    let forged = format!("{}.{}", token.split('.').next().unwrap(), "0".repeat(32));
    for query in [String::new(), format!("?token={forged}")] {
        for path in [
            format!("/live/{id}.flv{query}"),
            format!("/hls/{id}/index.m3u8{query}"),
            format!("/hls/{id}/master.m3u8{query}"),
            format!("/hls/{id}/init.mp4{query}"),
            format!("/hls/{id}/part1.m4s{query}"),
            format!("/hls/{id}/seg0.m4s{query}"),
        ] {
            let (status, _, body) = get_bytes(&server.http, &path);
            assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
        }
        let (played, said) = play(&format!("{}{query}", server.rtmp_url(&id)));
        assert!(!played && said.contains("private"), "RTMP play {query:?}: {said}");
    }
    let (_, list) = json(http(&server.http, "GET", "/api/broadcasts?state=live", b""));
    assert!(!ids(&list).contains(&id));
    let (_, stored) = json(http_as(&server.http, "GET", "/api/me/notifications", b"", Some(&eve)));
    assert!(stored["notifications"].as_array().unwrap().is_empty(), "{stored}");
    let (_, feed) = json(http_as(&server.http, "GET", "/api/feed", b"", Some(&eve)));
    assert!(ids(&feed).is_empty());

    // Bob plays it on every path with the URLs the API gave him.
    for path in ["rtmp", "flv", "hls"] {
        let url = watch[path].as_str().unwrap();
        assert!(plays(url), "bob cannot play {url}");
    }
    let (status, _, playlist) = get_bytes(&server.http, &format!("/hls/{id}/index.m3u8?token={token}"));
    assert_eq!(status, 200);
    let playlist = String::from_utf8(playlist).unwrap();
    assert!(playlist.contains(&format!("init.mp4?token={token}\"")), "{playlist}");
    let _ = publisher.kill();
    let _ = publisher.wait();

    // When alice next goes live in public, that is the first thing eve hears of.
    let (_, public) = json(http_as(&server.http, "POST", "/api/broadcasts", b"{}", Some(&alice)));
    let key = public["stream_key"].as_str().unwrap();
    let mut publisher = publish(&clip(Tracks::AudioVideo, 8, 500), &server.rtmp_url(key));
    assert_eq!(eve_events.next_event("broadcast_started")["broadcast_id"], public["id"]);
    let _ = publisher.kill();
    let _ = publisher.wait();
}
