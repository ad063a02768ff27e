//! The interaction room's parser of client WebSocket frames: `ClientMessage` from JSON and
//! the cleaning of comment and poll text (`crates/livescope/src/room/protocol/client.rs`,
//! included as it is), then the checks the room makes before it stores or relays anything
//! (`Room::comment`, `Room::open_poll` and the delay report in `room/mod.rs`, mirrored
//! below). Nothing panics on any bytes, UTF-8 or not, and:
//! - reading bytes and reading the same bytes as a string give the same message;
//! - cleaned text has no control character but newline, no direction override or listed
//!   invisible character, no surrounding whitespace; it is made of the original's
//!   characters in order, and cleaning it again changes nothing;
//! - an accepted comment is 1 to `MAX_COMMENT_CHARS` characters, a poll 2 to 4 options
//!   of 1 to `MAX_POLL_TEXT_CHARS` with a question as long and 1 to `MAX_POLL_SECONDS`;
//! - what the room accepted, sent back as a message, parses to the same message.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/livescope/src/room/protocol/client.rs"]
mod client;

use client::{
    ClientMessage, MAX_COMMENT_CHARS, MAX_FRAME_BYTES, MAX_POLL_SECONDS, MAX_POLL_TEXT_CHARS, clean_text,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Whatever the bytes, the cleaning holds its promises.
    check_clean(&String::from_utf8_lossy(data));

    let from_bytes = serde_json::from_slice::<ClientMessage>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let from_text = serde_json::from_str::<ClientMessage>(text);
        match (&from_bytes, &from_text) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("bytes and text disagree: {from_bytes:?} / {from_text:?}"),
        }
    }
    let Ok(message) = from_bytes else { return };
    // The socket takes frames up to MAX_FRAME_BYTES; longer ones never reach the parser.
    let in_a_frame = data.len() <= MAX_FRAME_BYTES;
    match message {
        ClientMessage::Comment { text, media_ts } => {
            check_clean(&text);
            if let Some(stored) = comment(&text) {
                let n = stored.chars().count();
                assert!((1..=MAX_COMMENT_CHARS).contains(&n), "{n} characters stored");
                assert!(!in_a_frame || stored.len() <= MAX_FRAME_BYTES);
                let again = serde_json::json!({ "type": "comment", "text": stored, "media_ts": media_ts });
                let back: ClientMessage = serde_json::from_value(again).expect("a stored comment re-parses");
                assert_eq!(back, ClientMessage::Comment { text: stored.clone(), media_ts });
                assert_eq!(comment(&stored).as_deref(), Some(&stored[..]), "accepted again as it is");
            }
        }
        ClientMessage::PollOpen {
            question,
            options,
            seconds,
        } => {
            check_clean(&question);
            options.iter().for_each(|o| check_clean(o));
            if let Some((question, options)) = poll(&question, &options, seconds) {
                assert!((2..=4).contains(&options.len()));
                for text in options.iter().chain([&question]) {
                    assert!((1..=MAX_POLL_TEXT_CHARS).contains(&text.chars().count()), "{text:?}");
                }
                assert!((1..=MAX_POLL_SECONDS).contains(&seconds));
                let again = serde_json::json!({
                    "type": "poll_open", "question": question, "options": options, "seconds": seconds,
                });
                let back: ClientMessage = serde_json::from_value(again).expect("an accepted poll re-parses");
                assert_eq!(back, ClientMessage::PollOpen { question, options, seconds });
            }
        }
        ClientMessage::Delay { ms, buffer_ms } => {
            assert!(delay(ms) <= 3_600_000);
            assert!(buffer_ms.is_none_or(|b| delay(b) <= 3_600_000));
        }
        ClientMessage::Mute { user } | ClientMessage::Block { user } => {
            // Looked up by name as sent: only checks that the name survives a round trip.
            let again = serde_json::json!({ "type": "mute", "user": user });
            assert_eq!(
                serde_json::from_value::<ClientMessage>(again).unwrap(),
                ClientMessage::Mute { user }
            );
        }
        ClientMessage::Heart { .. } | ClientMessage::Vote { .. } | ClientMessage::DeleteComment { .. } => {}
    }
});

/// `Room::comment`: what is stored and relayed, or None for `bad_comment`.
fn comment(text: &str) -> Option<String> {
    let text = clean_text(text);
    (!text.is_empty() && text.chars().count() <= MAX_COMMENT_CHARS).then_some(text)
}

/// `Room::open_poll`: the question and options as stored, or None for `bad_poll`.
fn poll(question: &str, options: &[String], seconds: u32) -> Option<(String, Vec<String>)> {
    let question = clean_text(question);
    let options: Vec<String> = options.iter().map(|o| clean_text(o)).collect();
    let too_long = |s: &String| s.is_empty() || s.chars().count() > MAX_POLL_TEXT_CHARS;
    let bad = !(2..=4).contains(&options.len())
        || too_long(&question)
        || options.iter().any(too_long)
        || !(1..=MAX_POLL_SECONDS).contains(&seconds);
    (!bad).then_some((question, options))
}

/// The room's handling of `delay`: a report is kept, capped at an hour.
fn delay(ms: u64) -> u64 {
    ms.min(3_600_000)
}

/// Characters `clean_text` promises to remove besides controls: direction marks,
/// embeddings, overrides and isolates, zero-width spaces, line and paragraph separators
/// and the byte order mark.
fn removed(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
    ) || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn check_clean(text: &str) {
    let cleaned = clean_text(text);
    for c in cleaned.chars() {
        assert!(!c.is_control() || c == '\n', "control {c:?} left in {cleaned:?}");
        assert!(!removed(c), "{c:?} left in {cleaned:?}");
    }
    assert_eq!(cleaned.trim(), cleaned, "surrounding whitespace left");
    assert_eq!(clean_text(&cleaned), cleaned, "cleaning twice changes the text");
    assert!(cleaned.len() <= text.len());
    // Only removals: the cleaned text is the original's characters, in order.
    let mut original = text.chars();
    for c in cleaned.chars() {
        assert!(original.any(|o| o == c), "{c:?} is not from the original");
    }
    // The zero-width joiner stays: emoji sequences need it.
    if text.contains("a\u{200D}b") {
        assert!(cleaned.contains("a\u{200D}b"));
    }
}
