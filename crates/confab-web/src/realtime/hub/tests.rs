//! The hub without sockets: sessions are outboxes, the broker is the node-local one.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use confab_cluster::{Broker, EventBatch, LocalBroker, LocalPresence, Presence};
use confab_domain::{
    Attributes, Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, Message,
    MessageSid, ServiceSid, Timestamp,
};
use confab_protocol::realtime::{CloseCode, UserView};

use super::{Hub, Kick, Outbound, Outbox, OutboxReader};

const WAIT: Duration = Duration::from_secs(5);

fn channel(sid: ChannelSid, last_seq: u64) -> Channel {
    Channel {
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
        members_count: 2,
        messages_count: last_seq,
        last_message: None,
        next_message_index: last_seq,
        last_seq,
    }
}

fn message_batch(sid: ChannelSid, seq: u64, body: &str) -> Arc<EventBatch> {
    let message = Message {
        sid: MessageSid::from_bits(u128::from(seq)),
        channel_sid: sid,
        service_sid: ServiceSid::from_bits(1),
        index: seq,
        author: "alice".into(),
        by_account: Some(false),
        member_sid: None,
        body: body.into(),
        attributes: Attributes::default(),
        was_edited: false,
        last_updated_by: None,
        client_id: None,
        media: None,
        date_created: Timestamp(0),
        date_updated: Timestamp(0),
    };
    Arc::new(EventBatch {
        channel: channel(sid, seq),
        events: vec![ChannelEvent {
            channel_sid: sid,
            seq,
            at: Timestamp(0),
            kind: ChannelEventKind::MessageAdded { message },
        }],
    })
}

struct Session {
    rx: OutboxReader,
    kick: Arc<Kick>,
}

async fn session(hub: &Hub, identity: &str, channel: ChannelSid, capacity: usize) -> Session {
    let (outbox, rx) = Outbox::bounded(capacity, usize::MAX);
    let kick = outbox.kick.clone();
    let id = hub.next_session_id();
    let user = UserView {
        identity: identity.into(),
        friendly_name: None,
        attributes: serde_json::json!({}),
        online: Some(true),
    };
    hub.register(
        id,
        ServiceSid::from_bits(1),
        identity.into(),
        user,
        outbox,
        WAIT,
    )
    .await;
    hub.subscribe(id, channel, 0);
    Session { rx, kick }
}

fn start() -> (Hub, Arc<dyn Broker>) {
    let broker: Arc<dyn Broker> = Arc::new(LocalBroker::new(64));
    let presence: Arc<dyn Presence> = Arc::new(LocalPresence);
    (Hub::start(&broker, &presence, None), broker)
}

/// The next channel event a session's writer receives: (seq, frame text).
async fn next_event(session: &mut Session) -> (u64, String) {
    loop {
        let item = tokio::time::timeout(WAIT, session.rx.next())
            .await
            .expect("an event in time")
            .expect("the outbox is open");
        if let Outbound::Seq {
            seq,
            frame: Some(frame),
            ..
        } = item
        {
            return (seq, frame.to_string());
        }
    }
}

/// Waits until the hub has processed what was sent before (its commands and batches are
/// handled in order, so an answered question means the earlier ones are done).
async fn settle(hub: &Hub) {
    let _ = hub.is_online(ServiceSid::from_bits(1), "nobody").await;
}

#[tokio::test]
async fn each_follower_gets_each_event_once_and_others_get_nothing() {
    let (hub, broker) = start();
    let general = ChannelSid::from_bits(1);
    let other = ChannelSid::from_bits(2);
    let mut alice = session(&hub, "alice", general, 16).await;
    let mut bob = session(&hub, "bob", general, 16).await;
    let mut carol = session(&hub, "carol", other, 16).await;
    settle(&hub).await;
    broker.publish(message_batch(general, 1, "hello"));
    broker.publish(message_batch(general, 2, "again"));
    for s in [&mut alice, &mut bob] {
        let (seq, frame) = next_event(s).await;
        assert_eq!(seq, 1);
        assert!(frame.contains("\"messageAdded\"") && frame.contains("hello"));
        assert_eq!(next_event(s).await.0, 2);
    }
    settle(&hub).await;
    while let Some(item) = carol.rx.try_next() {
        assert!(
            !matches!(item, Outbound::Seq { .. }),
            "a session of another channel got {item:?}"
        );
    }
}

#[tokio::test]
async fn a_full_outbox_is_closed_as_too_slow_and_the_others_go_on() {
    let (hub, broker) = start();
    let general = ChannelSid::from_bits(1);
    let mut reader = session(&hub, "reader", general, 64).await;
    let stuck = session(&hub, "stuck", general, 2).await;
    settle(&hub).await;
    for seq in 1..=10 {
        broker.publish(message_batch(general, seq, "x"));
    }
    let code = tokio::time::timeout(WAIT, stuck.kick.kicked())
        .await
        .unwrap();
    assert_eq!(code, CloseCode::TooSlow);
    for want in 1..=10 {
        assert_eq!(next_event(&mut reader).await.0, want);
    }
}

#[tokio::test]
async fn a_draining_hub_tells_every_session_to_reconnect_even_one_that_registers_after() {
    let (hub, _broker) = start();
    let general = ChannelSid::from_bits(1);
    let mut before = session(&hub, "before", general, 16).await;
    hub.drain();
    let mut after = session(&hub, "after", general, 16).await;
    for s in [&mut before, &mut after] {
        let code = tokio::time::timeout(WAIT, s.kick.kicked()).await.unwrap();
        assert_eq!(code, CloseCode::Draining);
        let told = std::iter::from_fn(|| s.rx.try_next())
            .any(|item| matches!(&item, Outbound::Frame(frame) if frame.contains("\"reconnect\"")));
        assert!(told, "a reconnect frame is queued before the close");
    }
}
