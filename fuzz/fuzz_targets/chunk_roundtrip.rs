//! Chunk stream: arbitrary bytes never panic the decoder, and any message encoded at any
//! chunk size decodes back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtmp::chunk::{self, Decoder, Limits};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(Limits::default());
    decoder.push(data);
    while let Ok(Some(_)) = decoder.next_message() {}

    if data.len() < 8 {
        return;
    }
    let chunk_size = u32::from(u16::from_le_bytes([data[0], data[1]])).max(1);
    let csid = 2 + u32::from(u16::from_le_bytes([data[2], data[3]])) % 65_000;
    let timestamp = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let payload = &data[8..];
    let mut wire = BytesMut::new();
    chunk::encode(&mut wire, chunk_size, csid, timestamp, 9, 1, payload);
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_chunk_size(chunk_size).unwrap();
    decoder.push(&wire);
    let message = decoder.next_message().unwrap().unwrap();
    assert_eq!((message.csid, message.timestamp, &message.payload[..]), (csid, timestamp, payload));
});
