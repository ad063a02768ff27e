//! LL-HLS through a real nginx edge cache, configured by `deploy/nginx-edge.conf`: many
//! players following the live edge with blocking reload cost the origin about one request
//! per part and playlist update, not one per player; and a private broadcast stays private
//! through the cache.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Server, Tracks, clip, finish, get_bytes, http_as, json, publish, start_edge, stop_edge};

const PLAYERS: usize = 30;

#[test]
fn an_edge_cache_sends_the_origin_one_request_per_url_not_one_per_player() {
    let server = Server::start();
    let (id, key, _) = server.create_broadcast();
    let publisher = publish(&clip(Tracks::AudioVideo, 10, 500), &server.rtmp_url(&key));
    server.wait_state(&id, "live");
    let (nginx, edge, dir) = start_edge(&server.http);

    // Players follow the live edge for four seconds: blocking playlist request for the
    // hinted part, then the part.
    let players: Vec<_> = (0..PLAYERS)
        .map(|_| {
            let (edge, id) = (edge.clone(), id.clone());
            std::thread::spawn(move || {
                let mut requests = 0;
                let mut parts = 0;
                let (status, _, body) = get_bytes(&edge, &format!("/hls/{id}/index.m3u8"));
                assert_eq!(status, 200);
                let mut hint = hls::next_position(&String::from_utf8(body).unwrap()).unwrap();
                let until = Instant::now() + Duration::from_secs(4);
                while Instant::now() < until {
                    let (number, msn, part) = hint;
                    let (status, _, body) =
                        get_bytes(&edge, &format!("/hls/{id}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"));
                    assert_eq!(status, 200);
                    let (status, _, data) = get_bytes(&edge, &format!("/hls/{id}/part{number}.m4s"));
                    assert_eq!(status, 200);
                    assert_eq!(&data[4..8], b"moof");
                    requests += 2;
                    parts += 1;
                    hint = hls::next_position(&String::from_utf8(body).unwrap()).unwrap();
                }
                (requests + 1, parts)
            })
        })
        .collect();
    let mut requests = 0;
    let mut parts = 0;
    for p in players {
        let (r, n) = p.join().unwrap();
        requests += r;
        parts += n;
    }
    assert!(finish(publisher, Duration::from_secs(30)).0);
    stop_edge(nginx);

    // What reached the origin: requests that were not answered from the cache.
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let mut to_origin: HashMap<String, usize> = HashMap::new();
    let mut logged = 0;
    for line in log.lines() {
        let (status, uri) = line.split_once(' ').unwrap();
        logged += 1;
        if status != "HIT" && status != "UPDATING" && status != "STALE" {
            *to_origin.entry(uri.to_owned()).or_default() += 1;
        }
    }
    let origin_total: usize = to_origin.values().sum();
    let blocking: Vec<_> = to_origin
        .iter()
        .filter(|(u, _)| u.contains("_HLS_msn") || u.contains("/part"))
        .collect();
    let duplicated = blocking.iter().filter(|(_, n)| **n > 1).count();
    assert_eq!(logged, requests, "every player request went through the edge");
    assert!(parts >= PLAYERS * 5, "players followed the stream: {parts} parts");
    assert!(
        duplicated * 10 <= blocking.len(),
        "the origin saw {duplicated} of {} part/playlist URLs more than once",
        blocking.len()
    );
    assert!(
        origin_total * 10 <= requests,
        "{requests} player requests cost the origin {origin_total}: {to_origin:?}"
    );
}

#[test]
fn a_private_broadcast_stays_private_through_the_edge() {
    let server = Server::start();
    let alice = server.user("alice");
    let bob = server.user("bob");
    let (_, created) = json(http_as(
        &server.http,
        "POST",
        "/api/broadcasts",
        br#"{"viewers":["bob"]}"#,
        Some(&alice),
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let publisher = publish(
        &clip(Tracks::AudioVideo, 10, 500),
        &server.rtmp_url(created["stream_key"].as_str().unwrap()),
    );
    server.wait_state_as(&id, "live", &alice);
    let (_, token) = server.watch_as(&id, &bob);
    let (nginx, edge, _dir) = start_edge(&server.http);

    // bob, through the edge: the playlist, and a part it names (its URI carries the token).
    let playlist = format!("/hls/{id}/index.m3u8?token={token}");
    let (status, _, body) = get_bytes(&edge, &playlist);
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    let part = body
        .lines()
        .find_map(|l| l.split("URI=\"").nth(1).filter(|u| u.contains("part")))
        .map(|u| u.split('"').next().unwrap().to_owned())
        .expect("a part in the playlist");
    assert!(part.contains(&format!("token={token}")), "{part}");
    let (status, _, data) = get_bytes(&edge, &format!("/hls/{id}/{part}"));
    assert_eq!(status, 200);
    assert_eq!(&data[4..8], b"moof");

    // Anyone else, through the same edge and after bob filled its cache: the same files
    // without the token, or with a made-up one, are refused by the origin, not served from
    // the cache.
    let bare_part = part.split('?').next().unwrap();
    for path in [
        format!("/hls/{id}/index.m3u8"),
        format!("/hls/{id}/{bare_part}"),
        format!("/hls/{id}/{bare_part}?token=1.{}", "0".repeat(64)),
        format!("/hls/{id}/init.mp4"),
    ] {
        for _ in 0..2 {
            let (status, _, _) = get_bytes(&edge, &path);
            assert_eq!(status, 403, "{path}");
        }
    }
    stop_edge(nginx);
    assert!(finish(publisher, Duration::from_secs(30)).0);
}
