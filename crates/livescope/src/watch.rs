//! `livescope watch <url> --verify`: plays a broadcast over RTMP, HTTP-FLV or LL-HLS (its
//! segments, from the live window on) and checks
//! its signatures against the broadcaster's keys, which it asks the API for (the keys
//! a viewer can also pin by their fingerprints). It says what it finds as it finds it, and
//! ends with one JSON line: verified, not yet verified, unsigned, or tampered with the
//! media time of the first stretch that did not match. Exit status: 0 verified, 3
//! tampered, 4 unsigned or never verified.
//!
//! It also models a player's playout of what it receives ([`Playout`]: a pre-buffer, real
//! time, stalls) and reports its buffer over the broadcast's room every 2 s, as the web
//! player does, for the broadcaster's delay breakdown; the JSON line says what it held.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use rtmp::{ClientEvent, ClientSession};
use signed::Verdict;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hub::Codec as FrameCodec;
use crate::integrity::TagChecker;
use crate::playout::Playout;
use loadgen::net::{self, Chunked, RtmpUrl};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// rtmp://HOST:PORT/live/<id>, http://HOST:PORT/live/<id>.flv or
    /// http://HOST:PORT/hls/<id>/index.m3u8
    pub url: String,
    /// Check the broadcast's signatures.
    #[arg(long)]
    pub verify: bool,
    /// livescope's HTTP base URL, for the broadcaster's keys [default: the URL's host, for
    /// http:// URLs]
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Trust only the broadcaster's keys with this fingerprint (as the profile shows it,
    /// `SHA256:...`; repeat for several). Without it, the keys come from the API, over the
    /// same network as the stream.
    #[arg(long, value_name = "FINGERPRINT")]
    pub trust: Vec<String>,
    /// Stop after this many seconds (at most) even if the broadcast goes on.
    #[arg(long, default_value_t = 3600.0)]
    pub seconds: f64,
    /// The modelled player's pre-buffer: media received before playback starts, and
    /// again after a stall.
    #[arg(long, default_value_t = 1000)]
    pub prebuffer_ms: u64,
    /// Do not report the modelled player's buffer over the broadcast's room.
    #[arg(long)]
    pub no_report: bool,
}

/// What the viewer keeps as it receives: the signature check and the modelled playout.
struct Viewer {
    checker: TagChecker,
    last: Option<Verdict>,
    playout: Arc<Mutex<Playout>>,
}

impl Viewer {
    /// A frame of media time `ms` arrived now: coded media advances the playout (codec
    /// configurations and metadata carry the stream's start time, and a late joiner gets
    /// them first).
    fn played(&mut self, ms: u64, media: bool) {
        if media {
            self.playout
                .lock()
                .expect("playout lock")
                .frame(ms as f64, Instant::now());
        }
        report(&self.checker, &mut self.last);
    }
}

/// Whether a tag carries coded media (not a configuration record or metadata).
fn is_media(codec: &FrameCodec) -> bool {
    match codec {
        FrameCodec::Video(tag) => tag.packet == flv::VideoPacket::Frame,
        FrameCodec::Audio(tag) => !tag.sequence_header,
        FrameCodec::Data => false,
    }
}

/// The buffer samples the reporter took.
#[derive(Default)]
struct Held {
    sum_ms: f64,
    samples: u32,
}

/// Every 2 s: the modelled player's buffer, sampled, and sent over the room (when
/// `room` is the server's HTTP address). Whatever the room sends is read and dropped.
async fn reporter(playout: Arc<Mutex<Playout>>, room: Option<(String, String)>, held: Arc<Mutex<Held>>) {
    use tokio::io::AsyncReadExt;
    let mut socket = match &room {
        Some((addr, id)) => {
            let connect = loadgen::room::connect(addr, id, None);
            match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(socket)) => Some(socket),
                Ok(Err(e)) => {
                    eprintln!("not reporting the buffer: the room refused ({e:#})");
                    None
                }
                Err(_) => {
                    eprintln!("not reporting the buffer: the room did not answer");
                    None
                }
            }
        }
        None => None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut sink = vec![0u8; 16 << 10];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let buffer = playout.lock().expect("playout lock").buffer_ms(Instant::now());
                let Some(ms) = buffer else { continue };
                {
                    let mut held = held.lock().expect("held lock");
                    held.sum_ms += ms;
                    held.samples += 1;
                }
                if let Some(s) = socket.as_mut() {
                    // A modelled player's newest frame is the live edge it knows of: its
                    // delay behind live and its buffer are the same.
                    let ms = ms.round();
                    let message = loadgen::room::frame(&format!(r#"{{"type":"delay","ms":{ms},"buffer_ms":{ms}}}"#));
                    if s.write_all(&message).await.is_err() {
                        socket = None;
                    }
                }
            }
            read = async { socket.as_mut().expect("only polled with a socket").read(&mut sink).await }, if socket.is_some() => {
                if !matches!(read, Ok(n) if n > 0) {
                    socket = None;
                }
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (checked, playout) = tokio::runtime::Runtime::new()?.block_on(watch(&args))?;
    let verdict = checked.verdict;
    let mut line = match &verdict {
        Verdict::Verified { records } => serde_json::json!({ "verdict": "verified", "records": records }),
        Verdict::NotYetVerified => serde_json::json!({ "verdict": "not_yet_verified" }),
        Verdict::Unsigned => serde_json::json!({ "verdict": "unsigned" }),
        Verdict::Tampered { at_ms, reason } => {
            serde_json::json!({ "verdict": "tampered", "tampered_at_ms": at_ms, "reason": reason })
        }
    };
    if let Some(from) = checked.unchecked_from {
        // The last stretch: no record came after it.
        line["unchecked_from_ms"] = from.into();
    }
    if checked.mismatches > 0 {
        line["mismatches"] = checked.mismatches.into();
        line["flagged_ms"] = checked
            .flagged
            .iter()
            .map(|&(a, b)| vec![a, b])
            .collect::<Vec<_>>()
            .into();
    }
    line["playout"] = playout;
    println!("{line}");
    std::process::exit(match verdict {
        Verdict::Verified { .. } => 0,
        Verdict::Tampered { .. } => 3,
        _ => 4,
    });
}

/// The broadcast id a watch URL names.
fn broadcast_id(url: &str) -> anyhow::Result<String> {
    let path = url.split('?').next().unwrap_or(url);
    // .../hls/<id>/index.m3u8 names it one folder up.
    let path = if path.ends_with(".m3u8") {
        path.rsplit_once('/').map_or(path, |(dir, _)| dir)
    } else {
        path
    };
    let last = path.rsplit('/').next().unwrap_or("");
    let id = last.strip_suffix(".flv").unwrap_or(last);
    if id.is_empty() {
        bail!("{url} names no broadcast");
    }
    Ok(id.to_owned())
}

/// GETs a JSON document over plain HTTP.
async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = get(url).await?;
    if status != 200 {
        bail!("{url} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// GETs a whole document over plain HTTP: its status and body.
async fn get(url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let (addr, path) = net::parse_http(url)?;
    let mut socket = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut response))
        .await
        .context("the API did not answer")??;
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("a malformed HTTP answer")?;
    let head = String::from_utf8_lossy(&response[..at]).to_ascii_lowercase();
    let status = net::parse_status(&head)?;
    let mut body = response[at + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut decoded = Vec::new();
        Chunked::default().decode(&body, &mut decoded)?;
        body = decoded;
    }
    Ok((status, body))
}

/// The broadcaster's account keys in force, from the API.
async fn keys(api: &str, id: &str) -> anyhow::Result<Vec<[u8; 32]>> {
    let broadcast = get_json(&format!("{api}/api/broadcasts/{id}")).await?;
    let owner = broadcast["owner"]
        .as_str()
        .context("the broadcast has no owner to check against")?;
    let profile = get_json(&format!("{api}/api/users/{owner}")).await?;
    let mut keys = Vec::new();
    for key in profile["signing_keys"].as_array().into_iter().flatten() {
        let bytes = base64::engine::general_purpose::STANDARD.decode(key["public_key"].as_str().unwrap_or(""))?;
        if let Ok(key) = <[u8; 32]>::try_from(bytes) {
            eprintln!("{owner}'s key {}", crate::signing_key::PublicKey(key).fingerprint());
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Says a verdict when it changes.
fn report(checker: &TagChecker, last: &mut Option<Verdict>) {
    let verdict = checker.verdict();
    let changed = match (&*last, &verdict) {
        (Some(Verdict::Verified { .. }), Verdict::Verified { .. }) => false,
        (old, new) => old.as_ref() != Some(new),
    };
    if changed {
        match &verdict {
            Verdict::NotYetVerified => eprintln!("not yet verified"),
            Verdict::Verified { .. } => eprintln!("verified"),
            Verdict::Unsigned => eprintln!("unsigned"),
            Verdict::Tampered { at_ms, reason } => eprintln!("TAMPERED from media time {at_ms} ms: {reason}"),
        }
        *last = Some(verdict);
    }
}

async fn watch(args: &Args) -> anyhow::Result<(crate::integrity::Checked, serde_json::Value)> {
    let id = broadcast_id(&args.url)?;
    let api = match (&args.api, args.url.strip_prefix("http://")) {
        (Some(api), _) => api.trim_end_matches('/').to_owned(),
        (None, Some(rest)) => format!("http://{}", rest.split('/').next().unwrap_or("")),
        (None, None) => bail!("--api is needed to find the broadcaster's keys for {}", args.url),
    };
    let mut keys = if args.verify {
        keys(&api, &id).await?
    } else {
        Vec::new()
    };
    if !args.trust.is_empty() {
        keys.retain(|k| args.trust.contains(&crate::signing_key::PublicKey(*k).fingerprint()));
        if keys.is_empty() {
            bail!("none of the broadcaster's keys has a fingerprint given with --trust");
        }
    }
    let playout = Arc::new(Mutex::new(Playout::new(args.prebuffer_ms as f64, Instant::now())));
    let mut viewer = Viewer {
        checker: TagChecker::new(keys, &id),
        last: None,
        playout: playout.clone(),
    };
    let room = if args.no_report {
        None
    } else if let Some(addr) = api.strip_prefix("http://") {
        Some((addr.trim_end_matches('/').to_owned(), id.clone()))
    } else {
        eprintln!("not reporting the buffer: the room is reached over plain HTTP only ({api})");
        None
    };
    let held = Arc::new(Mutex::new(Held::default()));
    let reporting = tokio::spawn(reporter(playout.clone(), room, held.clone()));
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let played = if args.url.starts_with("rtmp://") {
        tokio::time::timeout_at(deadline.into(), rtmp(&args.url, &mut viewer)).await
    } else if args.url.split('?').next().unwrap_or("").ends_with(".m3u8") {
        tokio::time::timeout_at(deadline.into(), hls(&args.url, &mut viewer)).await
    } else {
        tokio::time::timeout_at(deadline.into(), flv(&args.url, &mut viewer)).await
    };
    reporting.abort();
    if let Ok(Err(e)) = played {
        eprintln!("playback ended: {e:#}");
    }
    let playout = {
        let p = playout.lock().expect("playout lock");
        let held = held.lock().expect("held lock");
        serde_json::json!({
            "prebuffer_ms": args.prebuffer_ms,
            "buffer_mean_ms": (held.samples > 0).then(|| (held.sum_ms / f64::from(held.samples)).round()),
            "stalls": p.stalls,
            "stalled_ms": p.stalled_ms.round(),
        })
    };
    Ok((viewer.checker.checked(), playout))
}

async fn rtmp(url: &str, viewer: &mut Viewer) -> anyhow::Result<()> {
    let url = RtmpUrl::parse(url)?;
    let mut socket = TcpStream::connect(&url.addr)
        .await
        .with_context(|| format!("connecting to {}", url.addr))?;
    let mut session = ClientSession::new(rtmp::Config::default(), &url.app, &url.tc_url, [0x3c; 1536]);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        while let Some(out) = session.poll_transmit() {
            socket.write_all(&out).await?;
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        session.handle_input(&buf[..n])?;
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Connected => session.play(&url.name),
                ClientEvent::Media(m) => {
                    if let Ok(codec) = FrameCodec::parse(m.kind, &m.payload) {
                        viewer.checker.tag(codec, u64::from(m.timestamp), &m.payload);
                        viewer.played(u64::from(m.timestamp), is_media(&codec));
                    }
                }
                ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => return Ok(()),
                ClientEvent::Status {
                    level,
                    code,
                    description,
                } if level == "error" => bail!("refused: {code} {description}"),
                _ => {}
            }
        }
    }
}

async fn flv(url: &str, viewer: &mut Viewer) -> anyhow::Result<()> {
    let (addr, path) = net::parse_http(url)?;
    let mut socket = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 64 << 10];
    let mut head = Vec::new();
    let mut chunked: Option<Option<Chunked>> = None;
    let mut demuxer = flv::Demuxer::new(16 << 20);
    let mut body = Vec::new();
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        body.clear();
        match &mut chunked {
            None => {
                head.extend_from_slice(&buf[..n]);
                let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let text = String::from_utf8_lossy(&head[..at]).to_ascii_lowercase();
                let status = net::parse_status(&text)?;
                if status != 200 {
                    bail!("{url} answered {status}");
                }
                let mut decoder = text.contains("transfer-encoding: chunked").then(Chunked::default);
                let rest = head[at + 4..].to_vec();
                match decoder.as_mut() {
                    Some(d) => d.decode(&rest, &mut body)?,
                    None => body.extend_from_slice(&rest),
                }
                chunked = Some(decoder);
            }
            Some(Some(decoder)) => decoder.decode(&buf[..n], &mut body)?,
            Some(None) => body.extend_from_slice(&buf[..n]),
        }
        demuxer.push(&body);
        while let Some(tag) = demuxer.next_tag()? {
            let kind = match tag.kind {
                flv::TagKind::Video => rtmp::MediaKind::Video,
                flv::TagKind::Audio => rtmp::MediaKind::Audio,
                flv::TagKind::Script => continue,
            };
            if let Ok(codec) = FrameCodec::parse(kind, &tag.body) {
                viewer.checker.tag(codec, u64::from(tag.timestamp), &tag.body);
                viewer.played(u64::from(tag.timestamp), is_media(&codec));
            }
        }
    }
}

/// LL-HLS: the init segment says the codec, then every complete segment is read in order,
/// from the live window as first seen until EXT-X-ENDLIST.
async fn hls(url: &str, viewer: &mut Viewer) -> anyhow::Result<()> {
    let base = url
        .split('?')
        .next()
        .unwrap_or(url)
        .rsplit_once('/')
        .map_or(url, |(dir, _)| dir);
    let mut init = None;
    for _ in 0..40 {
        match get(&format!("{base}/init.mp4")).await? {
            (200, body) => {
                init = Some(body);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let tracks = fmp4::read::tracks(&init.context("no init segment")?)?;
    let (_, first) = get(url).await?;
    if String::from_utf8_lossy(&first).contains("#EXT-X-ENDLIST") {
        // A recording: its certificates may have expired since it was made.
        viewer.checker.set_replay();
    }
    let video = tracks
        .iter()
        .find_map(|t| t.video.map(|v| (t.id, t.timescale, v)))
        .context("no video track to check")?;
    let (video_track, video_scale, (codec, length_size)) = video;
    viewer.checker.configure(
        match codec {
            fmp4::VideoCodec::Avc => signed::sei::Codec::Avc,
            fmp4::VideoCodec::Hevc => signed::sei::Codec::Hevc,
        },
        usize::from(length_size),
    );
    let ms = |ticks: i64| ticks * 1000 / i64::from(video_scale.max(1));
    let mut done: Option<u64> = None;
    loop {
        let (status, body) = get(url).await?;
        if status != 200 {
            bail!("{url} answered {status}");
        }
        let playlist = String::from_utf8_lossy(&body).into_owned();
        for segment in playlist
            .lines()
            .filter_map(|l| l.strip_prefix("seg")?.strip_suffix(".m4s")?.parse::<u64>().ok())
        {
            if done.is_some_and(|d| segment <= d) {
                continue;
            }
            let (status, data) = get(&format!("{base}/seg{segment}.m4s")).await?;
            if status != 200 {
                bail!("segment {segment} answered {status}");
            }
            for sample in fmp4::read::samples(&data)? {
                if sample.track == video_track {
                    let dts = ms(sample.dts as i64) as u64;
                    viewer.checker.video_sample(
                        dts,
                        ms(sample.composition_offset) as i32,
                        sample.keyframe,
                        &sample.data,
                    );
                    viewer.played(dts, true);
                } else {
                    viewer.checker.audio_frame(&sample.data);
                    report(&viewer.checker, &mut viewer.last);
                }
            }
            done = Some(segment);
        }
        if playlist.contains("#EXT-X-ENDLIST") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
