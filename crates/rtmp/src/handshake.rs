//! The RTMP handshake (RTMP spec section 5.2): C0/C1/C2 and S0/S1/S2.
//!
//! Both roles use the simple handshake: version 3, a 1536-byte random block whose
//! version field is zero, and an echo of the peer's block. ffmpeg, OBS (librtmp) and
//! nginx-rtmp accept it; a zero version field tells them not to expect the digest scheme.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;

/// Size of C1, C2, S1 and S2.
pub const BLOCK: usize = 1536;
/// The only RTMP version on the wire.
pub const VERSION: u8 = 3;

/// Progress of one side of the handshake.
#[derive(Debug)]
pub enum Progress {
    /// More input is needed.
    Pending,
    /// The handshake is complete; these bytes already belong to the chunk stream.
    Done(Bytes),
}

/// The server role: reads C0+C1, answers S0+S1+S2, reads C2.
#[derive(Debug)]
pub struct Server {
    buf: BytesMut,
    sent_reply: bool,
}

impl Server {
    pub fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            sent_reply: false,
        }
    }

    /// Feeds input; appends any reply to `out`.
    pub fn handle_input(&mut self, input: &[u8], out: &mut BytesMut, random: &[u8; BLOCK]) -> Result<Progress, Error> {
        self.buf.extend_from_slice(input);
        if !self.sent_reply {
            if self.buf.is_empty() {
                return Ok(Progress::Pending);
            }
            if self.buf[0] != VERSION {
                return Err(Error::UnsupportedVersion(self.buf[0]));
            }
            if self.buf.len() < 1 + BLOCK {
                return Ok(Progress::Pending);
            }
            let c0c1 = self.buf.split_to(1 + BLOCK);
            out.put_u8(VERSION);
            put_block(out, random);
            // S2 echoes C1, with its second timestamp field left as the client sent it.
            out.put_slice(&c0c1[1..]);
            self.sent_reply = true;
        }
        if self.buf.len() < BLOCK {
            return Ok(Progress::Pending);
        }
        let _c2 = self.buf.split_to(BLOCK);
        Ok(Progress::Done(self.buf.split().freeze()))
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// The client role: sends C0+C1 at once, reads S0+S1+S2, answers C2.
#[derive(Debug)]
pub struct Client {
    buf: BytesMut,
}

impl Client {
    /// Starts the handshake, appending C0+C1 to `out`.
    pub fn start(out: &mut BytesMut, random: &[u8; BLOCK]) -> Self {
        out.put_u8(VERSION);
        put_block(out, random);
        Self { buf: BytesMut::new() }
    }

    pub fn handle_input(&mut self, input: &[u8], out: &mut BytesMut) -> Result<Progress, Error> {
        self.buf.extend_from_slice(input);
        if self.buf.is_empty() {
            return Ok(Progress::Pending);
        }
        if self.buf[0] != VERSION {
            return Err(Error::UnsupportedVersion(self.buf[0]));
        }
        if self.buf.len() < 1 + 2 * BLOCK {
            return Ok(Progress::Pending);
        }
        let s = self.buf.split_to(1 + 2 * BLOCK);
        // C2 echoes S1.
        out.put_slice(&s[1..1 + BLOCK]);
        Ok(Progress::Done(self.buf.split().freeze()))
    }
}

fn put_block(out: &mut BytesMut, random: &[u8; BLOCK]) {
    out.put_u32(0); // time
    out.put_u32(0); // zero: simple handshake, no digest
    out.put_slice(&random[8..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_complete_when_fed_byte_by_byte() {
        let mut c0c1 = BytesMut::new();
        let mut client = Client::start(&mut c0c1, &[7; BLOCK]);
        let mut server = Server::new();
        let mut s0s1s2 = BytesMut::new();
        for b in c0c1.iter() {
            let progress = server.handle_input(&[*b], &mut s0s1s2, &[9; BLOCK]).unwrap();
            assert!(matches!(progress, Progress::Pending));
        }
        assert_eq!(s0s1s2.len(), 1 + 2 * BLOCK);
        assert_eq!(&s0s1s2[1 + BLOCK..], &c0c1[1..], "S2 echoes C1");

        let mut c2 = BytesMut::new();
        let mut done = None;
        for b in s0s1s2.iter() {
            if let Progress::Done(rest) = client.handle_input(&[*b], &mut c2).unwrap() {
                done = Some(rest);
            }
        }
        assert!(done.unwrap().is_empty());
        assert_eq!(&c2[..], &s0s1s2[1..1 + BLOCK], "C2 echoes S1");

        // Chunk-stream bytes that arrive with C2 are handed back.
        c2.put_slice(b"tail");
        match server.handle_input(&c2, &mut s0s1s2, &[9; BLOCK]).unwrap() {
            Progress::Done(rest) => assert_eq!(&rest[..], b"tail"),
            Progress::Pending => panic!("handshake should be complete"),
        }
    }

    #[test]
    fn refuses_other_versions() {
        let mut out = BytesMut::new();
        let err = Server::new()
            .handle_input(&[6, 0, 0], &mut out, &[0; BLOCK])
            .unwrap_err();
        assert_eq!(err, Error::UnsupportedVersion(6));
    }
}
