//! H.264 between WebRTC and FLV: access units in Annex B (what a WHIP publisher's
//! depacketized RTP gives) never panic the tagger, whatever their bytes; what it tags
//! parses as FLV video (a configuration record that parses, frames whose NAL units go back
//! to Annex B unchanged); and a WHEP viewer's conversion of arbitrary length-prefixed
//! bytes never panics.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tagger = flv::AvcTagger::default();
    for unit in data.split(|b| *b == 0xff) {
        let Ok(tags) = tagger.push(unit) else { continue };
        if let Some(config) = tags.config {
            let tag = flv::VideoTag::parse(&config).expect("a video tag");
            assert_eq!(tag.packet, flv::VideoPacket::SequenceHeader);
            flv::AvcConfig::parse(&config.slice(5..)).expect("a configuration record that parses");
        }
        if let Some((frame, keyframe)) = tags.frame {
            let tag = flv::VideoTag::parse(&frame).expect("a video tag");
            assert_eq!((tag.packet, tag.keyframe), (flv::VideoPacket::Frame, keyframe));
            let back = flv::to_annexb(&frame[5..], 4, &[]).expect("well-formed NAL lengths");
            let nals: Vec<&[u8]> = flv::nal_units(&back).collect();
            assert!(!nals.is_empty());
        }
    }
    for size in [1, 2, 4] {
        let _ = flv::to_annexb(data, size, &[Bytes::from_static(&[0x67, 0x42])]);
    }
    let _ = flv::OpusHead::parse(data);
});
