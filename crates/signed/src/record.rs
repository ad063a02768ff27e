//! The two messages a signed broadcast carries, their bytes, and their signatures.
//!
//! Every message starts with a version byte and a kind byte; fields are fixed-size and
//! big-endian, strings length-prefixed (one byte). Each signature covers a context string
//! (so that a signature of one kind can never pass for the other) and every field before
//! it.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Error;

pub const VERSION: u8 = 1;
const KIND_CERTIFICATE: u8 = 1;
const KIND_RECORD: u8 = 2;
const CERTIFICATE_CONTEXT: &[u8] = b"livescope session certificate v1";
const RECORD_CONTEXT: &[u8] = b"livescope signature record v1";
/// The longest broadcast id a certificate names.
pub const MAX_BROADCAST_ID: usize = 64;

/// The account key vouches for a session key, for one broadcast and a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub account_key: [u8; 32],
    pub session_key: [u8; 32],
    /// The broadcast's public id: a certificate cannot be moved to another broadcast.
    pub broadcast: String,
    /// Unix milliseconds between which the session key may sign.
    pub not_before_ms: u64,
    pub not_after_ms: u64,
    pub signature: [u8; 64],
}

/// The session key vouches for a stretch of frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The session key that signed it: the first 8 bytes of its SHA-256 ([`key_id`]).
    pub session: [u8; 8],
    /// Counts from 0 in each session: a dropped, repeated or reordered record shows.
    pub sequence: u64,
    /// The publisher's decode time (ms) of the first video frame covered, and the span up
    /// to the first frame of the next record.
    pub start_ms: u64,
    pub duration_ms: u32,
    pub video_frames: u32,
    pub video_hash: [u8; 32],
    pub audio_frames: u32,
    pub audio_hash: [u8; 32],
    /// [`Record::digest`] of the record before it; zeros for the first.
    pub previous: [u8; 32],
    pub signature: [u8; 64],
}

/// A message as carried in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Certificate(Certificate),
    Record(Record),
}

/// The id records give their session key by.
pub fn key_id(session_key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::digest(session_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64], what: &'static str) -> Result<(), Error> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| Error::Signature(what))?;
    if key.is_weak() {
        return Err(Error::Signature(what));
    }
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| Error::Signature(what))
}

impl Certificate {
    /// What the account key signs.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(CERTIFICATE_CONTEXT);
        self.encode_fields(&mut out);
        out
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.account_key);
        out.extend_from_slice(&self.session_key);
        out.push(self.broadcast.len() as u8);
        out.extend_from_slice(self.broadcast.as_bytes());
        out.extend_from_slice(&self.not_before_ms.to_be_bytes());
        out.extend_from_slice(&self.not_after_ms.to_be_bytes());
    }

    /// Whether its own account key signed it. (Whether that key is the broadcaster's, and
    /// not revoked, is the caller's to check.)
    pub fn verify(&self) -> Result<(), Error> {
        verify(&self.account_key, &self.signed_bytes(), &self.signature, "certificate")
    }

    pub fn valid_at(&self, now_ms: u64) -> bool {
        (self.not_before_ms..=self.not_after_ms).contains(&now_ms)
    }
}

impl Record {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.extend_from_slice(RECORD_CONTEXT);
        self.encode_fields(&mut out);
        out
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        out.extend_from_slice(&self.duration_ms.to_be_bytes());
        out.extend_from_slice(&self.video_frames.to_be_bytes());
        out.extend_from_slice(&self.video_hash);
        out.extend_from_slice(&self.audio_frames.to_be_bytes());
        out.extend_from_slice(&self.audio_hash);
        out.extend_from_slice(&self.previous);
    }

    /// Whether `session_key` signed it.
    pub fn verify(&self, session_key: &[u8; 32]) -> Result<(), Error> {
        if key_id(session_key) != self.session {
            return Err(Error::Signature("record (another session's)"));
        }
        verify(session_key, &self.signed_bytes(), &self.signature, "record")
    }

    /// What the next record names as its `previous`: the hash of this one, signature and
    /// all.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(Message::Record(self.clone()).encode()).into()
    }
}

/// Reads fixed-size fields off the front of a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(Error::Truncated(self.what));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        match self {
            Message::Certificate(c) => {
                out.push(KIND_CERTIFICATE);
                c.encode_fields(&mut out);
                out.extend_from_slice(&c.signature);
            }
            Message::Record(r) => {
                out.push(KIND_RECORD);
                r.encode_fields(&mut out);
                out.extend_from_slice(&r.signature);
            }
        }
        out
    }

    /// Reads a message; anything but exactly one whole message is an error.
    pub fn decode(bytes: &[u8]) -> Result<Message, Error> {
        let mut r = Reader {
            rest: bytes,
            what: "message",
        };
        let [version, kind] = r.array()?;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let message = match kind {
            KIND_CERTIFICATE => {
                r.what = "certificate";
                let account_key = r.array()?;
                let session_key = r.array()?;
                let [len] = r.array()?;
                let broadcast = std::str::from_utf8(r.take(usize::from(len))?)
                    .map_err(|_| Error::Malformed("broadcast id"))?
                    .to_owned();
                if broadcast.len() > MAX_BROADCAST_ID {
                    return Err(Error::Malformed("broadcast id"));
                }
                Message::Certificate(Certificate {
                    account_key,
                    session_key,
                    broadcast,
                    not_before_ms: r.u64()?,
                    not_after_ms: r.u64()?,
                    signature: r.array()?,
                })
            }
            KIND_RECORD => {
                r.what = "record";
                Message::Record(Record {
                    session: r.array()?,
                    sequence: r.u64()?,
                    start_ms: r.u64()?,
                    duration_ms: r.u32()?,
                    video_frames: r.u32()?,
                    video_hash: r.array()?,
                    audio_frames: r.u32()?,
                    audio_hash: r.array()?,
                    previous: r.array()?,
                    signature: r.array()?,
                })
            }
            other => return Err(Error::Kind(other)),
        };
        if !r.rest.is_empty() {
            return Err(Error::Malformed("trailing bytes"));
        }
        Ok(message)
    }
}

/// The broadcaster's side: a session key, its certificate, and the chain of records.
pub struct SessionKey {
    key: SigningKey,
    certificate: Certificate,
    sequence: u64,
    previous: [u8; 32],
}

impl SessionKey {
    /// A session key from `seed` (fresh randomness), certified by `account` for
    /// `broadcast` from `not_before_ms` for `lifetime_ms`.
    pub fn new(
        account: &SigningKey,
        seed: [u8; 32],
        broadcast: &str,
        not_before_ms: u64,
        lifetime_ms: u64,
    ) -> SessionKey {
        let key = SigningKey::from_bytes(&seed);
        let mut certificate = Certificate {
            account_key: account.verifying_key().to_bytes(),
            session_key: key.verifying_key().to_bytes(),
            broadcast: {
                // At most MAX_BROADCAST_ID bytes, cut at a character boundary.
                let mut end = broadcast.len().min(MAX_BROADCAST_ID);
                while !broadcast.is_char_boundary(end) {
                    end -= 1;
                }
                broadcast[..end].to_owned()
            },
            not_before_ms,
            not_after_ms: not_before_ms.saturating_add(lifetime_ms),
            signature: [0; 64],
        };
        certificate.signature = account.sign(&certificate.signed_bytes()).to_bytes();
        SessionKey {
            key,
            certificate,
            sequence: 0,
            previous: [0; 32],
        }
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Signs the next record: frames from `start_ms` for `duration_ms`, with the counts
    /// and hashes of their video and audio ([`crate::FrameHasher::finish`]).
    pub fn sign(&mut self, start_ms: u64, duration_ms: u32, video: (u32, [u8; 32]), audio: (u32, [u8; 32])) -> Record {
        let mut record = Record {
            session: key_id(&self.certificate.session_key),
            sequence: self.sequence,
            start_ms,
            duration_ms,
            video_frames: video.0,
            video_hash: video.1,
            audio_frames: audio.0,
            audio_hash: audio.1,
            previous: self.previous,
            signature: [0; 64],
        };
        record.signature = self.key.sign(&record.signed_bytes()).to_bytes();
        self.sequence += 1;
        self.previous = record.digest();
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> (SigningKey, SessionKey) {
        let account = SigningKey::from_bytes(&[7; 32]);
        let session = SessionKey::new(&account, [9; 32], "fArxGT7lnlW5", 1_000, 3_600_000);
        (account, session)
    }

    #[test]
    fn messages_round_trip_and_verify() {
        let (account, mut session) = session();
        let certificate = session.certificate().clone();
        assert_eq!(certificate.account_key, account.verifying_key().to_bytes());
        certificate.verify().unwrap();
        assert!(certificate.valid_at(1_000) && certificate.valid_at(3_601_000) && !certificate.valid_at(3_601_001));
        let first = session.sign(0, 1000, (30, [1; 32]), (47, [2; 32]));
        let second = session.sign(1000, 1000, (30, [3; 32]), (47, [4; 32]));
        assert_eq!((first.sequence, second.sequence), (0, 1));
        assert_eq!(first.previous, [0; 32]);
        assert_eq!(second.previous, first.digest(), "records chain");
        for message in [
            Message::Certificate(certificate.clone()),
            Message::Record(first.clone()),
            Message::Record(second.clone()),
        ] {
            let bytes = message.encode();
            assert_eq!(Message::decode(&bytes), Ok(message));
        }
        first.verify(&certificate.session_key).unwrap();
        second.verify(&certificate.session_key).unwrap();
        // A record of 2 + 8 + 8 + 8 + 4 + 4 + 32 + 4 + 32 + 32 + 64 bytes.
        assert_eq!(Message::Record(first).encode().len(), 198);
    }

    #[test]
    fn any_changed_field_fails_the_signature() {
        let (_, mut session) = session();
        let key = session.certificate().session_key;
        let record = session.sign(0, 1000, (30, [1; 32]), (47, [2; 32]));
        let bytes = Message::Record(record).encode();
        // Flip each bit after the version and kind: a different record, or none, and never
        // one that verifies.
        for at in 2..bytes.len() {
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[at] ^= 1 << bit;
                if let Ok(Message::Record(r)) = Message::decode(&changed) {
                    assert!(r.verify(&key).is_err(), "byte {at} bit {bit}");
                }
            }
        }
        let certificate = Message::Certificate(session.certificate().clone()).encode();
        for at in 2..certificate.len() {
            let mut changed = certificate.clone();
            changed[at] ^= 0x10;
            if let Ok(Message::Certificate(c)) = Message::decode(&changed) {
                assert!(c.verify().is_err(), "certificate byte {at}");
            }
        }
    }

    #[test]
    fn a_certificate_signed_by_another_key_or_for_another_session_fails() {
        let (_, session) = session();
        let mut forged = session.certificate().clone();
        forged.account_key = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(forged.verify().is_err());
        let (_, mut other) = {
            let account = SigningKey::from_bytes(&[7; 32]);
            (
                account.clone(),
                SessionKey::new(&account, [10; 32], "fArxGT7lnlW5", 0, 10),
            )
        };
        let record = other.sign(0, 1, (1, [0; 32]), (0, [0; 32]));
        assert_eq!(
            record.verify(&session.certificate().session_key),
            Err(Error::Signature("record (another session's)"))
        );
    }

    #[test]
    fn truncated_or_unknown_bytes_are_errors() {
        let (_, mut session) = session();
        let bytes = Message::Record(session.sign(0, 1, (1, [0; 32]), (0, [0; 32]))).encode();
        for len in 0..bytes.len() {
            assert!(Message::decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Message::decode(&longer), Err(Error::Malformed("trailing bytes")));
        assert_eq!(Message::decode(&[2, 2]), Err(Error::Version(2)));
        assert_eq!(Message::decode(&[1, 9]), Err(Error::Kind(9)));
    }
}
