//! `LocalBroker`: the node-local broker, a bounded broadcast channel.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Broker, EventBatch};

/// In-process broker. Each subscriber has a bounded backlog (`capacity` batches); one that falls
/// further behind gets `RecvError::Lagged` and must repair from the store. Publishing never waits.
#[derive(Debug, Clone)]
pub struct LocalBroker {
    sender: broadcast::Sender<Arc<EventBatch>>,
}

impl LocalBroker {
    /// A broker keeping at most `capacity` undelivered events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl Broker for LocalBroker {
    fn publish(&self, batch: Arc<EventBatch>) {
        // An error only means that nobody listens right now, which is fine.
        let _ = self.sender.send(batch);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<EventBatch>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::{
        Attributes, Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, ServiceSid,
        Timestamp,
    };

    use super::*;

    fn batch(seqs: &[u64]) -> Arc<EventBatch> {
        let events: Vec<ChannelEvent> = seqs.iter().map(|s| event(*s)).collect();
        Arc::new(EventBatch {
            channel: match &events[0].kind {
                ChannelEventKind::ChannelUpdated { channel, .. } => channel.clone(),
                _ => unreachable!(),
            },
            events,
        })
    }

    fn event(seq: u64) -> ChannelEvent {
        let channel = Channel {
            sid: ChannelSid::from_bits(1),
            service_sid: ServiceSid::from_bits(1),
            friendly_name: None,
            unique_name: None,
            attributes: Attributes::default(),
            kind: ChannelType::Public,
            created_by: "system".into(),
            created_by_account: Some(true),
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
        let broker = LocalBroker::new(16);
        let mut rx = broker.subscribe();
        broker.publish(batch(&[1, 2]));
        broker.publish(batch(&[3]));
        let mut seqs = Vec::new();
        for _ in 0..2 {
            seqs.extend(rx.recv().await.unwrap().events.iter().map(|e| e.seq));
        }
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_it_missed_events() {
        let broker = LocalBroker::new(2);
        let mut rx = broker.subscribe();
        broker.publish(batch(&[1]));
        broker.publish(batch(&[2]));
        broker.publish(batch(&[3]));
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
    }
}
