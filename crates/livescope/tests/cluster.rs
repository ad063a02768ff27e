//! Several nodes sharing one PostgreSQL and one NATS server: a broadcast published on one
//! node is watched on the others over RTMP, HTTP-FLV and LL-HLS (each pulls it from the
//! origin once), the API answers the same on every node and places publishers on the least
//! busy, a replay recorded on one node plays from any other, rooms, go-live notices and
//! access changes span the nodes, and a node that dies (kill -9) loses nothing
//! acknowledged: its room members carry on from another node, and a dead origin's
//! broadcast ends cleanly everywhere.

mod common;

use std::time::{Duration, Instant};

use common::room::join;
use common::{Events, ScratchNats, Server, Tracks, clip, finish, http, http_as, json, probe, publish, temp_dir, watch};
use livescope::store::scratch::ScratchPostgres;
use serde_json::json;

/// Three nodes, a, b and c, sharing a new PostgreSQL and a new NATS server (which must
/// outlive them).
fn three_nodes() -> (ScratchPostgres, ScratchNats, [Server; 3]) {
    let pg = ScratchPostgres::start().expect("a scratch PostgreSQL");
    let database = pg.create_database().unwrap();
    let nats = ScratchNats::start();
    let nodes =
        ["a", "b", "c"].map(|name| Server::start_with(&["--database", &database, "--nats", &nats.url, "--node", name]));
    (pg, nats, nodes)
}

#[test]
fn three_nodes_serve_one_broadcast_and_end_it_when_its_origin_dies() {
    let (_pg, _nats, [a, b, c]) = three_nodes();

    // Every node knows every node; a publisher is sent to the least busy.
    let (status, nodes) = json(http(&c.http, "GET", "/api/nodes", b""));
    assert_eq!(status, 200, "{nodes}");
    let mut names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"]);

    // An account made on one node logs in on another; its broadcast is published on A.
    let (id, key, _) = a.create_broadcast();
    let clip = clip(Tracks::AudioVideo, 30, 600);
    let publisher = publish(&clip, &a.rtmp_url(&key));
    // A short one beside it, whose replay C serves from A's recording once it ended.
    let (short, short_key, _) = a.create_broadcast();
    let short_publisher = publish(&common::clip(Tracks::AudioVideo, 4, 500), &a.rtmp_url(&short_key));
    let live = c.wait_state_as(&id, "live", &a.owner_token());
    assert_eq!(live["owner"], "broadcaster");
    let (_, list) = json(http(&b.http, "GET", "/api/broadcasts", b""));
    assert!(list.to_string().contains(&id), "the global list on B shows it: {list}");
    // Nodes report their load with their beat, every 5 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (_, ingest) = json(http(&c.http, "GET", "/api/ingest", b""));
        if ingest["node"] != "a" {
            break;
        }
        assert!(Instant::now() < deadline, "A has a publisher, B and C none: {ingest}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // B and C pull it from A once each and serve it on every path.
    std::thread::sleep(Duration::from_secs(1));
    let dir = temp_dir("cluster");
    let mut viewers = vec![
        ("rtmp-b", watch(&b.rtmp_url(&id), &dir.join("rtmp-b.flv"))),
        ("flv-c", watch(&c.flv_url(&id), &dir.join("flv-c.flv"))),
    ];
    // A plain HLS player (ffmpeg) starts from a whole segment: wait for B's second.
    let (status, _, _) = common::get_bytes(&b.http, &format!("/hls/{id}/index.m3u8?_HLS_msn=1&_HLS_part=0"));
    assert_eq!(status, 200);
    let hls = format!("http://{}/hls/{id}/index.m3u8", b.http);
    viewers.push(("hls-b", watch(&hls, &dir.join("hls-b.flv"))));
    std::thread::sleep(Duration::from_secs(6));
    let (_, on_b) = json(http(&b.http, "GET", &format!("/api/broadcasts/{id}"), b""));
    assert!(on_b["state"] == "live", "{on_b}");

    // The short broadcast ended on A; its replay plays from C.
    assert!(finish(short_publisher, Duration::from_secs(30)).0);
    a.wait_state(&short, "ended");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, master) = common::get_bytes(&c.http, &format!("/hls/{short}/master.m3u8"));
        if status == 200 && String::from_utf8_lossy(&master).contains("recording.m3u8") {
            break;
        }
        assert!(Instant::now() < deadline, "C never served the replay: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let replay = watch(
        &format!("http://{}/hls/{short}/master.m3u8", c.http),
        &dir.join("replay-c.flv"),
    );
    let (_, err) = finish(replay, Duration::from_secs(30));
    let p = probe(&dir.join("replay-c.flv"));
    assert!(p.codecs.contains(&"h264".to_owned()), "replay on C: {p:?} {err}");
    assert!(p.duration > 3.0, "replay on C: only {} s", p.duration);

    // A dies. Its viewers elsewhere see the stream end; the broadcast ends at A's last
    // beat, on every node, once A has been silent for 15 s.
    let killed_at = Instant::now();
    drop(a); // SIGKILL
    for (name, viewer) in viewers {
        let (_, err) = finish(viewer, Duration::from_secs(30));
        assert!(dir.join(format!("{name}.flv")).exists(), "{name}: {err}");
        let p = probe(&dir.join(format!("{name}.flv")));
        assert!(p.codecs.contains(&"h264".to_owned()), "{name}: {p:?}");
        assert!(p.first_video_is_key, "{name} starts on a keyframe");
        assert!(p.duration > 3.0, "{name}: only {} s arrived", p.duration);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, on_c) = json(http(&c.http, "GET", &format!("/api/broadcasts/{id}"), b""));
        if on_c["state"] == "ended" {
            assert!(on_c["ended_at"].is_string(), "{on_c}");
            break;
        }
        assert!(Instant::now() < deadline, "never ended: {on_c}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        killed_at.elapsed() >= Duration::from_secs(10),
        "not before A was taken for dead"
    );
    let (_, nodes) = json(http(&b.http, "GET", "/api/nodes", b""));
    assert!(!nodes.to_string().contains("\"a\""), "A is no longer listed: {nodes}");
    let _ = finish(publisher, Duration::from_secs(5));
    drop((b, c));
}

#[test]
fn rooms_notices_and_access_span_the_nodes_and_outlive_a_dead_node() {
    let (_pg, _nats, [a, b, c]) = three_nodes();
    let owner = a.owner_token();
    // A follower connected to C is told when the broadcaster goes live on A.
    let fan = c.user("fan");
    let (status, _) = http_as(&c.http, "PUT", "/api/users/broadcaster/follow", b"", Some(&fan));
    assert_eq!(status, 204);
    let mut notices = Events::connect(&c.http, &fan);
    let (id, key, _) = a.create_broadcast();
    // Someone waits in the room on B before the broadcast starts: B holds the room then.
    let early_bird = b.user("early_bird");
    let (mut early, _) = join(&b, &id, Some(&early_bird));
    let publisher = publish(&clip(Tracks::AudioVideo, 60, 400), &a.rtmp_url(&key));
    let notice = notices.next_event("broadcast_started");
    assert_eq!(notice["broadcast_id"], id.as_str());
    // Live on A now, the room's home is A: B asks its member to join again, and B's room
    // becomes a mirror of A's.
    assert_eq!(early.next_of("error")["code"], "reconnect");
    let (mut early, _) = join(&b, &id, Some(&early_bird));

    // The broadcaster is in the room on A, viewers on B and C.
    let (vb, vc) = (b.user("viewer_b"), c.user("viewer_c"));
    let (mut on_a, _) = join(&a, &id, Some(&owner));
    let (mut on_b, _) = join(&b, &id, Some(&vb));
    let (mut on_c, _) = join(&c, &id, Some(&vc));
    // Comments sent on C reach B (and A) once each, in the order sent, numbered in order.
    for i in 0..5 {
        on_c.send(json!({"type": "comment", "text": format!("c{i}")}));
    }
    for ws in [&mut on_b, &mut on_a, &mut early] {
        let seen: Vec<_> = (0..5).map(|_| ws.next_of("comment")).collect();
        let texts: Vec<_> = seen.iter().map(|c| c["text"].as_str().unwrap().to_owned()).collect();
        assert_eq!(texts, ["c0", "c1", "c2", "c3", "c4"]);
        assert!(seen.windows(2).all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));
        assert_eq!(seen[0]["user"], "viewer_c");
    }
    // Hearts from B reach A in a batch.
    on_b.send(json!({"type": "heart"}));
    assert_eq!(on_a.next_of("hearts")["count"], 1);
    // A poll opened on A counts votes from B and C.
    on_a.send(json!({"type": "poll_open", "question": "Which?", "options": ["red", "blue"], "seconds": 30}));
    let poll = on_b.next_of("poll")["id"].as_i64().unwrap();
    on_b.send(json!({"type": "vote", "poll": poll, "option": 0}));
    on_c.send(json!({"type": "vote", "poll": poll, "option": 1}));
    on_c.send(json!({"type": "vote", "poll": poll, "option": 0}));
    assert_eq!(
        on_c.next_of("error")["code"],
        "already_voted",
        "the home's answer reaches C"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = on_a.next_of("poll");
        if p["totals"] == json!([1, 1]) {
            break;
        }
        assert!(Instant::now() < deadline, "votes from B and C never counted: {p}");
    }
    // Presence counts the members of every node, on every node: the broadcaster on A, the
    // early bird and viewer_b on B, viewer_c on C.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let presence = on_b.next_presence();
        if presence["connected"] == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members never counted across nodes: {presence}"
        );
    }

    // B dies: its member reconnects to C and finds every acknowledged comment.
    on_b.send(json!({"type": "comment", "text": "from b"}));
    assert_eq!(on_a.next_of("comment")["text"], "from b");
    drop(b); // SIGKILL
    let (_, welcome) = join(&c, &id, Some(&vb));
    assert!(welcome["recent"].as_u64() >= Some(6), "{welcome}");
    let (mut again, _) = join(&c, &id, Some(&vb));
    let recent = again.next_of("recent");
    assert!(recent.to_string().contains("from b"), "{recent}");

    // Made private on A, for viewer_c only: a stranger's player on C is let go, viewer_c's room stays.
    let stranger = temp_dir("cluster-private").join("stranger.flv");
    let player = watch(&c.flv_url(&id), &stranger);
    std::thread::sleep(Duration::from_secs(2));
    a.set_viewers(&id, &owner, &["viewer_c"]);
    let (_, err) = finish(player, Duration::from_secs(15));
    assert!(stranger.exists(), "the stranger was watching before: {err}");
    on_c.send(json!({"type": "comment", "text": "still here"}));
    assert_eq!(on_a.next_of("comment")["text"], "still here");
    drop(publisher);
}
