//! One twilsock connection: a reader loop that takes the client's frames one at a time (`init`,
//! tunnelled `message`s, token `update`, `ping`, `close`; `reply`s to what the server sent are
//! ignored) and a writer that turns the hub's events into Sync `notification` frames, with the
//! realtime writer's ordering and gap repair ([`crate::realtime::session::write_loop`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_http::ws::{CloseReason, Frame as WsFrame, ProtocolError};
use bytes::BytesMut;
use bytestring::ByteString;
use confab_app::AppError;
use confab_protocol::realtime::CloseCode;
use confab_protocol::twilsock::Frame;
use serde_json::{json, Value};

use super::events::{translate, Notification, ViewContext};
use super::subscriptions::{Subscriptions, TooManyHeld, UserClock, REPLAY_MARKER};
use super::{HttpAnswer, Links, Tunnelled, TwilsockSession, ViewState};
use crate::realtime::connection::{Connection, Flow};
use crate::realtime::frames::TokenBucket;
use crate::realtime::hub::{Kick, Outbox};
use crate::realtime::session::{close_frame_wait, flush_buffer, write_loop, Sink, WriterEnv};
use crate::realtime::socket::{self, encode_binary, WsOut, WsReader};
use crate::AppState;

/// How many of its newest user events a session keeps for subscriptions that start later.
const KEPT_USER_EVENTS: usize = 1000;

/// The twilsock status of a reply or close.
fn status(code: u16, text: &str) -> Value {
    json!({"code": code, "status": text})
}

/// A `reply` frame to the client's frame `id`.
fn reply(id: &str, status: Value) -> Frame {
    let mut frame = Frame::new("reply", id);
    frame.header.insert("status".into(), status);
    frame
}

/// The reply to a tunnelled request: a twilsock success carrying the HTTP answer.
fn http_reply(id: &str, answer: &HttpAnswer) -> Frame {
    let mut frame = reply(id, status(200, "OK"));
    let text = match answer.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        s if s >= 500 => "Server Error",
        _ => "",
    };
    frame
        .header
        .insert("http_status".into(), status(answer.status, text));
    frame.header.insert(
        "http_headers".into(),
        json!({"Content-Type": "application/json"}),
    );
    frame
        .header
        .insert("payload_type".into(), Value::from("application/json"));
    frame.payload = answer.body.to_string().into_bytes();
    frame
}

/// Numbers the frames the server starts (notifications, client updates, close).
#[derive(Debug, Default)]
struct FrameIds(AtomicU64);

impl FrameIds {
    fn next(&self) -> String {
        format!("TM{}", self.0.fetch_add(1, Ordering::Relaxed))
    }
}

fn notification_frame(id: String, n: &Notification) -> Frame {
    let mut frame = Frame::new("notification", &id);
    frame
        .header
        .insert("message_type".into(), Value::from(n.message_type));
    frame
        .header
        .insert("payload_type".into(), Value::from("application/json"));
    frame.payload = n.payload.to_string().into_bytes();
    frame
}

/// The writer's end: events become Sync notifications.
struct SyncSink {
    ws: WsOut,
    /// Encoded frames not yet written.
    buf: BytesMut,
    view: Arc<Mutex<ViewState>>,
    ids: Arc<FrameIds>,
    /// Closes the connection as too slow (the reader acts on it).
    kick: Arc<Kick>,
}

impl Sink for SyncSink {
    fn pending(&self) -> usize {
        self.buf.len()
    }

    async fn flush(&mut self) -> bool {
        flush_buffer(&self.ws, &mut self.buf).await
    }

    fn push(&mut self, frame: ByteString) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(&frame) else {
            return true;
        };
        let frames: Vec<Frame> = match value["type"].as_str() {
            Some("event") => {
                let mut state = self.view.lock().unwrap_or_else(|p| p.into_inner());
                let ViewState {
                    context,
                    clock,
                    subscriptions,
                } = &mut *state;
                let mut notifications = translate(&value, context, clock);
                if let (Some("messageAdded"), Some(channel), Some(seq)) = (
                    value["event"].as_str(),
                    value["channel"].as_str(),
                    value["seq"].as_u64(),
                ) {
                    notifications.extend(subscriptions.last_message(channel, seq, &value["data"]));
                }
                let mut frames = Vec::new();
                for n in notifications {
                    match subscriptions.admit(n) {
                        Ok(Some(n)) => frames.push(notification_frame(self.ids.next(), &n)),
                        Ok(None) => {}
                        Err(TooManyHeld) => {
                            self.kick.kick(CloseCode::TooSlow);
                            return false;
                        }
                    }
                }
                frames
            }
            Some(REPLAY_MARKER) => {
                let object = value["object"].as_str().unwrap_or_default();
                let mut state = self.view.lock().unwrap_or_else(|p| p.into_inner());
                let ViewState {
                    clock,
                    subscriptions,
                    ..
                } = &mut *state;
                subscriptions
                    .flush(object, clock)
                    .iter()
                    .map(|n| notification_frame(self.ids.next(), n))
                    .collect()
            }
            Some("tokenAboutToExpire") => {
                let mut frame = Frame::new("client_update", &self.ids.next());
                frame.header.insert(
                    "client_update_type".into(),
                    Value::from("token_about_to_expire"),
                );
                vec![frame]
            }
            // Replies, `tokenExpired` and `reconnect` are the reader's business.
            _ => Vec::new(),
        };
        for frame in frames {
            encode_binary(&mut self.buf, &frame.encode());
        }
        true
    }
}

/// Runs a connection until it closes.
pub(crate) async fn run(state: Arc<AppState>, mut reader: WsReader, out: WsOut, http_base: String) {
    let cfg = state.realtime.clone();
    if let Some(m) = &state.metrics {
        m.connections.inc();
    }
    let (outbox, rx) = Outbox::bounded(cfg.outbox_frames, cfg.outbox_bytes);
    let (kick, budget) = (outbox.kick.clone(), outbox.budget.clone());
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let view = Arc::new(Mutex::new(ViewState {
        context: ViewContext {
            identity: String::new(),
            reachability: false,
            typing_timeout_secs: 5,
        },
        clock: UserClock::new(now_micros, KEPT_USER_EVENTS),
        subscriptions: Subscriptions::default(),
    }));
    let ids = Arc::new(FrameIds::default());
    let sink = SyncSink {
        ws: out.clone(),
        buf: BytesMut::new(),
        view: view.clone(),
        ids: ids.clone(),
        kick: kick.clone(),
    };
    let writer = actix_web::rt::spawn(write_loop(
        WriterEnv::of(&state),
        sink,
        rx,
        kick.clone(),
        budget,
    ));
    let write_timeout = Duration::from_millis(cfg.write_timeout_ms.max(1));
    let mut session = TwilsockSession {
        conn: Connection::new(state.clone(), outbox),
        links: Links {
            http: http_base,
            service: None,
        },
        view,
        after_reply: Vec::new(),
        replays_after_reply: Vec::new(),
        bucket: TokenBucket::new(cfg.ops_per_sec, cfg.ops_burst),
        refusals_in_row: 0,
        reachability: false,
        typing_timeout_secs: 5,
    };

    let init_deadline = tokio::time::sleep(Duration::from_secs(cfg.init_timeout_secs));
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(Duration::from_secs(cfg.ping_interval_secs.max(1)));
    let client_timeout = Duration::from_secs(cfg.client_timeout_secs.max(1));
    let mut last_heard = Instant::now();

    // The twilsock status to close with (the client acts on it), and the WebSocket close code.
    let close: Option<(u16, &'static str, CloseCode)> = loop {
        let token_deadline = session.conn.next_token_deadline();
        tokio::select! {
            frame = reader.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(WsFrame::Binary(bytes))) => {
                        match Box::pin(session.handle(&bytes, &out)).await {
                            Flow::Continue => {}
                            Flow::Close(CloseCode::Normal, _) => break None,
                            Flow::Close(code, reason) => break Some((twilsock_close(code), reason, code)),
                        }
                    }
                    Some(Ok(WsFrame::Ping(bytes))) => {
                        let pong = tokio::time::timeout(write_timeout, out.pong(&bytes)).await;
                        if !matches!(pong, Ok(Ok(()))) {
                            break None;
                        }
                    }
                    Some(Ok(WsFrame::Pong(_))) => {}
                    Some(Ok(WsFrame::Text(_))) | Some(Ok(WsFrame::Continuation(_))) => {
                        break Some((406, "binary twilsock frames only", CloseCode::Unsupported));
                    }
                    Some(Ok(WsFrame::Close(_))) | None => break None,
                    Some(Err(ProtocolError::Overflow)) => break Some((406, "frame too big", CloseCode::TooBig)),
                    Some(Err(ProtocolError::Io(_))) => break None,
                    Some(Err(_)) => break Some((406, "protocol error", CloseCode::ProtocolError)),
                }
            }
            _ = &mut init_deadline, if !session.conn.is_initialized() => {
                break Some((308, "no init in time", CloseCode::InitTimeout));
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > client_timeout {
                    break None;
                }
                let ping = tokio::time::timeout(write_timeout, out.ping(b"")).await;
                if !matches!(ping, Ok(Ok(()))) {
                    break None;
                }
            }
            code = kick.kicked() => break Some(match code {
                CloseCode::Draining => (308, "draining: reconnect elsewhere", code),
                _ => (308, "too slow: reconnect", CloseCode::TooSlow),
            }),
            _ = sleep_until(token_deadline), if token_deadline.is_some() => {
                if let Flow::Close(code, reason) = session.conn.token_timer() {
                    break Some((twilsock_close(code), reason, code));
                }
            }
        }
    };
    session.conn.shutdown();
    if let Some(m) = &state.metrics {
        m.connections.dec();
        if close.is_some_and(|(_, _, code)| code == CloseCode::TooSlow) {
            m.slow_consumer_closes.inc();
        }
    }
    drop(session);
    let mut writer = writer;
    if close.is_some_and(|(_, _, code)| code == CloseCode::TooSlow)
        || tokio::time::timeout(write_timeout, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
        let _ = (&mut writer).await;
    }
    match close {
        Some((twilsock, reason, code)) => {
            // The twilsock close first: it is what the client acts on (410: the token expired,
            // do not reconnect; 308: reconnect after a pause).
            let mut frame = Frame::new("close", &ids.next());
            frame
                .header
                .insert("status".into(), status(twilsock, reason));
            let _ = tokio::time::timeout(write_timeout, out.binary(&frame.encode())).await;
            let reason = CloseReason {
                code: actix_http::ws::CloseCode::Other(code.code()),
                description: Some(reason.to_owned()),
            };
            let wait = close_frame_wait(&state, code);
            socket::close(reader, out, Some(reason), wait).await;
        }
        None => socket::close(reader, out, None, write_timeout).await,
    }
}

/// The twilsock close status for a realtime close code.
fn twilsock_close(code: CloseCode) -> u16 {
    match code {
        CloseCode::TokenExpired => 410,
        CloseCode::BadToken => 401,
        CloseCode::Unsupported | CloseCode::TooBig | CloseCode::ProtocolError => 406,
        _ => 308,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => futures::future::pending().await,
    }
}

impl TwilsockSession {
    /// Handles one frame of the client.
    async fn handle(&mut self, bytes: &[u8], out: &WsOut) -> Flow {
        let max = self.conn.state.realtime.max_frame_bytes;
        let frame = match Frame::decode(bytes, max) {
            Ok(frame) => frame,
            Err(_) => return Flow::Close(CloseCode::Unsupported, "not a twilsock v3 frame"),
        };
        let id = frame.id().unwrap_or_default().to_owned();
        let method = frame.method().to_owned();
        // Acknowledgements of what the server sent: the client sends one for every frame it
        // receives, so they cannot be rated like operations (decoding one is bounded by the
        // frame size). A `close` is always honoured.
        if method == "reply" {
            return Flow::Continue;
        }
        if method != "close" && !self.bucket.take() {
            self.refusals_in_row += 1;
            if let Some(m) = &self.conn.state.metrics {
                m.rate_limited.inc();
            }
            if self.refusals_in_row >= self.conn.state.realtime.close_after_refusals {
                return Flow::Close(CloseCode::RateLimited, "rate limited");
            }
            // A tunnelled request gets the HTTP answer; `init`, `update` and `ping` a twilsock
            // refusal (an `update` answered with a success would look renewed).
            let refusal = if method == "message" {
                http_reply(&id, &HttpAnswer::error(&AppError::too_many_requests()))
            } else {
                reply(&id, status(429, "Too Many Requests"))
            };
            return self.write(out, refusal).await;
        }
        self.refusals_in_row = 0;
        match method.as_str() {
            "init" => self.init(&id, &frame, out).await,
            "update" => {
                let token = frame
                    .header
                    .get("token")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let answer = match self.conn.renew_token(token) {
                    Ok(()) => reply(&id, status(200, "OK")),
                    Err(e) => refusal(&id, &e),
                };
                self.write(out, answer).await
            }
            "message" => {
                if !self.conn.is_initialized() {
                    return self
                        .write(
                            out,
                            reply(&id, status(401, "Unauthorized: send init first")),
                        )
                        .await;
                }
                let answer = match Tunnelled::from_frame(&frame) {
                    Ok(request) => self.route(&request).await,
                    Err(e) => HttpAnswer::error(&e),
                };
                let flow = self.write(out, http_reply(&id, &answer)).await;
                for n in std::mem::take(&mut self.after_reply) {
                    let frame = notification_frame(format!("TR{}", rand::random::<u32>()), &n);
                    if self.write(out, frame).await != Flow::Continue {
                        return Flow::Close(CloseCode::TooSlow, "cannot write");
                    }
                }
                for object in std::mem::take(&mut self.replays_after_reply) {
                    let marker = json!({"type": REPLAY_MARKER, "object": object});
                    if !self.conn.push(marker.to_string()) {
                        return Flow::Close(CloseCode::TooSlow, "outbox full");
                    }
                }
                flow
            }
            "ping" => self.write(out, reply(&id, status(200, "OK"))).await,
            "close" => Flow::Close(CloseCode::Normal, "closed by the client"),
            // `telemetry.v1` (never asked for) and notification contexts: nothing to do.
            _ => Flow::Continue,
        }
    }

    async fn write(&self, out: &WsOut, frame: Frame) -> Flow {
        let timeout = Duration::from_millis(self.conn.state.realtime.write_timeout_ms.max(1));
        match tokio::time::timeout(timeout, out.binary(&frame.encode())).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::Close(CloseCode::TooSlow, "too slow: reconnect"),
        }
    }

    /// A tunnelled request, by path: the chat API or Sync.
    async fn route(&mut self, request: &Tunnelled) -> HttpAnswer {
        let segments = &request.segments;
        if let Some(at) = segments
            .windows(2)
            .position(|w| w[0] == "Client" && w[1] == "v1")
        {
            let rest = segments[at + 2..].to_vec();
            return self.aim(request, &rest).await;
        }
        if let Some(at) = segments.iter().position(|s| s == "v3" || s == "v4") {
            let rest = segments[at + 1..].to_vec();
            return self.cds(request, &rest).await;
        }
        HttpAnswer::error(&AppError::not_found(&request.path))
    }

    async fn init(&mut self, id: &str, frame: &Frame, out: &WsOut) -> Flow {
        if self.conn.is_initialized() {
            return self
                .write(out, reply(id, status(400, "Already initialized")))
                .await;
        }
        let token = frame
            .header
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let started = match self.conn.authenticate(token, Default::default()).await {
            Ok(started) => started,
            Err((e, flow)) => {
                let _ = self.write(out, refusal(id, &e)).await;
                // The client stops on 401/403 by itself; a server error closes so it retries.
                return match flow {
                    Flow::Close(CloseCode::BadToken | CloseCode::TokenExpired, _) => Flow::Continue,
                    other => other,
                };
            }
        };
        let auth = match self.conn.auth() {
            Ok(auth) => auth,
            Err(e) => return self.write(out, refusal(id, &e)).await,
        };
        let service = auth.service;
        let identity = auth.identity.clone();
        let settings = self.conn.state.app.store().get_service(service).await;
        if let Ok(Some(service)) = settings {
            self.reachability = service.reachability_enabled;
            self.typing_timeout_secs = u64::from(service.typing_indicator_timeout);
        }
        self.links.service = Some(service);
        {
            let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            view.context = ViewContext {
                identity,
                reachability: self.reachability,
                typing_timeout_secs: self.typing_timeout_secs,
            };
        }
        let mut answer = reply(id, status(200, "OK"));
        answer.header.insert(
            "continuation_token".into(),
            Value::from(format!("CT{}", rand::random::<u64>())),
        );
        if self.write(out, answer).await != Flow::Continue {
            return Flow::Close(CloseCode::TooSlow, "cannot write");
        }
        self.conn.follow(started).await
    }
}

/// A twilsock-level refusal (`init`, `update`): the client acts on 401 and 403, and on
/// `errorCode` 20104 (the token expired).
fn refusal(id: &str, e: &AppError) -> Frame {
    let code = if e.is_token_rejection() || e.code == 20104 {
        401
    } else {
        e.status
    };
    let mut frame = reply(id, status(code, &e.message));
    if let Some(Value::Object(s)) = frame.header.get_mut("status") {
        s.insert("errorCode".into(), Value::from(e.code));
        s.insert("description".into(), Value::from(e.message.clone()));
    }
    frame
}
