//! `ChannelActor`: the single writer of one channel on this node.
//!
//! Every command to a channel is a message to its actor. The actor handles one command at a
//! time to completion (load if needed, apply the domain rules, commit to the store, publish), so
//! commands to a channel are totally ordered and message indices are assigned without gaps. The
//! actor stops itself after an idle period; the next command starts a new one that rebuilds the
//! state from the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use confab_domain::{
    ApplyContext, ChannelCommand, ChannelEvent, ChannelSid, ChannelState, CreateChannel,
    DomainError, Limits, MessageSid, Timestamp, UpdateMessage,
};
use confab_store::{ChannelCommit, Store};

use crate::bus::Bus;
use crate::error::ChannelError;
use crate::runtime::{now, RandomSids, Registry};

/// The changes of a message update (the actor loads the message itself).
#[derive(Debug, Clone, Default)]
pub struct MessageChange {
    /// New body.
    pub body: Option<String>,
    /// New attributes JSON text.
    pub attributes: Option<String>,
    /// New author identity.
    pub author: Option<String>,
    /// Who makes the change.
    pub last_updated_by: Option<String>,
    /// Override of the creation time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// An operation on a channel, executed by its actor.
#[derive(Debug, Clone)]
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

/// Executes one operation; replies with the committed events.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ChannelEvent>, ChannelError>")]
pub(crate) struct Execute {
    pub(crate) op: ChannelOp,
}

/// The state an actor works on, moved out of the actor while a command is in flight (no other
/// message is handled meanwhile, so nothing else can need it).
#[derive(Debug)]
struct ChannelCore {
    sid: ChannelSid,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    node_limits: Limits,
    /// `None` until loaded; after loading, the channel (`None` inside when it does not exist)
    /// and the limits in force for it.
    loaded: Option<(Option<ChannelState>, Limits)>,
    sids: RandomSids,
}

impl ChannelCore {
    /// Loads the channel and its service's limits from the store.
    async fn load(
        &mut self,
        create_in: Option<confab_domain::ServiceSid>,
    ) -> Result<(), ChannelError> {
        let snapshot = self.store.load_channel(self.sid).await?;
        let service_sid = match (&snapshot, create_in) {
            (Some(s), _) => s.channel.service_sid,
            (None, Some(service)) => service,
            (None, None) => {
                self.loaded = Some((None, self.node_limits.clone()));
                return Ok(());
            }
        };
        let service = self
            .store
            .get_service(service_sid)
            .await?
            .ok_or(ChannelError::ServiceNotFound)?;
        let mut limits = self.node_limits.clone();
        limits.members_per_channel = limits
            .members_per_channel
            .min(service.limits.channel_members as usize);
        let state = snapshot.map(|s| ChannelState::from_parts(s.channel, s.members, s.invites));
        self.loaded = Some((state, limits));
        Ok(())
    }

    async fn execute(&mut self, op: ChannelOp) -> Result<Vec<ChannelEvent>, ChannelError> {
        if self.loaded.is_none() {
            let create_in = match &op {
                ChannelOp::Create(c) => Some(c.service_sid),
                _ => None,
            };
            self.load(create_in).await?;
        }
        let result = self.execute_loaded(op).await;
        if let Err(ChannelError::Store(_)) = &result {
            // The in-memory state may be ahead of the store (the commit failed or its outcome
            // is unknown): drop it so the next command reloads what was really stored.
            self.loaded = None;
        }
        result
    }

    async fn execute_loaded(&mut self, op: ChannelOp) -> Result<Vec<ChannelEvent>, ChannelError> {
        let command = match op {
            ChannelOp::Create(create) => return self.create(create).await,
            ChannelOp::Apply(command) => command,
            ChannelOp::UpdateMessage { message, change } => {
                let current = self.stored_message(message).await?;
                ChannelCommand::UpdateMessage(UpdateMessage {
                    current,
                    body: change.body,
                    attributes: change.attributes,
                    author: change.author,
                    last_updated_by: change.last_updated_by,
                    date_created: change.date_created,
                    date_updated: change.date_updated,
                })
            }
            ChannelOp::RemoveMessage { message } => ChannelCommand::RemoveMessage {
                current: self.stored_message(message).await?,
            },
        };
        let Some((Some(state), limits)) = &mut self.loaded else {
            return Err(DomainError::ChannelNotFound.into());
        };
        let mut ctx = ApplyContext {
            now: now(),
            sids: &mut self.sids,
            limits,
        };
        let events = state.apply(command, &mut ctx)?;
        let commit = ChannelCommit {
            channel: state.channel().clone(),
            events,
        };
        self.store.commit(&commit).await?;
        if state.is_removed() {
            self.loaded = Some((None, limits.clone()));
        }
        self.bus.publish(&commit.events);
        Ok(commit.events)
    }

    async fn create(&mut self, create: CreateChannel) -> Result<Vec<ChannelEvent>, ChannelError> {
        let Some((slot, limits)) = &mut self.loaded else {
            return Err(ChannelError::Unavailable("channel not loaded"));
        };
        if slot.is_some() {
            return Err(DomainError::ChannelExists.into());
        }
        let mut ctx = ApplyContext {
            now: now(),
            sids: &mut self.sids,
            limits,
        };
        let (state, events) = ChannelState::create(create, &mut ctx)?;
        let commit = ChannelCommit {
            channel: state.channel().clone(),
            events,
        };
        self.store.commit(&commit).await?;
        *slot = Some(state);
        self.bus.publish(&commit.events);
        Ok(commit.events)
    }

    async fn stored_message(
        &self,
        sid: MessageSid,
    ) -> Result<confab_domain::Message, ChannelError> {
        if !matches!(self.loaded, Some((Some(_), _))) {
            return Err(DomainError::ChannelNotFound.into());
        }
        self.store
            .get_message(self.sid, sid)
            .await?
            .ok_or(ChannelError::Domain(DomainError::MessageNotFound))
    }
}

/// The actor owning one channel on this node.
#[derive(Debug)]
pub struct ChannelActor {
    core: Option<ChannelCore>,
    registry: Registry,
    generation: u64,
    last_used: Instant,
    idle_timeout: Duration,
    mailbox_capacity: usize,
}

impl ChannelActor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sid: ChannelSid,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        node_limits: Limits,
        registry: Registry,
        generation: u64,
        idle_timeout: Duration,
        mailbox_capacity: usize,
    ) -> Self {
        Self {
            core: Some(ChannelCore {
                sid,
                store,
                bus,
                node_limits,
                loaded: None,
                sids: RandomSids,
            }),
            registry,
            generation,
            last_used: Instant::now(),
            idle_timeout,
            mailbox_capacity,
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
                let result = core.execute(msg.op).await;
                (core, result)
            }
            .into_actor(self)
            .map(|(core, result), act, _ctx| {
                act.core = Some(core);
                act.last_used = Instant::now();
                result
            }),
        ))
    }
}
