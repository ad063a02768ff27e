//! Signing a stream as it is sent and checking it as it arrives, frame by frame.
//!
//! A *stretch* is the run of video frames from one boundary to the next: every keyframe is
//! a boundary, and so is every `max_frames`-th frame without one (so that a record comes at
//! least that often, whatever the GOP). The broadcaster's [`Signer`] puts the record of a
//! stretch into the first frame of the next one, with the certificate at every keyframe
//! (for viewers who join then). Audio frames belong to the stretch during which the
//! broadcaster sent them; since containers interleave audio and video differently, the
//! [`Verifier`] places a record's audio by content: the run of frames right after the
//! previous record's run (or, for the first record it checks, wherever the run matches).

use std::collections::VecDeque;

use crate::hash::{FrameHasher, audio_digest, coded_data};
use crate::record::{Certificate, Message, Record, SessionKey};
use crate::sei::{self, Codec};

/// Signs a stream: each video sample comes back with the records and certificate due.
pub struct Signer {
    session: SessionKey,
    codec: Codec,
    length_size: usize,
    max_frames: u32,
    video: FrameHasher,
    audio: FrameHasher,
    start_ms: Option<u64>,
}

impl Signer {
    /// `length_size`: the NAL length size of the samples (from the codec configuration).
    pub fn new(session: SessionKey, codec: Codec, length_size: usize, max_frames: u32) -> Signer {
        Signer {
            session,
            codec,
            length_size,
            max_frames: max_frames.max(1),
            video: FrameHasher::default(),
            audio: FrameHasher::default(),
            start_ms: None,
        }
    }

    /// A video frame about to be sent; returns the sample to send in its place.
    pub fn video(&mut self, dts_ms: u64, composition_ms: i32, keyframe: bool, sample: &[u8]) -> Vec<u8> {
        let mut units = Vec::new();
        let boundary = keyframe || self.video.frames() >= self.max_frames;
        if boundary && let Some(start) = self.start_ms {
            let video = std::mem::take(&mut self.video).finish();
            let audio = std::mem::take(&mut self.audio).finish();
            let duration = dts_ms.saturating_sub(start).min(u64::from(u32::MAX)) as u32;
            let record = self.session.sign(start, duration, video, audio);
            units.push(sei::nal(self.codec, &Message::Record(record).encode()));
            self.start_ms = None;
        }
        if keyframe {
            let certificate = Message::Certificate(self.session.certificate().clone());
            units.push(sei::nal(self.codec, &certificate.encode()));
        }
        self.start_ms.get_or_insert(dts_ms);
        let coded = coded_data(sample, self.length_size, self.codec);
        self.video.video(dts_ms, composition_ms, keyframe, &coded);
        sei::prepend(sample, self.length_size, &units)
    }

    /// An audio frame about to be sent (it is sent as it is).
    pub fn audio(&mut self, coded: &[u8]) {
        self.audio.audio(coded);
    }
}

/// What a viewer (or the server) can say of a stream so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No whole record checked yet (a viewer who just joined).
    NotYetVerified,
    /// Every record checked so far matched; `records` of them.
    Verified { records: u64 },
    /// No signature arrived where one was due: an unsigned broadcast.
    Unsigned,
    /// Something did not match, first at media time `at_ms` (the publisher's clock).
    Tampered { at_ms: u64, reason: String },
}

/// How a stretch of video checked out against the record that closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch {
    /// Its video frames are what was signed.
    Matched,
    /// The record or the frames do not match (the verdict says how).
    Mismatched,
    /// Nothing to check it against (the stretch or the session began before this viewer).
    Unchecked,
}

/// A record whose video matched, waiting for its audio to arrive.
struct Pending {
    /// False for a record whose video did not match: its audio run is passed over (the
    /// runs after it stay in place), not checked nor counted as verified.
    check: bool,
    start_ms: u64,
    end_ms: u64,
    audio_frames: u32,
    audio_hash: [u8; 32],
}

/// Spans of media that did not match, kept to show (the count goes on).
pub const MAX_FLAGGED: usize = 64;
/// Audio frames kept for placing records' runs: about 20 s of AAC.
const MAX_AUDIO_QUEUE: usize = 1024;
/// Records the first audio run may be looked for over before the audio counts as
/// tampered.
const ALIGN_TRIES: usize = 3;

/// Checks a stream as it arrives.
pub struct Verifier {
    trusted: Vec<[u8; 32]>,
    broadcast: String,
    codec: Codec,
    length_size: usize,
    /// Frames without any signature message after which a stream is unsigned.
    unsigned_after: u32,
    session: Option<[u8; 32]>,
    video: FrameHasher,
    stretch_start: Option<u64>,
    /// Whether the stretch in progress was seen from its first frame.
    whole: bool,
    last: Option<(u64, [u8; 32])>,
    /// The digests of the audio frames not yet placed in a checked run.
    audio: VecDeque<[u8; 32]>,
    /// Where in `audio` the next record's run starts, once the runs are placed.
    cursor: Option<usize>,
    align_failures: usize,
    /// Audio frames held when the first run was last looked for.
    searched_at: usize,
    pending: VecDeque<Pending>,
    /// Video frames since the last record (certificates alone do not count: they can be
    /// copied into any stream).
    frames_without_record: u32,
    /// Check certificates' validity against the wall clock (live); off for a replay, whose
    /// certificates may long have expired.
    live: bool,
    /// The last certificate that checked out, not to check its signature again.
    certified: Option<Certificate>,
    verdict: Verdict,
    /// How the last record's stretch checked out, until taken.
    closed: Option<Stretch>,
    flagged: VecDeque<(u64, u64)>,
    mismatches: u64,
}

impl Verifier {
    /// `trusted`: the broadcaster's account keys in force; `broadcast`: the broadcast's id;
    /// `length_size`: the NAL length size of the samples; `max_frames`: the longest stretch
    /// the broadcaster makes (a stream with no record in twice that is unsigned).
    pub fn new(trusted: Vec<[u8; 32]>, broadcast: &str, codec: Codec, length_size: usize, max_frames: u32) -> Verifier {
        Verifier {
            trusted,
            broadcast: broadcast.to_owned(),
            codec,
            length_size,
            unsigned_after: max_frames.max(1).saturating_mul(2),
            session: None,
            video: FrameHasher::default(),
            stretch_start: None,
            whole: false,
            last: None,
            audio: VecDeque::new(),
            cursor: None,
            align_failures: 0,
            searched_at: 0,
            pending: VecDeque::new(),
            frames_without_record: 0,
            live: true,
            certified: None,
            verdict: Verdict::NotYetVerified,
            closed: None,
            flagged: VecDeque::new(),
            mismatches: 0,
        }
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The broadcaster's account keys changed (one revoked, one added). A session that a
    /// revoked key certified is checked no further: its next certificate is refused.
    pub fn set_trusted(&mut self, trusted: Vec<[u8; 32]>) {
        if let Some(c) = &self.certified
            && !trusted.contains(&c.account_key)
        {
            self.certified = None;
            self.session = None;
        }
        self.trusted = trusted;
    }

    /// For a recording watched later: certificates are not held to the wall clock.
    pub fn replaying(mut self) -> Verifier {
        self.live = false;
        self
    }

    fn tampered(&mut self, at_ms: u64, reason: impl Into<String>) {
        if !matches!(self.verdict, Verdict::Tampered { .. }) {
            self.verdict = Verdict::Tampered {
                at_ms,
                reason: reason.into(),
            };
        }
    }

    fn certificate(&mut self, c: Certificate, dts_ms: u64, now_ms: u64) {
        // The cheap checks first: a publisher stuffing certificates costs a comparison each.
        let problem = if !self.trusted.contains(&c.account_key) {
            Some("a certificate from a key the broadcaster has not registered (or revoked)")
        } else if c.broadcast != self.broadcast {
            Some("a certificate for another broadcast")
        } else if self.live && !c.valid_at(now_ms) {
            Some("a certificate outside its validity (or a clock far off)")
        } else if self.certified.as_ref() == Some(&c) {
            None
        } else if c.verify().is_err() {
            Some("a certificate with a bad signature")
        } else {
            self.certified = Some(c.clone());
            None
        };
        match problem {
            Some(reason) => {
                self.flag(dts_ms, dts_ms);
                self.tampered(dts_ms, reason);
            }
            None => {
                if self.session != Some(c.session_key) {
                    // A new session starts its own chain, and its first stretch at this
                    // frame (whatever was in progress belonged to no record of it).
                    self.session = Some(c.session_key);
                    self.last = None;
                    self.video = FrameHasher::default();
                    self.stretch_start = None;
                    self.realign_audio();
                }
            }
        }
    }

    /// Starts again as a viewer joining here would, keeping the verdict: for a check that
    /// was made to skip frames by its own side (a server task that fell behind), not by
    /// what came over the network.
    pub fn rejoin(&mut self) {
        self.video = FrameHasher::default();
        self.stretch_start = None;
        self.whole = false;
        self.last = None;
        self.realign_audio();
    }

    fn record(&mut self, r: Record, dts_ms: u64) {
        let start = self.stretch_start.unwrap_or(dts_ms);
        let closed = self.check_record(r, dts_ms);
        if closed == Stretch::Mismatched {
            self.flag(start, dts_ms);
        }
        self.closed = Some(closed);
    }

    /// Notes a span of media time (ms, from, to) that did not match.
    fn flag(&mut self, from: u64, to: u64) {
        self.mismatches += 1;
        if self.flagged.len() == MAX_FLAGGED {
            self.flagged.pop_front();
        }
        self.flagged.push_back((from, to));
    }

    /// The spans of media time (ms: from the first frame of a stretch to the frame that
    /// closed it) that did not match, the most recent [`MAX_FLAGGED`].
    pub fn flagged(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.flagged.iter().copied()
    }

    /// Where the stretch in progress began (ms): the frames from there on wait for the
    /// record the next stretch brings. When a stream ends, they stay unchecked: the last
    /// stretch of a broadcast (at most a second with `livescope broadcast`) has no record.
    pub fn unchecked_from(&self) -> Option<u64> {
        self.stretch_start
    }

    /// How many stretches (or messages) did not match, in all.
    pub fn mismatches(&self) -> u64 {
        self.mismatches
    }

    /// Checks a record against the stretch it closes.
    fn check_record(&mut self, r: Record, dts_ms: u64) -> Stretch {
        let video = std::mem::take(&mut self.video).finish();
        let start = self.stretch_start.take().unwrap_or(dts_ms);
        let whole = std::mem::take(&mut self.whole);
        let Some(session) = self.session else {
            // Joined before a certificate: nothing to check against yet.
            return Stretch::Unchecked;
        };
        if self.verdict == Verdict::Unsigned {
            // Signatures that start late leave what came before unchecked.
            self.tampered(start, "unsigned for a while, then signed");
            return Stretch::Mismatched;
        }
        if let Err(e) = r.verify(&session) {
            self.tampered(start, e.to_string());
            self.realign_audio();
            return Stretch::Mismatched;
        }
        if let Some((sequence, digest)) = self.last
            && (r.sequence != sequence + 1 || r.previous != digest)
        {
            self.tampered(start, "a record missing, repeated or out of order");
            if r.sequence > sequence {
                // Records went missing: the chain goes on from this one, so the stretches
                // after it are checked again. Never backwards: records replayed from
                // before keep failing, however well they chain among themselves.
                self.last = Some((r.sequence, r.digest()));
            }
            self.realign_audio();
            return Stretch::Mismatched;
        }
        let anchored = self.last.is_some();
        self.last = Some((r.sequence, r.digest()));
        if !whole && anchored {
            // Once the chain runs, every record covers frames seen from their start: a
            // record with none (two in a frame) would let a stretch be cut out unseen.
            self.tampered(start, "a record that covers no frames seen whole");
            self.realign_audio();
            return Stretch::Mismatched;
        }
        if !whole {
            // The stretch began before this viewer joined: its frames cannot be checked.
            return Stretch::Unchecked;
        }
        let matched = (r.video_frames, r.video_hash) == video;
        self.pending.push_back(Pending {
            check: matched,
            start_ms: start,
            end_ms: dts_ms,
            audio_frames: r.audio_frames,
            audio_hash: r.audio_hash,
        });
        self.check_audio();
        if !matched {
            self.tampered(start, "video frames differ from what was signed");
            return Stretch::Mismatched;
        }
        Stretch::Matched
    }

    /// The chain broke (a record missing, moved or forged): the audio runs of the records
    /// in between are unknown, so the next run is placed by its content again.
    fn realign_audio(&mut self) {
        self.pending.clear();
        self.cursor = None;
        self.searched_at = 0;
        self.align_failures = 0;
    }

    /// How the last stretch closed by a record checked out, once (for a server holding each
    /// stretch back until its record comes). Its audio is checked as it arrives, later.
    pub fn take_closed(&mut self) -> Option<Stretch> {
        self.closed.take()
    }

    /// Checks the audio runs of the records whose video matched, as far as audio has come.
    fn check_audio(&mut self) {
        while let Some(p) = self.pending.front() {
            let n = p.audio_frames as usize;
            if n == 0 && p.audio_hash == FrameHasher::default().finish().1 {
                // A stretch without audio (a video-only stream) has no run to place.
                if self.pending.pop_front().is_some_and(|p| p.check) {
                    self.verified();
                }
                continue;
            }
            let run_hash = |from: usize| {
                let mut h = FrameHasher::default();
                self.audio.range(from..from + n).for_each(|d| h.audio_digest(d));
                h.finish()
            };
            let start = match self.cursor {
                Some(c) if self.audio.len() >= c + n && !p.check => c,
                Some(c) if self.audio.len() >= c + n => {
                    if run_hash(c) != (p.audio_frames, p.audio_hash) {
                        let (at, end) = (p.start_ms, p.end_ms);
                        self.flag(at, end);
                        self.tampered(at, "audio frames differ from what was signed");
                        // Where the next run starts is unknown now: found by content again.
                        self.realign_audio();
                        return;
                    }
                    c
                }
                Some(_) => return, // its audio has not all arrived yet
                None if !p.check => {
                    // Not placed yet and not to be checked: the next run is looked for.
                    self.pending.pop_front();
                    continue;
                }
                None => {
                    // The first run: wherever it matches in what has come so far (looked
                    // for again only once a few more frames came).
                    if self.audio.len() < n || self.audio.len() < self.searched_at + 8 {
                        return;
                    }
                    self.searched_at = self.audio.len();
                    let want = (p.audio_frames, p.audio_hash);
                    let mut matches = (0..=self.audio.len() - n).filter(|&s| run_hash(s) == want);
                    let (found, again) = (matches.next(), matches.next());
                    if found.is_some() && again.is_some() {
                        // The run matches in more than one place (silence: identical
                        // frames): it checks out, but where the next one starts is left to
                        // be found by a run that is unique.
                        self.pending.pop_front();
                        self.searched_at = 0;
                        self.verified();
                        continue;
                    }
                    match found {
                        Some(s) => s,
                        None if self.audio.len() < n + 64 => return, // more may be on its way
                        None => {
                            self.align_failures += 1;
                            if self.align_failures >= ALIGN_TRIES {
                                let (at, end) = (p.start_ms, p.end_ms);
                                self.flag(at, end);
                                self.tampered(at, "audio frames differ from what was signed");
                                self.realign_audio();
                                return;
                            }
                            self.pending.pop_front();
                            continue;
                        }
                    }
                }
            };
            self.audio.drain(..start + n);
            self.cursor = Some(0);
            self.searched_at = 0;
            if self.pending.pop_front().is_some_and(|p| p.check) {
                self.verified();
            }
        }
    }

    /// One more record checked in full.
    fn verified(&mut self) {
        self.verdict = match self.verdict {
            Verdict::NotYetVerified | Verdict::Unsigned => Verdict::Verified { records: 1 },
            Verdict::Verified { records } => Verdict::Verified { records: records + 1 },
            ref tampered @ Verdict::Tampered { .. } => tampered.clone(),
        };
    }

    /// A video frame as received (its sample with any records in it), at wall-clock
    /// `now_ms` (for the certificate's validity).
    pub fn video(&mut self, dts_ms: u64, composition_ms: i32, keyframe: bool, sample: &[u8], now_ms: u64) {
        let messages = sei::find(sample, self.length_size, self.codec);
        let boundary = !messages.is_empty();
        let mut records = 0;
        let mut certificates = 0;
        self.frames_without_record += 1;
        for payload in messages {
            match Message::decode(&payload) {
                Ok(Message::Certificate(c)) => {
                    certificates += 1;
                    self.certificate(c, dts_ms, now_ms);
                }
                Ok(Message::Record(r)) => {
                    records += 1;
                    if records > 1 {
                        self.flag(dts_ms, dts_ms);
                        self.tampered(dts_ms, "two records in one frame");
                        continue;
                    }
                    self.frames_without_record = 0;
                    self.record(r, dts_ms);
                }
                Err(e) => {
                    self.flag(dts_ms, dts_ms);
                    self.tampered(dts_ms, format!("an unreadable signature message: {e}"));
                }
            }
        }
        if keyframe && records > 0 && certificates == 0 {
            // The broadcaster certifies its session at every keyframe: records without one
            // there could go on unchecked forever (a certificate taken out).
            self.flag(dts_ms, dts_ms);
            self.tampered(dts_ms, "a keyframe without its certificate");
        }
        if self.frames_without_record > self.unsigned_after {
            match self.verdict {
                Verdict::NotYetVerified => self.verdict = Verdict::Unsigned,
                Verdict::Verified { .. } | Verdict::Tampered { .. } if self.last.is_some() => {
                    // Flagged again every so many frames for as long as they stay away.
                    let from = self.stretch_start.unwrap_or(dts_ms);
                    self.flag(from, dts_ms);
                    self.tampered(dts_ms, "signatures stopped");
                    self.frames_without_record = 0;
                }
                _ => {}
            }
        }
        if self.stretch_start.is_none() {
            // A stretch begins at a boundary, which carries a record or a certificate: one
            // begun at a frame without either was joined in its middle.
            self.stretch_start = Some(dts_ms);
            self.whole = boundary;
        }
        let coded = coded_data(sample, self.length_size, self.codec);
        self.video.video(dts_ms, composition_ms, keyframe, &coded);
    }

    /// An audio frame as received.
    pub fn audio(&mut self, coded: &[u8]) {
        self.audio.push_back(audio_digest(coded));
        if self.audio.len() > MAX_AUDIO_QUEUE {
            self.audio.pop_front();
            self.cursor = self.cursor.map(|c| c.saturating_sub(1));
            self.searched_at = self.searched_at.saturating_sub(1);
        }
        self.check_audio();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    const BROADCAST: &str = "fArxGT7lnlW5";
    const NOW: u64 = 1_800_000_000_000;
    /// A stretch is at most a second of 30 fps video.
    const MAX_FRAMES: u32 = 30;

    /// What travels: a video frame (dts, cts, keyframe, sample) or an audio frame.
    #[derive(Debug, Clone, PartialEq)]
    enum Item {
        Video(u64, i32, bool, Vec<u8>),
        Audio(Vec<u8>),
    }

    fn account() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A sample of one slice NAL unit with bytes that differ per frame.
    fn sample(n: u64, keyframe: bool) -> Vec<u8> {
        let mut unit = vec![if keyframe { 0x65 } else { 0x41 }];
        unit.extend((0..40 + n % 13).map(|i| (n * 31 + i * 7) as u8 | 1));
        let mut out = (unit.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&unit);
        out
    }

    /// `seconds` of 30 fps video (a keyframe every `gop` frames) and AAC every 21 ms, in
    /// the order an encoder sends them, signed (or not).
    fn stream(seconds: u64, gop: u64, audio: bool, sign: bool) -> Vec<Item> {
        let session = SessionKey::new(&account(), [9; 32], BROADCAST, NOW - 1000, 3_600_000);
        let mut signer = Signer::new(session, Codec::Avc, 4, MAX_FRAMES);
        let mut out = Vec::new();
        let mut audio_n = 0u64;
        for n in 0..seconds * 30 {
            let dts = n * 1000 / 30;
            while audio && audio_n * 21 <= dts {
                let frame: Vec<u8> = (0..20).map(|i| (audio_n * 17 + i) as u8).collect();
                if sign {
                    signer.audio(&frame);
                }
                out.push(Item::Audio(frame));
                audio_n += 1;
            }
            let key = n % gop == 0;
            let s = sample(n, key);
            let sent = if sign { signer.video(dts, 66, key, &s) } else { s };
            out.push(Item::Video(dts, 66, key, sent));
        }
        out
    }

    fn verify(items: &[Item], trusted: Vec<[u8; 32]>) -> Verdict {
        let mut v = Verifier::new(trusted, BROADCAST, Codec::Avc, 4, MAX_FRAMES);
        for item in items {
            match item {
                Item::Video(dts, cts, key, sample) => v.video(*dts, *cts, *key, sample, NOW),
                Item::Audio(frame) => v.audio(frame),
            }
        }
        v.verdict().clone()
    }

    fn trusted() -> Vec<[u8; 32]> {
        vec![account().verifying_key().to_bytes()]
    }

    fn records(verdict: &Verdict) -> u64 {
        match verdict {
            Verdict::Verified { records } => *records,
            other => panic!("not verified: {other:?}"),
        }
    }

    #[test]
    fn a_clean_stream_verifies_with_any_gop_with_or_without_audio() {
        for (gop, audio) in [(30, true), (60, true), (300, true), (15, false)] {
            let items = stream(12, gop, audio, true);
            let verdict = verify(&items, trusted());
            // A record a second at most: eleven whole stretches and more.
            assert!(records(&verdict) >= 11, "GOP {gop}, audio {audio}: {verdict:?}");
        }
    }

    #[test]
    fn a_viewer_joining_mid_stream_is_not_yet_verified_then_verified_never_tampered() {
        let items = stream(6, 60, true, true);
        for join in [1, 17, 45, 61, 100] {
            let late = &items[join..];
            let mut v = Verifier::new(trusted(), BROADCAST, Codec::Avc, 4, MAX_FRAMES);
            let mut seen = Vec::new();
            for item in late {
                match item {
                    Item::Video(dts, cts, key, sample) => v.video(*dts, *cts, *key, sample, NOW),
                    Item::Audio(frame) => v.audio(frame),
                }
                seen.push(v.verdict().clone());
            }
            assert!(
                !seen.iter().any(|s| matches!(s, Verdict::Tampered { .. })),
                "join at {join}: {seen:?}"
            );
            assert!(records(v.verdict()) >= 2, "join at {join}: {:?}", v.verdict());
        }
    }

    #[test]
    fn audio_interleaved_differently_still_verifies() {
        // As a CMAF fragment might carry it: each audio frame half a second late.
        let items = stream(8, 30, true, true);
        let mut moved = Vec::new();
        let mut held: VecDeque<(usize, Item)> = VecDeque::new();
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Item::Audio(_) => held.push_back((i, item)),
                video => {
                    while held.front().is_some_and(|(at, _)| at + 40 < i) {
                        moved.push(held.pop_front().unwrap().1);
                    }
                    moved.push(video);
                }
            }
        }
        moved.extend(held.into_iter().map(|(_, a)| a));
        assert!(records(&verify(&moved, trusted())) >= 6);
    }

    fn tampered_at(verdict: Verdict) -> u64 {
        match verdict {
            Verdict::Tampered { at_ms, .. } => at_ms,
            other => panic!("not caught: {other:?}"),
        }
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_its_stretch() {
        let clean = stream(6, 30, true, true);
        let video_at = |items: &[Item], n: usize| {
            items
                .iter()
                .enumerate()
                .filter(|(_, i)| matches!(i, Item::Video(..)))
                .nth(n)
                .unwrap()
                .0
        };
        // A byte of a frame rewritten (in frame 75: the stretch from 2 s).
        let mut rewritten = clean.clone();
        let at = video_at(&rewritten, 75);
        if let Item::Video(_, _, _, sample) = &mut rewritten[at] {
            let last = sample.len() - 1;
            sample[last] ^= 0x02;
        }
        assert_eq!(tampered_at(verify(&rewritten, trusted())), 2000);
        // A frame replaced by another (frame 80 by frame 81).
        let mut replaced = clean.clone();
        let (a, b) = (video_at(&replaced, 80), video_at(&replaced, 81));
        let Item::Video(.., next) = replaced[b].clone() else {
            unreachable!()
        };
        if let Item::Video(.., sample) = &mut replaced[a] {
            *sample = next;
        }
        assert_eq!(tampered_at(verify(&replaced, trusted())), 2000);
        // An audio frame changed.
        let mut audio = clean.clone();
        // The 100th audio frame, 2.1 s in.
        let at = audio
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, Item::Audio(_)))
            .nth(100)
            .unwrap()
            .0;
        if let Item::Audio(frame) = &mut audio[at] {
            frame[0] ^= 1;
        }
        assert!(matches!(verify(&audio, trusted()), Verdict::Tampered { .. }));
        // A record dropped (the SEI taken out of the keyframe at 3 s).
        let mut dropped = clean.clone();
        let at = video_at(&dropped, 90);
        if let Item::Video(_, _, _, sample) = &mut dropped[at] {
            let units: Vec<Vec<u8>> = sei::nal_units(sample, 4).map(<[u8]>::to_vec).collect();
            *sample = sei::prepend(&[], 4, &units[1..]);
        }
        assert!(matches!(verify(&dropped, trusted()), Verdict::Tampered { .. }));
        // An older signed second replayed in place of a newer one (seconds 1 and 3).
        let mut replayed = clean.clone();
        let (from, to) = (video_at(&replayed, 30), video_at(&replayed, 60));
        let (into, end) = (video_at(&replayed, 90), video_at(&replayed, 120));
        let old: Vec<Item> = replayed[from..to].to_vec();
        replayed.splice(into..end, old);
        assert!(matches!(verify(&replayed, trusted()), Verdict::Tampered { .. }));
    }

    /// `seconds` of signed 30 fps video with AAC from `from_ms` on, by a session from
    /// `seed`; audio frames are all alike (silence) before `silent_until_ms`.
    fn session_stream(seed: u8, from_ms: u64, seconds: u64, silent_until_ms: u64) -> Vec<Item> {
        let session = SessionKey::new(&account(), [seed; 32], BROADCAST, NOW - 1000, 3_600_000);
        let mut signer = Signer::new(session, Codec::Avc, 4, MAX_FRAMES);
        let mut out = Vec::new();
        let mut audio_n = from_ms / 21;
        for n in 0..seconds * 30 {
            let dts = from_ms + n * 1000 / 30;
            while audio_n * 21 <= dts {
                let frame: Vec<u8> = if audio_n * 21 < silent_until_ms {
                    vec![0x21; 20]
                } else {
                    (0..20).map(|i| (audio_n * 17 + i) as u8).collect()
                };
                signer.audio(&frame);
                out.push(Item::Audio(frame));
                audio_n += 1;
            }
            let key = n % 60 == 0;
            let sent = signer.video(dts, 66, key, &sample(dts, key));
            out.push(Item::Video(dts, 66, key, sent));
        }
        out
    }

    #[test]
    fn a_new_session_mid_stream_verifies_and_silence_raises_no_alarm() {
        // The publisher reconnected (a new session key) while the viewer stayed.
        let mut items = session_stream(9, 0, 4, 0);
        items.extend(session_stream(10, 4000, 4, 0));
        assert!(flagged(&items).is_empty(), "{:?}", flagged(&items));
        assert!(records(&verify(&items, trusted())) >= 6);
        // Three seconds of silence, joined in its middle.
        let silent = session_stream(9, 0, 8, 3000);
        for join in [10, 25, 40] {
            let late: Vec<Item> = silent.iter().skip(join * 2).cloned().collect();
            assert!(flagged(&late).is_empty(), "join at {join}: {:?}", flagged(&late));
            assert!(records(&verify(&late, trusted())) >= 4, "join at {join}");
        }
    }

    #[test]
    fn certificates_taken_out_are_caught_and_an_audio_change_does_not_spread() {
        // After 2 s the certificates go: the records alone vouch for nothing.
        let mut stripped = session_stream(9, 0, 6, 0);
        for item in stripped.iter_mut() {
            if let Item::Video(dts, cts, key, sample) = item
                && *dts >= 2000
            {
                let units: Vec<Vec<u8>> = sei::nal_units(sample, 4)
                    .filter(|u| {
                        !sei::find(&sei::prepend(&[], 4, &[u.to_vec()]), 4, Codec::Avc)
                            .iter()
                            .any(|m| matches!(Message::decode(m), Ok(Message::Certificate(_))))
                    })
                    .map(<[u8]>::to_vec)
                    .collect();
                *item = Item::Video(*dts, *cts, *key, sei::prepend(&[], 4, &units));
            }
        }
        let verdict = verify(&stripped, trusted());
        assert!(
            matches!(verdict, Verdict::Tampered { ref reason, .. } if reason.contains("certificate")),
            "{verdict:?}"
        );
        // One audio frame changed at 2.1 s: that stretch is flagged, the ones after are not.
        let mut changed = session_stream(9, 0, 8, 0);
        let at = changed
            .iter()
            .position(|i| matches!(i, Item::Audio(_)))
            .map(|first| first + 100)
            .unwrap();
        let at = (at..changed.len())
            .find(|&i| matches!(changed[i], Item::Audio(_)))
            .unwrap();
        if let Item::Audio(frame) = &mut changed[at] {
            frame[0] ^= 1;
        }
        let spans = flagged(&changed);
        assert!(!spans.is_empty());
        assert!(spans.iter().all(|&(from, _)| from < 4000), "{spans:?}");
    }

    /// Runs a verifier over `items`; the spans it flagged.
    fn flagged(items: &[Item]) -> Vec<(u64, u64)> {
        let mut v = Verifier::new(trusted(), BROADCAST, Codec::Avc, 4, MAX_FRAMES);
        for item in items {
            match item {
                Item::Video(dts, cts, key, sample) => v.video(*dts, *cts, *key, sample, NOW),
                Item::Audio(frame) => v.audio(frame),
            }
        }
        v.flagged().collect()
    }

    #[test]
    fn every_changed_frame_lies_in_a_flagged_span_and_a_clean_stream_has_none() {
        let clean = stream(12, 30, true, true);
        assert!(flagged(&clean).is_empty());
        let video: Vec<usize> = clean
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, Item::Video(..)))
            .map(|(at, _)| at)
            .collect();
        let dts = |items: &[Item], at: usize| match &items[at] {
            Item::Video(dts, ..) => *dts,
            _ => unreachable!(),
        };
        // A byte changed in frames of four different stretches.
        let mut rewritten = clean.clone();
        let hit = [45, 100, 101, 200, 301];
        for n in hit {
            if let Item::Video(.., sample) = &mut rewritten[video[n]] {
                *sample.last_mut().unwrap() ^= 0x10;
            }
        }
        let spans = flagged(&rewritten);
        for n in hit {
            let t = dts(&rewritten, video[n]);
            assert!(
                spans.iter().any(|&(a, b)| a <= t && t < b),
                "frame {n} at {t}: {spans:?}"
            );
        }
        // The records at 4 s and 5 s taken out: the stretches they closed are flagged.
        let mut stripped = clean.clone();
        for n in [120, 150] {
            let (_, bare) = split(&stripped[video[n]]);
            let (certificate, _) = split(&clean[video[n]]);
            let Item::Video(d, c, k, frame) = bare else {
                unreachable!()
            };
            stripped[video[n]] = Item::Video(d, c, k, sei::prepend(&frame, 4, &certificate[1..]));
        }
        let spans = flagged(&stripped);
        for (n, &at) in video.iter().enumerate().take(150).skip(90) {
            let t = dts(&stripped, at);
            assert!(
                spans.iter().any(|&(a, b)| a <= t && t < b),
                "frame {n} at {t}: {spans:?}"
            );
        }
        // Seconds 2 and 3 replayed in place of 6 and 7, their times moved to fit: all of
        // 6 and 7 is flagged.
        let mut replayed = clean.clone();
        let old: Vec<Item> = replayed[video[60]..video[120]]
            .iter()
            .map(|item| match item {
                Item::Video(d, c, k, sample) => Item::Video(d + 4000, *c, *k, sample.clone()),
                audio => audio.clone(),
            })
            .collect();
        replayed.splice(video[180]..video[240], old);
        let spans = flagged(&replayed);
        for item in &replayed {
            if let Item::Video(t, ..) = item
                && (6000..8000).contains(t)
            {
                assert!(spans.iter().any(|&(a, b)| a <= *t && *t < b), "at {t}: {spans:?}");
            }
        }
    }

    /// The signature units of a video item, and the item without them.
    fn split(item: &Item) -> (Vec<Vec<u8>>, Item) {
        let Item::Video(dts, cts, key, sample) = item else {
            panic!("video")
        };
        let units: Vec<Vec<u8>> = sei::nal_units(sample, 4).map(<[u8]>::to_vec).collect();
        let (ours, rest): (Vec<_>, Vec<_>) = units.into_iter().partition(|u| sei::is_ours(u, Codec::Avc));
        (ours, Item::Video(*dts, *cts, *key, sei::prepend(&[], 4, &rest)))
    }

    #[test]
    fn records_cannot_be_moved_nor_replaced_by_copied_certificates() {
        let clean = stream(8, 30, true, true);
        let video: Vec<usize> = clean
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, Item::Video(..)))
            .map(|(at, _)| at)
            .collect();
        // Stretch 2 cut out: its frames dropped, the record of stretch 1 carried in front of
        // the record of stretch 2, in the first frame of stretch 3.
        let (units_at_2, _) = split(&clean[video[60]]);
        let mut cut: Vec<Item> = clean[..video[60]].to_vec();
        let (units_at_3, bare) = split(&clean[video[90]]);
        let Item::Video(dts, cts, key, frame) = bare else {
            unreachable!()
        };
        let mut units = vec![units_at_2[0].clone()];
        units.extend(units_at_3);
        cut.push(Item::Video(dts, cts, key, sei::prepend(&frame, 4, &units)));
        cut.extend(clean[video[90] + 1..].iter().cloned());
        assert!(
            matches!(verify(&cut, trusted()), Verdict::Tampered { .. }),
            "a stretch cut out"
        );
        // After 3 s, the attacker's own frames, with the real certificate pasted in now and
        // then but no records: signatures stopped.
        let (certificate, _) = split(&clean[video[0]]);
        let mut forged: Vec<Item> = clean[..video[90]].to_vec();
        for n in 90..240u64 {
            let mut frame = sample(n + 1000, n % 30 == 0);
            if n % 30 == 0 {
                frame = sei::prepend(&frame, 4, &certificate);
            }
            forged.push(Item::Video(n * 1000 / 30, 66, n % 30 == 0, frame));
        }
        let verdict = verify(&forged, trusted());
        assert!(
            matches!(verdict, Verdict::Tampered { ref reason, .. } if reason.contains("stopped")),
            "{verdict:?}"
        );
    }

    #[test]
    fn unsigned_streams_and_unknown_keys_are_told_apart() {
        assert_eq!(verify(&stream(4, 30, true, false), trusted()), Verdict::Unsigned);
        let stranger = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        let verdict = verify(&stream(4, 30, true, true), vec![stranger]);
        assert!(
            matches!(verdict, Verdict::Tampered { ref reason, .. } if reason.contains("not registered")),
            "{verdict:?}"
        );
    }
}
