//! `livescope loadgen`: load and latency benchmarks against livescope or any RTMP server.
//! A crate of its own that talks to the server only over the wire (RTMP, HTTP, WebSocket),
//! as any client does; its RTMP publisher, HTTP helpers and room client also serve the
//! signing broadcaster and the verifying viewer (`livescope broadcast`, `livescope watch`).
//!
//! One publisher (its own thread) plays a real H.264/AAC clip in real time; N viewers (one
//! thread) play it back over RTMP or HTTP-FLV. Latency is publisher send to viewer receive
//! for every audio and video frame; the server's CPU and memory come from /proc.

mod clip;
mod followers;
mod hls;
pub mod net;
mod probe;
pub mod publisher;
pub mod room;
pub mod stats;
mod viewer;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `n` random letters and digits, for the names and passwords of the accounts it makes.
pub fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use net::RtmpUrl;
use probe::SendTimes;
use viewer::{Tally, Target, Viewer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Rtmp,
    Flv,
    /// LL-HLS: blocking playlist reload and every part (livescope's `/hls/` URLs).
    Hls,
}

/// `livescope loadgen [ARGS]` measures delivery; `livescope loadgen followers` measures
/// the notification fan-out.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Command {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    #[command(flatten)]
    pub args: Args,
}

#[derive(Debug, clap::Subcommand)]
pub enum Mode {
    /// Hold the notification streams of seeded followers (`livescope seed`) open, go live as
    /// their broadcaster, and time each follower's `broadcast_started` event.
    Followers(followers::Args),
    /// Open many WebSocket viewers in one broadcast's room, send hearts and comments at
    /// given rates, and time their delivery to the other viewers.
    Room(room::Args),
}

pub fn main(command: Command) -> anyhow::Result<()> {
    match command.mode {
        Some(Mode::Followers(args)) => followers::run(args),
        Some(Mode::Room(args)) => room::run(args),
        None => run(command.args),
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// livescope's HTTP base URL: create a broadcast there and use its publish and watch URLs.
    #[arg(long, value_name = "URL", conflicts_with_all = ["publish", "play"])]
    pub api: Option<String>,
    /// RTMP URL to publish to (any server), e.g. rtmp://127.0.0.1:1935/live/test.
    #[arg(long, value_name = "URL", requires = "play")]
    pub publish: Option<String>,
    /// URL viewers open (rtmp:// or http://...flv), e.g. rtmp://127.0.0.1:1935/live/test.
    #[arg(long, value_name = "URL")]
    pub play: Option<String>,
    /// How viewers watch when --api is given.
    #[arg(long, value_enum, default_value = "rtmp")]
    pub protocol: Protocol,
    /// Number of viewers.
    #[arg(long, default_value_t = 100)]
    pub viewers: usize,
    /// Viewers that time every frame on arrival, spread evenly over the connection order;
    /// the rest read every 100 ms and count frames, bytes and stalls.
    #[arg(long, default_value_t = 100)]
    pub probes: usize,
    /// Seconds over which viewers connect.
    #[arg(long, default_value_t = 5.0)]
    pub ramp: f64,
    /// Seconds to wait after the last viewer connected before measuring.
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Video bitrate of the generated clip in kbit/s (audio adds 64).
    #[arg(long, default_value_t = 1000)]
    pub kbps: u32,
    /// An FLV file to publish instead of the generated clip.
    #[arg(long, value_name = "FILE")]
    pub clip: Option<PathBuf>,
    /// Folder for the generated clip.
    #[arg(long, value_name = "DIR", default_value = "target/loadgen")]
    pub work: PathBuf,
    /// Server process(es) whose CPU and memory to report (repeat for several).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// A name for the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The outcome of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub protocol: Protocol,
    pub viewers: usize,
    /// Viewers whose frames were timed.
    pub probes: usize,
    pub playing: usize,
    pub failed: usize,
    pub seconds: f64,
    pub frames_received: u64,
    pub unmatched_frames: u64,
    pub throughput_mbit_s: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub video_latency_p99_ms: Option<f64>,
    /// HLS: until the first byte of each part (or segment) arrived.
    pub first_byte_p50_ms: Option<f64>,
    pub first_byte_p99_ms: Option<f64>,
    pub stalls: u64,
    pub stalled_at_end: usize,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_before_mib: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub server_kib_per_viewer: Option<f64>,
    pub loadgen_cpu_percent: f64,
    pub first_errors: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (publish, target) = resolve_urls(&args)?;
    let clip = match &args.clip {
        Some(path) => path.clone(),
        None => clip::generate(&args.work, 20, args.kbps)?,
    };
    let tags = Arc::new(clip::read_tags(&clip)?);
    let sent = Arc::new(SendTimes::default());
    let stop = Arc::new(AtomicBool::new(false));

    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let publisher = {
        let (tags, sent, stop) = (tags.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(publisher::run(publish, tags, sent, stop, started_tx))
        })
    };
    if started_rx.recv_timeout(Duration::from_secs(15)).is_err() {
        stop.store(true, Ordering::Relaxed);
        return match publisher.join() {
            Ok(Err(e)) => Err(e.context("publisher failed")),
            _ => bail!("publisher did not start within 15 s"),
        };
    }
    // Let the server settle with one stream before its baseline is taken.
    std::thread::sleep(Duration::from_secs(1));
    let before = sample_server(&args.server_pids);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&rt, measure(&args, target, sent, before));
    stop.store(true, Ordering::Relaxed);
    drop(local);
    if publisher.is_finished()
        && let Ok(Err(e)) = publisher.join()
    {
        eprintln!("publisher: {e:#}");
    }
    let report = report?;
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn resolve_urls(args: &Args) -> anyhow::Result<(RtmpUrl, Target)> {
    let (publish, play) = match &args.api {
        Some(api) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let api = api.trim_end_matches('/');
            let created = rt.block_on(async {
                let (_, token) = net::register(api, "loadgen").await?;
                net::create_broadcast(api, &token).await
            })?;
            let field = |a: &str, b: &str| {
                created[a][b]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("no {a}.{b} in {created}"))
            };
            let play = match args.protocol {
                Protocol::Rtmp => field("watch", "rtmp")?,
                Protocol::Flv => field("watch", "flv")?,
                Protocol::Hls => field("watch", "hls")?,
            };
            (field("publish", "rtmp")?, play)
        }
        None => {
            let publish = args.publish.clone().context("give --api, or --publish and --play")?;
            let play = args.play.clone().context("give --play with --publish")?;
            (publish, play)
        }
    };
    let target = if play.starts_with("rtmp://") {
        Target::Rtmp(RtmpUrl::parse(&play)?)
    } else if play.ends_with(".m3u8") {
        Target::Hls(play)
    } else {
        Target::Flv(play)
    };
    Ok((RtmpUrl::parse(&publish)?, target))
}

fn sample_server(pids: &[u32]) -> Option<stats::ProcSample> {
    if pids.is_empty() {
        return None;
    }
    match stats::sample_all(pids) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("cannot read the server's /proc entries: {e}");
            None
        }
    }
}

async fn measure(
    args: &Args,
    target: Target,
    sent: Arc<SendTimes>,
    before: Option<stats::ProcSample>,
) -> anyhow::Result<Report> {
    let tally = Rc::new(RefCell::new(Tally {
        last_video: vec![None; args.viewers],
        ..Tally::default()
    }));
    let bar = ProgressBar::new(args.viewers as u64).with_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("connecting");
    let ramp = Duration::from_secs_f64(args.ramp);
    let probe_stride = (args.viewers / args.probes.max(1)).max(1);
    let start = tokio::time::Instant::now();
    for index in 0..args.viewers {
        let due = start + ramp.mul_f64(index as f64 / args.viewers.max(1) as f64);
        tokio::time::sleep_until(due).await;
        let viewer = Viewer {
            index,
            probe: index % probe_stride == 0,
            tally: tally.clone(),
            sent: sent.clone(),
        };
        tokio::task::spawn_local(viewer.run(target.clone()));
        if index % 50 == 0 {
            let t = tally.borrow();
            bar.set_position(index as u64);
            bar.set_message(format!("playing {} failed {}", t.playing, t.failed));
        }
    }
    bar.set_position(args.viewers as u64);
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;

    tally.borrow_mut().measuring = true;
    let server_start = sample_server(&args.server_pids);
    let me_start = stats::sample(0)?;
    let began = Instant::now();
    let seconds = args.duration.max(1.0);
    bar.set_prefix("measuring");
    bar.set_length((seconds * 4.0) as u64);
    bar.set_position(0);
    for tick in 0..(seconds * 4.0) as u64 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let t = tally.borrow();
        bar.set_position(tick + 1);
        bar.set_message(format!(
            "playing {} failed {} frames {}",
            t.playing, t.failed, t.messages
        ));
    }
    bar.finish_and_clear();
    let elapsed = began.elapsed().as_secs_f64();
    let server_end = sample_server(&args.server_pids);
    let me_end = stats::sample(0)?;
    let mut t = tally.borrow_mut();
    t.measuring = false;
    let now = Instant::now();
    let stalled_at_end = t
        .last_video
        .iter()
        .filter(|last| last.is_none_or(|l| now.duration_since(l) > viewer::STALL_GAP))
        .count();
    let summary = t.latencies.summary();
    let video = t.video_latencies.summary();
    let first_byte = t.first_byte_latencies.summary();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let report = Report {
        label: args.label.clone(),
        protocol: match target {
            Target::Rtmp(_) => Protocol::Rtmp,
            Target::Flv(_) => Protocol::Flv,
            Target::Hls(_) => Protocol::Hls,
        },
        viewers: args.viewers,
        probes: args.viewers.div_ceil((args.viewers / args.probes.max(1)).max(1)),
        playing: t.playing.saturating_sub(t.failed).min(args.viewers),
        failed: t.failed,
        seconds: elapsed,
        frames_received: t.messages,
        unmatched_frames: t.unmatched,
        throughput_mbit_s: t.bytes as f64 * 8.0 / elapsed / 1e6,
        latency_p50_ms: summary.map(|s| s.0),
        latency_p99_ms: summary.map(|s| s.1),
        latency_max_ms: summary.map(|s| s.2),
        video_latency_p99_ms: video.map(|s| s.1),
        first_byte_p50_ms: first_byte.map(|s| s.0),
        first_byte_p99_ms: first_byte.map(|s| s.1),
        stalls: t.stalls,
        stalled_at_end,
        server_cpu_percent: server_start
            .zip(server_end)
            .map(|(a, b)| (b.cpu_seconds - a.cpu_seconds) / elapsed * 100.0),
        server_rss_before_mib: before.map(|b| mib(b.rss_kib)),
        server_rss_mib: server_end.map(|s| mib(s.rss_kib)),
        server_peak_rss_mib: server_end.map(|s| mib(s.peak_rss_kib)),
        server_kib_per_viewer: before
            .zip(server_end)
            .map(|(b, e)| (e.rss_kib as f64 - b.rss_kib as f64) / args.viewers.max(1) as f64),
        loadgen_cpu_percent: (me_end.cpu_seconds - me_start.cpu_seconds) / elapsed * 100.0,
        first_errors: t.first_errors.clone(),
    };
    Ok(report)
}

fn print_report(r: &Report) {
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{} ({:?}): {} viewers, {} playing, {} failed, {:.1} s",
        r.label, r.protocol, r.viewers, r.playing, r.failed, r.seconds
    );
    println!(
        "  latency ms (of {} probes) p50 {} p99 {} max {} (video p99 {}); frames {} ({} unmatched); {:.1} Mbit/s",
        r.probes,
        opt(r.latency_p50_ms),
        opt(r.latency_p99_ms),
        opt(r.latency_max_ms),
        opt(r.video_latency_p99_ms),
        r.frames_received,
        r.unmatched_frames,
        r.throughput_mbit_s
    );
    if r.first_byte_p50_ms.is_some() {
        println!(
            "  first byte of a part ms p50 {} p99 {}",
            opt(r.first_byte_p50_ms),
            opt(r.first_byte_p99_ms)
        );
    }
    println!(
        "  stalls {} (viewers without video at the end: {})",
        r.stalls, r.stalled_at_end
    );
    println!(
        "  server cpu {}% rss {} MiB (before {} MiB, peak {} MiB, {} KiB/viewer); loadgen cpu {:.1}%",
        opt(r.server_cpu_percent),
        opt(r.server_rss_mib),
        opt(r.server_rss_before_mib),
        opt(r.server_peak_rss_mib),
        opt(r.server_kib_per_viewer),
        r.loadgen_cpu_percent
    );
    for e in &r.first_errors {
        println!("  viewer ended: {e}");
    }
}
