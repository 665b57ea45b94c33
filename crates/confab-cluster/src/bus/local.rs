//! `LocalBus`: the node-local bus, a bounded broadcast channel.

use std::sync::Arc;

use confab_domain::ChannelEvent;
use tokio::sync::broadcast;

use super::Bus;

/// In-process bus. Each subscriber has a bounded backlog (`capacity` events); one that falls
/// further behind gets `RecvError::Lagged` and must repair from the store. Publishing never waits.
#[derive(Debug, Clone)]
pub struct LocalBus {
    sender: broadcast::Sender<Arc<ChannelEvent>>,
}

impl LocalBus {
    /// A bus keeping at most `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl Bus for LocalBus {
    fn publish(&self, events: &[ChannelEvent]) {
        for event in events {
            // An error only means that nobody listens right now, which is fine.
            let _ = self.sender.send(Arc::new(event.clone()));
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChannelEvent>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::{
        Attributes, Channel, ChannelEventKind, ChannelSid, ChannelType, ServiceSid, Timestamp,
    };

    use super::*;

    fn event(seq: u64) -> ChannelEvent {
        let channel = Channel {
            sid: ChannelSid::from_bits(1),
            service_sid: ServiceSid::from_bits(1),
            friendly_name: None,
            unique_name: None,
            attributes: Attributes::default(),
            kind: ChannelType::Public,
            created_by: "system".into(),
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
            members_count: 0,
            messages_count: 0,
            last_message: None,
            next_message_index: 0,
            last_seq: seq,
        };
        ChannelEvent {
            channel_sid: channel.sid,
            seq,
            at: Timestamp(0),
            kind: ChannelEventKind::ChannelUpdated {
                channel,
                reasons: vec![],
            },
        }
    }

    #[tokio::test]
    async fn subscribers_get_events_in_publish_order() {
        let bus = LocalBus::new(16);
        let mut rx = bus.subscribe();
        bus.publish(&[event(1), event(2)]);
        bus.publish(&[event(3)]);
        for expected in 1..=3 {
            assert_eq!(rx.recv().await.unwrap().seq, expected);
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_it_missed_events() {
        let bus = LocalBus::new(2);
        let mut rx = bus.subscribe();
        bus.publish(&[event(1), event(2), event(3)]);
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
    }
}
