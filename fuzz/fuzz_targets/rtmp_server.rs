//! The server session on hostile input: after a valid handshake, arbitrary bytes fed in
//! pieces whose sizes come from the input. Must never panic; the result must not depend
//! on how the bytes were split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp::{Config, ServerEvent, ServerSession};

fn run(data: &[u8], split: usize) -> (Result<(), rtmp::Error>, Vec<ServerEvent>) {
    let mut session = ServerSession::new(Config::default(), [0; 1536]);
    let mut input = vec![3u8];
    input.extend_from_slice(&[0; 1536 * 2]);
    input.extend_from_slice(data);
    let mut events = Vec::new();
    for piece in input.chunks(split.max(1)) {
        let result = session.handle_input(piece);
        while session.poll_transmit().is_some() {}
        while let Some(event) = session.poll_event() {
            let answered = match &event {
                ServerEvent::Publish { .. } => session.accept_publish(),
                ServerEvent::Play { .. } => session.accept_play(),
                _ => Ok(()),
            };
            events.push(event);
            if let Err(e) = answered {
                return (Err(e), events);
            }
        }
        if result.is_err() {
            return (result, events);
        }
    }
    (Ok(()), events)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let whole = run(data, usize::MAX);
    let pieces = run(data, usize::from(split));
    assert_eq!(whole.1, pieces.1, "events must not depend on read sizes");
    assert_eq!(whole.0.is_ok(), pieces.0.is_ok());
});
