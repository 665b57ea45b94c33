//! The broker: where a channel's owner publishes the events it committed, and where listeners
//! follow channels. (Who is online is the [`crate::presence`] service's concern.)
//!
//! Contract of every [`Broker`]: events of one channel are published by one owner at a time, after
//! they were committed, in `seq` order; each subscriber receives them in that order. Delivery is
//! at most once: a subscriber that falls behind or reconnects may miss events and must repair the
//! gap from the store (`ChannelStore::events_after`) using the `seq` numbers. Nothing that relies
//! on an event arriving may skip that repair.

mod local;

use std::sync::Arc;

use confab_domain::{Channel, ChannelEvent, ChannelSid, ServiceSid};
pub use local::LocalBroker;
use tokio::sync::{broadcast, oneshot, watch};

/// The events of one committed write to a channel, with the channel as it is after them.
///
/// A batch with no events is a synchronisation mark, not a write: "the channel's events go up
/// to `channel.last_seq`"; a listener delivers what it has not delivered up to there (from the
/// store). A cluster broker sends one after it (re)subscribes to a channel's topic, because
/// pub/sub forgets what was published while it was not subscribed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventBatch {
    /// The channel after the write (as it was, for a deletion).
    pub channel: Channel,
    /// The events, in `seq` order.
    pub events: Vec<ChannelEvent>,
}

/// Someone is typing in a channel: a signal that is not stored and has no `seq` (a lost one
/// only shortens an indicator).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TypingSignal {
    /// The channel's service.
    pub service: ServiceSid,
    /// The channel.
    pub channel: ChannelSid,
    /// Who types.
    pub identity: String,
    /// Their member SID.
    pub member_sid: String,
    /// How long the indicator lasts without a repeat.
    pub timeout_ms: u64,
}

/// What a node's listeners can follow on a cluster broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every event of a channel.
    Channel(ChannelSid),
    /// The membership and invitation events of one user of a service.
    User(ServiceSid, String),
}

/// Carries committed channel events (and typing, which travels on the channel's topic) to this
/// node's listeners, from this node's channel owners and, in a cluster, from other nodes.
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Publishes the events of one committed write, in `seq` order. Never blocks.
    fn publish(&self, batch: Arc<EventBatch>);
    /// A receiver of every batch published from now on. See the module's delivery contract.
    fn subscribe(&self) -> broadcast::Receiver<Arc<EventBatch>>;
    /// This node has listeners for `topic`: a cluster broker brings its batches from other
    /// nodes from now on, and resolves the receiver it returns once it does (batches published
    /// before that may be missing). Calls are not counted: one `unfollow` ends it. A node-local
    /// broker delivers everything anyway and returns `None`.
    fn follow(&self, _topic: &Topic) -> Option<oneshot::Receiver<()>> {
        None
    }
    /// This node has no listener for `topic` any more.
    fn unfollow(&self, _topic: &Topic) {}
    /// Tells the other nodes following the channel that someone types there (the caller shows
    /// it to its own listeners). At most once; a node-local broker has no other nodes.
    fn signal_typing(&self, _typing: &TypingSignal) {}
    /// Typing signals from other nodes, if the broker carries any.
    fn typing_signals(&self) -> Option<broadcast::Receiver<Arc<TypingSignal>>> {
        None
    }
    /// Changes each time the broker lost its connection and subscribed again: batches published
    /// meanwhile are gone, including membership changes that no `seq` repair can restore, so
    /// listeners must rebuild what they follow (sessions resume). `None`: it never happens.
    fn resets(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}
