//! The presence service: who is online across the nodes of a cluster, and the user changes
//! (online status, profile) that the members of their channels are told about.
//!
//! Contract of every [`Presence`]: signals are not stored and arrive at most once; arrivals and
//! departures of one user on this node are recorded in call order; `user_left` and
//! `online_elsewhere` answer for the other live nodes only (this node's own sessions are the
//! caller's to count). A node-local presence has no other nodes: every answer is "nobody else".
//! The policy built on it (grace before offline, answering an offline announcement for a user
//! still here, users of departed nodes) lives in the realtime hub's presence module.

use std::sync::Arc;

use confab_domain::{ChannelSid, ServiceSid};
use tokio::sync::broadcast;

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

/// Tells other nodes who is online here, and this node what happens elsewhere.
pub trait Presence: Send + Sync + std::fmt::Debug {
    /// Tells the other nodes that a user changed (the caller tells its own listeners).
    fn signal_user(&self, _signal: &UserSignal) {}
    /// User signals from other nodes, if there are other nodes.
    fn user_signals(&self) -> Option<broadcast::Receiver<Arc<UserSignal>>> {
        None
    }
    /// The user's first session on this node began.
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
}

/// The presence of a single node: there is nobody else to tell or ask.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalPresence;

impl Presence for LocalPresence {}
