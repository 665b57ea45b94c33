//! One message fanned out to 1,000 local sessions.
//!
//! - `fanout/hub_1000_sessions`: the node-local hub alone: one committed event rendered once and
//!   offered to 1,000 session outboxes, until every session task has taken it.
//! - `fanout/websocket_1000_sessions`: end to end on a real node: one `sendMessage` over the
//!   realtime API until 1,000 WebSocket clients on loopback have read its `messageAdded`.
//!
//! Throughput is reported per delivery (1,000 per iteration).

// Benchmark code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_cluster::{Broker, EventBatch, LocalBroker, LocalPresence, Presence};
use confab_domain::{
    Attributes, Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, Message,
    MessageSid, ServiceSid, Timestamp,
};
use confab_protocol::realtime::UserView;
use confab_testkit::TestNode;
use confab_web::realtime::hub::{Outbound, Outbox};
use confab_web::realtime::Hub;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const SESSIONS: usize = 1000;

fn batch(seq: u64) -> Arc<EventBatch> {
    let sid = ChannelSid::from_bits(1);
    let channel = Channel {
        sid,
        service_sid: ServiceSid::from_bits(1),
        friendly_name: None,
        unique_name: None,
        attributes: Attributes::default(),
        kind: ChannelType::Public,
        created_by: "system".into(),
        created_by_account: Some(true),
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
        members_count: SESSIONS as u64,
        messages_count: seq,
        last_message: None,
        next_message_index: seq,
        last_seq: seq,
    };
    let message = Message {
        sid: MessageSid::from_bits(u128::from(seq)),
        channel_sid: sid,
        service_sid: channel.service_sid,
        index: seq,
        author: "bench".into(),
        by_account: Some(false),
        member_sid: None,
        body: "a message of ordinary chat length, fanned out to everyone".into(),
        attributes: Attributes::default(),
        was_edited: false,
        last_updated_by: None,
        client_id: None,
        media: None,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    };
    Arc::new(EventBatch {
        channel,
        events: vec![ChannelEvent {
            channel_sid: sid,
            seq,
            at: Timestamp(0),
            kind: ChannelEventKind::MessageAdded { message },
        }],
    })
}

fn hub_fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bus: Arc<dyn Broker> = Arc::new(LocalBroker::new(1024));
    let presence: Arc<dyn Presence> = Arc::new(LocalPresence);
    let delivered = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let hub = runtime.block_on(async {
        let hub = Hub::start(&bus, &presence, None);
        let channel = ChannelSid::from_bits(1);
        for i in 0..SESSIONS {
            let (outbox, mut rx) = Outbox::bounded(1024, usize::MAX);
            let id = hub.next_session_id();
            let user = UserView {
                identity: format!("u{i}"),
                friendly_name: None,
                attributes: json!({}),
                online: Some(true),
            };
            hub.register(
                id,
                ServiceSid::from_bits(1),
                format!("u{i}"),
                user,
                outbox,
                Duration::from_secs(5),
            )
            .await;
            hub.subscribe(id, channel, 0);
            let delivered = delivered.clone();
            let all_done = all_done.clone();
            tokio::spawn(async move {
                while let Some(item) = rx.next().await {
                    if let Outbound::Seq {
                        frame: Some(frame), ..
                    } = item
                    {
                        std::hint::black_box(frame);
                        if delivered.fetch_add(1, Ordering::AcqRel) + 1 == SESSIONS as u64 {
                            all_done.notify_one();
                        }
                    }
                }
            });
        }
        // Let the registrations settle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        hub
    });
    let mut seq = 0;
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.bench_function("hub_1000_sessions", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    seq += 1;
                    delivered.store(0, Ordering::Release);
                    let done = all_done.notified();
                    bus.publish(batch(seq));
                    done.await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    drop(hub);
}

fn websocket_fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = TestNode::builder()
        .configure(|c| {
            c.limits.members_per_channel = SESSIONS + 10;
            c.realtime.ops_per_sec = 100_000;
            c.realtime.ops_burst = 100_000;
        })
        .start()
        .unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let (sender, channel) = runtime.block_on(async {
        let rest = node.rest();
        let service = rest
            .post("/v2/Services", &[("FriendlyName", "fanout")])
            .await
            .str("sid");
        rest.post(
            &format!("/v2/Services/{service}"),
            &[("Limits.ChannelMembers", &(SESSIONS + 10).to_string())],
        )
        .await;
        let channel = rest
            .post(
                &format!("/v2/Services/{service}/Channels"),
                &[("UniqueName", "all")],
            )
            .await
            .str("sid");
        for i in 0..=SESSIONS {
            let r = rest
                .post(
                    &format!("/v2/Services/{service}/Channels/{channel}/Members"),
                    &[("Identity", &format!("u{i}"))],
                )
                .await;
            assert_eq!(r.status, 201);
        }
        for i in 1..=SESSIONS {
            let (mut ws, _) = tokio_tungstenite::connect_async(node.ws_url())
                .await
                .unwrap();
            let token = node.token(&format!("u{i}"), &service, 3600);
            ws.send(WsMessage::text(
                json!({"type": "init", "id": 1, "token": token}).to_string(),
            ))
            .await
            .unwrap();
            let delivered = delivered.clone();
            let all_done = all_done.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if let WsMessage::Text(text) = msg {
                        if text.as_str().contains("\"messageAdded\"")
                            && delivered.fetch_add(1, Ordering::AcqRel) + 1 == SESSIONS as u64
                        {
                            all_done.notify_one();
                        }
                    }
                }
            });
        }
        let (sender, _events) =
            confab_client::Client::connect(&node.ws_url(), &node.token("u0", &service, 3600))
                .await
                .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        (sender, channel)
    });
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("websocket_1000_sessions", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    delivered.store(0, Ordering::Release);
                    let done = all_done.notified();
                    sender
                        .request(
                            "sendMessage",
                            json!({"channel": channel, "body": "to everyone"}),
                        )
                        .await
                        .unwrap();
                    done.await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, hub_fanout, websocket_fanout);
criterion_main!(benches);
