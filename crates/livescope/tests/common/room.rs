//! A client of a broadcast's room (`/api/broadcasts/<id>/live`) over a real WebSocket.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::Server;

pub struct Ws {
    pub socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Messages of a batched frame not yet handed out.
    queued: std::collections::VecDeque<Value>,
}

pub fn try_join(server: &Server, id: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{}/api/broadcasts/{id}/live", server.http)
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (socket, _) = tungstenite::connect(request)?;
    if let MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    }
    Ok(Ws {
        socket,
        queued: Default::default(),
    })
}

/// Joins the room of `id` and reads the welcome.
pub fn join(server: &Server, id: &str, token: Option<&str>) -> (Ws, Value) {
    let mut ws = try_join(server, id, token).unwrap();
    let welcome = ws.next_of("welcome");
    (ws, welcome)
}

impl Ws {
    pub fn send(&mut self, v: Value) {
        self.socket.send(Message::text(v.to_string())).unwrap();
    }

    /// The next message (presence reports are skipped). A frame holds one message or an
    /// array of them.
    pub fn next(&mut self) -> Value {
        self.next_where(|v| v["type"] != "presence")
    }

    /// The next presence report, skipping other messages.
    pub fn next_presence(&mut self) -> Value {
        self.next_where(|v| v["type"] == "presence")
    }

    /// The next message `wanted`, dropping those before it; a test that waits a minute for
    /// it fails, saying what came instead (presence reports keep the socket busy, so its read
    /// timeout alone would never fire).
    fn next_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut dropped: Vec<Value> = Vec::new();
        loop {
            if let Some(v) = self.queued.pop_front() {
                if wanted(&v) {
                    return v;
                }
                if v["type"] != "presence" {
                    dropped.push(v);
                }
                continue;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no such message within 60 s; came instead: {dropped:?}"
            );
            match self.socket.read().unwrap() {
                Message::Text(t) => match serde_json::from_str(&t).unwrap() {
                    Value::Array(all) => self.queued.extend(all),
                    one => self.queued.push_back(one),
                },
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }

    /// The next message of type `ty`, skipping others.
    pub fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let v = self.next();
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Reads and drops whatever has arrived, without waiting for more.
    pub fn drain(&mut self) {
        let MaybeTlsStream::Plain(s) = self.socket.get_ref() else {
            unreachable!()
        };
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        while self.socket.read().is_ok() {}
        let MaybeTlsStream::Plain(s) = self.socket.get_ref() else {
            unreachable!()
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        self.queued.clear();
    }

    /// Reads until the server closes the connection; returns the errors it said before.
    pub fn until_closed(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        loop {
            match self.socket.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    for v in v.as_array().cloned().unwrap_or_else(|| vec![v]) {
                        if v["type"] == "error" {
                            errors.push(v["code"].as_str().unwrap().to_owned());
                        }
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return errors,
                Ok(_) => {}
            }
        }
    }
}
