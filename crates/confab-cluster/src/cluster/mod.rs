//! Cluster mode: the node's membership, channel leases, routing of commands to channel owners,
//! and the Redis event bus.
//!
//! Contracts:
//! - Membership: a node is live while its heartbeat key (TTL `node_ttl`, renewed every third of
//!   it) exists. A draining node removes its key at once.
//! - Ownership: a channel's owner is the node holding its lease (TTL `lease_ttl`, renewed every
//!   third of it by the channel's actor). Every commit is fenced by the lease epoch, so a node
//!   that lost its lease (paused, partitioned) cannot write; it drops the channel's actor.
//! - Routing: a command goes to the lease holder if it is live, else to the placement owner
//!   among live nodes, which takes the lease. A command that finds no owner is retried (with its
//!   idempotency key) until `route_deadline`; then it fails with `Unreachable`. Forwarding
//!   (`route.rs`) sends a command around an owner found gone (its inbox unread) or stalled
//!   (unable to commit) instead of waiting for `route_timeout`.
//! - Events: see [`RedisBroker`]; who is online: [`RedisPresence`].

mod broker;
mod keys;
mod presence;

use presence::Presence;
mod link;
mod route;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use broker::{RedisBroker, RedisPresence};
use confab_domain::ChannelSid;
use confab_store::{RedisStore, StoreError};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot, watch};
pub use wire::decodes;

use crate::actor::ChannelRequest;
use crate::broker::LocalBroker;
use crate::error::ChannelError;
use crate::metrics::RuntimeMetrics;
use wire::{InboxMessage, Outcome};

/// Settings of cluster mode.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster.
    pub node_id: String,
    /// A node whose heartbeat is older than this is dead.
    pub node_ttl: Duration,
    /// A channel lease not renewed for this long expires; a dead owner's channels move then.
    pub lease_ttl: Duration,
    /// How long a forwarded command waits for the owner's reply.
    pub route_timeout: Duration,
    /// How long a command keeps being retried while its channel has no reachable owner.
    pub route_deadline: Duration,
    /// Prefix of pub/sub topic names (the store's key prefix, so deployments sharing a server
    /// stay apart).
    pub prefix: String,
    /// Event batches a local listener may fall behind by.
    pub bus_capacity: usize,
}

/// A command forwarded to this node by another.
#[derive(Debug)]
pub(crate) struct InboundRequest {
    pub(crate) id: u64,
    pub(crate) from: String,
    pub(crate) channel: ChannelSid,
    pub(crate) request: ChannelRequest,
}

struct Inner {
    config: ClusterConfig,
    /// This process's name on the bus: the node id and a random boot tag, so that batches of an
    /// earlier process under the same node id are not taken for this one's.
    instance: String,
    /// `instance` as a JSON string, as it appears in what this process publishes.
    instance_json: String,
    /// Serializes heartbeats with `leave`, so that no heartbeat lands after the node left.
    beat_lock: tokio::sync::Mutex<()>,
    /// Bumped after each resubscription following a lost Redis connection.
    resets: watch::Sender<u64>,
    /// Typing signals from other nodes.
    typing: tokio::sync::broadcast::Sender<Arc<crate::broker::TypingSignal>>,
    /// User signals from other nodes.
    users: tokio::sync::broadcast::Sender<Arc<crate::presence::UserSignal>>,
    /// Nodes seen leaving the live set.
    departures: tokio::sync::broadcast::Sender<Arc<Vec<String>>>,
    /// Presence changes of local users, in order, for the presence task.
    presence: mpsc::UnboundedSender<Presence>,
    store: RedisStore,
    conn: ConnectionManager,
    live: RwLock<Vec<String>>,
    draining: AtomicBool,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    local: LocalBroker,
    link: mpsc::UnboundedSender<link::LinkCommand>,
    publisher: mpsc::UnboundedSender<link::Publish>,
    inbound: Mutex<Option<mpsc::UnboundedReceiver<InboundRequest>>>,
    metrics: Option<RuntimeMetrics>,
    shutdown: watch::Sender<bool>,
    owned: std::sync::atomic::AtomicI64,
    /// Nodes whose inbox was seen without a reader: since when, and when last. A node whose
    /// inbox stays unread for `DEAD_INBOX` is taken for dead (one reading could be a pub/sub
    /// reconnect); readings further apart than that start over.
    unread_inboxes: Mutex<HashMap<String, (Instant, Instant)>>,
}

/// This node's handle on the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.inner.config.node_id)
            .finish()
    }
}

impl Cluster {
    /// Joins the cluster at `url`: connects, announces this node, and starts the heartbeat and
    /// the pub/sub link. Must run inside a Tokio runtime that lives as long as the node.
    pub async fn start(
        url: &str,
        store: RedisStore,
        config: ClusterConfig,
        metrics: Option<RuntimeMetrics>,
    ) -> Result<Cluster, ChannelError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Backend(e.to_string()))?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let (publish_tx, publish_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let (resets, _) = watch::channel(0);
        let (presence_tx, presence_rx) = mpsc::unbounded_channel();
        let instance = format!("{}#{:016x}", config.node_id, rand::random::<u64>());
        let cluster = Cluster {
            inner: Arc::new(Inner {
                local: LocalBroker::new(config.bus_capacity),
                instance_json: serde_json::Value::from(instance.as_str()).to_string(),
                instance,
                beat_lock: tokio::sync::Mutex::new(()),
                resets,
                typing: tokio::sync::broadcast::channel(1024).0,
                users: tokio::sync::broadcast::channel(1024).0,
                departures: tokio::sync::broadcast::channel(64).0,
                presence: presence_tx,
                config,
                store,
                conn: conn.clone(),
                live: RwLock::new(Vec::new()),
                draining: AtomicBool::new(false),
                // Random, so that a late reply to an earlier process under the same node id
                // cannot complete one of this process's requests.
                next_id: AtomicU64::new(rand::random::<u64>() >> 1),
                pending: Mutex::new(HashMap::new()),
                link: link_tx,
                publisher: publish_tx,
                inbound: Mutex::new(Some(inbound_rx)),
                metrics,
                shutdown,
                owned: std::sync::atomic::AtomicI64::new(0),
                unread_inboxes: Mutex::new(HashMap::new()),
            }),
        };
        cluster.beat().await?;
        let (subscribed_tx, subscribed_rx) = oneshot::channel();
        tokio::spawn(link::subscriber(
            cluster.clone(),
            client,
            link_rx,
            inbound_tx,
            subscribed_tx,
        ));
        tokio::spawn(link::publisher(cluster.clone(), conn, publish_rx));
        tokio::spawn(cluster.clone().heartbeat_loop());
        tokio::spawn(cluster.clone().presence_loop(presence_rx));
        // Requests may be routed here as soon as the heartbeat is visible: wait for the inbox.
        let _ = tokio::time::timeout(cluster.inner.config.route_timeout, subscribed_rx).await;
        tracing::info!(node = %cluster.node_id(), "joined the cluster");
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// The settings in force.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The live nodes as last seen (sorted).
    pub fn live_nodes(&self) -> Vec<String> {
        self.inner
            .live
            .read()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The broker that publishes this node's channel events to the cluster.
    pub fn broker(&self) -> RedisBroker {
        RedisBroker::new(self.clone())
    }

    /// The presence service that tells the cluster who is online here.
    pub fn presence(&self) -> RedisPresence {
        RedisPresence::new(self.clone())
    }

    /// The store the cluster coordinates through.
    pub fn store(&self) -> &RedisStore {
        &self.inner.store
    }

    /// Whether this node is leaving: it takes no channel and the others stop routing to it.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Starts leaving the cluster: no new leases, the heartbeat is withdrawn at once so that
    /// placement stops choosing this node. Leases are released by the runtime's drain.
    pub async fn leave(&self) {
        let _beat = self.inner.beat_lock.lock().await;
        self.inner.draining.store(true, Ordering::SeqCst);
        let node = self.node_id().to_owned();
        if let Err(e) = self.timed(self.inner.store.forget_node(&node)).await {
            tracing::warn!(error = %e, "could not withdraw the heartbeat; it expires by itself");
        }
        if let Ok(mut live) = self.inner.live.write() {
            live.retain(|n| *n != node);
        }
    }

    /// Stops the background tasks (after `leave` and the runtime's drain).
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    /// How many channel leases this node holds.
    pub fn owned_channels(&self) -> i64 {
        self.inner.owned.load(Ordering::Relaxed)
    }

    /// A lease was taken (`+1`) or given up or lost (`-1`).
    pub(crate) fn owned_changed(&self, delta: i64) {
        self.inner.owned.fetch_add(delta, Ordering::Relaxed);
        if let Some(m) = self.metrics() {
            m.owned_channels.add(delta);
        }
    }

    /// Who holds `channel`'s lease, at which epoch.
    pub async fn lease_of(&self, channel: ChannelSid) -> Result<Option<(String, u64)>, StoreError> {
        self.timed(self.inner.store.lease_of(channel)).await
    }

    pub(crate) fn take_inbound(&self) -> Option<mpsc::UnboundedReceiver<InboundRequest>> {
        self.inner.inbound.lock().ok()?.take()
    }

    pub(crate) fn metrics(&self) -> Option<&RuntimeMetrics> {
        self.inner.metrics.as_ref()
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub(crate) fn local(&self) -> &LocalBroker {
        &self.inner.local
    }

    /// This process's name on the bus (node id and boot tag).
    pub(crate) fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// [`Cluster::instance`] as a JSON string.
    pub(crate) fn instance_json(&self) -> &str {
        &self.inner.instance_json
    }

    /// Counts resubscriptions after lost Redis connections.
    pub(crate) fn resets(&self) -> watch::Receiver<u64> {
        self.inner.resets.subscribe()
    }

    pub(crate) fn typing_signals(
        &self,
    ) -> tokio::sync::broadcast::Receiver<Arc<crate::broker::TypingSignal>> {
        self.inner.typing.subscribe()
    }

    pub(crate) fn typing_from_elsewhere(&self, typing: crate::broker::TypingSignal) {
        let _ = self.inner.typing.send(Arc::new(typing));
    }

    pub(crate) fn user_signals(
        &self,
    ) -> tokio::sync::broadcast::Receiver<Arc<crate::presence::UserSignal>> {
        self.inner.users.subscribe()
    }

    pub(crate) fn departures(&self) -> tokio::sync::broadcast::Receiver<Arc<Vec<String>>> {
        self.inner.departures.subscribe()
    }

    pub(crate) fn user_from_elsewhere(&self, user: crate::presence::UserSignal) {
        let _ = self.inner.users.send(Arc::new(user));
    }

    pub(crate) fn reset_happened(&self) {
        self.inner.resets.send_modify(|n| *n += 1);
    }

    /// Runs a Redis call, recording its duration and failure.
    pub(crate) async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        if let Some(m) = self.metrics() {
            m.redis_command_seconds
                .observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                m.redis_errors.inc();
            }
        }
        result
    }

    /// Takes `channel`'s lease for this node; its epoch, or `NotOwner` with the holder.
    pub(crate) async fn acquire(&self, channel: ChannelSid) -> Result<u64, ChannelError> {
        if self.is_draining() {
            return Err(ChannelError::NotOwner { holder: None });
        }
        let ttl = self.inner.config.lease_ttl.as_millis() as u64;
        let store = &self.inner.store;
        match self
            .timed(store.acquire_lease(channel, self.node_id(), ttl))
            .await?
        {
            Some(epoch) => Ok(epoch),
            None => {
                let holder = self.lease_of(channel).await.ok().flatten().map(|(n, _)| n);
                Err(ChannelError::NotOwner { holder })
            }
        }
    }

    /// Extends a lease this node holds; `Ok(false)` when it was lost.
    pub(crate) async fn renew(&self, channel: ChannelSid, epoch: u64) -> Result<bool, StoreError> {
        let ttl = self.inner.config.lease_ttl.as_millis() as u64;
        let store = &self.inner.store;
        self.timed(store.renew_lease(channel, self.node_id(), epoch, ttl))
            .await
    }

    /// Gives a lease up.
    pub(crate) async fn release(&self, channel: ChannelSid, epoch: u64) {
        let store = &self.inner.store;
        if let Err(e) = self
            .timed(store.release_lease(channel, self.node_id(), epoch))
            .await
        {
            tracing::warn!(%channel, error = %e, "could not release a lease; it expires by itself");
        }
    }

    /// Where a command for `channel` should go: the live lease holder, else placement's choice
    /// among live nodes (this node when it knows no other).
    /// `avoid` names nodes found gone or stalled for this command: placement passes them over
    /// (unless no other node is left), but a live node holding the lease is still the target
    /// (it took the channel back: it is neither).
    pub(crate) async fn target(&self, channel: ChannelSid, avoid: &[String]) -> String {
        let me = self.node_id();
        let mut live = self.live_nodes();
        if self.is_draining() {
            live.retain(|n| n != me);
        }
        if let Ok(Some((holder, _))) = self.lease_of(channel).await {
            if live.contains(&holder) || (holder == me && !self.is_draining()) {
                return holder;
            }
        }
        if live.iter().any(|n| !avoid.contains(n)) {
            live.retain(|n| !avoid.contains(n));
        }
        crate::placement::owner(channel, &live)
            .cloned()
            .unwrap_or_else(|| me.to_owned())
    }

    /// Sends the outcome of a forwarded command back to the node that sent it.
    pub(crate) fn reply(&self, to: &str, id: u64, outcome: Outcome) {
        match serde_json::to_string(&InboxMessage::Reply { id, outcome }) {
            Ok(payload) => {
                let _ = self.inner.publisher.send(link::Publish {
                    topics: vec![keys::inbox_topic(&self.inner.config.prefix, to)],
                    payload,
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a reply"),
        }
    }

    /// Completes a command this node forwarded.
    pub(crate) fn complete(&self, id: u64, outcome: Outcome) {
        let waiter = self
            .inner
            .pending
            .lock()
            .ok()
            .and_then(|mut pending| pending.remove(&id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(outcome);
        }
    }

    /// Hands a follow or unfollow to the subscriber task.
    pub(crate) fn send_link(&self, command: link::LinkCommand) {
        let _ = self.inner.link.send(command);
    }

    /// Queues a publish; the publisher sends queued publishes in order, pipelined.
    pub(crate) fn publish(&self, publish: link::Publish) {
        let _ = self.inner.publisher.send(publish);
    }

    async fn beat(&self) -> Result<(), StoreError> {
        let _beat = self.inner.beat_lock.lock().await;
        let store = &self.inner.store;
        let ttl = self.inner.config.node_ttl.as_millis() as u64;
        if !self.is_draining() {
            self.timed(store.heartbeat(self.node_id(), ttl)).await?;
            let key = self.presence_key(self.node_id());
            let mut conn = self.inner.conn.clone();
            let _: redis::RedisResult<()> = redis::cmd("PEXPIRE")
                .arg(key)
                .arg(ttl * 3)
                .query_async(&mut conn)
                .await;
        }
        let mut live = self.timed(store.live_nodes()).await?;
        if self.is_draining() {
            live.retain(|n| n != self.node_id());
        }
        if let Some(m) = self.metrics() {
            m.cluster_nodes.set(live.len() as i64);
        }
        let mut departed = Vec::new();
        if let Ok(mut current) = self.inner.live.write() {
            if *current != live {
                tracing::info!(nodes = ?live, "live nodes changed");
                departed = current
                    .iter()
                    .filter(|n| !live.contains(n) && n.as_str() != self.node_id())
                    .cloned()
                    .collect();
            }
            *current = live;
        }
        if !departed.is_empty() {
            let _ = self.inner.departures.send(Arc::new(departed));
        }
        Ok(())
    }

    async fn heartbeat_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let period = (self.inner.config.node_ttl / 3).max(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "cluster heartbeat failed");
            }
        }
    }
}
