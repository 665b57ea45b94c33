//! The event bus: where a channel's owner publishes the events it committed.
//!
//! Contract of every [`Bus`]: events of one channel are published by one owner at a time, after
//! they were committed, in `seq` order; each subscriber receives them in that order. Delivery is
//! at most once: a subscriber that falls behind or reconnects may miss events and must repair the
//! gap from the store (`ChannelStore::events_after`) using the `seq` numbers. Nothing that relies
//! on an event arriving may skip that repair.

mod local;

use std::sync::Arc;

use confab_domain::{Channel, ChannelEvent, ChannelSid, ServiceSid};
pub use local::LocalBus;
use tokio::sync::{broadcast, oneshot, watch};

/// The events of one committed write to a channel, with the channel as it is after them.
///
/// A batch with no events is a synchronisation mark, not a write: "the channel's events go up
/// to `channel.last_seq`"; a listener delivers what it has not delivered up to there (from the
/// store). A cluster bus sends one after it (re)subscribes to a channel's topic, because
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

/// A user's profile or online status changed: the user's sessions and the members of
/// `channels` are told, on every node. Not stored; at most once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSignal {
    /// The user's service.
    pub service: ServiceSid,
    /// The user.
    pub identity: String,
    /// The `userUpdated` frame, rendered once by the sender.
    pub frame: String,
    /// For online-status changes, the new status. A node that still has a session of a user
    /// announced offline answers with an online announcement.
    pub online: Option<bool>,
    /// Channels whose members see the user.
    pub channels: Vec<ChannelSid>,
    /// The user as the frame shows it (JSON), so that a receiver can render them offline when
    /// the sending node dies.
    pub user: serde_json::Value,
    /// The sending node (filled in by the bus).
    pub node: String,
}

/// A future answering whether a user has a session on another node.
pub type OnlineElsewhere = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// What a node's listeners can follow on a cluster bus.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every event of a channel.
    Channel(ChannelSid),
    /// The membership and invitation events of one user of a service.
    User(ServiceSid, String),
}

/// Publishes committed channel events to this node's listeners.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes the events of one committed write, in `seq` order. Never blocks.
    fn publish(&self, batch: Arc<EventBatch>);
    /// A receiver of every batch published from now on. See the trait's delivery contract.
    fn subscribe(&self) -> broadcast::Receiver<Arc<EventBatch>>;
    /// This node has listeners for `topic`: a cluster bus brings its batches from other nodes
    /// from now on, and resolves the receiver it returns once it does (batches published before
    /// that may be missing). Calls are not counted: one `unfollow` ends it. A node-local bus
    /// delivers everything anyway and returns `None`.
    fn follow(&self, _topic: &Topic) -> Option<oneshot::Receiver<()>> {
        None
    }
    /// This node has no listener for `topic` any more.
    fn unfollow(&self, _topic: &Topic) {}
    /// Tells the other nodes following the channel that someone types there (the caller shows
    /// it to its own listeners). At most once; a node-local bus has no other nodes.
    fn signal_typing(&self, _typing: &TypingSignal) {}
    /// Typing signals from other nodes, if the bus carries any.
    fn typing_signals(&self) -> Option<broadcast::Receiver<Arc<TypingSignal>>> {
        None
    }
    /// Tells the other nodes that a user changed (the caller tells its own listeners).
    fn signal_user(&self, _signal: &UserSignal) {}
    /// User signals from other nodes, if the bus carries any.
    fn user_signals(&self) -> Option<broadcast::Receiver<Arc<UserSignal>>> {
        None
    }
    /// The user's first session on this node began (for `Cluster::online_elsewhere` on
    /// the other nodes). Arrivals and departures of one user are recorded in call order.
    fn user_arrived(&self, _service: ServiceSid, _identity: &str) {}
    /// The user's last session on this node ended; resolves whether another live node still
    /// has one, decided together with the removal. `None`: there are no other nodes.
    fn user_left(&self, _service: ServiceSid, _identity: &str) -> Option<OnlineElsewhere> {
        None
    }
    /// Whether the user has a session on another live node; `None` when there are no others.
    fn online_elsewhere(&self, _service: ServiceSid, _identity: &str) -> Option<OnlineElsewhere> {
        None
    }
    /// Nodes that left the live set (died, or drained), as this node notices them: users they
    /// announced online may be gone.
    fn departures(&self) -> Option<broadcast::Receiver<Arc<Vec<String>>>> {
        None
    }
    /// Changes each time the bus lost its connection and subscribed again: batches published
    /// meanwhile are gone, including membership changes that no `seq` repair can restore, so
    /// listeners must rebuild what they follow (sessions resume). `None`: it never happens.
    fn resets(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}
