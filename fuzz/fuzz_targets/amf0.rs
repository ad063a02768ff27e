//! AMF0: arbitrary bytes never panic; what decodes re-encodes to something that decodes
//! to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let again = amf0::decode_all(&amf0::encode_all(&values)).expect("our own encoding decodes");
        // NaN never equals itself, so compare the encodings.
        assert_eq!(amf0::encode_all(&again), amf0::encode_all(&values));
    }
});
