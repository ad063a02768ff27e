//! `livescope loadgen followers`: how long a broadcaster's followers wait to hear that it
//! went live. Holds the notification streams (`/api/me/events`) of seeded followers open,
//! logs in as their broadcaster, creates a broadcast and starts publishing, then times
//! each follower's `broadcast_started` event from the moment the publisher connected. The
//! fan-out reaches followers in id order and the seeded sessions include the last one, so
//! the slowest time is when the whole audience had been told.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::net::{self, RtmpUrl};
use super::probe::SendTimes;
use super::stats::Latencies;
use super::{clip, publisher};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// livescope's HTTP base URL.
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// The tokens file `livescope seed` wrote.
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// The broadcaster `livescope seed` made (password: the name and "-password").
    #[arg(long, default_value = "star")]
    pub broadcaster: String,
    /// Followers the broadcaster has, for the report.
    #[arg(long)]
    pub followers: usize,
    /// Seconds to wait for every event.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    #[arg(long, value_name = "DIR", default_value = "target/loadgen")]
    pub work: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub followers: usize,
    pub streams: usize,
    pub received: usize,
    /// From the publisher connecting until the first / median / last follower's event.
    pub first_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub last_ms: Option<f64>,
    /// Until the event of the follower the fan-out reaches last.
    pub last_follower_ms: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let tokens: Vec<String> = std::fs::read_to_string(&args.tokens)
        .with_context(|| format!("reading {}", args.tokens.display()))?
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = rt.block_on(measure(&args, tokens))?;
    println!(
        "{} followers, {} streams open, {} told; from publish: first {} ms, p50 {} ms, last {} ms (the last follower: {} ms)",
        report.followers,
        report.streams,
        report.received,
        fmt(report.first_ms),
        fmt(report.p50_ms),
        fmt(report.last_ms),
        fmt(report.last_follower_ms)
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

async fn measure(args: &Args, tokens: Vec<String>) -> anyhow::Result<Report> {
    let (addr, _) = net::parse_http(&format!("{}/", args.api.trim_end_matches('/')))?;
    // Open every stream and wait for its `ready`.
    let mut streams = Vec::with_capacity(tokens.len());
    for token in &tokens {
        streams.push(open(&addr, token).await?);
    }
    let waiters: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut line = String::new();
                loop {
                    line.clear();
                    if s.read_line(&mut line).await.ok()? == 0 {
                        return None;
                    }
                    if line.trim_end() == "event: broadcast_started" {
                        return Some(Instant::now());
                    }
                }
            })
        })
        .collect();

    let api = args.api.trim_end_matches('/');
    let password = format!("{}-password", args.broadcaster);
    let token = net::log_in(api, &args.broadcaster, &password).await?;
    let created = net::create_broadcast(api, &token).await?;
    let url = RtmpUrl::parse(created["publish"]["rtmp"].as_str().context("no publish URL")?)?;

    let clip = clip::generate(&args.work, 20, 500)?;
    let tags = Arc::new(clip::read_tags(&clip)?);
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, _started_rx) = std::sync::mpsc::channel();
    let t0 = Instant::now();
    let publishing = {
        let stop = stop.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(publisher::run(
                url,
                tags,
                Arc::new(SendTimes::default()),
                stop,
                started_tx,
            ))
        })
    };
    let deadline = Duration::from_secs_f64(args.timeout);
    let mut times = Vec::with_capacity(waiters.len());
    for w in waiters {
        times.push(
            tokio::time::timeout(deadline, w)
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publishing.join();
    let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1000.0;
    let mut all = Latencies::default();
    for t in times.iter().flatten() {
        all.record(t.saturating_duration_since(t0));
    }
    let summary = all.summary();
    Ok(Report {
        followers: args.followers,
        streams: times.len(),
        received: times.iter().flatten().count(),
        first_ms: times.iter().flatten().map(|t| ms(*t)).reduce(f64::min),
        p50_ms: summary.map(|s| s.0),
        last_ms: summary.map(|s| s.2),
        last_follower_ms: times.last().copied().flatten().map(ms),
    })
}

/// Opens one follower's event stream and reads up to its `ready` event.
async fn open(addr: &str, token: &str) -> anyhow::Result<BufReader<TcpStream>> {
    let mut socket = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket
        .write_all(
            format!("GET /api/me/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("the event stream answered {}", line.trim());
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the event stream closed before ready");
        }
        if line.trim_end() == "event: ready" {
            return Ok(reader);
        }
    }
}
