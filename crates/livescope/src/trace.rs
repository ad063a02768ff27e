//! Arrival traces: for every broadcast, each frame's media time, when it reached the
//! server, its size and whether it is a keyframe, kept as CSV in the data folder
//! (`traces/<id>.csv`) and downloadable from the API. They are what the study measured of
//! Periscope's uploads, and what a player model replays (`livescope sim`). A task per live
//! broadcast reads the frames from the hub, as the LL-HLS segmenter does: the publisher
//! never waits on the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;

use crate::delay::{Delays, Stage, UploadClock};
use crate::hub::{Codec, Next, Stream};

/// The first line of every trace.
pub const HEADER: &str = "# livescope arrival trace v1: media_ms is the frame's decode time on the broadcast's timeline; arrival_ms is when it reached the server, from the first frame's arrival; started_unix_ms says when that was\nkind,media_ms,arrival_ms,bytes,keyframe\n";
/// A trace stops growing here (about 40 hours of a 1 Mbit/s broadcast's frames).
pub const MAX_BYTES: u64 = 256 << 20;

/// Where traces are kept.
#[derive(Clone)]
pub struct Traces {
    dir: PathBuf,
}

impl Traces {
    pub fn new(dir: PathBuf) -> Traces {
        Traces { dir }
    }

    /// Deletes traces not written to for longer than `retention` (the recordings' own):
    /// run at start and then hourly.
    pub async fn sweep(&self, retention: std::time::Duration) {
        let Ok(mut files) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = files.next_entry().await {
            if crate::hls::recording::age(&entry)
                .await
                .is_some_and(|age| age > retention)
                && let Err(e) = tokio::fs::remove_file(entry.path()).await
            {
                tracing::warn!("cannot delete old trace {}: {e}", entry.path().display());
            }
        }
    }

    /// The trace file of a broadcast, if the id is one we make (no path tricks).
    pub fn file(&self, id: &str) -> Option<PathBuf> {
        let plain =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plain.then(|| self.dir.join(format!("{id}.csv")))
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One line of a trace.
fn line(out: &mut String, kind: &str, media_ms: u64, arrival: f64, bytes: usize, keyframe: bool) {
    use std::fmt::Write;
    let _ = writeln!(out, "{kind},{media_ms},{arrival:.3},{bytes},{}", u8::from(keyframe));
}

/// Writes the trace of one live broadcast until it ends, and measures its upload delay
/// (each video frame's arrival against its media time) into `delays`.
pub async fn run(traces: Traces, stream: Arc<Stream>, delays: Arc<Delays>) {
    let Some(path) = traces.file(&stream.id) else { return };
    if let Err(e) = write(&path, &stream, &delays).await {
        tracing::warn!(broadcast = %stream.id, "arrival trace stopped: {e:#}");
    }
}

async fn write(path: &Path, stream: &Arc<Stream>, delays: &Delays) -> anyhow::Result<()> {
    let mut clock = UploadClock::default();
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let (_, mut sub) = stream.subscribe_internal();
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let mut origin: Option<Instant> = None;
    let mut written = 0u64;
    let mut text = String::new();
    let mut batch = Vec::new();
    loop {
        batch.clear();
        if sub.next_batch(&mut batch, 1 << 20).await == Next::Ended {
            break;
        }
        text.clear();
        for frame in &batch {
            let kind = match frame.codec {
                Codec::Video(tag) if tag.packet == flv::VideoPacket::Frame => "video",
                Codec::Audio(tag) if !tag.sequence_header => "audio",
                _ => continue, // configurations, end of sequence, metadata: no media
            };
            let first = *origin.get_or_insert_with(|| {
                // The wall-clock time of the first arrival, once.
                let ago = frame.received.elapsed();
                text.push_str(HEADER);
                text.push_str(&format!("# started_unix_ms={}\n", unix_ms(SystemTime::now() - ago)));
                frame.received
            });
            let arrival = frame.received.saturating_duration_since(first).as_secs_f64() * 1000.0;
            if kind == "video" {
                let upload = clock.delay(frame.timestamp as f64, arrival);
                delays.observe(Stage::Upload, std::time::Duration::from_secs_f64(upload / 1000.0));
            }
            line(
                &mut text,
                kind,
                frame.timestamp,
                arrival,
                frame.payload.len(),
                frame.sync_point,
            );
        }
        if written + text.len() as u64 > MAX_BYTES {
            file.write_all(b"# truncated: the trace reached its size limit\n")
                .await?;
            break;
        }
        written += text.len() as u64;
        file.write_all(text.as_bytes()).await?;
        file.flush().await?;
    }
    file.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_name_a_file() {
        let t = Traces::new(PathBuf::from("/data/traces"));
        assert_eq!(
            t.file("fArxGT7lnlW5"),
            Some(PathBuf::from("/data/traces/fArxGT7lnlW5.csv"))
        );
        assert_eq!(t.file("../etc/passwd"), None);
        assert_eq!(t.file(""), None);
    }

    #[tokio::test]
    async fn old_traces_are_swept() {
        let dir = std::env::temp_dir().join(format!("livescope-traces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = std::fs::File::create(dir.join("old.csv")).unwrap();
        old.set_modified(SystemTime::now() - std::time::Duration::from_secs(7200))
            .unwrap();
        std::fs::write(dir.join("new.csv"), "x").unwrap();
        Traces::new(dir.clone())
            .sweep(std::time::Duration::from_secs(3600))
            .await;
        assert!(!dir.join("old.csv").exists() && dir.join("new.csv").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_are_csv() {
        let mut s = String::new();
        line(&mut s, "video", 1033, 1034.5678, 1200, true);
        assert_eq!(s, "video,1033,1034.568,1200,1\n");
    }
}
