//! The client session on hostile server bytes: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp::{ClientEvent, ClientSession, Config};

fuzz_target!(|data: &[u8]| {
    let mut session = ClientSession::new(Config::default(), "live", "rtmp://h/live", [0; 1536]);
    let mut input = vec![3u8];
    input.extend_from_slice(&[0; 1536 * 2]);
    input.extend_from_slice(data);
    for piece in input.chunks(997) {
        if session.handle_input(piece).is_err() {
            return;
        }
        while session.poll_transmit().is_some() {}
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Connected => session.play("x"),
                ClientEvent::PlayStarted => session.send_media(rtmp::MediaKind::Video, 0, b"\x17\x01\0\0\0"),
                _ => {}
            }
        }
    }
});
