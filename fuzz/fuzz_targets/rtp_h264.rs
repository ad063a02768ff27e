//! H.264 over RTP, as a WHIP publisher sends it: arbitrary payloads through str0m's
//! depacketizer (the one a WHIP session's `Rtc` runs) never panic it or the FLV tagger
//! behind it; and every access unit the tagger accepts, packetized again as a WHEP
//! session sends it and depacketized, comes back with the same NAL units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use str0m::format::CodecExtra;
use str0m::unversioned::{Depacketizer, H264Depacketizer, H264Packetizer, Packetizer};

/// Splits the input into RTP payloads: a big-endian u16 length, then that many bytes; the
/// length's top bit is the marker (the last packet of an access unit).
fn payloads(mut data: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    while let [high, low, rest @ ..] = data {
        let head = u16::from_be_bytes([*high, *low]);
        let len = usize::from(head & 0x7fff).min(rest.len());
        out.push((head & 0x8000 != 0, &rest[..len]));
        data = &rest[len..];
    }
    out
}

/// A unit's NAL units other than parameter sets, in order; and the last SPS and the last
/// PPS before its first picture (the ones that decoder uses for it).
fn split(unit: &[u8]) -> (Vec<Vec<u8>>, [Option<Vec<u8>>; 2]) {
    let (mut others, mut sets) = (Vec::new(), [None, None]);
    for nal in flv::nal_units(unit) {
        match nal[0] & 0x1f {
            7 | 8 if others.is_empty() => sets[usize::from(nal[0] & 0x1f == 8)] = Some(nal.to_vec()),
            7 | 8 => {}
            _ => others.push(nal.to_vec()),
        }
    }
    (others, sets)
}

fuzz_target!(|data: &[u8]| {
    let mut depacketizer = H264Depacketizer::default();
    let mut tagger = flv::AvcTagger::default();
    let (mut unit, mut extra) = (Vec::new(), CodecExtra::None);
    let mut config_record: Option<flv::AvcConfig> = None;
    for (marker, payload) in payloads(data) {
        if depacketizer.depacketize(payload, &mut unit, &mut extra).is_err() {
            unit.clear();
            continue;
        }
        if !marker {
            continue;
        }
        let unit = std::mem::take(&mut unit);
        let Ok(tags) = tagger.push(&unit) else { continue };
        if let Some(config) = tags.config {
            config_record = flv::AvcConfig::parse(&config.slice(5..)).ok();
        }
        let (Some((frame, keyframe)), Some(record)) = (tags.frame, &config_record) else {
            continue;
        };
        // What a WHEP session sends: Annex B, parameter sets before a keyframe.
        let sets = if keyframe {
            [record.sps.clone(), record.pps.clone()].concat()
        } else {
            Vec::new()
        };
        let annexb = flv::to_annexb(&frame[5..], record.nal_length_size, &sets).expect("the tagger's frame converts");
        let mut packetizer = H264Packetizer::default();
        let (mut again, mut back) = (Vec::new(), H264Depacketizer::default());
        for packet in packetizer.packetize(1200, &annexb).expect("a frame that packetizes") {
            assert!(packet.len() <= 1200);
            back.depacketize(&packet, &mut again, &mut extra)
                .expect("what the packetizer made depacketizes");
        }
        // The packetizer keeps the newest SPS and PPS and sends them together, once it has
        // both, before the next picture (a WHIP publisher's frames carry them in band, and
        // the session adds them again before every keyframe); everything else comes back
        // one for one.
        let (sent, received) = (split(&annexb), split(&again));
        assert_eq!(sent.0, received.0, "the same pictures and other NAL units");
        // Sets too large for one packet together are not sent (never seen from an
        // encoder: a real SPS is tens of bytes).
        let size: usize = sent.1.iter().flatten().map(|set| set.len() + 2).sum();
        if size < 1100 && !sent.0.is_empty() && sent.1.iter().all(Option::is_some) {
            assert_eq!(sent.1, received.1, "the parameter sets of the first picture");
        }
    }
});
