//! AMF0 values, as carried by RTMP command and data messages (AMF0 File Format Specification).
//!
//! The decoder is bounded: strings and arrays cannot claim more bytes than the input holds,
//! and nesting is capped so a hostile peer cannot exhaust the stack.

use bytes::{BufMut, BytesMut};

/// Deepest nesting of objects and arrays accepted; real commands nest two levels at most.
pub const MAX_DEPTH: usize = 16;
/// Most values decoded from one input. A value takes as little as one byte on the wire
/// (`null`) but about 40 in memory, so without a bound a message of nulls would cost forty
/// times its size; the largest real command (`connect`) and `onMetaData` hold a few dozen.
pub const MAX_VALUES: usize = 512;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// An anonymous object: ordered key/value pairs.
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    /// An ECMA array: like an object, with an advisory count on the wire.
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch and a timezone offset (ignored by everyone).
    Date(f64, i16),
}

impl Value {
    /// Looks a property up in an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Shorthand for building objects in commands.
    pub fn object<const N: usize>(props: [(&str, Value); N]) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

/// Why a byte sequence is not valid AMF0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated value at byte {0}")]
    Truncated(usize),
    /// A type marker this decoder does not know (AMF3 switch, references, XML, typed objects).
    #[error("unsupported type marker {marker:#04x} at byte {offset}")]
    UnsupportedMarker { marker: u8, offset: usize },
    /// Objects or arrays nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} at byte {0}")]
    TooDeep(usize),
    /// A string that is not UTF-8.
    #[error("string is not UTF-8 at byte {0}")]
    NotUtf8(usize),
    /// More than [`MAX_VALUES`] values in one input.
    #[error("more than {MAX_VALUES} values at byte {0}")]
    TooManyValues(usize),
}

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

/// Decodes every value in `input`.
pub fn decode_all(input: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut reader = Reader {
        input,
        pos: 0,
        values: 0,
    };
    let mut values = Vec::new();
    while reader.pos < input.len() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

/// Decodes one value from the start of `input` and says how many bytes it used.
pub fn decode_one(input: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut reader = Reader {
        input,
        pos: 0,
        values: 0,
    };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Values decoded so far, bounded by [`MAX_VALUES`].
    values: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or(DecodeError::Truncated(self.pos))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        Ok(f64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn utf8(&mut self, len: usize) -> Result<String, DecodeError> {
        let at = self.pos;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8(at))
    }

    fn short_string(&mut self) -> Result<String, DecodeError> {
        let len = self.u16()? as usize;
        self.utf8(len)
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, DecodeError> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.input.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep(self.pos));
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(DecodeError::TooManyValues(self.pos));
        }
        let at = self.pos;
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Value::Number(self.f64()?),
            BOOLEAN => Value::Boolean(self.u8()? != 0),
            STRING => Value::String(self.short_string()?),
            LONG_STRING => {
                let len = self.u32()? as usize;
                Value::String(self.utf8(len)?)
            }
            OBJECT => Value::Object(self.properties(depth)?),
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            ECMA_ARRAY => {
                let _advisory_count = self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Each element takes at least one byte, so the input bounds the count.
                if count > self.input.len() - self.pos {
                    return Err(DecodeError::Truncated(self.pos));
                }
                let mut items = Vec::with_capacity(count.min(MAX_VALUES));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            DATE => {
                let millis = self.f64()?;
                let tz = self.u16()? as i16;
                Value::Date(millis, tz)
            }
            marker => return Err(DecodeError::UnsupportedMarker { marker, offset: at }),
        })
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) if s.len() > u16::MAX as usize => {
            out.put_u8(LONG_STRING);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
        Value::String(s) => {
            out.put_u8(STRING);
            put_short_string(out, s);
        }
        Value::Object(props) => {
            out.put_u8(OBJECT);
            put_properties(out, props);
        }
        Value::Null => out.put_u8(NULL),
        Value::Undefined => out.put_u8(UNDEFINED),
        Value::EcmaArray(props) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(props.len() as u32);
            put_properties(out, props);
        }
        Value::StrictArray(items) => {
            out.put_u8(STRICT_ARRAY);
            out.put_u32(items.len() as u32);
            for item in items {
                encode(out, item);
            }
        }
        Value::Date(millis, tz) => {
            out.put_u8(DATE);
            out.put_f64(*millis);
            out.put_i16(*tz);
        }
    }
}

/// Encodes a sequence of values, as a command message body.
pub fn encode_all(values: &[Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        encode(&mut out, v);
    }
    out
}

fn put_short_string(out: &mut BytesMut, s: &str) {
    // Keys and short strings are capped at u16::MAX by the format; longer keys are cut.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

fn put_properties(out: &mut BytesMut, props: &[(String, Value)]) {
    for (k, v) in props {
        put_short_string(out, k);
        encode(out, v);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_connect_command() {
        let values = vec![
            Value::string("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", Value::string("live")),
                ("tcUrl", Value::string("rtmp://127.0.0.1/live")),
                ("fpad", Value::Boolean(false)),
                ("audioCodecs", Value::Number(4071.0)),
            ]),
            Value::Null,
            Value::EcmaArray(vec![("duration".into(), Value::Number(0.0))]),
            Value::StrictArray(vec![Value::Undefined, Value::Date(1.0, 0)]),
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn rejects_truncation_and_deep_nesting_without_panicking() {
        let bytes = encode_all(&[Value::string("publish")]);
        for cut in 0..bytes.len() {
            assert!(decode_all(&bytes[..cut]).is_err() || cut == 0);
        }
        let deep = [OBJECT, 0, 1, b'a'].repeat(MAX_DEPTH + 2);
        assert!(matches!(decode_all(&deep), Err(DecodeError::TooDeep(_))));
        // A strict array claiming four billion elements in a few bytes.
        assert!(decode_all(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, NULL]).is_err());
        // A megabyte of nulls, loose or in an array, is refused rather than decoded.
        let nulls = vec![NULL; 1 << 20];
        assert!(matches!(decode_all(&nulls), Err(DecodeError::TooManyValues(_))));
        let array = [&[STRICT_ARRAY, 0, 0x10, 0, 0][..], &nulls].concat();
        assert!(matches!(decode_all(&array), Err(DecodeError::TooManyValues(_))));
    }
}
