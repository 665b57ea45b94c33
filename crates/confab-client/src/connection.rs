//! The connection task: connect, `init` with the resume points, run calls and deliver events,
//! and reconnect with backoff and jitter when the socket drops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_protocol::realtime::{CloseCode as ProtocolClose, Request, ServerFrame};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::{lock, Call, ClientError, ConnectionState, Event, Shared};

/// `http://h:p` or `ws://h:p` → `ws://h:p/v2/realtime`.
pub(crate) fn realtime_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    let url = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        url.to_owned()
    };
    if url.ends_with("/v2/realtime") {
        url
    } else {
        format!("{url}/v2/realtime")
    }
}

/// Resolves when the flag has the wanted value (the borrow guard is not held across awaits).
async fn until(flag: &mut watch::Receiver<bool>, want: bool) {
    if flag.wait_for(|v| *v == want).await.is_err() {
        // The sender is gone with the client: never resolve for "online", resolve for "closed".
        if !want {
            futures::future::pending::<()>().await;
        }
    }
}

/// Records where each joined channel stands, from an `init` reply: a channel that stays quiet
/// still resumes from here after the next reconnect. A channel whose resume was refused
/// starts over from the server's position.
fn record_positions(shared: &Shared, init: &Value) {
    let mut last = lock(&shared.last_seq);
    for channel in init["channels"].as_array().into_iter().flatten() {
        if channel["status"] != "joined" {
            continue;
        }
        let (Some(sid), Some(seq)) = (channel["sid"].as_str(), channel["lastSeq"].as_u64()) else {
            continue;
        };
        let refused = init["resumed"][sid] == Value::Bool(false);
        if refused {
            last.insert(sid.to_owned(), seq);
        } else {
            last.entry(sid.to_owned()).or_insert(seq);
        }
    }
}

/// How a connection ended.
enum End {
    /// Reconnect after a pause.
    Retry,
    /// The token was refused: stop until it is replaced.
    Denied(String),
    /// The client was shut down.
    Shutdown,
}

pub(crate) async fn run(
    urls: Vec<String>,
    shared: Arc<Shared>,
    mut calls: mpsc::Receiver<Call>,
    events: mpsc::Sender<Event>,
    state: watch::Sender<ConnectionState>,
    first: oneshot::Sender<Result<Value, ClientError>>,
) {
    let mut first = Some(first);
    let mut attempt: u32 = 0;
    // Each failed or ended connection moves on to the next node of the list.
    let mut next_url: usize = 0;
    let mut online = shared.online.subscribe();
    let mut closed = shared.closed.subscribe();
    loop {
        if *closed.borrow() {
            break;
        }
        if !*online.borrow() {
            let _ = state.send(ConnectionState::Disconnected);
            tokio::select! {
                _ = until(&mut online, true) => {}
                _ = until(&mut closed, true) => break,
            }
        }
        let _ = state.send(ConnectionState::Connecting);
        let url = &urls[next_url % urls.len().max(1)];
        let end = connect_once(
            url,
            &shared,
            &mut calls,
            &events,
            &state,
            &mut first,
            &mut online,
            &mut closed,
        )
        .await;
        match end {
            End::Shutdown => break,
            End::Denied(why) => {
                let _ = state.send(ConnectionState::Denied);
                if let Some(first) = first.take() {
                    let _ = first.send(Err(ClientError::Closed(why)));
                    return;
                }
                let _ = events
                    .send(Event {
                        name: "connectionStateChanged".into(),
                        channel: None,
                        seq: None,
                        data: json!({"state": "denied", "reason": why}),
                    })
                    .await;
                // A new token (update_token) is needed; retry slowly meanwhile.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            End::Retry => {
                next_url = next_url.wrapping_add(1);
                let _ = state.send(ConnectionState::Disconnected);
                if first.is_some() && attempt >= 5 {
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(ClientError::Closed("cannot connect".into())));
                    }
                    return;
                }
                attempt = attempt.saturating_add(1);
                let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
                let jitter = rand::random::<u64>() % (base / 2 + 1);
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
                continue;
            }
        }
        attempt = 0;
    }
    let _ = state.send(ConnectionState::Disconnected);
}

#[allow(clippy::too_many_arguments)]
async fn connect_once(
    url: &str,
    shared: &Arc<Shared>,
    calls: &mut mpsc::Receiver<Call>,
    events: &mpsc::Sender<Event>,
    state: &watch::Sender<ConnectionState>,
    first: &mut Option<oneshot::Sender<Result<Value, ClientError>>>,
    online: &mut watch::Receiver<bool>,
    closed: &mut watch::Receiver<bool>,
) -> End {
    let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await else {
        return End::Retry;
    };
    let (mut sink, mut stream) = ws.split();
    let token = lock(&shared.token).clone();
    let resume = lock(&shared.last_seq).clone();
    let init = Request::Init { token, resume }.frame(0);
    if sink.send(Message::text(init)).await.is_err() {
        return End::Retry;
    }
    // The init reply comes first for what this client sent; events may come around it.
    let mut pending: HashMap<u64, oneshot::Sender<Result<Value, ClientError>>> = HashMap::new();
    let mut initialized = false;
    let mut next_id: u64 = 1;
    let end = loop {
        tokio::select! {
            call = calls.recv(), if initialized => {
                let Some(call) = call else { break End::Shutdown };
                let id = next_id;
                next_id += 1;
                if sink.send(Message::text(call.body.frame(id))).await.is_err() {
                    let _ = call.reply.send(Err(ClientError::Disconnected));
                    break End::Retry;
                }
                pending.insert(id, call.reply);
            }
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map(|f| f.code);
                        match code {
                            Some(CloseCode::Library(code)) if code == ProtocolClose::BadToken.code() => break End::Denied("token rejected".into()),
                            Some(CloseCode::Library(code)) if code == ProtocolClose::TokenExpired.code() => break End::Denied("token expired".into()),
                            _ => break End::Retry,
                        }
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break End::Retry,
                };
                let Ok(frame) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
                    continue;
                };
                match frame {
                    ServerFrame::Reply { id: 0, ok, result, error } => {
                        if !ok {
                            let why = error.map(|e| e.message).unwrap_or_default();
                            break End::Denied(why);
                        }
                        initialized = true;
                        if let Some(result) = &result {
                            record_positions(shared, result);
                        }
                        let _ = state.send(ConnectionState::Connected);
                        match first.take() {
                            Some(first) => {
                                let _ = first.send(Ok(result.unwrap_or(Value::Null)));
                            }
                            None => {
                                let _ = events.send(Event {
                                    name: "connectionStateChanged".into(),
                                    channel: None,
                                    seq: None,
                                    data: json!({"state": "connected", "init": result}),
                                }).await;
                            }
                        }
                    }
                    ServerFrame::Reply { id, ok, result, error } => {
                        if let Some(reply) = pending.remove(&id) {
                            let outcome = if ok {
                                Ok(result.unwrap_or(Value::Null))
                            } else {
                                Err(ClientError::Server(error.unwrap_or(confab_protocol::realtime::ErrorBody {
                                    code: 0,
                                    message: "error without body".into(),
                                    status: 500,
                                })))
                            };
                            let _ = reply.send(outcome);
                        }
                    }
                    ServerFrame::Event { event, channel, seq, data } => {
                        if let (Some(channel), Some(seq)) = (&channel, seq) {
                            let mut last = lock(&shared.last_seq);
                            let entry = last.entry(channel.clone()).or_insert(0);
                            if seq <= *entry {
                                // Already delivered (the server never sends one twice; this
                                // guards the application all the same).
                                continue;
                            }
                            *entry = seq;
                        }
                        if event == "channelLeft" || event == "channelRemoved" {
                            if let Some(channel) = &channel {
                                lock(&shared.last_seq).remove(channel);
                            }
                        }
                        // An application that dropped its `Events` does not want them.
                        let _ = events.send(Event { name: event, channel, seq, data }).await;
                    }
                    ServerFrame::TokenAboutToExpire { ttl } => {
                        let _ = events.send(Event {
                            name: "tokenAboutToExpire".into(),
                            channel: None,
                            seq: None,
                            data: json!({"ttl": ttl}),
                        }).await;
                    }
                    ServerFrame::TokenExpired => {
                        let _ = events.send(Event {
                            name: "tokenExpired".into(),
                            channel: None,
                            seq: None,
                            data: Value::Null,
                        }).await;
                    }
                    ServerFrame::Reconnect { .. } => break End::Retry,
                }
            }
            _ = until(online, false) => break End::Retry,
            _ = until(closed, true) => break End::Shutdown,
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(ClientError::Disconnected));
    }
    if !matches!(end, End::Shutdown) && initialized {
        let _ = events
            .send(Event {
                name: "connectionStateChanged".into(),
                channel: None,
                seq: None,
                data: json!({"state": "disconnected"}),
            })
            .await;
    }
    let _ = sink.close().await;
    end
}
