//! `kill -9` in the middle of a live broadcast: after a restart on the same data folder no
//! account, session, follow, broadcast, notification or view record is lost, and the
//! broadcast that was live is closed as ended at about the time it really stopped.

mod common;

use std::time::{Duration, SystemTime};

use common::{Events, Server, Tracks, clip, http, http_as, json, publish, temp_dir, watch};
use serde_json::Value;

fn ms(rfc3339: &Value) -> u128 {
    let t = humantime::parse_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()
}

#[test]
fn kill_9_during_a_live_broadcast_loses_nothing() {
    let data = temp_dir("durable");
    let server = Server::start_in(&data);
    let alice = server.user("alice");
    let bob = server.user("bob");
    assert_eq!(
        http_as(&server.http, "PUT", "/api/users/alice/follow", b"", Some(&bob)).0,
        204
    );
    let mut events = Events::connect(&server.http, &bob);
    let (_, created) = json(http_as(&server.http, "POST", "/api/broadcasts", b"{}", Some(&alice)));
    let id = created["id"].as_str().unwrap().to_owned();
    let key = created["stream_key"].as_str().unwrap();
    let mut publisher = publish(&clip(Tracks::AudioVideo, 30, 300), &server.rtmp_url(key));
    events.next_event("broadcast_started");
    let live = server.wait_state_as(&id, "live", &alice);
    let mut viewer = watch(&server.flv_url(&id), &temp_dir("durable-view").join("v.flv"));
    // Live for a while, across a store heartbeat (every 5 s).
    std::thread::sleep(Duration::from_secs(7));
    let killed_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    drop(server); // SIGKILL: no shutdown code runs.
    let _ = publisher.kill();
    let _ = viewer.kill();
    let _ = (publisher.wait(), viewer.wait());

    let server = Server::start_in(&data);
    // The session from before the crash still works; so does logging in again.
    let (status, me) = json(http_as(&server.http, "GET", "/api/me", b"", Some(&bob)));
    assert_eq!((status, me["username"].as_str()), (200, Some("bob")));
    server.user("alice");
    let (_, profile) = json(http(&server.http, "GET", "/api/users/alice", b""));
    assert_eq!(profile["followers"], 1, "{profile}");
    let ended = server.wait_state_as(&id, "ended", &alice);
    let (started, end) = (ms(&live["started_at"]), ms(&ended["ended_at"]));
    // The store hears from live broadcasts every 5 s: the end is the last time it did.
    assert!(
        end > started && end <= killed_at && killed_at - end <= 5_500,
        "ended at the last heartbeat before the kill: started {started}, ended {end}, killed {killed_at}"
    );
    let (_, stats) = json(http(&server.http, "GET", &format!("/api/broadcasts/{id}/stats"), b""));
    assert_eq!(
        (stats["views"].as_u64(), stats["peak_concurrent_viewers"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, stored) = json(http_as(&server.http, "GET", "/api/me/notifications", b"", Some(&bob)));
    assert_eq!(stored["notifications"][0]["broadcast_id"], id.as_str());
    // The old key cannot bring the ended broadcast back.
    let (ok, _) = common::finish(
        publish(&clip(Tracks::AudioVideo, 2, 300), &server.rtmp_url(key)),
        Duration::from_secs(20),
    );
    assert!(!ok);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
