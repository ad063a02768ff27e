//! Signed broadcasts: a video sample from anyone (a publisher, or a man in the middle) is
//! searched for signature messages and hashed without a panic; every message found either
//! is refused or re-encodes to the same bytes; the hash never counts livescope's own SEI;
//! a verifier fed anything never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signed::sei::{self, Codec};

fuzz_target!(|data: &[u8]| {
    for codec in [Codec::Avc, Codec::Hevc] {
        for length_size in [1, 2, 4] {
            for payload in sei::find(data, length_size, codec) {
                if let Ok(message) = signed::Message::decode(&payload) {
                    assert_eq!(message.encode(), payload);
                }
            }
            let coded = signed::coded_data(data, length_size, codec);
            // Adding a record to the sample leaves what is hashed as it was.
            let signed = sei::prepend(data, length_size, &[sei::nal(codec, b"record")]);
            if length_size == 4 || sei::nal(codec, b"record").len() < 1 << (8 * length_size) {
                assert_eq!(signed::coded_data(&signed, length_size, codec), coded);
            }
        }
    }
    let _ = signed::Message::decode(data);
    // A verifier fed anything, as video and as audio, only ever changes its verdict.
    let mut verifier = signed::Verifier::new(vec![[7; 32]], "b", Codec::Avc, 4, 30);
    for (i, chunk) in data.chunks(64).enumerate() {
        verifier.video(i as u64 * 33, 0, i % 30 == 0, chunk, 0);
        verifier.audio(chunk);
    }
    let _ = verifier.verdict();
});
