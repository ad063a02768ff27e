//! `livescope loadgen room`: N WebSocket viewers in one broadcast's room, sending hearts and
//! comments at given rates; reports how long comments and heart batches take to reach the
//! other viewers, and the server's CPU and memory per connected viewer.
//!
//! Viewers speak the protocol over plain sockets (a hand-made upgrade, unmasked-key text
//! frames) so that 10,000 of them cost the generator far less than the server. Probes
//! parse every frame the moment it arrives; the rest (bulk) read and discard what arrived
//! every [`BULK_READ_INTERVAL`], on plain non-blocking sockets off the generator's poller,
//! so that each server write does not also pay for waking the generator. Every viewer reports its playback delay every few seconds,
//! as players do, which also keeps the server from dropping it as unresponsive.
//!
//! Before the viewers join, the room gets a backlog of comments (each newcomer is sent the
//! latest).
//!
//! Comment latency: each comment carries its send time (wall clock, shared with the
//! server on this machine); a probe's latency is its arrival minus that time. Comments and
//! probe hearts leave at random moments, so that their wait for the server's next flush is
//! spread over the interval. Heart latency: a few logged-in "heart probes" send a heart
//! every 0.5-1.5 s each, and a batch names
//! up to five of its senders; the audience's other hearts come from anonymous viewers, so
//! a batch that names a heart probe is exactly the one that counted its latest heart, which
//! is timed from its send to the batch's arrival at each probe.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net;
use super::stats::{self, Latencies};
use crate::now_ms;

const BULK_READ_INTERVAL: Duration = Duration::from_millis(1000);
const DELAY_REPORT_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// livescope's HTTP base URL.
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// Connected viewers.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// Viewers that time every message (spread over the connection order).
    #[arg(long, default_value_t = 100)]
    pub probes: usize,
    /// Logged-in viewers who comment (comments need an account).
    #[arg(long, default_value_t = 100)]
    pub commenters: usize,
    /// Hearts per second from the whole audience.
    #[arg(long, default_value_t = 1000.0)]
    pub hearts: f64,
    /// Comments per second from the whole audience.
    #[arg(long, default_value_t = 20.0)]
    pub comments: f64,
    /// Votes per second: the broadcaster opens a poll for the whole run and the logged-in
    /// viewers vote, each once.
    #[arg(long, default_value_t = 0.0)]
    pub votes: f64,
    /// Comments already in the room when the viewers join (each newcomer is sent the
    /// latest 50).
    #[arg(long, default_value_t = 50)]
    pub backlog: usize,
    /// Connections opened per second.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Seconds of measurement, after everyone is connected.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// More nodes of the same cluster: viewers are spread evenly over `--api` and these
    /// (the broadcast, its owner and the accounts are made through `--api`).
    #[arg(long = "node", value_name = "URL")]
    pub nodes: Vec<String>,
    /// Publish a generated clip to the broadcast (over RTMP, at the node of `--api`)
    /// before the viewers join: a live broadcast's room, whose home is that node.
    #[arg(long)]
    pub live: bool,
    /// Folder for the generated clip (with `--live`).
    #[arg(long, value_name = "DIR", default_value = "target/loadgen")]
    pub work: PathBuf,
    /// Server processes whose CPU and memory to report (repeat for several nodes).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    #[arg(long, default_value = "livescope")]
    pub label: String,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// The CPU of each server process given, in order (one per node).
    pub server_cpu_percent_each: Vec<f64>,
    pub label: String,
    pub viewers: usize,
    pub connected: usize,
    pub failed: usize,
    pub disconnected: usize,
    pub seconds: f64,
    pub hearts_sent: u64,
    pub comments_sent: u64,
    /// Arrivals expected at the probes: comments sent times probes.
    pub comments_expected_at_probes: u64,
    pub comments_received_by_probes: u64,
    pub comment_p50_ms: Option<f64>,
    pub comment_p99_ms: Option<f64>,
    pub comment_max_ms: Option<f64>,
    pub heart_batches_received_by_probes: u64,
    pub hearts_counted_by_a_probe: u64,
    /// Hearts of the heart probes, timed at every probe.
    pub timed_hearts: usize,
    pub heart_p50_ms: Option<f64>,
    pub heart_p99_ms: Option<f64>,
    pub heart_max_ms: Option<f64>,
    pub votes_sent: u64,
    /// The poll's total as the first probe last saw it.
    pub votes_counted: u64,
    pub lagged_notices: u64,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_before_mib: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_bytes_per_viewer: Option<f64>,
    pub loadgen_cpu_percent: f64,
}

#[derive(Default)]
struct Tally {
    measuring: bool,
    comments: Latencies,
    hearts: Latencies,
    comments_received: u64,
    batches: u64,
    /// Hearts counted in the batches the first probe received while measuring.
    hearts_counted: u64,
    lagged: u64,
    disconnected: usize,
    votes_counted: u64,
    poll: Option<i64>,
}

/// Heart probes that sent a heart, by name: the send time (ms since the epoch) of the
/// latest.
#[derive(Default)]
struct HeartTimes {
    latest: std::collections::HashMap<String, i64>,
}

/// Heart probes: logged-in viewers whose hearts are named in the batches.
const HEART_PROBES: usize = 3;

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&rt, measure(&args))?;
    println!(
        "{} (room): {} viewers, {} connected, {} failed, {} dropped; {:.1} s",
        report.label, report.viewers, report.connected, report.failed, report.disconnected, report.seconds
    );
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    println!(
        "  comments: {} sent, p50 {} ms p99 {} ms max {} ms (over {} arrivals at probes)",
        report.comments_sent,
        f(report.comment_p50_ms),
        f(report.comment_p99_ms),
        f(report.comment_max_ms),
        report.comments_received_by_probes
    );
    println!(
        "  hearts: {} sent, {} counted in batches; batch p50 {} ms p99 {} ms max {} ms; {} lagged notices",
        report.hearts_sent,
        report.hearts_counted_by_a_probe,
        f(report.heart_p50_ms),
        f(report.heart_p99_ms),
        f(report.heart_max_ms),
        report.lagged_notices
    );
    if report.votes_sent > 0 {
        println!("  votes: {} sent, {} counted", report.votes_sent, report.votes_counted);
    }
    println!(
        "  server cpu {}% rss {} MiB (before {} MiB, {} bytes/viewer); loadgen cpu {:.1}%",
        f(report.server_cpu_percent),
        f(report.server_rss_mib),
        f(report.server_rss_before_mib),
        f(report.server_bytes_per_viewer),
        report.loadgen_cpu_percent
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

async fn measure(args: &Args) -> anyhow::Result<Report> {
    let api = args.api.trim_end_matches('/').to_owned();
    let (addr, _) = net::parse_http(&format!("{api}/"))?;
    // Viewer i joins at node i mod n.
    let mut addrs = vec![addr.clone()];
    for node in &args.nodes {
        addrs.push(net::parse_http(&format!("{}/", node.trim_end_matches('/')))?.0);
    }
    let (_, owner) = net::register(&api, "host").await?;
    let created = net::create_broadcast(&api, &owner).await?;
    let id = created["id"].as_str().context("no id")?.to_owned();
    let _publisher = if args.live {
        let url = created["publish"]["rtmp"].as_str().context("no publish URL")?;
        Some(Publisher::start(url, &args.work)?)
    } else {
        None
    };
    let mut accounts = Vec::new();
    for _ in 0..args.commenters.max(HEART_PROBES).min(args.viewers) {
        accounts.push(net::register(&api, "fan").await?);
    }
    // A room with a conversation going: five comments from each of the first accounts.
    let mut posters = Vec::new();
    for (n, (_, token)) in accounts.iter().enumerate().take(args.backlog.div_ceil(5)) {
        let mut socket = connect(&addr, &id, Some(token)).await?;
        for k in 0..5.min(args.backlog - n * 5) {
            let text = format!("comment {k} of {n} before the viewers came, of an ordinary length");
            socket
                .write_all(&frame(&format!(r#"{{"type":"comment","text":"{text}"}}"#)))
                .await?;
        }
        posters.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(posters);
    let sample_servers = || {
        (!args.server_pids.is_empty())
            .then(|| stats::sample_each(&args.server_pids))
            .transpose()
    };
    let before = sample_servers()?;

    let tally = Rc::new(RefCell::new(Tally::default()));
    let hearts = Rc::new(RefCell::new(HeartTimes::default()));
    let every = (args.viewers / args.probes.max(1)).max(1);
    // Anonymous viewers send the audience's hearts; logged-in ones comment, and the first
    // few are heart probes.
    let mut writers: Vec<Rc<Conn>> = Vec::with_capacity(args.viewers);
    let mut commenters: Vec<Rc<Conn>> = Vec::new();
    let mut heart_probes: Vec<(String, Rc<Conn>)> = Vec::new();
    let mut failed = 0;
    let gap = Duration::from_secs_f64(1.0 / args.connect_rate.max(1.0));
    let progress = indicatif::ProgressBar::new(args.viewers as u64);
    for i in 0..args.viewers {
        let account = accounts.get(i);
        match connect(&addrs[i % addrs.len()], &id, account.map(|(_, t)| t.as_str())).await {
            Ok(socket) => {
                let socket = Rc::new(Conn::new(socket, i % every == 0)?);
                tokio::task::spawn_local(viewer(socket.clone(), i == 0, tally.clone(), hearts.clone()));
                match account {
                    Some((name, _)) => {
                        if heart_probes.len() < HEART_PROBES {
                            heart_probes.push((name.clone(), socket.clone()));
                        }
                        if commenters.len() < args.commenters {
                            commenters.push(socket.clone());
                        }
                    }
                    None => writers.push(socket),
                }
            }
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("viewer {i}: {e:#}");
                }
            }
        }
        progress.inc(1);
        tokio::time::sleep(gap).await;
    }
    progress.finish_and_clear();
    // Settle, then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server_start = sample_servers()?;
    let me_start = stats::sample(0)?;
    tally.borrow_mut().measuring = true;
    if args.votes > 0.0 {
        let socket = Rc::new(Conn::new(connect(&addr, &id, Some(&owner)).await?, false)?);
        let seconds = args.duration.ceil() as u32 + 5;
        socket.try_write(&frame(&format!(
            r#"{{"type":"poll_open","question":"Which?","options":["a","b","c"],"seconds":{seconds}}}"#
        )))?;
        tokio::task::spawn_local(viewer(socket, false, tally.clone(), hearts.clone()));
        // The first probe learns the poll's id from its announcement.
        for _ in 0..50 {
            if tally.borrow().poll.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let poll = tally.borrow().poll;
    let started = Instant::now();
    let (mut hearts_sent, mut comments_sent, mut votes_sent) = (0u64, 0u64, 0u64);
    let tick = Duration::from_millis(10);
    let mut next = tokio::time::Instant::now();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Timed messages leave at random moments, so that the wait for the server's next flush
    // or heart batch is spread over the whole interval, not stuck at one phase of it.
    let mut probe_next: Vec<f64> = heart_probes.iter().map(|_| rng.unit()).collect();
    let mut next_comment = rng.exponential(args.comments);
    let mut comments_tried = 0u64;
    while started.elapsed().as_secs_f64() < args.duration {
        next += tick;
        tokio::time::sleep_until(next).await;
        let elapsed = started.elapsed().as_secs_f64();
        let media = (elapsed * 1000.0) as i64;
        let heart = frame(&format!(r#"{{"type":"heart","media_ts":{media}}}"#));
        while (hearts_sent as f64) < elapsed * args.hearts && !writers.is_empty() {
            let w = &writers[rng.below(writers.len())];
            if w.try_write(&heart).is_ok() {
                hearts_sent += 1;
            }
        }
        // Each heart probe hearts about once a second (0.5-1.5 s apart).
        for ((name, w), next) in heart_probes.iter().zip(probe_next.iter_mut()) {
            if elapsed >= *next {
                *next += 0.5 + rng.unit();
                if w.try_write(&heart).is_ok() {
                    hearts.borrow_mut().latest.insert(name.clone(), now_ms());
                    hearts_sent += 1;
                }
            }
        }
        while let Some(poll) = poll
            && (votes_sent as f64) < elapsed * args.votes
            && (votes_sent as usize) < commenters.len()
        {
            let w = &commenters[votes_sent as usize];
            let option = votes_sent % 3;
            if w.try_write(&frame(&format!(
                r#"{{"type":"vote","poll":{poll},"option":{option},"media_ts":{media}}}"#
            )))
            .is_ok()
            {
                votes_sent += 1;
            } else {
                break;
            }
        }
        // Comments arrive at random (a Poisson process of the given rate).
        while elapsed >= next_comment && !commenters.is_empty() {
            next_comment += rng.exponential(args.comments);
            // Each commenter in turn, so that nobody exceeds the comment limit.
            let w = &commenters[comments_tried as usize % commenters.len()];
            if w.try_write(&frame(&format!(r#"{{"type":"comment","text":"lg {}"}}"#, now_ms())))
                .is_ok()
            {
                comments_sent += 1;
            }
            comments_tried += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server_end = sample_servers()?;
    let me_end = stats::sample(0)?;
    let mut t = tally.borrow_mut();
    t.measuring = false;
    let comments = t.comments.summary();
    let heart = t.hearts.summary();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let connected = args.viewers - failed;
    let probes = args.viewers.div_ceil(every);
    Ok(Report {
        label: args.label.clone(),
        viewers: args.viewers,
        connected,
        failed,
        disconnected: t.disconnected,
        seconds: elapsed,
        hearts_sent,
        comments_sent,
        comments_expected_at_probes: comments_sent * probes as u64,
        comments_received_by_probes: t.comments_received,
        comment_p50_ms: comments.map(|s| s.0),
        comment_p99_ms: comments.map(|s| s.1),
        comment_max_ms: comments.map(|s| s.2),
        heart_batches_received_by_probes: t.batches,
        hearts_counted_by_a_probe: t.hearts_counted,
        timed_hearts: t.hearts.len(),
        heart_p50_ms: heart.map(|s| s.0),
        heart_p99_ms: heart.map(|s| s.1),
        heart_max_ms: heart.map(|s| s.2),
        votes_sent,
        votes_counted: t.votes_counted,
        lagged_notices: t.lagged,
        server_cpu_percent_each: server_start
            .as_ref()
            .zip(server_end.as_ref())
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| (b.cpu_seconds - a.cpu_seconds) / elapsed * 100.0)
                    .collect()
            })
            .unwrap_or_default(),
        server_cpu_percent: server_start
            .as_ref()
            .zip(server_end.as_ref())
            .map(|(a, b)| (stats::sum(b).cpu_seconds - stats::sum(a).cpu_seconds) / elapsed * 100.0),
        server_rss_before_mib: before.as_ref().map(|b| mib(stats::sum(b).rss_kib)),
        server_rss_mib: server_end.as_ref().map(|s| mib(stats::sum(s).rss_kib)),
        server_bytes_per_viewer: before.as_ref().zip(server_end.as_ref()).map(|(b, e)| {
            (stats::sum(e).rss_kib as f64 - stats::sum(b).rss_kib as f64) * 1024.0 / connected.max(1) as f64
        }),
        loadgen_cpu_percent: (me_end.cpu_seconds - me_start.cpu_seconds) / elapsed * 100.0,
    })
}

/// A generated clip published in a loop on a thread of its own, until dropped.
struct Publisher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Publisher {
    fn start(url: &str, work: &std::path::Path) -> anyhow::Result<Publisher> {
        let url = net::RtmpUrl::parse(url)?;
        let tags = std::sync::Arc::new(super::clip::read_tags(&super::clip::generate(work, 20, 300)?)?);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let sent = std::sync::Arc::new(super::probe::SendTimes::default());
        let halt = stop.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(super::publisher::run(url, tags, sent, halt, started_tx))
        });
        started_rx
            .recv_timeout(Duration::from_secs(15))
            .map_err(|_| anyhow::anyhow!("the publisher did not start within 15 s"))?;
        Ok(Publisher { stop })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The load generator's own random numbers (xorshift: fast, and the same every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A gap between events of a Poisson process of `rate` per second (infinite if none).
    fn exponential(&mut self, rate: f64) -> f64 {
        if rate <= 0.0 {
            return f64::INFINITY;
        }
        -(1.0 - self.unit()).ln() / rate
    }
}

/// A client text frame: FIN, opcode 1, masked (with a zero key, which leaves the payload
/// as it is), 7- or 16-bit length.
pub fn frame(text: &str) -> Vec<u8> {
    let len = text.len();
    let mut out = Vec::with_capacity(len + 8);
    out.push(0x81);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(text.as_bytes());
    out
}

/// Opens a viewer's WebSocket (the upgrade by hand).
pub async fn connect(addr: &str, id: &str, token: Option<&str>) -> anyhow::Result<TcpStream> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    socket
        .write_all(
            format!(
                "GET /api/broadcasts/{id}/live HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await? == 0 {
            bail!("closed during the upgrade");
        }
        head.push(byte[0]);
        if head.len() > 4096 {
            bail!("an upgrade answer over 4 KiB");
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        bail!(
            "the upgrade answered {}",
            String::from_utf8_lossy(&head[..head.len().min(40)])
        );
    }
    Ok(socket)
}

/// A viewer's socket. Probes wait on the reactor, to time each frame the moment it arrives;
/// the bulk are plain non-blocking sockets drained on a timer and registered with no
/// poller, so that each server send to them does not also pay for waking this process (a
/// real viewer's wake-up costs its own machine, not the server's).
enum Conn {
    Probe(TcpStream),
    Bulk(std::net::TcpStream),
}

impl Conn {
    fn new(socket: TcpStream, probe: bool) -> anyhow::Result<Conn> {
        Ok(if probe {
            Conn::Probe(socket)
        } else {
            // Leaves the reactor; the socket stays non-blocking.
            Conn::Bulk(socket.into_std()?)
        })
    }

    fn try_write(&self, data: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        match self {
            Conn::Probe(s) => s.try_write(data),
            Conn::Bulk(s) => (&*s).write(data),
        }
    }
}

/// One viewer: reads (parsing if a probe), and reports its delay now and then.
async fn viewer(conn: Rc<Conn>, first: bool, tally: Rc<RefCell<Tally>>, hearts: Rc<RefCell<HeartTimes>>) {
    let delay = frame(r#"{"type":"delay","ms":1000}"#);
    let mut last_report = Instant::now();
    let _ = conn.try_write(&delay);
    let socket = match &*conn {
        Conn::Probe(socket) => socket,
        Conn::Bulk(socket) => {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                tokio::time::sleep(BULK_READ_INTERVAL).await;
                if last_report.elapsed() >= DELAY_REPORT_INTERVAL {
                    last_report = Instant::now();
                    let _ = conn.try_write(&delay);
                }
                loop {
                    match std::io::Read::read(&mut &*socket, &mut buf) {
                        Ok(0) => {
                            tally.borrow_mut().disconnected += 1;
                            return;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            tally.borrow_mut().disconnected += 1;
                            return;
                        }
                    }
                }
            }
        }
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if last_report.elapsed() >= DELAY_REPORT_INTERVAL {
            last_report = Instant::now();
            let _ = socket.try_write(&delay);
        }
        let n = match tokio::time::timeout(DELAY_REPORT_INTERVAL, socket.readable()).await {
            Ok(Ok(())) => match socket.try_read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => 0,
            },
            Ok(Err(_)) => 0,
            Err(_) => continue,
        };
        if n == 0 {
            tally.borrow_mut().disconnected += 1;
            return;
        }
        let now_wall = now_ms();
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Some((opcode, payload, used)) = parse_frame(&pending[at..]) {
            at += used;
            match opcode {
                0x1 => observe(&pending[at - payload.len()..at], now_wall, first, &tally, &hearts),
                0x9 => {
                    // Ping: answer with a pong carrying the same payload.
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    let _ = socket.try_write(&pong);
                }
                0x8 => {
                    tally.borrow_mut().disconnected += 1;
                    return;
                }
                _ => {}
            }
        }
        pending.drain(..at);
    }
}

/// One complete frame at the start of `data`: (opcode, payload, bytes used).
fn parse_frame(data: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let b0 = *data.first()?;
    let b1 = *data.get(1)?;
    let (len, mut at) = match b1 & 0x7f {
        126 => (usize::from(u16::from_be_bytes(data.get(2..4)?.try_into().ok()?)), 4),
        127 => (u64::from_be_bytes(data.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (usize::from(n), 2),
    };
    if b1 & 0x80 != 0 {
        at += 4;
    }
    let payload = data.get(at..at + len)?.to_vec();
    Some((b0 & 0x0f, payload, at + len))
}

/// Times one frame's messages at a probe.
fn observe(text: &[u8], now_wall: i64, first: bool, tally: &Rc<RefCell<Tally>>, hearts: &Rc<RefCell<HeartTimes>>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return;
    };
    // A frame holds one message or an array of them.
    let messages = match v {
        serde_json::Value::Array(all) => all,
        one => vec![one],
    };
    for v in messages {
        observe_one(&v, now_wall, first, tally, hearts);
    }
}

fn observe_one(
    v: &serde_json::Value,
    now_wall: i64,
    first: bool,
    tally: &Rc<RefCell<Tally>>,
    hearts: &Rc<RefCell<HeartTimes>>,
) {
    let mut t = tally.borrow_mut();
    match v["type"].as_str() {
        Some("comment") => {
            if let Some(sent) = v["text"]
                .as_str()
                .and_then(|s| s.strip_prefix("lg "))
                .and_then(|s| s.parse::<i64>().ok())
                && t.measuring
            {
                t.comments_received += 1;
                t.comments
                    .record(Duration::from_millis((now_wall - sent).max(0) as u64));
            }
        }
        Some("hearts") if t.measuring => {
            t.batches += 1;
            if first {
                t.hearts_counted += v["count"].as_u64().unwrap_or(0);
            }
            // A batch naming a heart probe counted that probe's latest heart.
            let latest = &hearts.borrow().latest;
            for name in v["senders"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
                if let Some(sent) = latest.get(name) {
                    t.hearts.record(Duration::from_millis((now_wall - sent).max(0) as u64));
                }
            }
        }
        Some("poll") if first => {
            t.poll = v["id"].as_i64();
            t.votes_counted = v["totals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_u64())
                .sum();
        }
        Some("lagged") => t.lagged += 1,
        _ => {}
    }
}
