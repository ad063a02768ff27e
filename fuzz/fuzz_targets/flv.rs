//! FLV: the demuxer and every tag parser on arbitrary bytes never panic, and tags
//! re-serialize to bytes that demux to the same tags.
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
        let _ = flv::AudioSpecificConfig::parse(&tag.body);
        let wire = flv::encode_tag(tag.kind, tag.timestamp, &tag.body);
        let mut again = flv::Demuxer::new(1 << 20);
        again.push(&flv::encode_header(true, true));
        again.push(&wire);
        assert_eq!(again.next_tag().unwrap(), Some(tag));
    }
    let _ = flv::AvcConfig::parse(&Bytes::copy_from_slice(data));
});
