//! One WebSocket connection: a reader loop that runs operations one at a time, a writer task
//! that drains the session's bounded outbox, keepalive, rate limits, token expiry.
//!
//! The writer keeps, per channel the session follows, the next `seq` it owes the client. An
//! event below it is a duplicate and dropped; an event above it means events went missing (a
//! bus lag, a subscription race, a resume): the writer fetches the gap from the store and sends
//! it first. That one rule gives ordered, gap-free, duplicate-free channel events.
//!
//! The writer coalesces: woken for one item, it takes every item already queued, encodes them
//! all into one buffer and writes it with one system call. What it holds stays counted against
//! the session's byte budget until written, so a client that stops reading makes the node hold
//! at most that budget for it (then it is closed with 4009).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::ws::{CloseReason, Frame, ProtocolError};
use bytes::BytesMut;
use bytestring::ByteString;
use confab_domain::ChannelSid;
use confab_protocol::realtime::{self as rt, CloseCode};
use confab_store::Store;

use super::connection::{kicked_close, Connection, Flow};
use super::hub::{ByteBudget, Kick, Outbound, Outbox, OutboxReader};
use super::socket::{self, WsOut, WsReader, RETAINED_WRITE_BUFFER};
use crate::metrics::WebMetrics;
use crate::AppState;

/// Bytes a writer gathers before it writes, even with more items queued: one write of this
/// size amortizes the system call, and a burst does not grow one buffer without end.
pub(super) const COALESCE_BYTES: usize = 64 * 1024;

/// A text frame's payload as a string; invalid UTF-8 is a protocol error (RFC 6455 §8.1).
fn text_payload(bytes: bytes::Bytes) -> Option<ByteString> {
    ByteString::try_from(bytes).ok()
}

/// Runs a connection until it closes.
pub(super) async fn run(state: Arc<AppState>, mut reader: WsReader, out: WsOut) {
    let cfg = state.realtime.clone();
    if let Some(m) = &state.metrics {
        m.connections.inc();
    }
    let (outbox, rx) = Outbox::bounded(cfg.outbox_frames, cfg.outbox_bytes);
    let (kick, budget) = (outbox.kick.clone(), outbox.budget.clone());
    let writer = actix_web::rt::spawn(write_loop(
        WriterEnv::of(&state),
        WsSink::new(out.clone()),
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
            frame = reader.next() => {
                last_heard = Instant::now();
                match frame {
                    // Boxed: an operation's future is large, and inline it would be part of
                    // every idle session's task (measured: docs/benchmarks.md, `idle`).
                    Some(Ok(Frame::Text(bytes))) => {
                        let Some(text) = text_payload(bytes) else {
                            break Some((CloseCode::ProtocolError, "text frames are UTF-8"));
                        };
                        match Box::pin(conn.handle_text(&text)).await {
                            Flow::Continue => {}
                            Flow::Close(code, reason) => break Some((code, reason)),
                        }
                    }
                    Some(Ok(Frame::Ping(bytes))) => {
                        let pong = tokio::time::timeout(write_timeout, out.pong(&bytes)).await;
                        if !matches!(pong, Ok(Ok(()))) {
                            break None;
                        }
                    }
                    Some(Ok(Frame::Pong(_))) => {}
                    Some(Ok(Frame::Binary(_))) | Some(Ok(Frame::Continuation(_))) => {
                        break Some((CloseCode::Unsupported, "text frames only"));
                    }
                    Some(Ok(Frame::Close(_))) | None => break None,
                    Some(Err(ProtocolError::Overflow)) => break Some((CloseCode::TooBig, "frame too big")),
                    Some(Err(ProtocolError::Io(_))) => break None,
                    Some(Err(_)) => break Some((CloseCode::ProtocolError, "protocol error")),
                }
            }
            _ = &mut init_deadline, if !conn.is_initialized() => break Some((CloseCode::InitTimeout, "no init in time")),
            _ = ping.tick() => {
                if last_heard.elapsed() > client_timeout {
                    break None;
                }
                let ping = tokio::time::timeout(write_timeout, out.ping(b"")).await;
                if !matches!(ping, Ok(Ok(()))) {
                    break None;
                }
            }
            code = kick.kicked() => break Some(kicked_close(code)),
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
    let mut writer = writer;
    match close {
        Some((code, reason)) => {
            // A slow consumer's queue is not flushed: that is what it could not take. Otherwise
            // the writer gets a short while to flush (a reply, `tokenExpired`), then goes too.
            if code == CloseCode::TooSlow
                || tokio::time::timeout(write_timeout, &mut writer)
                    .await
                    .is_err()
            {
                writer.abort();
                let _ = writer.await;
            }
            let reason = CloseReason {
                code: actix_http::ws::CloseCode::Other(code.code()),
                description: Some(reason.to_owned()),
            };
            let wait = close_frame_wait(&state, code);
            socket::close(reader, out, Some(reason), wait).await;
        }
        None => {
            writer.abort();
            let _ = writer.await;
            socket::close(reader, out, None, write_timeout).await;
        }
    }
}

/// How long a session closing with `code` waits for the client to take its close frame. The
/// queue is gone, so waiting holds little: a slow client that starts reading again within the
/// client timeout still learns why it was closed (and resumes). A stopping node waits the write
/// timeout only, whatever the close: its stop waits for every session.
pub(super) fn close_frame_wait(state: &AppState, code: CloseCode) -> Duration {
    let cfg = &state.realtime;
    if code == CloseCode::Draining || state.sessions.closing() {
        Duration::from_millis(cfg.write_timeout_ms.max(1))
    } else {
        Duration::from_secs(cfg.client_timeout_secs.max(1))
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => futures::future::pending().await,
    }
}

/// Where a session's writer sends frames: the WebSocket as is (realtime), or a translation of
/// them (twilsock). Frames are gathered with `push` and written together with `flush`.
pub(super) trait Sink {
    /// Adds one frame rendered by the hub, the connection or a repair to what the next flush
    /// writes; `false` when the session must end (it has been kicked).
    fn push(&mut self, frame: ByteString) -> bool;

    /// The bytes gathered and not yet written.
    fn pending(&self) -> usize;

    /// Writes what was gathered; `false` once the client is gone.
    async fn flush(&mut self) -> bool;
}

/// The realtime sink: frames go to the socket as they are.
#[derive(Debug)]
pub(super) struct WsSink {
    out: WsOut,
    buf: BytesMut,
}

impl WsSink {
    pub(super) fn new(out: WsOut) -> Self {
        Self {
            out,
            buf: BytesMut::new(),
        }
    }
}

/// Writes `buf` to `out` and empties it, giving a grown buffer back.
pub(super) async fn flush_buffer(out: &WsOut, buf: &mut BytesMut) -> bool {
    if buf.is_empty() {
        return true;
    }
    let written = out.write(buf).await.is_ok();
    if buf.capacity() > RETAINED_WRITE_BUFFER {
        *buf = BytesMut::new();
    } else {
        buf.clear();
    }
    written
}

impl Sink for WsSink {
    fn push(&mut self, frame: ByteString) -> bool {
        socket::encode_text(&mut self.buf, frame.as_bytes());
        true
    }

    fn pending(&self) -> usize {
        self.buf.len()
    }

    async fn flush(&mut self) -> bool {
        flush_buffer(&self.out, &mut self.buf).await
    }
}

/// What a session's writer reads besides its outbox: the store (gap repair) and the metrics.
#[derive(Debug, Clone)]
pub(super) struct WriterEnv {
    store: Arc<dyn Store>,
    metrics: Option<WebMetrics>,
}

impl WriterEnv {
    pub(super) fn of(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            metrics: state.metrics.clone(),
        }
    }
}

/// Drains the outbox to the socket, keeping each followed channel gap-free and in order.
pub(super) async fn write_loop<S: Sink>(
    state: WriterEnv,
    mut ws: S,
    mut rx: OutboxReader,
    kick: Arc<Kick>,
    budget: Arc<ByteBudget>,
) {
    let mut next: HashMap<ChannelSid, u64> = HashMap::new();
    while let Some(first) = rx.next().await {
        // The items' bytes stay counted against the budget until they are written: released
        // after the flush, however it ends.
        let mut held = Held(&budget, 0);
        let mut item = Some(first);
        while let Some(current) = item.take() {
            held.1 += current.bytes();
            if !process(&state, &mut ws, &mut next, &kick, current).await {
                return;
            }
            if ws.pending() < COALESCE_BYTES {
                item = rx.try_next();
            }
        }
        if !ws.flush().await {
            return;
        }
    }
}

/// Bytes of the budget held by the items being written.
struct Held<'a>(&'a ByteBudget, usize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Takes one item of the outbox into the sink; `false` once the session is over.
async fn process<S: Sink>(
    state: &WriterEnv,
    ws: &mut S,
    next: &mut HashMap<ChannelSid, u64>,
    kick: &Kick,
    item: Outbound,
) -> bool {
    match item {
        Outbound::Frame(frame) => ws.push(frame),
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
                return true;
            };
            if seq < expected {
                return true;
            }
            if seq > expected {
                if let Some(m) = &state.metrics {
                    m.gaps_repaired.inc_by(seq - expected);
                }
                // Boxed, as below: kept out of every idle writer's task.
                let repaired =
                    Box::pin(repair(state, ws, next, channel, expected, seq - 1, kick)).await;
                if !repaired {
                    return false;
                }
            }
            next.insert(channel, seq + 1);
            match frame {
                Some(frame) => {
                    if let Some(m) = &state.metrics {
                        let now = confab_cluster::now().millis();
                        m.delivery_latency_seconds
                            .observe((now - at_ms).max(0) as f64 / 1000.0);
                    }
                    ws.push(frame)
                }
                None => true,
            }
        }
        Outbound::Catchup { channel, upto } => match next.get(&channel).copied() {
            Some(expected) if upto >= expected => {
                Box::pin(repair(state, ws, next, channel, expected, upto, kick)).await
            }
            _ => true,
        },
    }
}

/// Sends the channel's stored events `from..=upto` that are addressed to members. When the
/// store cannot answer, the session is closed (4009) so that the client resumes rather than
/// skip the gap.
async fn repair<S: Sink>(
    state: &WriterEnv,
    ws: &mut S,
    next: &mut HashMap<ChannelSid, u64>,
    channel: ChannelSid,
    from: u64,
    upto: u64,
    kick: &Kick,
) -> bool {
    const BATCH: usize = 500;
    // What was gathered goes out before the store is asked for the gap.
    if ws.pending() > 0 && !ws.flush().await {
        return false;
    }
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
                if !ws.push(ByteString::from(frame)) {
                    return false;
                }
                // A long gap is written as it is read, not gathered whole.
                if ws.pending() >= COALESCE_BYTES && !ws.flush().await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use confab_store::{SqliteOptions, SqliteStore};

    /// A client that reads nothing: every write waits forever.
    struct StuckSink {
        buf: Vec<u8>,
        writing: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Sink for StuckSink {
        fn push(&mut self, frame: ByteString) -> bool {
            self.buf.extend_from_slice(frame.as_bytes());
            true
        }

        fn pending(&self) -> usize {
            self.buf.len()
        }

        async fn flush(&mut self) -> bool {
            self.writing
                .store(self.buf.len(), std::sync::atomic::Ordering::SeqCst);
            futures::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_costs_the_node_its_byte_budget_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("db"), SqliteOptions::default()).unwrap();
        let env = WriterEnv {
            store: Arc::new(store),
            metrics: None,
        };
        const BUDGET: usize = 200_000;
        let (outbox, rx) = Outbox::bounded(10_000, BUDGET);
        let writing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sink = StuckSink {
            buf: Vec::new(),
            writing: writing.clone(),
        };
        let writer = tokio::spawn(write_loop(
            env,
            sink,
            rx,
            outbox.kick.clone(),
            outbox.budget.clone(),
        ));
        let frame = ByteString::from("x".repeat(1000));
        let mut offered: usize = 0;
        while outbox.offer(Outbound::Frame(frame.clone())) {
            offered += 1;
            // Let the writer take what it takes, as a live one would between deliveries.
            tokio::task::yield_now().await;
            assert!(offered < 10_000, "never refused");
        }
        // Refused and kicked once the budget is spent: what waits in the outbox and what the
        // writer holds for its stuck write are all counted.
        let code = tokio::time::timeout(Duration::from_secs(5), outbox.kick.kicked())
            .await
            .expect("kicked");
        assert_eq!(code, CloseCode::TooSlow);
        let in_writer = writing.load(std::sync::atomic::Ordering::SeqCst);
        assert!(in_writer > 0, "the writer took a batch");
        let in_outbox = (offered * 1000).saturating_sub(in_writer);
        assert!(
            in_writer + in_outbox <= BUDGET,
            "the node holds {in_writer} + {in_outbox} bytes for a budget of {BUDGET}"
        );
        assert_eq!(outbox.budget.queued(), offered * 1000);
        writer.abort();
    }
}
