//! The node's two Redis pub/sub connections: the subscriber (this node's inbox and the topics
//! it follows) and the publisher (event batches, requests' replies), which pipelines whatever
//! has queued up into one round trip.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_domain::ChannelSid;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::keys::{inbox_topic, topic_name, users_topic};
use super::wire::{published_by, InboxMessage, Published};
use super::{Cluster, InboundRequest};
use crate::actor::ChannelRequest;
use crate::broker::{Broker, EventBatch, Topic};

/// Follows or stops following a topic.
#[derive(Debug)]
pub(crate) enum LinkCommand {
    /// Subscribe; the sender is told once the subscription is in place.
    Follow(Topic, Option<oneshot::Sender<()>>),
    Unfollow(Topic),
}

/// One payload to publish on one or more topics.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) topics: Vec<String>,
    pub(crate) payload: String,
}

/// Most publishes sent in one pipeline.
const PIPELINE: usize = 256;

/// How long a failed pipeline is retried before its batches are given up (listeners then repair
/// from the store on the channel's next event or synchronisation mark).
const PUBLISH_RETRY: Duration = Duration::from_secs(5);

/// How long a stopping node keeps flushing queued publishes (replies, last batches).
const FLUSH_ON_SHUTDOWN: Duration = Duration::from_secs(2);

/// Sends queued publishes, pipelined, in the order they were queued (so a channel's batches
/// leave in `seq` order). A failed pipeline is sent again (Redis may be restarting; the
/// connection manager reconnects after a failure) for up to `PUBLISH_RETRY`: receivers drop
/// copies by `seq`. On shutdown, what is queued is flushed first, for up to `FLUSH_ON_SHUTDOWN`.
pub(crate) async fn publisher(
    cluster: Cluster,
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Publish>,
) {
    let mut shutdown = cluster.shutdown_signal();
    let mut stopping: Option<Instant> = None;
    loop {
        let first = match stopping {
            Some(since) => match queue.try_recv() {
                Ok(item) if since.elapsed() < FLUSH_ON_SHUTDOWN => item,
                _ => return,
            },
            None => tokio::select! {
                _ = shutdown.changed() => {
                    stopping = Some(Instant::now());
                    continue;
                }
                item = queue.recv() => match item {
                    Some(item) => item,
                    None => return,
                },
            },
        };
        let mut pipe = redis::pipe();
        let add = |item: Publish, pipe: &mut redis::Pipeline| {
            for topic in item.topics {
                pipe.cmd("PUBLISH").arg(topic).arg(&item.payload).ignore();
            }
        };
        add(first, &mut pipe);
        while pipe.len() < PIPELINE {
            match queue.try_recv() {
                Ok(item) => add(item, &mut pipe),
                Err(_) => break,
            }
        }
        let since = Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            let started = Instant::now();
            let result: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            if let Some(m) = cluster.metrics() {
                m.redis_command_seconds
                    .observe(started.elapsed().as_secs_f64());
                if result.is_err() {
                    m.redis_errors.inc();
                }
            }
            let Err(e) = result else {
                break;
            };
            if since.elapsed() >= PUBLISH_RETRY || stopping.is_some() {
                tracing::warn!(error = %e, "publishing to Redis failed; listeners repair from the store");
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// Most follow / unfollow commands applied in one round trip.
const SUBSCRIBE_BATCH: usize = 512;

/// Applies follow and unfollow commands in order to `followed`, then subscribes to what is new
/// and unsubscribes from what is gone, one command each; acknowledges the follows and sends
/// synchronisation marks for newly followed channels once subscribed. `false`: the connection
/// failed; the waiters are released at once (their acks dropped) and the topics are subscribed
/// again after the reconnect, whose reset makes every session resume.
async fn apply_follows(
    cluster: &Cluster,
    prefix: &str,
    followed: &mut HashMap<String, Topic>,
    sink: &mut redis::aio::PubSubSink,
    batch: Vec<LinkCommand>,
    patience: Duration,
) -> bool {
    // Whether each topic the batch touches was followed before it: the diff is over those only
    // (the node may follow tens of thousands of topics).
    let mut touched: HashMap<String, bool> = HashMap::new();
    let mut acks = Vec::new();
    for command in batch {
        let (topic, follow) = match command {
            LinkCommand::Follow(topic, ack) => {
                acks.extend(ack);
                (topic, true)
            }
            LinkCommand::Unfollow(topic) => (topic, false),
        };
        let name = topic_name(prefix, &topic);
        touched
            .entry(name.clone())
            .or_insert_with(|| followed.contains_key(&name));
        if follow {
            followed.insert(name, topic);
        } else {
            followed.remove(&name);
        }
    }
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (name, was) in touched {
        match (was, followed.contains_key(&name)) {
            (false, true) => added.push(name),
            (true, false) => removed.push(name),
            _ => {}
        }
    }
    if !added.is_empty() {
        let done = tokio::time::timeout(patience, sink.subscribe(&added)).await;
        if !matches!(done, Ok(Ok(()))) {
            return false;
        }
        for name in &added {
            if let Some(Topic::Channel(channel)) = followed.get(name) {
                sync(cluster, *channel);
            }
        }
    }
    for ack in acks {
        let _ = ack.send(());
    }
    if !removed.is_empty() {
        let done = tokio::time::timeout(patience, sink.unsubscribe(&removed)).await;
        if !matches!(done, Ok(Ok(()))) {
            return false;
        }
    }
    true
}

/// Keeps this node subscribed to its inbox and to the topics its listeners follow, across
/// Redis reconnects; hands requests to the runtime, replies to their waiters, and remote event
/// batches to the local bus. The connection is pinged every `node_ttl`: a connection that does
/// not answer within `route_timeout` is dropped and made again.
pub(crate) async fn subscriber(
    cluster: Cluster,
    client: redis::Client,
    mut commands: mpsc::UnboundedReceiver<LinkCommand>,
    inbound: mpsc::UnboundedSender<InboundRequest>,
    subscribed: oneshot::Sender<()>,
) {
    let prefix = cluster.config().prefix.clone();
    let inbox = inbox_topic(&prefix, cluster.node_id());
    let patience = cluster.config().route_timeout;
    let mut shutdown = cluster.shutdown_signal();
    let mut followed: HashMap<String, Topic> = HashMap::new();
    let mut subscribed = Some(subscribed);
    let mut backoff = Duration::from_millis(50);
    let mut ping = tokio::time::interval(cluster.config().node_ttl.max(Duration::from_millis(100)));
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connected = match tokio::time::timeout(patience, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Some(pubsub),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, ?backoff, "cannot reach Redis for pub/sub; retrying");
                None
            }
            Err(_) => None,
        };
        let mut names: Vec<String> = vec![inbox.clone(), users_topic(&prefix)];
        names.extend(followed.keys().cloned());
        let ready = match connected {
            Some(pubsub) => {
                let (mut sink, stream) = pubsub.split();
                match tokio::time::timeout(patience, sink.subscribe(names)).await {
                    Ok(Ok(())) => Some((sink, stream)),
                    _ => None,
                }
            }
            None => None,
        };
        let Some((mut sink, mut stream)) = ready else {
            if let Some(m) = cluster.metrics() {
                m.redis_errors.inc();
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        backoff = Duration::from_millis(50);
        match subscribed.take() {
            Some(first) => {
                let _ = first.send(());
            }
            None => {
                tracing::info!(
                    topics = followed.len(),
                    "resubscribed after a Redis reconnect"
                );
                // Whatever was published while we were away is gone from pub/sub, membership
                // changes included: every session resumes, reading its channels from the store
                // (so no synchronisation mark is needed here).
                cluster.reset_happened();
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(patience, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
                command = commands.recv() => {
                    let Some(first) = command else {
                        return;
                    };
                    // Whatever else is queued goes in the same SUBSCRIBE / UNSUBSCRIBE round
                    // trips (an init storm follows thousands of user topics at once).
                    let mut batch = vec![first];
                    while batch.len() < SUBSCRIBE_BATCH {
                        match commands.try_recv() {
                            Ok(command) => batch.push(command),
                            Err(_) => break,
                        }
                    }
                    if !apply_follows(&cluster, &prefix, &mut followed, &mut sink, batch, patience).await {
                        break;
                    }
                }
                message = stream.next() => match message {
                    None => break,
                    Some(message) => {
                        let payload = message.get_payload_bytes();
                        if message.get_channel_name() == inbox {
                            inbox_message(&cluster, payload, &inbound);
                        } else {
                            batch_message(&cluster, payload);
                        }
                    }
                },
            }
        }
        if let Some(m) = cluster.metrics() {
            m.redis_errors.inc();
        }
        tracing::warn!("Redis pub/sub connection lost; reconnecting");
    }
}

fn inbox_message(
    cluster: &Cluster,
    payload: &[u8],
    inbound: &mpsc::UnboundedSender<InboundRequest>,
) {
    match serde_json::from_slice::<InboxMessage>(payload) {
        Ok(InboxMessage::Request {
            id,
            from,
            channel,
            op,
            caller,
            webhooks,
        }) => {
            let _ = inbound.send(InboundRequest {
                id,
                from,
                channel,
                request: ChannelRequest {
                    caller,
                    op: *op,
                    webhooks,
                },
            });
        }
        Ok(InboxMessage::Reply { id, outcome }) => cluster.complete(id, outcome),
        Err(e) => tracing::warn!(error = %e, "undecodable inbox message dropped"),
    }
}

fn batch_message(cluster: &Cluster, payload: &[u8]) {
    if published_by(payload, cluster.instance_json()) {
        return;
    }
    let published: Published<EventBatch> = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable event batch dropped");
            return;
        }
    };
    match published {
        Published::Batch { origin, .. }
        | Published::Typing { origin, .. }
        | Published::User { origin, .. }
            if origin == cluster.instance() => {}
        // Copies (a batch on a channel topic and on a user topic) and stale batches (from an
        // owner that was superseded) are dropped by the hub, which knows what it applied; an
        // empty batch is a new owner's synchronisation mark.
        Published::Batch { batch, .. } => cluster.local().publish(Arc::new(batch)),
        Published::Typing { typing, .. } => cluster.typing_from_elsewhere(typing),
        Published::User { user, .. } => cluster.user_from_elsewhere(user),
    }
}

/// Publishes a synchronisation mark for `channel` to local listeners: its events go up to the
/// stored `last_seq`, so anything pub/sub did not bring is fetched from the store.
fn sync(cluster: &Cluster, channel: ChannelSid) {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        match cluster.timed(cluster.store().channel_record(channel)).await {
            Ok(Some(record)) => cluster.local().publish(Arc::new(EventBatch {
                channel: record,
                events: Vec::new(),
            })),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%channel, error = %e, "cannot sync a channel after subscribing")
            }
        }
    });
}
