//! Real-time interaction over real WebSockets: comments from many viewers reach everyone in
//! the same order, hearts are aggregated, a poll collects votes (a late one too) and closes,
//! moderation works for the broadcaster only, anonymous viewers and bad messages get clear
//! errors, a stalled client delays nobody, a slow one skips to the present, and the
//! timeline survives a restart.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::room::{Ws, join, try_join};
use common::{Server, Tracks, clip, http, http_as, json, publish, temp_dir};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// The JSON body of an answer.
fn body(status_body: (u16, String)) -> Value {
    json(status_body).1
}

/// A broadcast of a fresh owner: (owner's token, id, stream key).
fn broadcast(server: &Server, owner: &str) -> (String, String, String) {
    let token = server.user(owner);
    let b = body(http_as(&server.http, "POST", "/api/broadcasts", b"{}", Some(&token)));
    (
        token,
        b["id"].as_str().unwrap().to_owned(),
        b["stream_key"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn comments_reach_everyone_in_order_and_hearts_are_counted_in_batches() {
    let server = Server::start();
    let (owner, id, _) = broadcast(&server, "host");
    let (mut host, welcome) = join(&server, &id, Some(&owner));
    assert_eq!(
        (welcome["v"].as_u64(), welcome["role"].as_str()),
        (Some(1), Some("broadcaster"))
    );
    let tokens: Vec<String> = (0..4).map(|i| server.user(&format!("fan{i}"))).collect();
    let mut fans: Vec<Ws> = tokens.iter().map(|t| join(&server, &id, Some(t)).0).collect();
    let mut anons: Vec<Ws> = (0..4).map(|_| join(&server, &id, None).0).collect();
    assert_eq!(join(&server, &id, None).1["role"], "anonymous");

    // Four commenters at once, five comments each.
    let threads: Vec<_> = fans
        .drain(..)
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                for n in 0..5 {
                    ws.send(
                        json!({"type": "comment", "text": format!("fan{i} says {n} <b>hi</b>"), "media_ts": 1000 * n}),
                    );
                }
                ws
            })
        })
        .collect();
    let mut fans: Vec<Ws> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut orders = Vec::new();
    for ws in fans
        .iter_mut()
        .chain(anons.iter_mut())
        .chain(std::iter::once(&mut host))
    {
        let comments: Vec<Value> = (0..20).map(|_| ws.next_of("comment")).collect();
        orders.push(comments.iter().map(|c| c["id"].as_i64().unwrap()).collect::<Vec<_>>());
        assert!(
            comments.iter().any(|c| c["text"] == "fan2 says 3 <b>hi</b>"),
            "text is relayed as text"
        );
        assert!(
            comments
                .iter()
                .all(|c| c["media_ts"].is_i64() && c["server_ts"].is_i64())
        );
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "everyone sees one order");
    assert!(orders[0].windows(2).all(|w| w[0] < w[1]));

    // Anonymous viewers heart; the hearts arrive as a few batches that add up.
    for ws in anons.iter_mut() {
        for _ in 0..10 {
            ws.send(json!({"type": "heart", "media_ts": 5000}));
        }
    }
    let (mut total, mut batches) = (0, 0);
    while total < 40 {
        let h = host.next_of("hearts");
        total += h["count"].as_u64().unwrap();
        batches += 1;
        assert_eq!(h["media_ts_from"], 5000);
    }
    assert_eq!(total, 40);
    assert!(batches < 40, "{batches} batches for 40 hearts");

    // A newcomer sees the latest comments at once.
    let (mut newcomer, welcome) = join(&server, &id, None);
    assert_eq!(welcome["recent"], 20);
    let mut recent = Vec::new();
    while recent.len() < 20 {
        recent.extend(newcomer.next_of("recent")["comments"].as_array().unwrap().clone());
    }
    assert_eq!(recent.len(), 20);
    let ids: Vec<i64> = recent.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, orders[0], "the latest comments, oldest first");
}

#[test]
fn anonymous_limits_bad_messages_and_private_rooms() {
    let server = Server::start();
    let (owner, id, _) = broadcast(&server, "host");
    let (mut anon, _) = join(&server, &id, None);
    anon.send(json!({"type": "comment", "text": "hello"}));
    assert_eq!(anon.next_of("error")["code"], "login_required");
    anon.send(json!({"type": "vote", "poll": 1, "option": 0}));
    assert_eq!(anon.next_of("error")["code"], "login_required");
    anon.socket.send(Message::text("{not json")).unwrap();
    assert_eq!(anon.next_of("error")["code"], "bad_message");
    anon.send(json!({"type": "explode"}));
    assert_eq!(anon.next_of("error")["code"], "bad_message");
    anon.send(json!({"type": "poll_open", "question": "q", "options": ["a", "b"], "seconds": 5}));
    assert_eq!(anon.next_of("error")["code"], "broadcaster_only");
    // Hearts: a burst of 20, then 10 a second; the extra ones are refused and not counted.
    let (mut hearty, _) = join(&server, &id, None);
    for _ in 0..25 {
        hearty.send(json!({"type": "heart"}));
    }
    assert_eq!(hearty.next_of("error")["code"], "rate_limited");
    let mut counted = 0;
    while counted < 20 {
        counted += hearty.next_of("hearts")["count"].as_u64().unwrap();
    }
    assert!(counted <= 22, "{counted} hearts counted of a burst of 25");

    let fan = server.user("fan");
    let (mut ws, _) = join(&server, &id, Some(&fan));
    ws.send(json!({"type": "comment", "text": "x".repeat(281)}));
    assert_eq!(ws.next_of("error")["code"], "bad_comment");
    for n in 0..6 {
        ws.send(json!({"type": "comment", "text": format!("c{n}")}));
    }
    assert_eq!(ws.next_of("error")["code"], "rate_limited", "the sixth comment at once");

    // A frame over the limit, or a flood, closes that connection only.
    let (mut big, _) = join(&server, &id, None);
    let _ = big.socket.send(Message::text("x".repeat(10_000)));
    big.until_closed();
    let (mut flood, _) = join(&server, &id, None);
    for _ in 0..300 {
        if flood.socket.send(Message::text("{}")).is_err() {
            break;
        }
    }
    flood.until_closed();
    anon.send(json!({"type": "heart", "media_ts": 777}));
    while anon.next_of("hearts")["media_ts_from"] != 777 {}
    // (the others carried on)

    // A private broadcast's room needs its playback token.
    let private = body(http_as(
        &server.http,
        "POST",
        "/api/broadcasts",
        br#"{"viewers":["fan"]}"#,
        Some(&owner),
    ));
    let pid = private["id"].as_str().unwrap();
    match try_join(&server, pid, None) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a stranger joined a private room: {:?}", other.is_ok()),
    }
    let (_, token) = server.watch_as(pid, &fan);
    // The token alone is not enough: the room needs to know who is in it (or someone
    // blocked there could come back anonymous).
    let request = format!("ws://{}/api/broadcasts/{pid}/live?token={token}", server.http);
    match tungstenite::connect(request) {
        Err(tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 403);
            let error: Value = serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(error["error"], "invited_only", "{error}");
        }
        other => panic!("an anonymous viewer joined a private room: {:?}", other.is_ok()),
    }
    let mut request = format!("ws://{}/api/broadcasts/{pid}/live?token={token}", server.http)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {fan}").parse().unwrap());
    assert!(
        tungstenite::connect(request).is_ok(),
        "an invited viewer joins with the token"
    );
}

#[test]
fn moderation_is_for_the_broadcaster_only() {
    let server = Server::start();
    let (owner, id, _) = broadcast(&server, "host");
    let (mut host, _) = join(&server, &id, Some(&owner));
    let [bob, carol, dave] = ["bob", "carol", "dave"].map(|n| server.user(n));
    let (mut b, _) = join(&server, &id, Some(&bob));
    let (mut c, _) = join(&server, &id, Some(&carol));
    let (mut d, _) = join(&server, &id, Some(&dave));
    c.send(json!({"type": "comment", "text": "rude"}));
    let rude = host.next_of("comment")["id"].as_i64().unwrap();
    for message in [
        json!({"type": "delete_comment", "comment": rude}),
        json!({"type": "mute", "user": "carol"}),
        json!({"type": "block", "user": "dave"}),
    ] {
        b.send(message);
        assert_eq!(b.next_of("error")["code"], "broadcaster_only");
    }
    host.send(json!({"type": "delete_comment", "comment": rude}));
    assert_eq!(b.next_of("comment_deleted")["comment"], rude);
    host.send(json!({"type": "mute", "user": "carol"}));
    host.send(json!({"type": "block", "user": "dave"}));
    // Muted: carol is told, and nobody sees her comments.
    std::thread::sleep(Duration::from_millis(200));
    c.send(json!({"type": "comment", "text": "again"}));
    assert_eq!(c.next_of("error")["code"], "muted");
    c.send(json!({"type": "heart"}));
    assert_eq!(
        c.next_of("error")["code"],
        "muted",
        "a muted user's hearts are refused too"
    );
    // Blocked: dave is disconnected and cannot come back.
    assert!(d.until_closed().contains(&"blocked".to_owned()));
    match try_join(&server, &id, Some(&dave)) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a blocked user joined again: {:?}", other.is_ok()),
    }
    b.send(json!({"type": "comment", "text": "still here"}));
    assert_eq!(host.next_of("comment")["text"], "still here");
    let timeline = body(http(
        &server.http,
        "GET",
        &format!("/api/broadcasts/{id}/timeline"),
        b"",
    ));
    let texts: Vec<&str> = timeline["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(!texts.contains(&"rude"), "deleted comments stay deleted: {texts:?}");
}

/// A socket with a tiny receive buffer that never reads: a client stuck on a bad network.
fn stalled_client(server: &Server, id: &str) -> TcpStream {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let addr: std::net::SocketAddrV4 = server.http.parse().unwrap();
    let stream = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let size: libc::c_int = 2048;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        assert_eq!(
            libc::connect(
                fd,
                &sin as *const _ as *const libc::sockaddr,
                std::mem::size_of_val(&sin) as u32
            ),
            0
        );
        TcpStream::from_raw_fd(fd)
    };
    let mut s = &stream;
    write!(
        s,
        "GET /api/broadcasts/{id}/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    stream
}

#[test]
fn a_stalled_client_delays_nobody_and_is_dropped() {
    let server = Server::start();
    let (_, id, _) = broadcast(&server, "host");
    let stalled = stalled_client(&server, &id);
    // Let the stalled client get its welcome, then stop reading for good.
    std::thread::sleep(Duration::from_millis(300));
    let (mut watcher, _) = join(&server, &id, None);
    // Twenty commenters send their burst of long comments: about 110 KB for every client.
    let tokens: Vec<String> = (0..20).map(|i| server.user(&format!("talker{i}"))).collect();
    let long = "\u{1F600}".repeat(280);
    let mut talkers = Vec::new();
    for t in &tokens {
        let (mut ws, _) = join(&server, &id, Some(t));
        for _ in 0..5 {
            ws.send(json!({"type": "comment", "text": long}));
        }
        talkers.push(ws);
    }
    let ids: Vec<i64> = (0..100)
        .map(|_| watcher.next_of("comment")["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "the watcher got every comment, in order"
    );
    // The stalled client stopped reading (and so answers no ping); the server gives up on
    // it rather than hold its connection forever.
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut buf = [0u8; 65536];
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled client was never dropped"
        );
        match std::io::Read::read(&mut &stalled, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    watcher.send(json!({"type": "heart"}));
    assert_eq!(watcher.next_of("hearts")["count"], 1, "the watcher was never held up");
}

#[test]
fn a_poll_counts_a_late_vote_and_the_timeline_survives_a_restart() {
    let data = temp_dir("poll");
    let server = Server::start_in(&data);
    let (owner, id, key) = broadcast(&server, "host");
    let mut publisher = publish(&clip(Tracks::AudioVideo, 60, 300), &server.rtmp_url(&key));
    server.wait_state_as(&id, "live", &owner);
    let (mut host, _) = join(&server, &id, Some(&owner));
    let [bob, carol, dave] = ["bob", "carol", "dave"].map(|n| server.user(n));
    let (mut b, _) = join(&server, &id, Some(&bob));
    let (mut c, _) = join(&server, &id, Some(&carol));
    let (mut d, _) = join(&server, &id, Some(&dave));
    // carol's player is 10 s behind live, dave's is at the edge.
    c.send(json!({"type": "delay", "ms": 10_000}));
    d.send(json!({"type": "delay", "ms": 0}));
    b.send(json!({"type": "heart", "media_ts": 1500}));
    b.send(json!({"type": "comment", "text": "first!", "media_ts": 1200}));

    host.send(json!({"type": "poll_open", "question": "Which?", "options": ["red", "blue"], "seconds": 2}));
    let poll = b.next_of("poll");
    let poll_id = poll["id"].as_i64().unwrap();
    assert_eq!(poll["state"], "open");
    b.send(json!({"type": "vote", "poll": poll_id, "option": 0, "media_ts": 2000}));
    b.send(json!({"type": "vote", "poll": poll_id, "option": 1, "media_ts": 2100}));
    assert_eq!(b.next_of("error")["code"], "already_voted");
    // The poll closes at the live edge...
    loop {
        if c.next_of("poll")["state"] == "closing" {
            break;
        }
    }
    // ...but carol, 10 s behind, is still watching the moment before it closed: her vote,
    // answering that moment, counts. dave, at the edge, answers too late.
    c.send(json!({"type": "vote", "poll": poll_id, "option": 1, "media_ts": 1000}));
    std::thread::sleep(Duration::from_millis(1500));
    d.send(json!({"type": "vote", "poll": poll_id, "option": 1, "media_ts": 1000}));
    assert_eq!(d.next_of("error")["code"], "poll_closed");
    // A client that sends no stream time: its comment is placed at the live edge less the
    // delay it reported (dave: 0), so after the poll's opening.
    d.send(json!({"type": "comment", "text": "whenever"}));
    let audience = body(http_as(
        &server.http,
        "GET",
        &format!("/api/broadcasts/{id}/audience"),
        b"",
        Some(&owner),
    ));
    assert_eq!(audience["reporting"], 2, "{audience}");
    assert_eq!(audience["delay_max_ms"], 10_000);
    let (status, _) = http_as(
        &server.http,
        "GET",
        &format!("/api/broadcasts/{id}/audience"),
        b"",
        Some(&bob),
    );
    assert_eq!(status, 403, "the audience is the broadcaster's to see");

    // (The others stop reading now, and so stop answering pings; the host reads on until
    // the poll is final.)
    let closed = loop {
        let p = host.next_of("poll");
        if p["state"] == "closed" {
            break p;
        }
    };
    assert_eq!(closed["totals"], json!([1, 1]));
    let _ = publisher.kill();
    let _ = publisher.wait();
    drop((host, b, c, d));
    // Hearts are stored each second; give the room its last write, then restart.
    std::thread::sleep(Duration::from_millis(1500));
    drop(server);
    let server = Server::start_in(&data);
    let timeline = body(http(
        &server.http,
        "GET",
        &format!("/api/broadcasts/{id}/timeline?from=0&to=60000"),
        b"",
    ));
    assert_eq!(timeline["comments"][0]["text"], "first!", "{timeline}");
    assert_eq!(timeline["comments"][0]["media_ts"], 1200);
    assert_eq!(timeline["hearts"][0]["media_second"], 1, "{timeline}");
    assert_eq!(timeline["hearts"][0]["count"], 1);
    assert_eq!(timeline["polls"][0]["result"], json!([1, 1]), "{timeline}");
    let whenever = timeline["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"] == "whenever")
        .expect("a comment without a stream time is in the timeline");
    assert!(
        whenever["media_ts"].as_i64().unwrap() >= timeline["polls"][0]["media_open_ts"].as_i64().unwrap(),
        "{timeline}"
    );
    let votes = timeline["votes"].as_array().unwrap();
    assert_eq!(votes.len(), 2, "{timeline}");
    assert!(
        votes.iter().any(|v| v["user"] == "carol" && v["late"] == true),
        "{timeline}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// A viewer on a slow link: a small receive window, and 1 KiB read every 250 ms.
struct SlowLink(TcpStream);

impl std::io::Read for SlowLink {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_millis(250));
        let n = buf.len().min(1024);
        self.0.read(&mut buf[..n])
    }
}

impl std::io::Write for SlowLink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn slow_join(server: &Server, id: &str) -> WebSocket<SlowLink> {
    let addr: std::net::SocketAddr = server.http.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(2048)?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap();
    stream.set_nonblocking(false).unwrap();
    // A stall fails the test rather than hang it.
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let url = format!("ws://{}/api/broadcasts/{id}/live", server.http);
    tungstenite::client(url, SlowLink(stream)).unwrap().0
}

#[test]
fn a_slow_client_is_told_it_lagged_and_skips_to_the_present() {
    let server = Server::start();
    let (_, id, _) = broadcast(&server, "host");
    let mut slow = slow_join(&server, &id);
    // Twenty talkers: long comments at their rate limit, and hearts, so that the room
    // sends about 1 KiB every 100 ms, far more than the slow link carries.
    let tokens: Vec<String> = (0..20).map(|i| server.user(&format!("talker{i}"))).collect();
    let mut talkers: Vec<Ws> = tokens.iter().map(|t| join(&server, &id, Some(t)).0).collect();
    /// Stops the talkers however the test ends.
    struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = Stop(stop.clone());
    let talking = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let long = "\u{1F600}".repeat(270);
            let started = std::time::Instant::now();
            let (mut comments, mut hearts, mut drained) = (0usize, 0usize, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
                let elapsed = started.elapsed();
                // Ten comments a second: each talker in turn, once every 2 s (the limit).
                while comments < (elapsed.as_secs_f64() * 10.0) as usize {
                    let i = comments % talkers.len();
                    talkers[i].send(json!({"type": "comment", "text": format!("{i} {long}")}));
                    comments += 1;
                }
                // Ten hearts a second, from two talkers.
                while hearts < (elapsed.as_secs_f64() * 10.0) as usize {
                    talkers[hearts % 2].send(json!({"type": "heart"}));
                    hearts += 1;
                }
                if elapsed - drained > Duration::from_millis(500) {
                    drained = elapsed;
                    talkers.iter_mut().for_each(Ws::drain);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut last_before: Option<i64> = None;
    let mut lagged: Option<Value> = None;
    let mut first_after: Option<i64> = None;
    // The slow client sends nothing (its pongs wait behind what it has yet to read): that it
    // reads is what keeps it connected.
    while first_after.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no lagged notice, or nothing after it"
        );
        let Message::Text(t) = slow.read().expect("the slow client stays connected") else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        for m in v.as_array().cloned().unwrap_or_else(|| vec![v]) {
            match (m["type"].as_str(), &lagged) {
                (Some("lagged"), None) => lagged = Some(m),
                (Some("comment"), None) => last_before = m["id"].as_i64(),
                (Some("comment"), Some(_)) if first_after.is_none() => first_after = m["id"].as_i64(),
                _ => {}
            }
        }
    }
    drop(stopping);
    talking.join().unwrap();
    let lagged = lagged.unwrap();
    let missed = lagged["missed"].as_u64().unwrap();
    assert!(missed > 0, "{lagged}");
    // What came next was current: the comments in between were skipped, not queued.
    let (before, after) = (last_before.unwrap(), first_after.unwrap());
    assert!(
        after > before + 1,
        "comment {after} came right after {before}: nothing skipped"
    );
}

/// Making a broadcast private lets go at once of the room members it is no longer shared
/// with (anonymous or not on the list); those it is shared with stay and go on talking.
#[test]
fn members_no_longer_allowed_are_let_go_of_the_room() {
    let server = Server::start();
    let (owner, id, _) = broadcast(&server, "host");
    let alice = server.user("alice");
    let bob = server.user("bob");
    let (mut alice_ws, _) = join(&server, &id, Some(&alice));
    let (mut bob_ws, _) = join(&server, &id, Some(&bob));
    let (mut anonymous, _) = join(&server, &id, None);
    server.set_viewers(&id, &owner, &["alice"]);
    assert_eq!(bob_ws.until_closed(), ["not_allowed"]);
    assert_eq!(anonymous.until_closed(), ["not_allowed"]);
    alice_ws.send(serde_json::json!({"type": "comment", "text": "still here"}));
    assert_eq!(alice_ws.next_of("comment")["text"], "still here");
}
