//! The load generator's LL-HLS viewer: follows a live playlist the way an LL-HLS player
//! does (the hinted part, then the playlist that lists it, with blocking reload), over one
//! keep-alive connection, and times each part from the moment its first frame was
//! published until the viewer holds the whole part.

use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net;
use super::viewer::{STALL_GAP, Viewer};

/// A minimal HTTP/1.1 keep-alive client for one origin.
struct Client {
    socket: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Client {
    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.socket.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = net::parse_status(&head)?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("response without content-length")?;
        self.buf.drain(..head_end + 4);
        while self.buf.len() < length {
            self.fill().await?;
        }
        let body = self.buf.drain(..length).collect();
        Ok((status, body))
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 << 10];
        let n = self.socket.read(&mut chunk).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The hinted part's number and the position (msn, part index) a playlist request asks
/// for to see it listed.
fn next_part(playlist: &str) -> Option<(u64, u64, u64)> {
    let line = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))?;
    let number = line
        .split("URI=\"part")
        .nth(1)?
        .trim_end_matches(".m4s\"")
        .parse()
        .ok()?;
    let first: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .parse()
        .ok()?;
    let complete = playlist.lines().filter(|l| l.starts_with("seg")).count() as u64;
    let lines: Vec<&str> = playlist.lines().collect();
    let after = lines.iter().rposition(|l| l.starts_with("seg")).map_or(0, |i| i + 1);
    let parts = lines[after..].iter().filter(|l| l.starts_with("#EXT-X-PART:")).count() as u64;
    Some((number, first + complete, parts))
}

/// The decode time of a part's first track (video when there is video), in milliseconds.
fn first_decode_time_ms(part: &[u8]) -> Option<u32> {
    let at = part.windows(4).take(512).position(|w| w == b"tfdt")?;
    let version = *part.get(at + 4)?;
    let time = if version == 1 {
        u64::from_be_bytes(part.get(at + 8..at + 16)?.try_into().ok()?)
    } else {
        u64::from(u32::from_be_bytes(part.get(at + 8..at + 12)?.try_into().ok()?))
    };
    u32::try_from(time / 90).ok()
}

pub async fn follow(viewer: &Viewer, url: &str) -> anyhow::Result<()> {
    let (addr, path) = net::parse_http(url)?;
    let base = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
    let socket = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket.set_nodelay(true)?;
    let mut client = Client {
        socket,
        host: addr,
        buf: Vec::new(),
    };
    let (status, body) = client.get(&path).await?;
    if status != 200 {
        bail!("playlist answered {status}");
    }
    viewer.tally.borrow_mut().playing += 1;
    let mut playlist = String::from_utf8_lossy(&body).into_owned();
    loop {
        if playlist.contains("#EXT-X-ENDLIST") {
            return Ok(());
        }
        let (number, msn, index) = next_part(&playlist).context("playlist without a preload hint")?;
        let (status, part) = client.get(&format!("{base}/part{number}.m4s")).await?;
        let now = Instant::now();
        if status == 200 {
            record_part(viewer, &part, now);
        }
        let (status, body) = client.get(&format!("{path}?_HLS_msn={msn}&_HLS_part={index}")).await?;
        if status != 200 {
            bail!("blocking playlist request answered {status}");
        }
        playlist = String::from_utf8_lossy(&body).into_owned();
    }
}

fn record_part(viewer: &Viewer, part: &[u8], now: Instant) {
    let mut tally = viewer.tally.borrow_mut();
    if !tally.measuring {
        tally.last_video[viewer.index] = Some(now);
        return;
    }
    tally.messages += 1;
    tally.bytes += part.len() as u64;
    if tally.last_video[viewer.index].is_some_and(|last| now.duration_since(last) > STALL_GAP) {
        tally.stalls += 1;
    }
    tally.last_video[viewer.index] = Some(now);
    match first_decode_time_ms(part).and_then(|ts| viewer.sent.get_video_ts(ts)) {
        Some(sent) => {
            let latency = now.saturating_duration_since(sent);
            tally.latencies.record(latency);
            tally.video_latencies.record(latency);
        }
        None => tally.unmatched += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_part_and_its_position() {
        let playlist = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-PART:DURATION=0.3,URI=\"part30.m4s\"\n#EXTINF:2.0,\nseg4.m4s\n\
                        #EXT-X-PART:DURATION=0.3,URI=\"part31.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part32.m4s\"\n";
        assert_eq!(next_part(playlist), Some((32, 5, 1)));
        let mut part = vec![0u8; 64];
        part[20..24].copy_from_slice(b"tfdt");
        part[24] = 1;
        part[28..36].copy_from_slice(&(90u64 * 1234).to_be_bytes());
        assert_eq!(first_decode_time_ms(&part), Some(1234));
    }
}
