//! The load generator's HLS viewer. On an LL-HLS playlist it follows the live edge the way
//! an LL-HLS player does (the hinted part, then the playlist that lists it, with blocking
//! reload) and times each part from the moment its first frame was published until the
//! viewer holds the whole part. On a plain HLS playlist (nginx-rtmp's) it polls the
//! playlist every half target duration and times each new segment the same way; MPEG-TS
//! and fMP4 segments are both understood.

use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::net;
use super::viewer::{STALL_GAP, Viewer};

/// A minimal HTTP/1.1 keep-alive client for one origin: bodies with a length, or chunked
/// (a part streamed while it is produced).
struct Client {
    socket: TcpStream,
    host: String,
    buf: Vec<u8>,
}

/// An answer, and when the first byte of its body arrived.
struct Answer {
    status: u16,
    body: Vec<u8>,
    first_byte: Instant,
}

impl Client {
    async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
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
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        let length: Option<usize> = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok());
        self.buf.drain(..head_end + 4);
        if chunked {
            return self.chunked(status).await;
        }
        let length = length.context("response without content-length")?;
        if self.buf.is_empty() && length > 0 {
            self.fill().await?;
        }
        let first_byte = Instant::now();
        while self.buf.len() < length {
            self.fill().await?;
        }
        let body = self.buf.drain(..length).collect();
        Ok(Answer {
            status,
            body,
            first_byte,
        })
    }

    /// Reads a chunked body.
    async fn chunked(&mut self, status: u16) -> anyhow::Result<Answer> {
        let mut body = Vec::new();
        let mut first_byte = None;
        loop {
            let line_end = loop {
                if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break end;
                }
                if self.buf.len() > 64 {
                    bail!("bad chunk size line");
                }
                self.fill().await?;
            };
            let line = std::str::from_utf8(&self.buf[..line_end]).context("bad chunk size line")?;
            let size =
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).context("bad chunk size")?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            first_byte.get_or_insert_with(Instant::now);
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
            if size == 0 {
                return Ok(Answer {
                    status,
                    body,
                    first_byte: first_byte.unwrap_or_else(Instant::now),
                });
            }
        }
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
    // A playlist appears with the stream's first segment: wait for it, as players do.
    let mut tries = 0;
    let body = loop {
        let Answer { status, body, .. } = client.get(&path).await?;
        match status {
            200 => break body,
            404 if tries < 40 => tries += 1,
            _ => bail!("playlist answered {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    viewer.tally.borrow_mut().playing += 1;
    let mut playlist = String::from_utf8_lossy(&body).into_owned();
    if !playlist.contains("#EXT-X-PRELOAD-HINT") && !playlist.contains("#EXT-X-ENDLIST") {
        return poll(viewer, &mut client, &path, &base, playlist).await;
    }
    loop {
        if playlist.contains("#EXT-X-ENDLIST") {
            return Ok(());
        }
        let Some((number, msn, index)) = ::hls::next_position(&playlist) else {
            // No preload hint before EXT-X-ENDLIST: the stream is ending (the last parts
            // are listed, the end comes next). Look again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let Answer { status, body, .. } = client.get(&path).await?;
            if status != 200 {
                bail!("playlist answered {status}");
            }
            playlist = String::from_utf8_lossy(&body).into_owned();
            continue;
        };
        let part = client.get(&format!("{base}/part{number}.m4s")).await?;
        let now = Instant::now();
        if part.status == 200 {
            record_part(viewer, &part.body, part.first_byte, now, STALL_GAP);
        }
        let Answer { status, body, .. } = client.get(&format!("{path}?_HLS_msn={msn}&_HLS_part={index}")).await?;
        if status != 200 {
            bail!("blocking playlist request answered {status}");
        }
        playlist = String::from_utf8_lossy(&body).into_owned();
    }
}

/// Plain HLS: reload the playlist every half target duration, fetch each new segment.
async fn poll(viewer: &Viewer, client: &mut Client, path: &str, base: &str, first: String) -> anyhow::Result<()> {
    let segments = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let mut seen: std::collections::HashSet<String> = segments(&first).into_iter().collect();
    let target: f64 = first
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(2.0);
    let interval = std::time::Duration::from_secs_f64((target / 2.0).max(0.2));
    // Segments arrive a target duration apart; a stall is a second more than that.
    let stall_gap = STALL_GAP + std::time::Duration::from_secs_f64(target);
    loop {
        tokio::time::sleep(interval).await;
        let Answer { status, body, .. } = client.get(path).await?;
        if status != 200 {
            bail!("playlist answered {status}");
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        for uri in segments(&text) {
            if seen.insert(uri.clone()) {
                let segment = client.get(&format!("{base}/{uri}")).await?;
                if segment.status == 200 {
                    record_part(viewer, &segment.body, segment.first_byte, Instant::now(), stall_gap);
                }
            }
        }
        if text.contains("#EXT-X-ENDLIST") {
            return Ok(());
        }
    }
}

/// The decode time (or presentation time) of the first video PES of an MPEG-TS segment,
/// in milliseconds.
fn ts_first_video_time_ms(data: &[u8]) -> Option<u32> {
    for packet in data.chunks_exact(188) {
        if packet[0] != 0x47 || packet[1] & 0x40 == 0 {
            continue;
        }
        let control = (packet[3] >> 4) & 3;
        let mut at = 4;
        if control & 2 != 0 {
            at += 1 + usize::from(*packet.get(4)?);
        }
        let pes = packet.get(at..)?;
        if control & 1 == 0 || pes.len() < 19 || pes[..3] != [0, 0, 1] || !(0xe0..=0xef).contains(&pes[3]) {
            continue;
        }
        let at = match pes[7] >> 6 {
            3 => 14, // DTS follows PTS
            2 => 9,
            _ => continue,
        };
        let b = &pes[at..at + 5];
        let ts = (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1);
        return u32::try_from(ts / 90).ok();
    }
    None
}

/// Times a part (or segment): `first_byte` and `now` (when the viewer held all of it)
/// against the moment its first frame was published.
fn record_part(viewer: &Viewer, part: &[u8], first_byte: Instant, now: Instant, stall_gap: std::time::Duration) {
    let mut tally = viewer.tally.borrow_mut();
    if !tally.measuring {
        tally.last_video[viewer.index] = Some(now);
        return;
    }
    tally.messages += 1;
    tally.bytes += part.len() as u64;
    if tally.last_video[viewer.index].is_some_and(|last| now.duration_since(last) > stall_gap) {
        tally.stalls += 1;
    }
    tally.last_video[viewer.index] = Some(now);
    let first = if part.first() == Some(&0x47) {
        ts_first_video_time_ms(part)
    } else {
        first_decode_time_ms(part)
    };
    match first.and_then(|ts| viewer.sent.get_video_ts(ts)) {
        Some(sent) => {
            let latency = now.saturating_duration_since(sent);
            tally.latencies.record(latency);
            tally.video_latencies.record(latency);
            tally
                .first_byte_latencies
                .record(first_byte.saturating_duration_since(sent));
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
        assert_eq!(::hls::next_position(playlist), Some((32, 5, 1)));
        let mut part = vec![0u8; 64];
        part[20..24].copy_from_slice(b"tfdt");
        part[24] = 1;
        part[28..36].copy_from_slice(&(90u64 * 1234).to_be_bytes());
        assert_eq!(first_decode_time_ms(&part), Some(1234));

        // One TS packet: PUSI, payload only, a video PES with PTS and DTS (DTS = 90 * 500).
        let mut ts = vec![0xffu8; 188];
        ts[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        let encode = |prefix: u8, v: u64| {
            [
                prefix | ((v >> 29) as u8 & 0x0e) | 1,
                (v >> 22) as u8,
                ((v >> 14) as u8) | 1,
                (v >> 7) as u8,
                ((v << 1) as u8) | 1,
            ]
        };
        let pes = [
            &[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10][..],
            &encode(0x30, 90 * 600),
            &encode(0x10, 90 * 500),
        ]
        .concat();
        ts[4..4 + pes.len()].copy_from_slice(&pes);
        assert_eq!(ts_first_video_time_ms(&ts), Some(500));
    }
}
