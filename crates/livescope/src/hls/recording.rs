//! Recordings: each broadcast's init segment and segments in the data folder, so a
//! broadcast stays watchable as a replay after it ends and after a restart. A retention
//! period bounds the disk they use.
//!
//! A recording holds three playlists, each true to what its URL said before:
//! - `recording.m3u8`: every segment from the start, an EVENT playlist that only grows and
//!   gets EXT-X-ENDLIST at the end (a player can watch from the start while it is live);
//! - `master.m3u8`: the multivariant playlist of the replay, naming `recording.m3u8`;
//! - `index.m3u8`, written at the end: the live playlist as it ended (its last window and
//!   EXT-X-ENDLIST), so that the live URL keeps answering what it last said.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::StreamInfo;

/// The recordings folder.
#[derive(Debug, Clone)]
pub struct Recordings {
    dir: PathBuf,
    retention: Duration,
}

impl Recordings {
    pub fn new(dir: PathBuf, retention: Duration) -> Recordings {
        Recordings { dir, retention }
    }

    /// The file of a recording, if the names are ones we write (no path tricks).
    pub fn path(&self, id: &str, file: &str) -> Option<PathBuf> {
        let safe =
            |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        (safe(id) && safe(file) && !file.starts_with('.')).then(|| self.dir.join(id).join(file))
    }

    /// Starts recording broadcast `id`, whose segments round to at most `target_duration`.
    pub fn start(&self, id: &str, target_duration: u32) -> Recorder {
        Recorder {
            dir: self.dir.join(id),
            target_duration,
            entries: Vec::new(),
            bytes: 0,
            peak: 0.0,
            failed: false,
        }
    }

    /// Deletes recordings older than the retention period and closes the playlists of
    /// recordings a crash left open. Run at start and then hourly.
    pub async fn sweep(&self) {
        let Ok(mut dirs) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = dirs.next_entry().await {
            let path = entry.path();
            if age(&entry).await.is_some_and(|age| age > self.retention) {
                if let Err(e) = tokio::fs::remove_dir_all(&path).await {
                    tracing::warn!("cannot delete old recording {}: {e}", path.display());
                }
                continue;
            }
            close_playlist(&path.join(super::http::RECORDING_PLAYLIST)).await;
            close_playlist(&path.join("index.m3u8")).await;
        }
    }
}

/// How long since a folder entry was last written to (for retention sweeps).
pub async fn age(entry: &tokio::fs::DirEntry) -> Option<Duration> {
    let modified = entry.metadata().await.and_then(|m| m.modified()).ok()?;
    SystemTime::now().duration_since(modified).ok()
}

/// Appends EXT-X-ENDLIST to a playlist that lacks it: its broadcast is no longer live.
async fn close_playlist(path: &Path) {
    if let Ok(text) = tokio::fs::read_to_string(path).await
        && !text.contains("#EXT-X-ENDLIST")
    {
        let _ = tokio::fs::write(path, text + "#EXT-X-ENDLIST\n").await;
    }
}

/// Writes one broadcast's recording as it happens.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    target_duration: u32,
    entries: Vec<(u64, f64)>,
    /// Bytes of the segments so far, and the highest segment bit rate, for the replay's
    /// BANDWIDTH and AVERAGE-BANDWIDTH.
    bytes: u64,
    peak: f64,
    failed: bool,
}

impl Recorder {
    async fn write(&mut self, name: &str, data: &[u8]) {
        if self.failed {
            return;
        }
        let result = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            // Write then rename, so a reader never sees half a file.
            let tmp = self.dir.join(format!(".{name}.tmp"));
            tokio::fs::write(&tmp, data).await?;
            tokio::fs::rename(&tmp, self.dir.join(name)).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!("recording to {} stopped: {e}", self.dir.display());
            self.failed = true;
        }
    }

    pub async fn init(&mut self, init: &Bytes) {
        self.write("init.mp4", init).await;
    }

    /// The replay's poster (see `State::poster`).
    pub async fn poster(&mut self, data: &Bytes) {
        self.write("poster.mp4", data).await;
    }

    /// Adds a complete segment: the recording's playlist grows by it, and the replay's
    /// multivariant playlist is rewritten with the bit rates so far.
    pub async fn segment(&mut self, msn: u64, duration: f64, data: &Bytes, info: &StreamInfo) {
        self.write(&hls_segment_name(msn), data).await;
        self.entries.push((msn, duration));
        self.bytes += data.len() as u64;
        if duration >= 0.5 {
            self.peak = self.peak.max(data.len() as f64 * 8.0 / duration);
        }
        let playlist = self.playlist(false);
        self.write(super::http::RECORDING_PLAYLIST, playlist.as_bytes()).await;
        let seconds = self.entries.iter().map(|(_, d)| d).sum();
        let master = super::http::master_playlist(
            info,
            super::bandwidth(self.bytes, seconds, self.peak),
            super::http::RECORDING_PLAYLIST,
        );
        self.write("master.m3u8", master.as_bytes()).await;
    }

    /// Closes the recording; `live_playlist` is the live playlist as it ended.
    pub async fn finish(mut self, live_playlist: &str) {
        let playlist = self.playlist(true);
        self.write(super::http::RECORDING_PLAYLIST, playlist.as_bytes()).await;
        self.write("index.m3u8", live_playlist.as_bytes()).await;
    }

    fn playlist(&self, ended: bool) -> String {
        let first = self.entries.first().map_or(0, |(m, _)| *m);
        let mut text = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n",
            self.target_duration
        );
        for (msn, duration) in &self.entries {
            text.push_str(&format!("#EXTINF:{duration:.5},\n{}\n", hls_segment_name(*msn)));
        }
        if ended {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }
}

fn hls_segment_name(msn: u64) -> String {
    format!("seg{msn}.m4s")
}
