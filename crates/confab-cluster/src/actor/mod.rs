//! `ChannelActor`: the single writer of one channel on this node.
//!
//! Every command to a channel is a message to its actor. The actor handles one command at a
//! time to completion (load if needed, apply the domain rules, commit to the store, publish), so
//! commands to a channel are totally ordered and message indices are assigned without gaps. The
//! actor stops itself after an idle period; the next command starts a new one that rebuilds the
//! state from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use confab_domain::{
    Caller, ChannelCommand, ChannelEvent, ChannelSid, CreateChannel, Limits, MessageChange,
    MessageSid,
};
use confab_store::Store;

use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::error::ChannelError;
use crate::policy::Policies;
use crate::runtime::{RandomSids, Registry};

mod core;
mod hooks;
mod media;

use self::core::ChannelCore;

/// An operation on a channel, executed by its actor. Serializable: in cluster mode it may travel
/// to the node that owns the channel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ChannelOp {
    /// Create the channel (the actor's channel must not exist yet).
    Create(CreateChannel),
    /// Apply a command to the existing channel.
    Apply(ChannelCommand),
    /// Change a stored message.
    UpdateMessage {
        /// Which message.
        message: MessageSid,
        /// What to change.
        change: MessageChange,
    },
    /// Delete a stored message.
    RemoveMessage {
        /// Which message.
        message: MessageSid,
    },
}

/// An operation with the caller it runs for. Serializable, like the operation: the caller
/// travels with a forwarded command, and the owner decides.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChannelRequest {
    /// Who asks; the channel's actor checks the caller's permissions against the channel's
    /// state before it applies the operation.
    pub caller: Caller,
    /// What to do.
    pub op: ChannelOp,
    /// For the account: whether the operation fires post-event webhooks (a REST call with
    /// `X-Twilio-Webhook-Enabled: true`). A user's operations fire pre- and post-event webhooks
    /// whatever this says.
    #[serde(default)]
    pub webhooks: bool,
}

/// Executes one operation; replies with the committed events.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ChannelEvent>, ChannelError>")]
pub(crate) struct Execute {
    pub(crate) request: ChannelRequest,
}

/// Gives the channel up: releases its lease (cluster mode) and stops the actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Release;

/// The actor owning one channel on this node.
#[derive(Debug)]
pub struct ChannelActor {
    core: Option<ChannelCore>,
    registry: Registry,
    generation: u64,
    last_used: Instant,
    idle_timeout: Duration,
    mailbox_capacity: usize,
    alive: Option<prometheus::IntGauge>,
}

impl ChannelActor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sid: ChannelSid,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        policies: Policies,
        node_limits: Limits,
        registry: Registry,
        generation: u64,
        idle_timeout: Duration,
        mailbox_capacity: usize,
        client_id_window: usize,
        alive: Option<prometheus::IntGauge>,
        cluster: Option<Cluster>,
        hooks: Option<confab_webhooks::Webhooks>,
        blobs: Option<Arc<dyn confab_media::BlobStore>>,
    ) -> Self {
        Self {
            core: Some(ChannelCore {
                sid,
                store,
                broker,
                policies,
                node_limits,
                loaded: None,
                sids: RandomSids,
                client_ids: HashMap::new(),
                client_order: VecDeque::new(),
                client_ids_loaded: false,
                client_id_window,
                cluster,
                epoch: None,
                renewed_at: Instant::now(),
                announce: false,
                hooks,
                blobs,
            }),
            registry,
            generation,
            last_used: Instant::now(),
            idle_timeout,
            mailbox_capacity,
            alive: alive.inspect(|gauge| gauge.inc()),
        }
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        let tick = (self.idle_timeout / 2).max(Duration::from_millis(10));
        ctx.run_interval(tick, |act, ctx| {
            // Interval ticks are not handled while a command is in flight, so an actor that
            // stops here has no work half done.
            if act.last_used.elapsed() >= act.idle_timeout {
                if let Some(core) = &act.core {
                    act.registry.remove(core.sid, act.generation);
                }
                ctx.stop();
            }
        });
        let lease_ttl = self
            .core
            .as_ref()
            .and_then(|c| c.cluster.as_ref())
            .map(|c| c.config().lease_ttl);
        if let Some(lease_ttl) = lease_ttl {
            ctx.run_interval(
                (lease_ttl / 3).max(Duration::from_millis(10)),
                |act, ctx| {
                    act.renew_lease(ctx);
                },
            );
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some((cluster, sid, epoch)) = self.core.as_mut().and_then(ChannelCore::take_lease) {
            // The arbiter outlives its actors; the release is best effort (the lease expires
            // by itself otherwise).
            actix::spawn(async move { cluster.release(sid, epoch).await });
        }
    }
}

impl ChannelActor {
    /// Extends the lease; a lease found lost stops the actor (its commits would be fenced).
    fn renew_lease(&mut self, ctx: &mut Context<Self>) {
        let Some(core) = &self.core else {
            return;
        };
        let (Some(cluster), Some(epoch)) = (core.cluster.clone(), core.epoch) else {
            return;
        };
        let sid = core.sid;
        ctx.spawn(
            async move { cluster.renew(sid, epoch).await }
                .into_actor(self)
                .map(move |held, act, ctx| {
                    let Some(core) = &mut act.core else {
                        return;
                    };
                    match held {
                        Ok(false) if core.epoch == Some(epoch) => {
                            core.lose_lease();
                            act.registry.remove(sid, act.generation);
                            ctx.stop();
                        }
                        Ok(true) if core.epoch == Some(epoch) => core.renewed_at = Instant::now(),
                        Ok(_) => {}
                        // Redis is unreachable: keep the state; commits are fenced anyway,
                        // and the next renewal tells whether the lease survived.
                        Err(e) => {
                            tracing::warn!(channel = %sid, error = %e, "lease renewal failed")
                        }
                    }
                }),
        );
    }
}

impl Drop for ChannelActor {
    fn drop(&mut self) {
        if let Some(alive) = &self.alive {
            alive.dec();
        }
    }
}

impl Handler<Execute> for ChannelActor {
    type Result = AtomicResponse<Self, Result<Vec<ChannelEvent>, ChannelError>>;

    fn handle(&mut self, msg: Execute, _ctx: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        let Some(mut core) = self.core.take() else {
            // Only possible if a previous command's future was dropped mid-flight.
            return AtomicResponse::new(Box::pin(fut::ready(Err(ChannelError::Unavailable(
                "channel actor lost its state",
            )))));
        };
        AtomicResponse::new(Box::pin(
            async move {
                let result = core.execute(msg.request).await;
                (core, result)
            }
            .into_actor(self)
            .map(|(core, result), act, ctx| {
                let sid = core.sid;
                act.core = Some(core);
                act.last_used = Instant::now();
                if let Err(ChannelError::NotOwner { .. }) = &result {
                    // Another node owns the channel: this actor has nothing to serve.
                    act.registry.remove(sid, act.generation);
                    ctx.stop();
                }
                result
            }),
        ))
    }
}

impl Handler<Release> for ChannelActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _msg: Release, _ctx: &mut Self::Context) -> Self::Result {
        let lease = self.core.as_mut().and_then(ChannelCore::take_lease);
        if let Some(core) = &self.core {
            self.registry.remove(core.sid, self.generation);
        }
        AtomicResponse::new(Box::pin(
            async move {
                if let Some((cluster, sid, epoch)) = lease {
                    cluster.release(sid, epoch).await;
                }
            }
            .into_actor(self)
            .map(|(), _act, ctx| ctx.stop()),
        ))
    }
}
