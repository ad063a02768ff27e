//! The test clip the load generator publishes: a real H.264/AAC stream made by ffmpeg
//! (moving test pattern and tone, B-frames, 2 s GOPs), read as FLV tags.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use flv::{Demuxer, Tag};

/// Makes (once, cached by its parameters) an FLV clip of `seconds` at `kbps` video bitrate.
pub fn generate(dir: &Path, seconds: u32, kbps: u32) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("clip-{seconds}s-{kbps}k.flv"));
    if path.exists() {
        return Ok(path);
    }
    let partial = path.with_extension("partial.flv");
    let bitrate = format!("{kbps}k");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", &bitrate, "-maxrate", &bitrate, "-bufsize", &bitrate,
        ])
        .args(["-g", "60", "-bf", "2", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(&partial)
        .status()
        .context("running ffmpeg (is it installed?)")?;
    if !status.success() {
        bail!("ffmpeg could not generate the clip: {status}");
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Reads every tag of an FLV file.
pub fn read_tags(path: &Path) -> anyhow::Result<Vec<Tag>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut demuxer = Demuxer::new(16 << 20);
    demuxer.push(&bytes);
    let mut tags = Vec::new();
    while let Some(tag) = demuxer.next_tag()? {
        tags.push(tag);
    }
    if tags.is_empty() {
        bail!("{} holds no FLV tags", path.display());
    }
    Ok(tags)
}
