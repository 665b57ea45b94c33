//! twilsock v3 frames: the framing of the client protocol of Twilio's SDKs (`twilio-chat`,
//! `twilio-sync`), as docs/twilio-client-protocol.md describes it. One binary WebSocket message
//! is one frame:
//!
//! ```text
//! "TWILSOCK V3.0 " <H> "\r\n" <header: H bytes of JSON> "\r\n" <payload: header.payload_size bytes>
//! ```
//!
//! The header is a JSON object naming the `method` (`init`, `reply`, `message`, `update`,
//! `notification`, `client_update`, `close`, ...) and its `id`; what each method carries is the
//! transport's business, not this module's. Decoding checks everything a peer could get wrong
//! (the preamble, the header length, the header being an object, `payload_size` against what
//! arrived, a size bound) and never panics; encoding writes `payload_size` itself.

use serde_json::{Map, Value};

/// What every frame starts with.
pub const PREAMBLE: &[u8] = b"TWILSOCK V3.0 ";

/// The longest header length accepted, in digits: more would be a header no frame bound allows.
const MAX_LENGTH_DIGITS: usize = 10;

/// A frame's header and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The header object (`method`, `id`, `payload_size`, and the method's own fields).
    pub header: Map<String, Value>,
    /// The payload: JSON, text or bytes, as `payload_type` says.
    pub payload: Vec<u8>,
}

/// Why bytes are not a twilsock frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// It does not start with [`PREAMBLE`].
    NotTwilsock,
    /// The header length is missing, not a number, or not followed by `\r\n`.
    BadLength,
    /// The frame is larger than the bound.
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// Fewer bytes than the header length and `payload_size` announce, or the header is not
    /// followed by `\r\n`.
    Truncated,
    /// More bytes than `payload_size` announces.
    TrailingBytes,
    /// The header is not a JSON object with a string `method`, or its `payload_size` is not a
    /// non-negative integer.
    BadHeader(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotTwilsock => f.write_str("not a twilsock v3 frame"),
            Self::BadLength => f.write_str("malformed header length"),
            Self::TooLarge { limit } => write!(f, "frame larger than {limit} bytes"),
            Self::Truncated => f.write_str("frame shorter than it announces"),
            Self::TrailingBytes => f.write_str("bytes after the payload"),
            Self::BadHeader(why) => write!(f, "malformed header: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Frame {
    /// A frame of `method` with `id`, no other header field and no payload.
    pub fn new(method: &str, id: &str) -> Self {
        let mut header = Map::new();
        header.insert("method".into(), Value::from(method));
        header.insert("id".into(), Value::from(id));
        Self {
            header,
            payload: Vec::new(),
        }
    }

    /// The header's `method`.
    pub fn method(&self) -> &str {
        self.header
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The header's `id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.header.get("id").and_then(Value::as_str)
    }

    /// Decodes one frame of at most `max_bytes` bytes.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, FrameError> {
        if bytes.len() > max_bytes {
            return Err(FrameError::TooLarge { limit: max_bytes });
        }
        let rest = bytes
            .strip_prefix(PREAMBLE)
            .ok_or(FrameError::NotTwilsock)?;
        let digits = rest
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > MAX_LENGTH_DIGITS {
            return Err(FrameError::BadLength);
        }
        let header_len: usize = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or(FrameError::BadLength)?;
        let rest = rest[digits..]
            .strip_prefix(b"\r\n")
            .ok_or(FrameError::BadLength)?;
        if header_len > rest.len() {
            return Err(FrameError::Truncated);
        }
        let (header_bytes, rest) = rest.split_at(header_len);
        let payload = rest.strip_prefix(b"\r\n").ok_or(FrameError::Truncated)?;
        let header: Map<String, Value> = match serde_json::from_slice(header_bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(FrameError::BadHeader("not a JSON object".into())),
            Err(e) => return Err(FrameError::BadHeader(e.to_string())),
        };
        if !header.get("method").is_some_and(Value::is_string) {
            return Err(FrameError::BadHeader("no method".into()));
        }
        let size = match header.get("payload_size") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| FrameError::BadHeader("payload_size is not a size".into()))?,
        };
        match payload.len().cmp(&size) {
            std::cmp::Ordering::Less => Err(FrameError::Truncated),
            std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes),
            std::cmp::Ordering::Equal => Ok(Self {
                header,
                payload: payload.to_vec(),
            }),
        }
    }

    /// The frame's bytes, with `payload_size` set to the payload's length.
    pub fn encode(&self) -> Vec<u8> {
        let mut header = self.header.clone();
        header.insert("payload_size".into(), Value::from(self.payload.len()));
        // A map of JSON values always serializes.
        let header = serde_json::to_vec(&Value::Object(header)).unwrap_or_default();
        let length = header.len().to_string();
        let mut out = Vec::with_capacity(
            PREAMBLE.len() + length.len() + header.len() + self.payload.len() + 4,
        );
        out.extend_from_slice(PREAMBLE);
        out.extend_from_slice(length.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&header);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    /// A frame as the twilsock 0.12 client builds one (`Parser.createPacket`).
    fn client_frame(header: Value, payload: &str) -> Vec<u8> {
        let header = header.to_string();
        format!("TWILSOCK V3.0 {}\r\n{header}\r\n{payload}", header.len()).into_bytes()
    }

    #[test]
    fn a_client_init_decodes() {
        let bytes = client_frame(
            json!({"id": "TM1", "method": "init", "token": "t", "payload_size": 0}),
            "",
        );
        let frame = Frame::decode(&bytes, 1 << 16).unwrap();
        assert_eq!((frame.method(), frame.id()), ("init", Some("TM1")));
        assert_eq!(frame.header["token"], "t");
        assert!(frame.payload.is_empty());
    }

    #[test]
    fn payload_sizes_count_bytes_not_characters() {
        let body = r#"{"body":"héllo ✓"}"#;
        let header = json!({"id": "TM2", "method": "message", "payload_type": "application/json",
                            "payload_size": body.len()});
        let frame = Frame::decode(&client_frame(header, body), 1 << 16).unwrap();
        assert_eq!(frame.payload, body.as_bytes());
        // And back: the same bytes, whatever the header's key order.
        let again = Frame::decode(&frame.encode(), 1 << 16).unwrap();
        assert_eq!(again, frame);
    }

    #[test]
    fn encode_writes_the_payload_size() {
        let mut frame = Frame::new("reply", "TM3");
        frame
            .header
            .insert("status".into(), json!({"code": 200, "status": "OK"}));
        frame.payload = b"{}".to_vec();
        let bytes = frame.encode();
        assert!(bytes.starts_with(b"TWILSOCK V3.0 "));
        let decoded = Frame::decode(&bytes, 1 << 16).unwrap();
        assert_eq!(decoded.header["payload_size"], 2);
        assert_eq!(decoded.header["status"]["code"], 200);
    }

    #[test]
    fn malformed_frames_are_refused() {
        let ok = json!({"id": "x", "method": "ping", "payload_size": 2});
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (
                b"TWILSOCK V2.0 2\r\n{}\r\n".to_vec(),
                FrameError::NotTwilsock,
            ),
            (b"{\"method\":\"init\"}".to_vec(), FrameError::NotTwilsock),
            (b"TWILSOCK V3.0 \r\n{}\r\n".to_vec(), FrameError::BadLength),
            (
                b"TWILSOCK V3.0 99999999999\r\n".to_vec(),
                FrameError::BadLength,
            ),
            (
                b"TWILSOCK V3.0 2 \r\n{}\r\n".to_vec(),
                FrameError::BadLength,
            ),
            (
                b"TWILSOCK V3.0 40\r\n{}\r\n".to_vec(),
                FrameError::Truncated,
            ),
            (b"TWILSOCK V3.0 2\r\n{}".to_vec(), FrameError::Truncated),
            (client_frame(ok.clone(), "{"), FrameError::Truncated),
            (client_frame(ok, "{}}"), FrameError::TrailingBytes),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                Frame::decode(&bytes, 1 << 16),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        for header in [json!([1]), json!({"id": "x"}), json!({"method": 3})] {
            assert!(matches!(
                Frame::decode(&client_frame(header, ""), 1 << 16),
                Err(FrameError::BadHeader(_))
            ));
        }
        let negative = client_frame(json!({"method": "m", "payload_size": -1}), "");
        assert!(matches!(
            Frame::decode(&negative, 1 << 16),
            Err(FrameError::BadHeader(_))
        ));
        let big = Frame {
            payload: vec![0; 100],
            ..Frame::new("message", "y")
        }
        .encode();
        assert_eq!(
            Frame::decode(&big, 64),
            Err(FrameError::TooLarge { limit: 64 })
        );
    }

    #[test]
    fn the_fuzz_seeds_are_frames() {
        let init = include_bytes!("../../../fuzz/corpus/twilsock_frame/init");
        let frame = Frame::decode(init, 1 << 16).unwrap();
        assert_eq!(frame.method(), "init");
        assert_eq!(frame.header["registrations"][0]["product"], "ip_messaging");
        let message = include_bytes!("../../../fuzz/corpus/twilsock_frame/message");
        let frame = Frame::decode(message, 1 << 16).unwrap();
        assert_eq!(
            frame.header["http_request"]["path"],
            "/aim/Client/v1/Configuration"
        );
        let body: Value = serde_json::from_slice(&frame.payload).unwrap();
        assert_eq!(body["body"], "héllo");
    }
}
