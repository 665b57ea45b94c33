//! The node-local fan-out hub: one task that owns every session's subscriptions and turns each
//! committed channel event into one frame, whose bytes are shared by every recipient.
//!
//! The hub never waits on a session: it offers each frame to the session's bounded outbox with
//! `try_send`. A session whose outbox is full is too slow: the hub forgets it and signals it to
//! close with 4009, so that it reconnects and resumes; memory stays bounded by the outbox size.
//! Typing indicators live here too, with one tick driving every typing timeout of the node.
//!
//! This file holds the public handle (`Hub`) and what sessions exchange with it (`Outbound`,
//! `Kick`, `ByteBudget`; the queue itself is `outbox`); the hub task itself is split by concern: `task` (its state, run loop and
//! commands), `fanout` (event batches and subscriptions), `typing` (typing indicators) and
//! `presence` (online/offline and user updates).

mod fanout;
mod outbox;
mod presence;
mod task;
mod typing;

use confab_protocol::realtime::CloseCode;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use confab_cluster::{Broker, Presence};
use confab_domain::{ChannelSid, ServiceSid};
use confab_protocol::realtime::UserView;
use tokio::sync::{mpsc, Notify};

pub use self::outbox::{Outbox, OutboxReader, Refused};
use self::task::HubTask;

/// How long a user whose last session ended may take to come back before peers are told that
/// they went offline (cluster mode).
const OFFLINE_GRACE: Duration = Duration::from_secs(1);

/// A session's id on this node.
pub type SessionId = u64;

/// What a session's writer receives.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A frame to send as is.
    Frame(ByteString),
    /// A channel event with its `seq`; `frame` is `None` when the event is not for members (the
    /// writer only advances its position).
    Seq {
        /// The channel.
        channel: ChannelSid,
        /// The event's sequence number.
        seq: u64,
        /// When the event was committed (ms since the epoch), for the delivery latency metric.
        at_ms: i64,
        /// The frame, shared with every other member.
        frame: Option<ByteString>,
    },
    /// From now on the session follows `channel`, having seen everything up to `after`.
    Subscribed {
        /// The channel.
        channel: ChannelSid,
        /// The last `seq` already reflected for this session.
        after: u64,
    },
    /// The session no longer follows `channel`.
    Unsubscribed {
        /// The channel.
        channel: ChannelSid,
    },
    /// Deliver every event of `channel` up to `upto` that has not been delivered yet.
    Catchup {
        /// The channel.
        channel: ChannelSid,
        /// The newest `seq` known to exist.
        upto: u64,
    },
}

/// Tells a session to close with a code (too slow, draining).
#[derive(Debug, Default)]
pub struct Kick {
    code: AtomicU16,
    notify: Notify,
}

impl Kick {
    /// Asks the session to close with `code`; the first code asked for wins.
    pub fn kick(&self, code: CloseCode) {
        let _ = self
            .code
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// The close code asked for, if the session was kicked.
    pub fn code(&self) -> Option<CloseCode> {
        CloseCode::from_code(self.code.load(Ordering::Acquire))
    }

    /// Resolves with the close code once the session was kicked.
    pub async fn kicked(&self) -> CloseCode {
        loop {
            let code = self.code.load(Ordering::Acquire);
            if let Some(code) = CloseCode::from_code(code) {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

impl Outbound {
    /// The bytes this item holds for the client until it is written.
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Frame(frame) => frame.len(),
            Outbound::Seq {
                frame: Some(frame), ..
            } => frame.len(),
            _ => 0,
        }
    }
}

/// The bytes a session may have queued for its client (events and replies together): what one
/// client that stops reading can make the node hold for it.
#[derive(Debug)]
pub struct ByteBudget {
    queued: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `bytes` from the budget; `false` (and nothing taken) when they do not fit.
    pub fn reserve(&self, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::AcqRel);
        if before.saturating_add(bytes) > self.limit {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives `bytes` back (they were written, or never queued). Never below zero: an item
    /// queued without a reservation must not turn the budget into a huge debt.
    pub fn release(&self, bytes: usize) {
        let released = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            });
        debug_assert!(
            released.is_ok_and(|q| q >= bytes),
            "released more than reserved"
        );
    }

    /// The bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

enum Command {
    Register {
        id: SessionId,
        service: ServiceSid,
        identity: String,
        user: UserView,
        outbox: Outbox,
        followed: tokio::sync::oneshot::Sender<Option<tokio::sync::oneshot::Receiver<()>>>,
    },
    Unregister {
        id: SessionId,
    },
    Subscribe {
        id: SessionId,
        channel: ChannelSid,
        as_of: u64,
    },
    Announce {
        id: SessionId,
    },
    IsOnline {
        service: ServiceSid,
        identity: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    Typing {
        service: ServiceSid,
        channel: ChannelSid,
        identity: String,
        member_sid: String,
        timeout: Duration,
    },
    UserUpdated {
        service: ServiceSid,
        user: UserView,
        reasons: Vec<&'static str>,
    },
    Drain,
    /// The user's last session here ended and no other node has one: tell the peers.
    Offline {
        key: UserKey,
        user: UserView,
        channels: Vec<ChannelSid>,
    },
    /// The node that announced a user online left the cluster and no node has the user.
    RemoteOffline {
        key: UserKey,
        node: String,
    },
}

/// A handle to the hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    next_id: Arc<AtomicU64>,
    presence: Arc<dyn Presence>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hub command")
    }
}

impl Hub {
    /// Starts the hub task on the current runtime, fed by `broker`, telling `presence` who is
    /// online here.
    pub fn start(
        broker: &Arc<dyn Broker>,
        presence: &Arc<dyn Presence>,
        metrics: Option<crate::metrics::WebMetrics>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = broker.subscribe();
        let task = HubTask {
            metrics,
            bus: Some(broker.clone()),
            presence: Some(presence.clone()),
            commands: Some(tx.downgrade()),
            ..HubTask::default()
        };
        tokio::spawn(task.run(rx, events));
        Self {
            commands: tx,
            next_id: Arc::new(AtomicU64::new(1)),
            presence: presence.clone(),
        }
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> SessionId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, command: Command) {
        // The hub task runs as long as the node; if it is gone the node is stopping.
        let _ = self.commands.send(command);
    }

    /// Adds a session: it receives its identity's user events from now on. Resolves once the
    /// bus brings those events here (on a cluster bus, once the user's topic is subscribed),
    /// or after `wait` at most: read the user's memberships after that, or a join in between
    /// may be missed.
    pub async fn register(
        &self,
        id: SessionId,
        service: ServiceSid,
        identity: String,
        user: UserView,
        outbox: Outbox,
        wait: Duration,
    ) {
        let (followed, ready) = tokio::sync::oneshot::channel();
        self.send(Command::Register {
            id,
            service,
            identity,
            user,
            outbox,
            followed,
        });
        let _ = tokio::time::timeout(wait, async {
            if let Ok(Some(subscribed)) = ready.await {
                let _ = subscribed.await;
            }
        })
        .await;
    }

    /// Removes a session.
    pub fn unregister(&self, id: SessionId) {
        self.send(Command::Unregister { id });
    }

    /// Makes a session follow a channel it was a member of as of event `as_of` (after it
    /// queued its own `Subscribed` marker). Ignored if the user left the channel since.
    pub fn subscribe(&self, id: SessionId, channel: ChannelSid, as_of: u64) {
        self.send(Command::Subscribe { id, channel, as_of });
    }

    /// The session has subscribed to its channels: tell its peers that the user is online
    /// (once per user, when its first session gets here).
    pub fn announce(&self, id: SessionId) {
        self.send(Command::Announce { id });
    }

    /// Whether `identity` has a session on this node or, in a cluster, on another live node.
    pub async fn is_online(&self, service: ServiceSid, identity: &str) -> bool {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(Command::IsOnline {
            service,
            identity: identity.to_owned(),
            reply,
        });
        if rx.await.unwrap_or(false) {
            return true;
        }
        match self.presence.online_elsewhere(service, identity) {
            Some(elsewhere) => elsewhere.await,
            None => false,
        }
    }

    /// `identity` is typing in `channel`.
    pub fn typing(
        &self,
        service: ServiceSid,
        channel: ChannelSid,
        identity: String,
        member_sid: String,
        timeout: Duration,
    ) {
        self.send(Command::Typing {
            service,
            channel,
            identity,
            member_sid,
            timeout,
        });
    }

    /// Tells every session to reconnect elsewhere (`reconnect`, then close 4010): the node is
    /// stopping.
    pub fn drain(&self) {
        self.send(Command::Drain);
    }

    /// A user's profile changed.
    pub fn user_updated(&self, service: ServiceSid, user: UserView, reasons: Vec<&'static str>) {
        self.send(Command::UserUpdated {
            service,
            user,
            reasons,
        });
    }
}

type UserKey = (ServiceSid, String);

#[cfg(test)]
mod tests;
