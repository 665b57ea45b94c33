//! `RedisBroker` and `RedisPresence`: the broker and the presence service of a cluster node,
//! both over the node's Redis link.

use std::sync::Arc;

use confab_domain::ChannelEventKind;
use tokio::sync::{broadcast, oneshot, watch};

use super::keys::{topic_name, user_topic, users_topic};
use super::link::{LinkCommand, Publish};
use super::wire::PublishedRef;
use super::Cluster;
use confab_domain::ServiceSid;

use crate::broker::{Broker, EventBatch, Topic, TypingSignal};
use crate::presence::{OnlineElsewhere, Presence, UserSignal};

/// The cluster broker. The owner of a channel delivers each committed batch to its own listeners
/// directly and publishes it once to the channel's Redis topic, and to the topic of each user
/// whose membership or invitation it changes (so that the user's sessions on other nodes learn
/// of channels they do not follow yet). A node subscribes to a channel's topic only while a
/// local session follows the channel, and to a user's topic while the user has a session there.
///
/// Delivery is at most once (Redis pub/sub); after each (re)subscription to a channel topic the
/// broker emits a synchronisation mark (an empty batch with the stored channel), and listeners
/// repair any `seq` gap from the store: see [`Broker`].
#[derive(Debug, Clone)]
pub struct RedisBroker {
    cluster: Cluster,
}

impl RedisBroker {
    pub(super) fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, batch: Arc<EventBatch>) {
        self.cluster.local().publish(batch.clone());
        let prefix = &self.cluster.config().prefix;
        let channel = &batch.channel;
        let mut topics = vec![topic_name(prefix, &Topic::Channel(channel.sid))];
        for event in &batch.events {
            let identity = match &event.kind {
                ChannelEventKind::MemberJoined { member } => &member.identity,
                ChannelEventKind::MemberLeft { member } => &member.identity,
                ChannelEventKind::InviteCreated { invite } => &invite.identity,
                _ => continue,
            };
            let topic = user_topic(prefix, channel.service_sid, identity);
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        let published = PublishedRef::Batch {
            origin: self.cluster.instance().to_owned(),
            batch: &batch,
        };
        match serde_json::to_string(&published) {
            Ok(payload) => self.cluster.publish(Publish { topics, payload }),
            Err(e) => tracing::error!(error = %e, "cannot encode an event batch"),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<EventBatch>> {
        self.cluster.local().subscribe()
    }

    fn follow(&self, topic: &Topic) -> Option<oneshot::Receiver<()>> {
        let (ack, acked) = oneshot::channel();
        self.cluster
            .send_link(LinkCommand::Follow(topic.clone(), Some(ack)));
        Some(acked)
    }

    fn unfollow(&self, topic: &Topic) {
        self.cluster.send_link(LinkCommand::Unfollow(topic.clone()));
    }

    fn signal_typing(&self, typing: &TypingSignal) {
        let prefix = &self.cluster.config().prefix;
        let published: PublishedRef<'_> = PublishedRef::Typing {
            origin: self.cluster.instance().to_owned(),
            typing: typing.clone(),
        };
        if let Ok(payload) = serde_json::to_string(&published) {
            self.cluster.publish(Publish {
                topics: vec![topic_name(prefix, &Topic::Channel(typing.channel))],
                payload,
            });
        }
    }

    fn typing_signals(&self) -> Option<broadcast::Receiver<Arc<TypingSignal>>> {
        Some(self.cluster.typing_signals())
    }

    fn resets(&self) -> Option<watch::Receiver<u64>> {
        Some(self.cluster.resets())
    }
}

/// The cluster's presence service: each node keeps its users in a Redis set
/// (`{prefix}:online:{node}`), and user signals go on one topic every node follows
/// (`{prefix}:users`).
#[derive(Debug, Clone)]
pub struct RedisPresence {
    cluster: Cluster,
}

impl RedisPresence {
    pub(super) fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }
}

impl Presence for RedisPresence {
    fn signal_user(&self, signal: &UserSignal) {
        let mut signal = signal.clone();
        signal.node = self.cluster.node_id().to_owned();
        let published: PublishedRef<'_> = PublishedRef::User {
            origin: self.cluster.instance().to_owned(),
            user: signal,
        };
        if let Ok(payload) = serde_json::to_string(&published) {
            self.cluster.publish(Publish {
                topics: vec![users_topic(&self.cluster.config().prefix)],
                payload,
            });
        }
    }

    fn user_signals(&self) -> Option<broadcast::Receiver<Arc<UserSignal>>> {
        Some(self.cluster.user_signals())
    }

    fn user_arrived(&self, service: ServiceSid, identity: &str) {
        self.cluster.user_arrived(service, identity);
    }

    fn user_left(&self, service: ServiceSid, identity: &str) -> Option<OnlineElsewhere> {
        let answer = self.cluster.user_left(service, identity);
        Some(Box::pin(async move { answer.await.unwrap_or(false) }))
    }

    fn online_elsewhere(&self, service: ServiceSid, identity: &str) -> Option<OnlineElsewhere> {
        let cluster = self.cluster.clone();
        let identity = identity.to_owned();
        Some(Box::pin(async move {
            cluster.online_elsewhere(service, &identity).await
        }))
    }

    fn departures(&self) -> Option<broadcast::Receiver<Arc<Vec<String>>>> {
        Some(self.cluster.departures())
    }
}
