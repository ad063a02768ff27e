//! What a client may send to a room, and the cleaning its text goes through: plain data and
//! pure functions with no `crate::` dependency, so that the `room_message` fuzz target can
//! include this file by itself (`fuzz/fuzz_targets/room_message.rs`).

use serde::{Deserialize, Serialize};

/// Largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 4096;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 280;
/// Longest poll question and option, in characters.
pub const MAX_POLL_TEXT_CHARS: usize = 140;
/// Longest a poll may stay open.
pub const MAX_POLL_SECONDS: u32 = 3600;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Logged-in users only.
    Comment {
        text: String,
        /// The stream time (ms) the viewer was watching when they wrote it.
        media_ts: Option<i64>,
    },
    /// Anyone, anonymous viewers too.
    Heart { media_ts: Option<i64> },
    /// Logged-in users only; one vote per poll.
    Vote {
        poll: i64,
        option: usize,
        media_ts: Option<i64>,
    },
    /// How far behind live the viewer's player is, in ms, and the media it holds ahead of
    /// its playhead (its buffer, for the delay breakdown); sent every few seconds.
    Delay {
        ms: u64,
        #[serde(default)]
        buffer_ms: Option<u64>,
    },
    /// The broadcaster only.
    PollOpen {
        question: String,
        options: Vec<String>,
        seconds: u32,
    },
    /// The broadcaster only.
    DeleteComment { comment: i64 },
    /// The broadcaster only: the user's comments, hearts and votes are dropped.
    Mute { user: String },
    /// The broadcaster only: the user is disconnected and cannot come back.
    Block { user: String },
}

/// Text as it may be stored and relayed: control characters (other than newline),
/// direction overrides and invisible characters removed, surrounding whitespace trimmed.
/// (The zero-width joiner stays: emoji sequences need it.)
pub fn clean_text(text: &str) -> String {
    let invisible = |c: char| {
        matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
        ) || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    text.chars()
        .filter(|c| (!c.is_control() || *c == '\n') && !invisible(*c))
        .collect::<String>()
        .trim()
        .to_owned()
}
