//! The node's two Redis pub/sub connections: the subscriber (this node's inbox and the topics
//! it follows) and the publisher (event batches, requests' replies), which pipelines whatever
//! has queued up into one round trip.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_domain::{ChannelSid, ServiceSid};
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::wire::{InboxMessage, Published};
use super::{Cluster, InboundRequest};
use crate::bus::{Bus, EventBatch, Topic};

/// Follows or stops following a topic.
#[derive(Debug)]
pub(crate) enum LinkCommand {
    Follow(Topic),
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

pub(crate) fn inbox_topic(prefix: &str, node: &str) -> String {
    format!("{prefix}:inbox:{node}")
}

pub(crate) fn topic_name(prefix: &str, topic: &Topic) -> String {
    match topic {
        Topic::Channel(sid) => format!("{prefix}:ch:{sid}"),
        Topic::User(service, identity) => user_topic(prefix, *service, identity),
    }
}

pub(crate) fn user_topic(prefix: &str, service: ServiceSid, identity: &str) -> String {
    format!("{prefix}:user:{service}:{identity}")
}

/// Sends queued publishes, pipelined, in the order they were queued (so a channel's batches
/// leave in `seq` order). A failed pipeline is logged and dropped: pub/sub is at most once, and
/// receivers repair from the store.
pub(crate) async fn publisher(
    cluster: Cluster,
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Publish>,
) {
    let mut shutdown = cluster.shutdown_signal();
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => return,
            item = queue.recv() => match item {
                Some(item) => item,
                None => return,
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
        let started = Instant::now();
        let result: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        if let Some(m) = cluster.metrics() {
            m.redis_command_seconds
                .observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                m.redis_errors.inc();
            }
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, "publishing to Redis failed; listeners repair from the store");
        }
    }
}

/// Keeps this node subscribed to its inbox and to the topics its listeners follow, across
/// Redis reconnects; hands requests to the runtime, replies to their waiters, and remote event
/// batches to the local bus.
pub(crate) async fn subscriber(
    cluster: Cluster,
    client: redis::Client,
    mut commands: mpsc::UnboundedReceiver<LinkCommand>,
    inbound: mpsc::UnboundedSender<InboundRequest>,
    subscribed: oneshot::Sender<()>,
) {
    let prefix = cluster.config().prefix.clone();
    let inbox = inbox_topic(&prefix, cluster.node_id());
    let mut shutdown = cluster.shutdown_signal();
    let mut followed: HashMap<String, Topic> = HashMap::new();
    // Newest seq handed to local listeners per channel: a batch can arrive on a channel topic
    // and on a user topic; the second copy is dropped.
    let mut delivered: HashMap<ChannelSid, u64> = HashMap::new();
    let mut subscribed = Some(subscribed);
    let mut backoff = Duration::from_millis(50);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(e) => {
                if let Some(m) = cluster.metrics() {
                    m.redis_errors.inc();
                }
                tracing::warn!(error = %e, ?backoff, "cannot reach Redis for pub/sub; retrying");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut names: Vec<String> = vec![inbox.clone()];
        names.extend(followed.keys().cloned());
        if let Err(e) = sink.subscribe(names).await {
            tracing::warn!(error = %e, "cannot subscribe; retrying");
            tokio::time::sleep(backoff).await;
            continue;
        }
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
                // Whatever was published while we were away is gone from pub/sub.
                for topic in followed.values() {
                    if let Topic::Channel(channel) = topic {
                        sync(&cluster, *channel);
                    }
                }
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                command = commands.recv() => match command {
                    None => return,
                    Some(LinkCommand::Follow(topic)) => {
                        let name = topic_name(&prefix, &topic);
                        if followed.insert(name.clone(), topic.clone()).is_none() {
                            if sink.subscribe(&name).await.is_err() {
                                break;
                            }
                            if let Topic::Channel(channel) = topic {
                                sync(&cluster, channel);
                            }
                        }
                    }
                    Some(LinkCommand::Unfollow(topic)) => {
                        let name = topic_name(&prefix, &topic);
                        if followed.remove(&name).is_some() && sink.unsubscribe(&name).await.is_err() {
                            break;
                        }
                    }
                },
                message = stream.next() => match message {
                    None => break,
                    Some(message) => {
                        let payload = message.get_payload_bytes();
                        if message.get_channel_name() == inbox {
                            inbox_message(&cluster, payload, &inbound);
                        } else {
                            batch_message(&cluster, payload, &mut delivered);
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
        }) => {
            let _ = inbound.send(InboundRequest {
                id,
                from,
                channel,
                op: *op,
            });
        }
        Ok(InboxMessage::Reply { id, outcome }) => cluster.complete(id, outcome),
        Err(e) => tracing::warn!(error = %e, "undecodable inbox message dropped"),
    }
}

fn batch_message(cluster: &Cluster, payload: &[u8], delivered: &mut HashMap<ChannelSid, u64>) {
    let published: Published<EventBatch> = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable event batch dropped");
            return;
        }
    };
    if published.origin == cluster.node_id() {
        return;
    }
    let batch = published.batch;
    let Some(last) = batch.events.last().map(|e| e.seq) else {
        return;
    };
    let newest = delivered.entry(batch.channel.sid).or_insert(0);
    if last <= *newest {
        return;
    }
    *newest = last;
    cluster.local().publish(Arc::new(batch));
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
