//! The WebSocket transport of realtime and twilsock sessions: after the upgrade, a session owns
//! its TCP connection.
//!
//! actix-http hands every WebSocket upgrade request to [`upgrade_service`] with the
//! connection's IO (`Framed::into_parts`); the session then reads and writes the socket itself,
//! with buffers that start empty, grow for a burst and are given back when drained. Reading
//! decodes client frames with actix-http's codec ([`WsReader`]); writing encodes server frames
//! straight into the session's write buffer ([`encode_text`], [`encode_binary`]) and writes
//! everything queued with one system call ([`WsOut::write`]). No dispatcher buffers, no channel
//! between the session and the socket, no per-frame wake-up (docs/ARCHITECTURE.md, "Decisions").

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix_codec::{Decoder, Framed};
use actix_http::header::{self, HeaderMap};
use actix_http::ws::{self, CloseReason, Codec, Frame, OpCode, Parser, ProtocolError};
use actix_http::{h1, Request};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::sessions::{Admitted, Refusal};
use crate::AppState;

/// What one read asks the kernel for at most; the read buffer grows by this much only while a
/// frame is incomplete.
const READ_CHUNK: usize = 4096;

/// A write buffer larger than this is given back once written, so that an idle session holds
/// none.
pub(super) const RETAINED_WRITE_BUFFER: usize = 1024;

/// How long a closing session waits for the client's end of the connection after its close
/// frame (a client that keeps sending would otherwise get a reset before it reads the close).
const LINGER: Duration = Duration::from_millis(1000);

/// The connection type actix-http hands to the upgrade service.
pub type UpgradeIo = Framed<TcpStream, h1::Codec>;

/// The service actix-http calls with each WebSocket upgrade request (see
/// `confab-server`'s `server.rs`): `/v2/realtime` and `/v3/wsconnect` become sessions that own
/// their connection, any other path is answered 404.
pub fn upgrade_service(
    state: Arc<AppState>,
) -> impl actix_service::ServiceFactory<
    (Request, UpgradeIo),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
> + Clone {
    actix_service::fn_service(move |(req, io): (Request, UpgradeIo)| {
        let state = state.clone();
        async move {
            accept(state, req, io).await;
            Ok::<_, actix_http::Error>(())
        }
    })
}

/// Which session a WebSocket path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Realtime,
    Twilsock,
}

async fn accept(state: Arc<AppState>, req: Request, io: UpgradeIo) {
    let Some(Accepted {
        endpoint,
        http_base,
        reader,
        out,
        admitted,
    }) = handshake(&state, req, io).await
    else {
        return;
    };
    match endpoint {
        Endpoint::Realtime => spawn_session(admitted, super::session::run(state, reader, out)),
        Endpoint::Twilsock => spawn_session(
            admitted,
            super::twilsock::run(state, reader, out, http_base),
        ),
    }
}

/// Runs a session on a task of its own, counted until it ends. The connection's task
/// (actix-http's dispatcher, which has nothing left to do) ends meanwhile: an idle session
/// holds only what it uses.
fn spawn_session(admitted: Admitted, session: impl std::future::Future<Output = ()> + 'static) {
    drop(actix_web::rt::spawn(async move {
        session.await;
        drop(admitted);
    }));
}

/// What a session starts with.
struct Accepted {
    endpoint: Endpoint,
    /// The scheme and host the client reached, for the links twilsock hands out.
    http_base: String,
    reader: WsReader,
    out: WsOut,
    /// The session's place in the node's count.
    admitted: Admitted,
}

/// Answers the upgrade request; what the session needs, or `None` when the request was refused.
/// The request and actix-http's buffers are gone when it returns: a session holds none of them.
async fn handshake(state: &AppState, req: Request, io: UpgradeIo) -> Option<Accepted> {
    let parts = io.into_parts();
    // What the client sent after its request (its first frames) is already in the read buffer.
    let (mut stream, leftover) = (parts.io, parts.read_buf);
    // actix-http hands the connection over once an earlier response (a pipelined request's) is
    // encoded, not necessarily written: its rest goes first.
    // A client that does not read gets the write timeout, as a session's writes do: the
    // dispatcher's own timers no longer run once the connection is upgraded.
    let wait = Duration::from_millis(state.realtime.write_timeout_ms.max(1));
    if !parts.write_buf.is_empty() {
        tokio::time::timeout(wait, stream.write_all(&parts.write_buf))
            .await
            .ok()?
            .ok()?;
    }
    drop(parts.write_buf);
    let endpoint = match req.path() {
        "/v2/realtime" => Endpoint::Realtime,
        "/v3/wsconnect" => Endpoint::Twilsock,
        _ => {
            refuse(&mut stream, "404 Not Found", "no WebSocket endpoint here").await;
            return None;
        }
    };
    if let Err(e) = ws::verify_handshake(req.head()) {
        let status = match e {
            ws::HandshakeError::GetMethodRequired => "405 Method Not Allowed",
            _ => "400 Bad Request",
        };
        refuse(&mut stream, status, &e.to_string()).await;
        return None;
    }
    let admitted = match state.sessions.admit() {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let why = match refusal {
                Refusal::Full => "this node holds its maximum of realtime connections",
                Refusal::Closing => "this node is stopping",
            };
            refuse(&mut stream, "503 Service Unavailable", why).await;
            return None;
        }
    };
    let key = ws::hash_key(
        req.head()
            .headers()
            .get(header::SEC_WEBSOCKET_KEY)?
            .as_bytes(),
    );
    let http_base = format!("{}://{}", scheme(req.head().headers()), host(&req));
    drop(req);
    let mut response = Vec::with_capacity(160);
    response.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ",
    );
    response.extend_from_slice(&key);
    response.extend_from_slice(b"\r\n\r\n");
    tokio::time::timeout(wait, stream.write_all(&response))
        .await
        .ok()?
        .ok()?;
    // Realtime frames are small and latency-bound: Nagle's algorithm would hold a frame until
    // the previous one is acknowledged, which the peer may delay by 40 ms.
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    // Only what the client already sent is kept, not actix-http's 8 KiB read buffer.
    let buf = BytesMut::from(&leftover[..]);
    drop(leftover);
    let reader = WsReader {
        io: read,
        buf,
        codec: Codec::new().max_size(state.realtime.max_frame_bytes),
        max_frame: state.realtime.max_frame_bytes,
    };
    Some(Accepted {
        endpoint,
        http_base,
        reader,
        out: WsOut::new(write),
        admitted,
    })
}

/// Answers an upgrade request that does not become a session, and closes.
async fn refuse(stream: &mut TcpStream, status: &str, why: &str) {
    let body = format!("{why}\n");
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The scheme the client used, as a reverse proxy reports it (`Forwarded`, then
/// `X-Forwarded-Proto`), else `http`: the node itself speaks plain HTTP.
fn scheme(headers: &HeaderMap) -> String {
    forwarded(headers, "proto")
        .or_else(|| header_str(headers, "x-forwarded-proto"))
        .unwrap_or_else(|| "http".to_owned())
}

/// The host the client reached, as a reverse proxy reports it (`Forwarded`, then
/// `X-Forwarded-Host`), else `Host`: what actix-web's connection info reports for other routes.
fn host(req: &Request) -> String {
    let headers = req.head().headers();
    forwarded(headers, "host")
        .or_else(|| header_str(headers, "x-forwarded-host"))
        .or_else(|| header_str(headers, "host"))
        .unwrap_or_else(|| "localhost".to_owned())
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// A parameter of the first `Forwarded` element (RFC 7239).
fn forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(header::FORWARDED)?.to_str().ok()?;
    let first = value.split(',').next()?;
    first.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The reading end of a session's connection: client frames, decoded one at a time.
#[derive(Debug)]
pub struct WsReader {
    io: OwnedReadHalf,
    /// Bytes read and not yet decoded; empty (and unallocated) between frames.
    buf: BytesMut,
    codec: Codec,
    /// Largest frame payload accepted; the buffer never holds more than one such frame.
    max_frame: usize,
}

/// Longest header of a WebSocket frame (2 bytes, 8 of length, 4 of mask).
const MAX_FRAME_HEADER: usize = 14;

impl WsReader {
    /// The next frame of the client; `None` once the client closed the connection. Cancel-safe:
    /// what was read stays in the buffer.
    pub async fn next(&mut self) -> Option<Result<Frame, ProtocolError>> {
        loop {
            if !self.buf.is_empty() {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(frame)) => return Some(Ok(frame)),
                    // The codec checks a frame's size only once it is whole: a client that
                    // announces a huge frame and keeps sending must not grow the buffer.
                    Ok(None)
                        if self.buf.len() > self.max_frame.saturating_add(MAX_FRAME_HEADER) =>
                    {
                        return Some(Err(ProtocolError::Overflow));
                    }
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
            } else if self.buf.capacity() > 0 {
                // Between frames an idle session holds no read buffer.
                self.buf = BytesMut::new();
            }
            if let Err(e) = self.io.readable().await {
                return Some(Err(ProtocolError::Io(e)));
            }
            self.buf.reserve(READ_CHUNK);
            match self.io.try_read_buf(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Some(Err(ProtocolError::Io(e))),
            }
        }
    }

    /// Reads and drops what the client still sends until it closes its end, for [`LINGER`] at
    /// most: closing a socket with unread bytes resets the connection, and the client could
    /// lose the close frame.
    async fn drain(self) {
        let _ = tokio::time::timeout(LINGER, async {
            let mut scratch = [0u8; 1024];
            loop {
                if self.io.readable().await.is_err() {
                    return;
                }
                match self.io.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        })
        .await;
    }
}

/// The writing end of a session's connection, shared by its reader (replies, pings, pongs,
/// the close) and its writer (events). Pieces of whole frames are written under the lock, so
/// frames never interleave (a ping may go between two pieces of a large write); a write given up half way (a timeout, an aborted writer)
/// keeps its rest, which goes out before anything else, so the client never sees a torn frame.
#[derive(Debug, Clone)]
pub struct WsOut(Arc<tokio::sync::Mutex<Writer>>);

#[derive(Debug)]
struct Writer {
    io: OwnedWriteHalf,
    /// The unwritten rest of a write that was given up.
    torn: BytesMut,
}

/// What is left of a write; kept by the writer when the write is dropped before its end.
struct Rest<'a> {
    torn: &'a mut BytesMut,
    rest: &'a [u8],
}

impl Drop for Rest<'_> {
    fn drop(&mut self) {
        if !self.rest.is_empty() {
            self.torn.extend_from_slice(self.rest);
        }
    }
}

impl Writer {
    /// Writes what a given-up write left, then `frames`.
    async fn write(&mut self, frames: &[u8]) -> io::Result<()> {
        if !self.torn.is_empty() {
            let torn = std::mem::take(&mut self.torn);
            Self::write_keeping_rest(&mut self.io, &mut self.torn, &torn).await?;
        }
        Self::write_keeping_rest(&mut self.io, &mut self.torn, frames).await
    }

    async fn write_keeping_rest(
        io: &mut OwnedWriteHalf,
        torn: &mut BytesMut,
        bytes: &[u8],
    ) -> io::Result<()> {
        let mut rest = Rest { torn, rest: bytes };
        while !rest.rest.is_empty() {
            let n = io.write(rest.rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest.rest = &rest.rest[n..];
        }
        Ok(())
    }
}

impl WsOut {
    fn new(io: OwnedWriteHalf) -> Self {
        Self(Arc::new(tokio::sync::Mutex::new(Writer {
            io,
            torn: BytesMut::new(),
        })))
    }

    /// Writes encoded frames, all of them or an error. Large writes go in pieces of whole
    /// frames of about [`WRITE_PIECE`] bytes, taking the lock for each, so that a ping, a pong
    /// or a reply waits for one piece at most, not for a whole replay.
    pub async fn write(&self, frames: &[u8]) -> io::Result<()> {
        let mut rest = frames;
        while !rest.is_empty() {
            let piece = piece_len(rest, WRITE_PIECE);
            self.0.lock().await.write(&rest[..piece]).await?;
            rest = &rest[piece..];
        }
        Ok(())
    }

    /// Writes one binary frame.
    pub async fn binary(&self, payload: &[u8]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        encode_binary(&mut buf, payload);
        self.write(&buf).await
    }

    /// Writes a ping.
    pub async fn ping(&self, payload: &[u8]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, OpCode::Ping, true, false);
        self.write(&buf).await
    }

    /// Answers a ping.
    pub async fn pong(&self, payload: &[u8]) -> io::Result<()> {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, OpCode::Pong, true, false);
        self.write(&buf).await
    }
}

/// Bytes written under the lock at once, in whole frames (a larger frame goes whole).
const WRITE_PIECE: usize = 64 * 1024;

/// The length of the longest run of whole frames at the start of `frames` that fits in `limit`
/// bytes, or of its first frame when that alone is larger. `frames` holds server frames this
/// module encoded (unmasked, whole); anything else is taken whole.
fn piece_len(frames: &[u8], limit: usize) -> usize {
    let mut end = 0;
    while end < frames.len() {
        let Some(len) = frame_len(&frames[end..]) else {
            return frames.len();
        };
        let Some(next) = end.checked_add(len) else {
            return frames.len();
        };
        if end > 0 && next > limit {
            break;
        }
        end = next;
    }
    end.min(frames.len())
}

/// The length, header included, of the unmasked frame `bytes` starts with.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let short = usize::from(*bytes.get(1)? & 0x7f);
    let (header, payload): (usize, usize) = match short {
        126 => (
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (10, usize::try_from(u64::from_be_bytes(raw)).ok()?)
        }
        n => (2, n),
    };
    header.checked_add(payload)
}

/// Appends a server text frame (unmasked) to `buf`.
pub fn encode_text(buf: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(buf, payload, OpCode::Text, true, false);
}

/// Appends a server binary frame (unmasked) to `buf`.
pub fn encode_binary(buf: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(buf, payload, OpCode::Binary, true, false);
}

/// Ends a session's connection: the close frame (waiting `wait` at most for a client that
/// does not read), the end of our half, then what the client still sends, briefly. The
/// session's writer must be finished: nothing is written after the close frame.
pub async fn close(reader: WsReader, out: WsOut, reason: Option<CloseReason>, wait: Duration) {
    let mut buf = BytesMut::new();
    Parser::write_close(&mut buf, reason, false);
    let closed = tokio::time::timeout(wait, async {
        let mut writer = out.0.lock().await;
        writer.write(&buf).await?;
        writer.io.shutdown().await
    })
    .await;
    if matches!(closed, Ok(Ok(()))) {
        reader.drain().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_static(name),
                header::HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn the_scheme_comes_from_the_proxy_when_there_is_one() {
        assert_eq!(scheme(&headers(&[])), "http");
        assert_eq!(scheme(&headers(&[("x-forwarded-proto", "https")])), "https");
        assert_eq!(
            scheme(&headers(&[
                (
                    "forwarded",
                    "for=1.2.3.4;proto=https;host=chat.example.com, proto=http"
                ),
                ("x-forwarded-proto", "http")
            ])),
            "https"
        );
        assert_eq!(
            forwarded(
                &headers(&[("forwarded", "for=1.2.3.4;Host=\"chat.example.com\"")]),
                "host"
            )
            .as_deref(),
            Some("chat.example.com")
        );
    }

    #[test]
    fn large_writes_are_cut_between_frames() {
        let mut buf = BytesMut::new();
        let sizes = [10usize, 200, 70_000, 5, 65_000, 1];
        let mut ends = Vec::new();
        for size in sizes {
            encode_text(&mut buf, &vec![b'a'; size]);
            ends.push(buf.len());
        }
        let mut at = 0;
        let mut pieces = Vec::new();
        while at < buf.len() {
            let len = piece_len(&buf[at..], 64 * 1024);
            at += len;
            pieces.push(at);
        }
        // Every cut falls on a frame's end; a frame larger than the limit goes whole.
        assert!(
            pieces.iter().all(|p| ends.contains(p)),
            "{pieces:?} {ends:?}"
        );
        assert_eq!(pieces, vec![ends[1], ends[2], ends[5]]);
    }

    #[test]
    fn a_server_frame_is_unmasked_and_decodes_back() {
        let mut buf = BytesMut::new();
        encode_text(&mut buf, b"hello");
        encode_binary(&mut buf, &[1, 2, 3]);
        assert_eq!(&buf[..2], &[0x81, 5], "FIN, text, unmasked, length 5");
        let mut client = Codec::new().client_mode();
        assert!(matches!(client.decode(&mut buf), Ok(Some(Frame::Text(t))) if &t[..] == b"hello"));
        assert!(
            matches!(client.decode(&mut buf), Ok(Some(Frame::Binary(b))) if b[..] == [1, 2, 3])
        );
        assert!(buf.is_empty());
    }
}
