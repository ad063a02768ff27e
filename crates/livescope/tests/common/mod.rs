//! Test harness: a real livescope server on free loopback ports, real ffmpeg clips and
//! clients, and a small blocking HTTP client.

#![allow(dead_code)]

pub mod hevc;
pub mod room;
pub mod rtmp_mitm;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub rtmp: String,
    pub http: String,
    /// The RTMPS listener, when the server was started with TLS.
    pub rtmps: Option<String>,
    pub data: PathBuf,
    /// Delete the data folder when the server is dropped.
    owns_data: bool,
    owner: std::sync::OnceLock<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `serve` flags.
    pub fn start_with(flags: &[&str]) -> Server {
        let mut server = Server::launch(&temp_dir("data"), flags);
        server.owns_data = true;
        server
    }

    /// Starts a server on an existing data folder, which outlives it.
    pub fn start_in(data: &Path) -> Server {
        Server::launch(data, &[])
    }

    /// Starts a server with extra flags on an existing data folder, which outlives it.
    pub fn start_in_with(data: &Path, flags: &[&str]) -> Server {
        Server::launch(data, flags)
    }

    fn launch(data: &Path, flags: &[&str]) -> Server {
        let data = data.to_owned();
        let mut command = Command::new(env!("CARGO_BIN_EXE_livescope"));
        command
            .args(["serve", "--rtmp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data"])
            .arg(&data)
            .args(flags);
        if !flags.contains(&"--database")
            && let Some(url) = database_for(&data)
        {
            command.arg("--database").arg(url);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start livescope");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_owned()
        };
        Server {
            rtmp: field("rtmp="),
            http: field("http="),
            rtmps: line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("rtmps="))
                .map(str::to_owned),
            child,
            data,
            owns_data: false,
            owner: std::sync::OnceLock::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Registers `name` (password: `name` and "-secret") and logs in; returns the session token.
    pub fn user(&self, name: &str) -> String {
        let credentials = format!(r#"{{"username":"{name}","password":"{name}-secret"}}"#);
        let (status, body) = http(&self.http, "POST", "/api/users", credentials.as_bytes());
        assert!(status == 201 || status == 409, "{status} {body}");
        let (status, body) = http(&self.http, "POST", "/api/sessions", credentials.as_bytes());
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// The session token of the account that owns the broadcasts tests create.
    pub fn owner_token(&self) -> String {
        self.owner.get_or_init(|| self.user("broadcaster")).clone()
    }

    /// Creates a broadcast; returns (id, stream_key, the whole answer).
    pub fn create_broadcast(&self) -> (String, String, serde_json::Value) {
        let token = self.owner_token();
        let (status, body) = http_as(
            &self.http,
            "POST",
            "/api/broadcasts",
            br#"{"title":"test"}"#,
            Some(&token),
        );
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["stream_key"].as_str().unwrap().to_owned(),
            v,
        )
    }

    /// Makes broadcast `id` private to the users `names`, as its owner (`owner`, a session
    /// token) does in the API.
    pub fn set_viewers(&self, id: &str, owner: &str, names: &[&str]) {
        let body = serde_json::json!({ "viewers": names }).to_string();
        let path = format!("/api/broadcasts/{id}/viewers");
        let (status, answer) = http_as(&self.http, "PUT", &path, body.as_bytes(), Some(owner));
        assert_eq!(status, 200, "{answer}");
    }

    pub fn broadcast(&self, id: &str) -> serde_json::Value {
        let (status, body) = http(&self.http, "GET", &format!("/api/broadcasts/{id}"), b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The watch URLs `user` (a session token) gets for broadcast `id`, and the playback
    /// token they carry (a private broadcast's).
    pub fn watch_as(&self, id: &str, user: &str) -> (serde_json::Value, String) {
        let (status, b) = json(http_as(
            &self.http,
            "GET",
            &format!("/api/broadcasts/{id}"),
            b"",
            Some(user),
        ));
        assert_eq!(status, 200, "{b}");
        let hls = b["watch"]["hls"].as_str().unwrap();
        let token = hls.split("token=").nth(1).unwrap_or_default().to_owned();
        (b["watch"].clone(), token)
    }

    pub fn rtmp_url(&self, name: &str) -> String {
        format!("rtmp://{}/live/{name}", self.rtmp)
    }

    pub fn flv_url(&self, id: &str) -> String {
        format!("http://{}/live/{id}.flv", self.http)
    }

    /// Resident memory of the server in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits until the broadcast reaches `state`.
    pub fn wait_state(&self, id: &str, state: &str) -> serde_json::Value {
        self.wait_state_as(id, state, &self.owner_token())
    }

    /// Waits for broadcast `id` to reach `state`, asking as the holder of `token`.
    pub fn wait_state_as(&self, id: &str, state: &str, token: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = http_as(&self.http, "GET", &format!("/api/broadcasts/{id}"), b"", Some(token));
            assert_eq!(status, 200, "{body}");
            let b: serde_json::Value = serde_json::from_str(&body).unwrap();
            if b["state"] == state {
                return b;
            }
            assert!(Instant::now() < deadline, "broadcast never became {state}: {b}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_data {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

/// With `LIVESCOPE_TEST_STORE=postgres`, servers keep their state in PostgreSQL (a
/// scratch server shared by this test process): one database per data folder, so that a
/// server restarted on a folder finds its state again. Otherwise SQLite, in the folder.
pub fn database_for(data: &Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    if std::env::var("LIVESCOPE_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    static POSTGRES: OnceLock<livescope::store::scratch::ScratchPostgres> = OnceLock::new();
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let pg =
        POSTGRES.get_or_init(|| livescope::store::scratch::ScratchPostgres::start().expect("a scratch PostgreSQL"));
    let mut databases = DATABASES.get_or_init(Default::default).lock().unwrap();
    let url = databases
        .entry(data.to_owned())
        .or_insert_with(|| pg.create_database().expect("a scratch database"));
    Some(url.clone())
}

/// A NATS server (Debian's `nats-server`) on a free loopback port, stopped when dropped.
pub struct ScratchNats {
    child: Child,
    pub url: String,
}

impl ScratchNats {
    pub fn start() -> ScratchNats {
        let port = free_port();
        // Debian puts it in /usr/sbin, which is not on every user's PATH.
        let binary = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (Debian's nats-server package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ScratchNats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }
}

impl Drop for ScratchNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn temp_dir(what: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("livescope-test-{}-{what}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A GET that returns status, headers (lower-cased) and the raw body bytes.
pub fn get_bytes(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    (status, head, body)
}

/// An answer's status and its body as JSON (`null` if it is not JSON).
pub fn json((status, body): (u16, String)) -> (u16, serde_json::Value) {
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// A blocking HTTP/1.1 request; returns status and body (chunked bodies decoded).
pub fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    http_as(addr, method, path, body, None)
}

/// [`http`] with a session token.
pub fn http_as(addr: &str, method: &str, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    parse_response(&response)
}

pub fn parse_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Which streams a generated clip has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tracks {
    AudioVideo,
    VideoOnly,
    AudioOnly,
}

/// A real H.264 (with B-frames) / AAC clip made by ffmpeg, cached per test process.
pub fn clip(tracks: Tracks, seconds: u32, kbps: u32) -> PathBuf {
    clip_with(tracks, seconds, kbps, 30, 2)
}

/// A clip with a keyframe every `gop` frames (30 fps) and up to `bframes` B-frames.
pub fn clip_with(tracks: Tracks, seconds: u32, kbps: u32, gop: u32, bframes: u32) -> PathBuf {
    // Cached across test runs in cargo's scratch folder for tests.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clips");
    std::fs::create_dir_all(&dir).unwrap();
    let name = if (gop, bframes) == (30, 2) {
        format!("{tracks:?}-{seconds}s-{kbps}k.flv")
    } else {
        format!("{tracks:?}-{seconds}s-{kbps}k-g{gop}-b{bframes}.flv")
    };
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    // Tests of one process may make the same clip at once: each writes its own file, and
    // the last rename wins (the clips are the same).
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = dir.join(format!(
        "{}.{}-{}.partial.flv",
        path.file_stem().unwrap().to_string_lossy(),
        std::process::id(),
        MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    if tracks != Tracks::AudioOnly {
        cmd.args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]);
    }
    if tracks != Tracks::VideoOnly {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
    }
    cmd.args(["-t", &seconds.to_string()]);
    if tracks != Tracks::AudioOnly {
        let rate = format!("{kbps}k");
        // Constant bitrate (filler included), so a clip's size is what its name says.
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            &rate,
            "-minrate",
            &rate,
            "-maxrate",
            &rate,
        ]);
        let gop = gop.to_string();
        cmd.args([
            "-bufsize",
            &rate,
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-pix_fmt",
            "yuv420p",
        ]);
        // B-frames, so composition time offsets are exercised end to end.
        cmd.args([
            "-x264-params",
            &format!("nal-hrd=cbr:bframes={bframes}:b-adapt=0:scenecut=0"),
        ]);
    }
    if tracks != Tracks::VideoOnly {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    let status = cmd
        .args(["-f", "flv"])
        .arg(&partial)
        .status()
        .expect("ffmpeg is installed");
    assert!(status.success(), "ffmpeg could not make the clip");
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// Starts ffmpeg publishing `clip` in real time to `url` (RTMP, or HTTP POST for http://).
pub fn publish(clip: &Path, url: &str) -> Child {
    publish_at(clip, url, 1.0)
}

/// Starts ffmpeg publishing at `rate` times real time.
pub fn publish_at(clip: &Path, url: &str, rate: f64) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-readrate",
        &rate.to_string(),
    ]);
    cmd.arg("-i").arg(clip).args(["-c", "copy", "-f", "flv"]);
    if url.starts_with("http://") {
        cmd.args(["-method", "POST"]);
    }
    cmd.arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Publishes an FLV file over HTTP ingest at real time, as an encoder of our own: each
/// tag's timestamp is what `stamp` makes of it (a wrap, a jump), which ffmpeg's FLV writer
/// could not send. Returns when the file is sent and the server has answered.
pub fn publish_flv(http_addr: &str, key: &str, file: &Path, stamp: impl Fn(u32) -> u32) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let mut demuxer = flv::Demuxer::new(16 << 20);
    demuxer.push(&data);
    let mut stream = TcpStream::connect(http_addr).map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST /ingest/{key}.flv HTTP/1.1\r\nHost: {http_addr}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let chunk = |stream: &mut TcpStream, bytes: &[u8]| -> std::io::Result<()> {
        write!(stream, "{:x}\r\n", bytes.len())?;
        stream.write_all(bytes)?;
        stream.write_all(b"\r\n")
    };
    let mut send = |stream: &mut TcpStream| -> std::io::Result<()> {
        chunk(stream, &flv::encode_header(true, true))?;
        let start = Instant::now();
        while let Some(tag) = demuxer.next_tag().map_err(std::io::Error::other)? {
            // Paced by the clip's own clock, so the server sees a live encoder.
            let due = start + Duration::from_millis(u64::from(tag.timestamp));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            chunk(stream, &flv::encode_tag(tag.kind, stamp(tag.timestamp), &tag.body))?;
        }
        stream.write_all(b"0\r\n\r\n")
    };
    send(&mut stream).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let _ = stream.read_to_end(&mut answer);
    let (status, body) = parse_response(&answer);
    (status == 200 || status == 204)
        .then_some(())
        .ok_or(format!("ingest answered {status}: {body}"))
}

/// Starts ffmpeg watching `url`, copying what it receives into an FLV file.
pub fn watch(url: &str, out: &Path) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-i",
            url,
            "-c",
            "copy",
            "-f",
            "flv",
        ])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Waits for a child with a deadline; returns (success, stderr).
pub fn finish(mut child: Child, within: Duration) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What ffprobe sees in a file.
#[derive(Debug)]
pub struct Probe {
    pub codecs: Vec<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub duration: f64,
    pub video_packets: usize,
    pub first_video_is_key: bool,
}

pub fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-show_packets",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["codec_type"] == "video");
    let video_index = video.and_then(|s| s["index"].as_u64());
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    let video_packets: Vec<_> = packets
        .iter()
        .filter(|p| p["stream_index"].as_u64() == video_index && video_index.is_some())
        .collect();
    Probe {
        codecs: streams
            .iter()
            .map(|s| s["codec_name"].as_str().unwrap_or("?").to_owned())
            .collect(),
        width: video.and_then(|s| s["width"].as_u64()),
        height: video.and_then(|s| s["height"].as_u64()),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        video_packets: video_packets.len(),
        first_video_is_key: video_packets
            .first()
            .is_some_and(|p| p["flags"].as_str().unwrap_or("").starts_with('K')),
    }
}

/// A client of `/api/me/events` (Server-Sent Events), connected and past the `ready` event.
pub struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    pub fn connect(addr: &str, token: &str) -> Events {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET /api/me/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut events = Events {
            reader: BufReader::new(s),
        };
        let mut status = String::new();
        events.reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        events.next_event("ready");
        events
    }

    /// Reads until an event called `name`; returns its data. (Chunk-size lines of the
    /// chunked body are skipped: they are neither `event:` nor `data:` lines.)
    pub fn next_event(&mut self, name: &str) -> serde_json::Value {
        let mut current = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "the event stream ended");
            let line = line.trim_end();
            if let Some(event) = line.strip_prefix("event:") {
                current = event.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:")
                && current == name
            {
                return serde_json::from_str(data.trim()).unwrap();
            }
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nginx with the shipped edge configuration pointed at `origin`.
pub fn start_edge(origin: &str) -> (std::process::Child, String, std::path::PathBuf) {
    let dir = temp_dir("edge");
    let port = free_port();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/nginx-edge.conf")).unwrap();
    let d = dir.display();
    let server_block = shipped
        .replace("/var/cache/nginx/livescope", &format!("{d}/cache"))
        .replace("server 127.0.0.1:8080;", &format!("server {origin};"))
        .replace("listen 8081;", &format!("listen 127.0.0.1:{port};"));
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  log_format edge '$upstream_cache_status $request_uri';\n  access_log {d}/access.log edge;\n\
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n{server_block}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    // Debian puts nginx in /usr/sbin, which not every PATH has.
    let binary = if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx is installed");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr, dir)
}

/// Stops nginx the way it expects (SIGTERM: its workers exit with it; after SIGKILL they
/// would linger).
pub fn stop_edge(mut nginx: std::process::Child) {
    let _ = Command::new("kill").arg("-TERM").arg(nginx.id().to_string()).status();
    let _ = nginx.wait();
}

/// Runs a browser check (`scripts/browser/<script>` in node, which drives Chromium) with
/// `args`, and returns the JSON report it prints; fails the test with its output if it
/// fails.
pub fn browser_check<I, S>(script: &str, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let path = format!("{}/../../scripts/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("node")
        .arg(path)
        .args(args)
        .output()
        .expect("node is installed (scripts/test.sh installs the browser check's packages)");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} printed no report ({e})"))
}
