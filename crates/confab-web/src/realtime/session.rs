//! One WebSocket connection: a reader loop that runs operations one at a time, a writer task
//! that drains the session's bounded outbox, keepalive, rate limits, token expiry.
//!
//! The writer keeps, per channel the session follows, the next `seq` it owes the client. An
//! event below it is a duplicate and dropped; an event above it means events went missing (a
//! bus lag, a subscription race, a resume): the writer fetches the gap from the store and sends
//! it first. That one rule gives ordered, gap-free, duplicate-free channel events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseReason, Message, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use confab_domain::ChannelSid;
use confab_protocol::realtime::{self as rt, CloseCode};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::connection::{Connection, Flow};
use super::hub::{ByteBudget, Kick, Outbound, Outbox};
use crate::AppState;

/// Runs a connection until it closes.
pub(super) async fn run(state: Arc<AppState>, ws: Session, mut stream: MessageStream) {
    let cfg = state.realtime.clone();
    if let Some(m) = &state.metrics {
        m.connections.inc();
    }
    let (outbox, rx) = Outbox::bounded(cfg.outbox_frames, cfg.outbox_bytes);
    let (kick, budget) = (outbox.kick.clone(), outbox.budget.clone());
    let writer = actix_web::rt::spawn(write_loop(
        state.clone(),
        ws.clone(),
        rx,
        kick.clone(),
        budget,
    ));
    // A client that does not read blocks every write to it: pings, pongs and the close wait
    // this long at most, so that neither the client timeout nor a slow-consumer close waits on
    // a stuck peer.
    let write_timeout = Duration::from_millis(cfg.write_timeout_ms.max(1));
    let mut conn = Connection::new(state.clone(), outbox);

    let init_deadline = tokio::time::sleep(cfg.init_timeout());
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval(Duration::from_secs(cfg.ping_interval_secs.max(1)));
    let client_timeout = Duration::from_secs(cfg.client_timeout_secs.max(1));
    let mut last_heard = Instant::now();

    let close: Option<(CloseCode, &'static str)> = loop {
        let token_deadline = conn.next_token_deadline();
        tokio::select! {
            frame = stream.next() => {
                last_heard = Instant::now();
                match frame {
                    // Boxed: an operation's future is large, and inline it would be part of
                    // every idle session's task (measured: docs/benchmarks.md, `idle`).
                    Some(Ok(Message::Text(text))) => match Box::pin(conn.handle_text(&text)).await {
                        Flow::Continue => {}
                        Flow::Close(code, reason) => break Some((code, reason)),
                    },
                    Some(Ok(Message::Ping(bytes))) => {
                        let pong = tokio::time::timeout(write_timeout, ws.clone().pong(&bytes)).await;
                        if !matches!(pong, Ok(Ok(()))) {
                            break None;
                        }
                    }
                    Some(Ok(Message::Pong(_))) | Some(Ok(Message::Nop)) => {}
                    Some(Ok(Message::Binary(_))) | Some(Ok(Message::Continuation(_))) => {
                        break Some((CloseCode::Unsupported, "text frames only"));
                    }
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(ProtocolError::Overflow)) => break Some((CloseCode::TooBig, "frame too big")),
                    Some(Err(_)) => break Some((CloseCode::ProtocolError, "protocol error")),
                }
            }
            _ = &mut init_deadline, if !conn.is_initialized() => break Some((CloseCode::InitTimeout, "no init in time")),
            _ = ping.tick() => {
                if last_heard.elapsed() > client_timeout {
                    break None;
                }
                let ping = tokio::time::timeout(write_timeout, ws.clone().ping(b"")).await;
                if !matches!(ping, Ok(Ok(()))) {
                    break None;
                }
            }
            code = kick.kicked() => break Some(match code {
                CloseCode::Draining => (CloseCode::Draining, "draining: reconnect elsewhere"),
                _ => (CloseCode::TooSlow, "too slow: reconnect and resume"),
            }),
            _ = sleep_until(token_deadline), if token_deadline.is_some() => {
                if let Flow::Close(code, reason) = conn.token_timer() {
                    break Some((code, reason));
                }
            }
        }
    };
    conn.shutdown();
    if let Some(m) = &state.metrics {
        m.connections.dec();
        if close.is_some_and(|(code, _)| code == CloseCode::TooSlow) {
            m.slow_consumer_closes.inc();
        }
    }
    // Let the writer flush what is queued (a reply, `tokenExpired`) before the close frame.
    drop(conn);
    if let Some((code, reason)) = close {
        // A slow consumer's queue is not flushed: that is what it could not take. Otherwise
        // the writer gets a short while to flush (a reply, `tokenExpired`), then goes too.
        let mut writer = writer;
        if code == CloseCode::TooSlow
            || tokio::time::timeout(write_timeout, &mut writer)
                .await
                .is_err()
        {
            writer.abort();
        }
        let reason = CloseReason {
            code: actix_ws::CloseCode::Other(code.code()),
            description: Some(reason.to_owned()),
        };
        // The queue is gone, so waiting holds little: a slow client that starts reading again
        // within the client timeout still learns why it was closed (and resumes).
        let _ = tokio::time::timeout(client_timeout, ws.close(Some(reason))).await;
    } else {
        writer.abort();
        let _ = tokio::time::timeout(write_timeout, ws.close(None)).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => futures::future::pending().await,
    }
}

/// Bytes of the budget held by the item being written.
struct Held<'a>(&'a ByteBudget, usize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Where a session's writer sends frames: the WebSocket as is (realtime), or a translation of
/// them (twilsock).
pub(super) trait Sink {
    /// Sends one frame rendered by the hub, the connection or a repair; `false` once the client
    /// is gone.
    async fn send(&mut self, frame: ByteString) -> bool;
}

impl Sink for Session {
    async fn send(&mut self, frame: ByteString) -> bool {
        self.text(frame).await.is_ok()
    }
}

/// Drains the outbox to the socket, keeping each followed channel gap-free and in order.
pub(super) async fn write_loop<S: Sink>(
    state: Arc<AppState>,
    mut ws: S,
    mut rx: mpsc::Receiver<Outbound>,
    kick: Arc<Kick>,
    budget: Arc<ByteBudget>,
) {
    let mut next: HashMap<ChannelSid, u64> = HashMap::new();
    while let Some(item) = rx.recv().await {
        // Counted against the budget until written (or skipped): released at the end of the
        // iteration, however it ends.
        let _held = Held(&budget, item.bytes());
        let sent = match item {
            Outbound::Frame(frame) => ws.send(frame).await,
            Outbound::Subscribed { channel, after } => {
                // Never backwards: what was delivered stays delivered.
                let n = next.entry(channel).or_insert(after + 1);
                *n = (*n).max(after + 1);
                true
            }
            Outbound::Unsubscribed { channel } => {
                next.remove(&channel);
                true
            }
            Outbound::Seq {
                channel,
                seq,
                at_ms,
                frame,
            } => {
                let Some(expected) = next.get(&channel).copied() else {
                    // Not (yet) following: its subscription marker brings what is owed.
                    continue;
                };
                if seq < expected {
                    continue;
                }
                let mut ok = true;
                if seq > expected {
                    if let Some(m) = &state.metrics {
                        m.gaps_repaired.inc_by(seq - expected);
                    }
                    // Boxed, as below: kept out of every idle writer's task.
                    ok = Box::pin(repair(
                        &state,
                        &mut ws,
                        &mut next,
                        channel,
                        expected,
                        seq - 1,
                        &kick,
                    ))
                    .await;
                }
                if ok {
                    if let Some(frame) = frame {
                        ok = ws.send(frame).await;
                        if let Some(m) = &state.metrics {
                            let now = confab_cluster::now().millis();
                            m.delivery_latency_seconds
                                .observe((now - at_ms).max(0) as f64 / 1000.0);
                        }
                    }
                    next.insert(channel, seq + 1);
                }
                ok
            }
            Outbound::Catchup { channel, upto } => match next.get(&channel).copied() {
                Some(expected) if upto >= expected => {
                    Box::pin(repair(
                        &state, &mut ws, &mut next, channel, expected, upto, &kick,
                    ))
                    .await
                }
                _ => true,
            },
        };
        if !sent {
            break;
        }
    }
}

/// Sends the channel's stored events `from..=upto` that are addressed to members. When the
/// store cannot answer, the session is closed (4009) so that the client resumes rather than
/// skip the gap.
async fn repair<S: Sink>(
    state: &AppState,
    ws: &mut S,
    next: &mut HashMap<ChannelSid, u64>,
    channel: ChannelSid,
    from: u64,
    upto: u64,
    kick: &Kick,
) -> bool {
    const BATCH: usize = 500;
    let mut cursor = from.saturating_sub(1);
    loop {
        let events = match state.store.events_after(channel, cursor, BATCH).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "cannot repair a gap from the store");
                kick.kick(CloseCode::TooSlow);
                return false;
            }
        };
        let fetched = events.len();
        for event in events {
            if event.seq > upto {
                return true;
            }
            if let Some(frame) = rt::member_frame(&event) {
                if !ws.send(ByteString::from(frame)).await {
                    return false;
                }
            }
            cursor = event.seq;
            next.insert(channel, event.seq + 1);
        }
        if fetched < BATCH {
            return true;
        }
    }
}
