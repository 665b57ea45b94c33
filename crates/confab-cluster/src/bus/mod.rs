//! The event bus: where a channel's owner publishes the events it committed.
//!
//! Contract of every [`Bus`]: events of one channel are published by one owner at a time, after
//! they were committed, in `seq` order; each subscriber receives them in that order. Delivery is
//! at most once: a subscriber that falls behind or reconnects may miss events and must repair the
//! gap from the store (`ChannelStore::events_after`) using the `seq` numbers. Nothing that relies
//! on an event arriving may skip that repair.

mod local;

use std::sync::Arc;

use confab_domain::{Channel, ChannelEvent};
pub use local::LocalBus;
use tokio::sync::broadcast;

/// The events of one committed write to a channel, with the channel as it is after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// The channel after the write (as it was, for a deletion).
    pub channel: Channel,
    /// The events, in `seq` order.
    pub events: Vec<ChannelEvent>,
}

/// Publishes committed channel events to this node's listeners.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes the events of one committed write, in `seq` order. Never blocks.
    fn publish(&self, batch: Arc<EventBatch>);
    /// A receiver of every batch published from now on. See the trait's delivery contract.
    fn subscribe(&self) -> broadcast::Receiver<Arc<EventBatch>>;
}
