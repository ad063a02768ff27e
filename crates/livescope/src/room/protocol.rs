//! The interaction protocol, version 1: JSON text frames with a `type`, over a WebSocket at
//! `/api/broadcasts/<id>/live`. `docs/interaction.md` describes it for client authors.
//! What clients send, and the cleaning of their text, is in `protocol/client.rs`.

mod client;

use serde::Serialize;

pub use client::{
    ClientMessage, MAX_COMMENT_CHARS, MAX_FRAME_BYTES, MAX_POLL_SECONDS, MAX_POLL_TEXT_CHARS, clean_text,
};

/// The protocol version this server speaks (in `welcome`).
pub const VERSION: u32 = 1;

/// A comment as everyone sees it: as it is stored.
pub use crate::store::StoredComment as Comment;

/// A poll as everyone sees it: live totals while open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Poll {
    pub id: i64,
    pub question: String,
    pub options: Vec<String>,
    pub totals: Vec<u64>,
    /// Server time it closes (or closed), ms since the epoch.
    pub closes_at: i64,
    /// `open`, `closing` (late votes from viewers behind live still count) or `closed`.
    pub state: &'static str,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        v: u32,
        broadcast: String,
        /// `broadcaster`, `viewer` (logged in) or `anonymous`.
        role: &'static str,
        user: Option<String>,
        viewers: usize,
        /// Interval of `hearts` batches, in ms.
        heart_interval_ms: u64,
        poll: Option<Poll>,
        /// How many of the latest comments follow, in `recent` messages.
        recent: usize,
    },
    /// Some of the latest comments, oldest first, right after the welcome: a newcomer's
    /// view of the conversation so far, sent in frames of about 1 KiB so that no
    /// connection keeps a large write buffer for the rest of its life.
    Recent {
        comments: Vec<Comment>,
    },
    Comment(Comment),
    /// The hearts of one batch: how many, a few of the senders, the stream times they
    /// answered, and when the server closed the batch.
    Hearts {
        count: u64,
        senders: Vec<String>,
        media_ts_from: Option<i64>,
        media_ts_to: Option<i64>,
        server_ts: i64,
    },
    Poll(Poll),
    CommentDeleted {
        comment: i64,
    },
    Presence {
        /// Watching now, over every delivery path.
        viewers: usize,
        /// Connected to this room now.
        connected: usize,
        /// Joins of this room so far.
        joined: u64,
        /// Whether the broadcast is on the air: a player whose stream stops can tell an
        /// ended broadcast from a stall without asking the API.
        live: bool,
    },
    /// The client fell behind and missed `missed` messages; what follows is current.
    Lagged {
        missed: u64,
        poll: Option<Poll>,
    },
    Error {
        code: &'static str,
        message: String,
    },
    /// A message another node made, as it made it (a room's home answering a member of a
    /// mirror).
    #[serde(skip)]
    Relayed(String),
}

impl ServerMessage {
    pub fn error(code: &'static str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    /// The message as JSON, with `<`, `>` and `&` written as `\u003c`, `\u003e` and
    /// `\u0026`: the same strings once parsed, but no markup on the wire, even for a client
    /// that pastes a frame into a page.
    pub fn to_json(&self) -> String {
        if let ServerMessage::Relayed(text) = self {
            return text.clone();
        }
        let json = serde_json::to_string(self).expect("protocol messages serialize");
        if !json.contains(['<', '>', '&']) {
            return json;
        }
        json.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_a_type_and_unknown_ones_are_errors() {
        let m: ClientMessage = serde_json::from_str(r#"{"type":"heart","media_ts":81234}"#).unwrap();
        assert_eq!(m, ClientMessage::Heart { media_ts: Some(81234) });
        let m: ClientMessage = serde_json::from_str(r#"{"type":"comment","text":"hi"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Comment {
                text: "hi".into(),
                media_ts: None
            }
        );
        for bad in [
            r#"{"type":"explode"}"#,
            r#"{"text":"x"}"#,
            "[]",
            "",
            r#"{"type":"vote","poll":"x"}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
        let hearts = ServerMessage::Hearts {
            count: 57,
            senders: vec!["ana".into()],
            media_ts_from: Some(1),
            media_ts_to: Some(2),
            server_ts: 3,
        };
        assert!(hearts.to_json().starts_with(r#"{"type":"hearts","count":57"#));
        assert_eq!(clean_text("  a\u{7}b\nc \u{0} "), "ab\nc");
        assert_eq!(clean_text("\u{202E}evil\u{200B}"), "evil");
        let c = ServerMessage::Comment(Comment {
            id: 1,
            user: "u".into(),
            text: "<b>&</b>".into(),
            media_ts: None,
            server_ts: 0,
        });
        let json = c.to_json();
        assert!(!json.contains('<') && !json.contains('&'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["text"], "<b>&</b>");
    }
}
