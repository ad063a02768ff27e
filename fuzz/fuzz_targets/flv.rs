//! FLV: the demuxer and every tag parser (HEVC's configuration record too) on arbitrary
//! bytes never panic, and tags re-serialize to bytes that demux to the same tags.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut demuxer = flv::Demuxer::new(1 << 20);
    demuxer.push(&flv::encode_header(true, true));
    demuxer.push(data);
    while let Ok(Some(tag)) = demuxer.next_tag() {
        let _ = flv::VideoTag::parse(&tag.body);
        let _ = flv::AudioTag::parse(&tag.body);
        let _ = flv::AvcConfig::parse(&tag.body);
        hevc(&tag.body);
        let _ = flv::AudioSpecificConfig::parse(&tag.body);
        let wire = flv::encode_tag(tag.kind, tag.timestamp, &tag.body);
        let mut again = flv::Demuxer::new(1 << 20);
        again.push(&flv::encode_header(true, true));
        again.push(&wire);
        assert_eq!(again.next_tag().unwrap(), Some(tag));
    }
    let _ = flv::AvcConfig::parse(&Bytes::copy_from_slice(data));
    hevc(&Bytes::copy_from_slice(data));
});

/// An HEVC configuration record: parsed, and what the playlist and init segment take from
/// it (the codec string, the picture size from its SPS) never panics.
fn hevc(record: &Bytes) {
    if let Ok(config) = flv::HevcConfig::parse(record) {
        let codec = config.codec_string();
        assert!(codec.starts_with("hvc1."), "{codec}");
        let _ = config.dimensions();
    }
}
