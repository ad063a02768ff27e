//! Signed broadcasts checked at ingest: a task per live broadcast reads its frames from the
//! hub, as the LL-HLS segmenter does (so the publisher never waits on it), and runs a
//! [`signed::Verifier`] over them against the owner's account keys in force. The verdict
//! (verified, not yet verified, unsigned, or tampered since a media time) is what the API
//! shows for the broadcast.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use flv::{AvcConfig, HevcConfig, VideoCodec, VideoPacket};
use signed::sei::Codec;
use signed::{Verdict, Verifier};

use crate::hub::{Codec as FrameCodec, HeaderKind, Next, Stream};

/// The longest stretch between records that a broadcaster's signer may make, in frames
/// (`livescope broadcast` makes one at every keyframe and at least every 30 frames): a
/// stream with no record in twice as many frames is unsigned.
pub const MAX_STRETCH_FRAMES: u32 = 60;

/// The verdicts of broadcasts checked since the server started.
#[derive(Default)]
pub struct Verdicts {
    by_broadcast: Mutex<HashMap<String, Verdict>>,
}

impl Verdicts {
    pub fn get(&self, id: &str) -> Option<Verdict> {
        self.by_broadcast.lock().expect("verdicts lock").get(id).cloned()
    }

    fn set(&self, id: &str, verdict: &Verdict) {
        let mut map = self.by_broadcast.lock().expect("verdicts lock");
        if map.get(id) != Some(verdict) {
            map.insert(id.to_owned(), verdict.clone());
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Checks one live broadcast until it ends; `keys` are its owner's account keys in force.
pub async fn run(verdicts: Arc<Verdicts>, stream: Arc<Stream>, keys: Vec<[u8; 32]>) {
    let id = stream.id.clone();
    let (headers, mut sub) = stream.subscribe_internal();
    let mut pending = headers.frames;
    let mut verifier: Option<Verifier> = None;
    let mut batch = Vec::new();
    verdicts.set(&id, &Verdict::NotYetVerified);
    loop {
        for frame in pending.drain(..) {
            match (frame.header, frame.codec) {
                (Some(HeaderKind::VideoConfig), FrameCodec::Video(tag)) => {
                    // The configuration tells the codec and the NAL length size.
                    let record = frame.payload.slice(tag.header_len.min(frame.payload.len())..);
                    let (codec, length_size) = match tag.codec {
                        VideoCodec::Avc => (Codec::Avc, AvcConfig::parse(&record).map(|c| c.nal_length_size)),
                        VideoCodec::Hevc => (Codec::Hevc, HevcConfig::parse(&record).map(|c| c.nal_length_size)),
                    };
                    if verifier.is_none()
                        && let Ok(length_size) = length_size
                    {
                        verifier = Some(Verifier::new(
                            keys.clone(),
                            &id,
                            codec,
                            usize::from(length_size),
                            MAX_STRETCH_FRAMES,
                        ));
                    }
                }
                (None, FrameCodec::Video(tag)) if tag.packet == VideoPacket::Frame => {
                    if let Some(v) = verifier.as_mut() {
                        let sample = &frame.payload[tag.header_len.min(frame.payload.len())..];
                        v.video(frame.timestamp, tag.composition_time, tag.keyframe, sample, now_ms());
                    }
                }
                (None, FrameCodec::Audio(tag)) if !tag.sequence_header => {
                    if let Some(v) = verifier.as_mut() {
                        v.audio(&frame.payload[tag.header_len.min(frame.payload.len())..]);
                    }
                }
                _ => {}
            }
        }
        if let Some(v) = &verifier {
            if let Verdict::Tampered { at_ms, reason } = v.verdict()
                && verdicts
                    .get(&id)
                    .is_some_and(|old| !matches!(old, Verdict::Tampered { .. }))
            {
                tracing::warn!(broadcast = %id, at_ms, "signed broadcast tampered with: {reason}");
            }
            verdicts.set(&id, v.verdict());
        }
        batch.clear();
        match sub.next_batch(&mut batch, 1 << 20).await {
            Next::Frames => pending.append(&mut batch),
            Next::Ended => break,
        }
    }
}
