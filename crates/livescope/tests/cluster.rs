//! Several nodes sharing one PostgreSQL: a broadcast published on one node is watched on
//! the others over RTMP, HTTP-FLV and LL-HLS (each pulls it from the origin once), the
//! API answers the same on every node, the API places publishers on the least busy node,
//! and when the origin dies (kill -9) its broadcast ends cleanly everywhere.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Tracks, clip, finish, http, json, probe, publish, temp_dir, watch};
use livescope::store::scratch::ScratchPostgres;

fn node(database: &str, name: &str) -> Server {
    Server::start_with(&["--database", database, "--node", name])
}

#[test]
fn three_nodes_serve_one_broadcast_and_end_it_when_its_origin_dies() {
    let pg = ScratchPostgres::start().expect("a scratch PostgreSQL");
    let database = pg.create_database().unwrap();
    let (a, b, c) = (node(&database, "a"), node(&database, "b"), node(&database, "c"));

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
