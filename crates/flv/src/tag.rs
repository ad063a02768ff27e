//! FLV file header and tags (FLV specification annex E.2-E.4): demuxing a byte stream and
//! serializing tags for HTTP-FLV viewers.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;

/// The 9-byte file header plus the first PreviousTagSize (always 0).
pub const FILE_HEADER_LEN: usize = 13;
const TAG_HEADER_LEN: usize = 11;

/// What a tag carries. The numbers are the FLV tag types and equal RTMP's message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio = 8,
    Video = 9,
    Script = 18,
}

/// One FLV tag: its body is the same bytes an RTMP audio/video/data message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds, 32 bits (the FLV header's 24 bits plus the extension byte).
    pub timestamp: u32,
    pub body: Bytes,
}

/// Splits an FLV byte stream into tags as bytes arrive.
#[derive(Debug)]
pub struct Demuxer {
    buf: BytesMut,
    header_done: bool,
    max_tag_size: u32,
    offset: u64,
}

impl Demuxer {
    /// `max_tag_size` bounds one tag body; a 20 Mbit/s keyframe is under 2 MiB.
    pub fn new(max_tag_size: u32) -> Self {
        Self {
            buf: BytesMut::new(),
            header_done: false,
            max_tag_size,
            offset: 0,
        }
    }

    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// Bytes held that do not yet make a whole tag.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole tag, `Ok(None)` when more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, Error> {
        if !self.header_done {
            if self.buf.len() >= 3 && &self.buf[..3] != b"FLV" {
                return Err(Error::BadSignature);
            }
            if self.buf.len() < 9 {
                return Ok(None);
            }
            let data_offset = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            // The header is 9 bytes in every version; a larger offset skips unknown extensions.
            let skip = data_offset.max(9) + 4;
            if skip > 1024 {
                return Err(Error::Malformed("FLV header offset"));
            }
            if self.buf.len() < skip {
                return Ok(None);
            }
            self.buf.advance(skip);
            self.offset += skip as u64;
            self.header_done = true;
        }
        if self.buf.len() < TAG_HEADER_LEN {
            return Ok(None);
        }
        let h = &self.buf[..TAG_HEADER_LEN];
        // The top bits carry the filter flag (encryption), which we do not support: keep 5 bits.
        let tag_type = h[0] & 0x1f;
        let kind = match tag_type {
            8 => TagKind::Audio,
            9 => TagKind::Video,
            18 => TagKind::Script,
            tag_type => {
                return Err(Error::UnknownTagType {
                    tag_type,
                    offset: self.offset,
                });
            }
        };
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        if size > self.max_tag_size {
            return Err(Error::TagTooLarge {
                size,
                limit: self.max_tag_size,
                offset: self.offset,
            });
        }
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let total = TAG_HEADER_LEN + size as usize + 4;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(TAG_HEADER_LEN);
        let body = self.buf.split_to(size as usize).freeze();
        self.buf.advance(4); // PreviousTagSize: redundant, not trusted.
        self.offset += total as u64;
        Ok(Some(Tag { kind, timestamp, body }))
    }
}

/// The file header for an HTTP-FLV response.
pub fn encode_header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = u8::from(has_audio) << 2 | u8::from(has_video);
    Bytes::copy_from_slice(&[b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// Serializes one tag with its trailing PreviousTagSize.
pub fn encode_tag(kind: TagKind, timestamp: u32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + body.len() + 4);
    let size = body.len() as u32;
    out.put_u8(kind as u8);
    out.put_slice(&size.to_be_bytes()[1..]);
    out.put_slice(&timestamp.to_be_bytes()[1..]);
    out.put_u8((timestamp >> 24) as u8);
    out.put_slice(&[0, 0, 0]);
    out.put_slice(body);
    out.put_u32(TAG_HEADER_LEN as u32 + size);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tags_split_at_every_offset() {
        let mut stream = BytesMut::new();
        stream.put_slice(&encode_header(true, true));
        let tags = vec![
            Tag {
                kind: TagKind::Script,
                timestamp: 0,
                body: Bytes::from_static(b"\x02\x00\x0aonMetaData"),
            },
            Tag {
                kind: TagKind::Video,
                timestamp: 0x1234_5678,
                body: Bytes::from(vec![0x17; 300]),
            },
            Tag {
                kind: TagKind::Audio,
                timestamp: 23,
                body: Bytes::from_static(b"\xaf\x01"),
            },
        ];
        for t in &tags {
            stream.put_slice(&encode_tag(t.kind, t.timestamp, &t.body));
        }
        for split in 0..stream.len() {
            let mut d = Demuxer::new(1 << 20);
            let mut got = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                d.push(part);
                while let Some(t) = d.next_tag().unwrap() {
                    got.push(t);
                }
            }
            assert_eq!(got, tags, "split at {split}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn rejects_bad_signature_unknown_types_and_huge_tags() {
        let mut d = Demuxer::new(100);
        d.push(b"GIF89a");
        assert_eq!(d.next_tag(), Err(Error::BadSignature));

        let mut d = Demuxer::new(100);
        d.push(&encode_header(false, true));
        d.push(&[7, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12]);
        assert!(matches!(
            d.next_tag(),
            Err(Error::UnknownTagType {
                tag_type: 7,
                offset: 13
            })
        ));

        let mut d = Demuxer::new(100);
        d.push(&encode_header(false, true));
        d.push(&encode_tag(TagKind::Video, 0, &[0; 101]));
        assert!(matches!(d.next_tag(), Err(Error::TagTooLarge { size: 101, .. })));
    }
}
