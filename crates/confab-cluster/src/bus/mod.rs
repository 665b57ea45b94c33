//! The event bus: where a channel's owner publishes the events it committed.
//!
//! Contract of every [`Bus`]: events of one channel are published by one owner at a time, after
//! they were committed, in `seq` order; each subscriber receives them in that order. Delivery is
//! at most once: a subscriber that falls behind or reconnects may miss events and must repair the
//! gap from the store (`ChannelStore::events_after`) using the `seq` numbers. Nothing that relies
//! on an event arriving may skip that repair.

mod local;

use std::sync::Arc;

use confab_domain::ChannelEvent;
pub use local::LocalBus;
use tokio::sync::broadcast;

/// Publishes committed channel events to this node's listeners.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes committed events of one channel, in `seq` order. Never blocks.
    fn publish(&self, events: &[ChannelEvent]);
    /// A receiver of every event published from now on. See the trait's delivery contract.
    fn subscribe(&self) -> broadcast::Receiver<Arc<ChannelEvent>>;
}
