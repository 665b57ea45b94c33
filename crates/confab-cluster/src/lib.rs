//! `confab-cluster`: the channel runtime of a node.
//!
//! It owns the [`ChannelActor`] (one per active channel; it serializes every write to its
//! channel: load, apply the domain rules, persist, publish), the [`ChannelRuntime`] that finds or
//! starts a channel's actor and routes commands to it, the [`broker`] on which committed channel
//! events are published for the realtime gateway, the [`presence`] service (who is online on
//! other nodes), and the [`policy`] cache that authorization decisions read.
//!
//! It must not speak HTTP or WebSocket (that is `confab-web`) nor decide chat rules (that is
//! `confab-domain`). In cluster mode ([`cluster`]) it also owns node membership, channel leases,
//! the routing of commands to the node that owns a channel, and the Redis broker and presence.

pub mod actor;
pub mod broker;
pub mod cluster;
pub mod error;
pub mod metrics;
pub mod placement;
pub mod policy;
pub mod presence;
pub mod runtime;

pub use actor::{ChannelActor, ChannelOp, ChannelRequest};
pub use broker::{Broker, EventBatch, LocalBroker, Topic, TypingSignal};
pub use cluster::{Cluster, ClusterConfig, RedisBroker, RedisPresence};
pub use confab_domain::MessageChange;
pub use error::ChannelError;
pub use metrics::RuntimeMetrics;
pub use policy::{Policies, ResolvedCaller};
pub use presence::{LocalPresence, OnlineElsewhere, Presence, UserSignal};
pub use runtime::{now, ChannelRuntime, RandomSids, RuntimeConfig};
