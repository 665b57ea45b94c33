//! `ChannelRuntime`: finds or starts the actor of a channel and sends it commands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use confab_domain::{Caller, ChannelEvent, ChannelSid, Limits, SidSource, Timestamp};
use confab_store::{Store, StoreError};

use crate::actor::{ChannelActor, ChannelOp, ChannelRequest, Execute, Release};
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::error::ChannelError;
use crate::policy::Policies;

/// Commands forwarded by other nodes that run at once on this node.
const FORWARDED_IN_FLIGHT: usize = 4096;

/// The wall clock as the domain wants it.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        // A clock before 1970 is a broken host; time zero keeps ordering rules intact.
        .unwrap_or(0);
    Timestamp(millis)
}

/// SIDs that start with the time they were made, in milliseconds (48 bits), followed by 80 bits
/// from the thread-local random generator. A store's index by SID then grows at its end like
/// its index by time: measured with the embedded store and 1,000 busy channels, a random SID put
/// each message on a page of its own in the messages' SID index, a page the writer had to read
/// back and write out again in every batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomSids;

impl SidSource for RandomSids {
    fn next_bits(&mut self) -> u128 {
        time_ordered_bits(now().millis(), rand::random())
    }
}

/// The bits of a SID made at `millis` (wrapping after 8,900 years) with `random` below them.
fn time_ordered_bits(millis: i64, random: u128) -> u128 {
    const RANDOM_BITS: u32 = 80;
    let time = (millis as u64 & ((1 << 48) - 1)) as u128;
    (time << RANDOM_BITS) | (random & ((1 << RANDOM_BITS) - 1))
}

/// Settings of the channel runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Limits the domain enforces.
    pub limits: Limits,
    /// An actor with no command for this long stops; the next command rebuilds it.
    pub idle_timeout: Duration,
    /// Commands that may queue at one channel before senders wait (backpressure).
    pub mailbox_capacity: usize,
    /// Threads (actix arbiters) the channel actors are spread over.
    pub arbiters: usize,
    /// Recent posts per channel whose client ids are remembered for idempotent retries.
    pub client_id_window: usize,
    /// Where to record metrics, if anywhere.
    pub metrics: Option<crate::metrics::RuntimeMetrics>,
    /// Cluster mode: commands go to the node that owns the channel.
    pub cluster: Option<Cluster>,
    /// How long authorization decisions may use a service's roles and a user's service role
    /// read earlier (see [`Policies`]): a change made through another node applies within it.
    pub policy_ttl: Duration,
    /// Webhook calls and delivery; `None` calls no webhook (and stores no webhook job).
    pub webhooks: Option<confab_webhooks::Webhooks>,
    /// The media blob store: the bytes of a removed message's media are deleted from it.
    /// `None` deletes the media's record only.
    pub media: Option<Arc<dyn confab_media::BlobStore>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(300),
            mailbox_capacity: 256,
            arbiters: 2,
            client_id_window: 1000,
            metrics: None,
            cluster: None,
            policy_ttl: Duration::from_millis(500),
            webhooks: None,
            media: None,
        }
    }
}

/// The map of live channel actors. Each entry carries a generation so that an actor stopping
/// for idleness removes only its own entry, never a successor's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    actors: Arc<Mutex<HashMap<ChannelSid, LiveActor>>>,
}

/// A live actor and its generation.
type LiveActor = (u64, Addr<ChannelActor>);

impl Registry {
    pub(crate) fn remove(&self, sid: ChannelSid, generation: u64) {
        if let Ok(mut actors) = self.actors.lock() {
            if actors.get(&sid).is_some_and(|(g, _)| *g == generation) {
                actors.remove(&sid);
            }
        }
    }

    fn len(&self) -> usize {
        self.actors.lock().map(|a| a.len()).unwrap_or(0)
    }
}

struct Inner {
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    policies: Policies,
    config: RuntimeConfig,
    registry: Registry,
    arbiters: Vec<Arbiter>,
    next_generation: AtomicU64,
    next_arbiter: AtomicUsize,
}

/// Routes channel operations to channel actors. Cheap to clone.
#[derive(Clone)]
pub struct ChannelRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChannelRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRuntime")
            .field("active_channels", &self.active_channels())
            .finish()
    }
}

impl ChannelRuntime {
    /// Starts the runtime's arbiters (and, in cluster mode, serves commands other nodes
    /// forward here). Must be called inside an actix system.
    pub fn new(store: Arc<dyn Store>, broker: Arc<dyn Broker>, config: RuntimeConfig) -> Self {
        let arbiters = (0..config.arbiters.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let inbound = config.cluster.as_ref().and_then(Cluster::take_inbound);
        let runtime = Self {
            inner: Arc::new(Inner {
                policies: Policies::new(store.clone(), config.policy_ttl),
                store,
                broker,
                config,
                registry: Registry::default(),
                arbiters,
                next_generation: AtomicU64::new(0),
                next_arbiter: AtomicUsize::new(0),
            }),
        };
        if let (Some(mut inbound), Some(cluster)) = (inbound, runtime.inner.config.cluster.clone())
        {
            let runtime = runtime.clone();
            // Bounds the forwarded commands in flight; beyond it requests wait in the inbox
            // queue (their senders time out and retry rather than pile up work here).
            let in_flight = Arc::new(tokio::sync::Semaphore::new(FORWARDED_IN_FLIGHT));
            tokio::spawn(async move {
                while let Some(request) = inbound.recv().await {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        return;
                    };
                    let runtime = runtime.clone();
                    let cluster = cluster.clone();
                    tokio::spawn(async move {
                        let result = runtime
                            .execute_local(request.channel, request.request)
                            .await;
                        cluster.reply(&request.from, request.id, result.into());
                        drop(permit);
                    });
                }
            });
        }
        runtime
    }

    /// The cluster this node is part of, if any.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.config.cluster.as_ref()
    }

    /// The store the runtime writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The node's cache of what authorization decisions read.
    pub fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    /// The broker the runtime publishes to.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.inner.broker
    }

    /// The node's webhooks, if any.
    pub fn webhooks(&self) -> Option<&confab_webhooks::Webhooks> {
        self.inner.config.webhooks.as_ref()
    }

    /// The limits in force on this node.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// How many channel actors are alive.
    pub fn active_channels(&self) -> usize {
        self.inner.registry.len()
    }

    /// Executes `op` for `caller` on `channel` through its actor, on whichever node owns the
    /// channel; returns the committed events in `seq` order. The actor authorizes the caller
    /// against the channel's state (`confab_domain::policy`): a refusal is a `DomainError`.
    ///
    /// In cluster mode a command that finds the owner moving (lease changing hands, owner dead
    /// or draining) is sent again until `route_deadline`, with the same idempotency key: a
    /// message post without a client id gets one here, so a retry after an unanswered attempt
    /// never posts twice. Other commands retried after an unanswered attempt may be refused as
    /// already done (a second join reports `AlreadyMember`).
    pub async fn execute(
        &self,
        channel: ChannelSid,
        caller: Caller,
        op: ChannelOp,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        self.execute_request(
            channel,
            ChannelRequest {
                caller,
                op,
                webhooks: false,
            },
        )
        .await
    }

    /// [`ChannelRuntime::execute`] with the whole request: for the account, `webhooks` asks for
    /// post-event webhooks (a REST call with `X-Twilio-Webhook-Enabled: true`).
    pub async fn execute_request(
        &self,
        channel: ChannelSid,
        request: ChannelRequest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let ChannelRequest {
            caller,
            op,
            webhooks,
        } = request;
        let Some(cluster) = self.inner.config.cluster.clone() else {
            return self
                .execute_local(
                    channel,
                    ChannelRequest {
                        caller,
                        op,
                        webhooks,
                    },
                )
                .await;
        };
        let op = match op {
            ChannelOp::Apply(confab_domain::ChannelCommand::PostMessage(mut post))
                if post.client_id.is_none() =>
            {
                post.client_id = Some(format!("route-{:032x}", rand::random::<u128>()));
                ChannelOp::Apply(confab_domain::ChannelCommand::PostMessage(post))
            }
            op => op,
        };
        let request = ChannelRequest {
            caller,
            op,
            webhooks,
        };
        let deadline = Instant::now() + cluster.config().route_deadline;
        let mut hint: Option<String> = None;
        // Nodes found gone or stalled while this command was routed: not tried again.
        let mut avoid: Vec<String> = Vec::new();
        // Whether an earlier attempt may have run (no answer, or the store failed mid-commit).
        let mut maybe_ran = false;
        let mut backoff = Duration::from_millis(20);
        loop {
            let local_actor = self
                .inner
                .registry
                .actors
                .lock()
                .map(|a| a.contains_key(&channel))
                .unwrap_or(false);
            let target = match hint.take() {
                Some(node) => node,
                None if local_actor && !cluster.is_draining() => cluster.node_id().to_owned(),
                None => cluster.target(channel, &avoid).await,
            };
            let remote = target != cluster.node_id();
            let result = if remote {
                cluster.forward(&target, channel, &request).await
            } else {
                self.execute_local(channel, request.clone()).await
            };
            let retry = match &result {
                Err(ChannelError::NotOwner { holder }) => {
                    hint = holder.clone().filter(|h| *h != target);
                    true
                }
                Err(ChannelError::OwnerGone { maybe_ran: ran }) => {
                    tracing::debug!(%channel, %target, "owner gone or stalled; routing around it");
                    maybe_ran |= ran;
                    true
                }
                Err(ChannelError::Unreachable(why)) => {
                    tracing::debug!(%channel, %target, %why, "owner unreachable; retrying");
                    maybe_ran = true;
                    true
                }
                // Only commands whose repeat is recognised: a post (it has a client id) and a
                // creation (a repeat finds its own channel).
                Err(ChannelError::Store(StoreError::Backend(_)))
                    if matches!(
                        request.op,
                        ChannelOp::Create(_)
                            | ChannelOp::Apply(confab_domain::ChannelCommand::PostMessage(_))
                    ) =>
                {
                    maybe_ran = true;
                    true
                }
                _ => false,
            };
            let metrics = cluster.metrics();
            if !retry {
                if maybe_ran {
                    if let (
                        ChannelOp::Create(_),
                        Err(ChannelError::Domain(confab_domain::DomainError::ChannelExists)),
                    ) = (&request.op, &result)
                    {
                        // The channel's SID is fresh for every request: the channel that
                        // exists is the one an earlier attempt created.
                        return self.creation_of(channel).await.ok_or(ChannelError::Domain(
                            confab_domain::DomainError::ChannelExists,
                        ));
                    }
                }
                if remote {
                    if let Some(m) = metrics {
                        m.routed.with_label_values(&["ok"]).inc();
                    }
                }
                return result;
            }
            if Instant::now() >= deadline {
                if let Some(m) = metrics {
                    m.routed.with_label_values(&["failed"]).inc();
                }
                return match result {
                    Err(ChannelError::NotOwner { .. } | ChannelError::OwnerGone { .. }) => Err(
                        ChannelError::Unreachable("no node could take the channel in time".into()),
                    ),
                    other => other,
                };
            }
            if let Some(m) = metrics {
                m.routed.with_label_values(&["retried"]).inc();
            }
            // A node newly found gone is routed around at once; otherwise the channel is
            // moving (or every node was found gone): back off.
            let rerouted =
                matches!(result, Err(ChannelError::OwnerGone { .. })) && !avoid.contains(&target);
            if rerouted {
                avoid.push(target.clone());
            }
            if hint.is_none() && !rerouted {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }

    /// The creation event of `channel`, as its creator was answered.
    async fn creation_of(&self, channel: ChannelSid) -> Option<Vec<ChannelEvent>> {
        let events = self.inner.store.events_after(channel, 0, 16).await.ok()?;
        let created = events.into_iter().find(|e| {
            matches!(
                e.kind,
                confab_domain::ChannelEventKind::ChannelCreated { .. }
            )
        })?;
        Some(vec![created])
    }

    /// Executes `op` on this node's actor of `channel`; in cluster mode it refuses with
    /// `NotOwner` when another node holds the channel.
    pub(crate) async fn execute_local(
        &self,
        channel: ChannelSid,
        request: ChannelRequest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        // An actor that stopped for idleness between lookup and send drops the command unrun;
        // a fresh actor is then started and the command sent again.
        for _ in 0..3 {
            let addr = self.actor(channel)?;
            let execute = Execute {
                request: request.clone(),
            };
            match addr.send(execute).await {
                Ok(result) => {
                    self.record(&result);
                    return result;
                }
                Err(MailboxError::Closed) => {
                    if let Ok(mut actors) = self.inner.registry.actors.lock() {
                        if actors.get(&channel).is_some_and(|(_, a)| *a == addr) {
                            actors.remove(&channel);
                        }
                    }
                }
                Err(MailboxError::Timeout) => return Err(ChannelError::Unavailable("timeout")),
            }
        }
        Err(ChannelError::Unavailable("channel actor keeps stopping"))
    }

    fn record(&self, result: &Result<Vec<ChannelEvent>, ChannelError>) {
        let Some(m) = &self.inner.config.metrics else {
            return;
        };
        let outcome = match result {
            Ok(events) => {
                let added = events
                    .iter()
                    .filter(|e| {
                        matches!(e.kind, confab_domain::ChannelEventKind::MessageAdded { .. })
                    })
                    .count();
                m.messages_received.inc_by(added as u64);
                "ok"
            }
            Err(ChannelError::Domain(_)) => "refused",
            Err(_) => "failed",
        };
        m.commands.with_label_values(&[outcome]).inc();
    }

    fn actor(&self, channel: ChannelSid) -> Result<Addr<ChannelActor>, ChannelError> {
        let inner = &self.inner;
        let mut actors = inner
            .registry
            .actors
            .lock()
            .map_err(|_| ChannelError::Unavailable("registry poisoned"))?;
        if let Some((_, addr)) = actors.get(&channel) {
            if addr.connected() {
                return Ok(addr.clone());
            }
        }
        let generation = inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let index = inner.next_arbiter.fetch_add(1, Ordering::Relaxed) % inner.arbiters.len();
        let actor = ChannelActor::new(
            channel,
            inner.store.clone(),
            inner.broker.clone(),
            inner.policies.clone(),
            inner.config.limits.clone(),
            inner.registry.clone(),
            generation,
            inner.config.idle_timeout,
            inner.config.mailbox_capacity,
            inner.config.client_id_window,
            inner
                .config
                .metrics
                .as_ref()
                .map(|m| m.channel_actors.clone()),
            inner.config.cluster.clone(),
            inner.config.webhooks.clone(),
            inner.config.media.clone(),
        );
        let addr = ChannelActor::start_in_arbiter(&inner.arbiters[index].handle(), move |_| actor);
        actors.insert(channel, (generation, addr.clone()));
        Ok(addr)
    }

    /// Gives every channel up: each actor finishes its command in flight, releases its lease
    /// and stops, so that other nodes can take the channels at once (drain).
    pub async fn release_all(&self) {
        let actors: Vec<Addr<ChannelActor>> = self
            .inner
            .registry
            .actors
            .lock()
            .map(|a| a.values().map(|(_, addr)| addr.clone()).collect())
            .unwrap_or_default();
        let count = actors.len();
        futures::future::join_all(actors.iter().map(|addr| addr.send(Release))).await;
        tracing::info!(channels = count, "released every channel");
    }

    /// Stops every channel actor and the arbiters. Commands in flight finish first.
    pub fn shutdown(&self) {
        for arbiter in &self.inner.arbiters {
            arbiter.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::time_ordered_bits;

    #[test]
    fn sids_made_later_sort_after_whatever_their_random_part() {
        let early = time_ordered_bits(1_700_000_000_000, u128::MAX);
        let later = time_ordered_bits(1_700_000_000_001, 0);
        assert!(early < later);
        assert_eq!(early >> 80, 1_700_000_000_000);
        assert_eq!(
            early & ((1 << 80) - 1),
            (1 << 80) - 1,
            "80 random bits are kept"
        );
        assert_ne!(
            time_ordered_bits(5, 1),
            time_ordered_bits(5, 2),
            "the same millisecond still gives distinct SIDs"
        );
    }
}
