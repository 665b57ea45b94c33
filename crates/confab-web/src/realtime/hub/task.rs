//! The hub task: the state it owns (sessions, subscriptions, users), its run loop and the
//! handling of the hub's commands, including a session's removal.

use confab_protocol::realtime::CloseCode;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use confab_cluster::{Broker, EventBatch, Presence, Topic, TypingSignal};
use confab_domain::{ChannelSid, ServiceSid};
use confab_protocol::realtime::UserView;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::presence::RemoteUser;
use super::typing::Typist;
use super::{Command, Outbound, Outbox, SessionId, UserKey, OFFLINE_GRACE};

pub(super) struct SessionEntry {
    pub(super) service: ServiceSid,
    pub(super) identity: String,
    pub(super) outbox: Outbox,
    pub(super) channels: HashSet<ChannelSid>,
}

#[derive(Default)]
pub(super) struct HubTask {
    pub(super) sessions: HashMap<SessionId, SessionEntry>,
    pub(super) by_user: HashMap<UserKey, HashSet<SessionId>>,
    pub(super) users: HashMap<UserKey, UserView>,
    pub(super) subscribers: HashMap<ChannelSid, HashSet<SessionId>>,
    /// Newest `seq` known to exist per followed channel (for catching up new subscribers).
    pub(super) last_seq: HashMap<ChannelSid, u64>,
    /// Newest `seq` of the batches applied per channel: a batch at or below it is a copy (it
    /// came on two topics) or stale (from an owner that was superseded) and is ignored.
    pub(super) applied: HashMap<ChannelSid, u64>,
    /// The seq at which a connected user last left a channel, so that a subscription based on
    /// an older membership read is refused.
    pub(super) left_at: HashMap<(UserKey, ChannelSid), u64>,
    /// Users whose online status was announced to their peers.
    pub(super) announced: HashSet<UserKey>,
    pub(super) typing: HashMap<(ChannelSid, String), Typist>,
    pub(super) metrics: Option<crate::metrics::WebMetrics>,
    /// Told which channels and users have listeners here (a cluster broker subscribes to them).
    pub(super) bus: Option<Arc<dyn Broker>>,
    /// Told who is online here; asked who is online elsewhere.
    pub(super) presence: Option<Arc<dyn Presence>>,
    /// The hub's own command queue, for answers of tasks it spawns (weak: the hub ends when
    /// the last handle is dropped).
    pub(super) commands: Option<mpsc::WeakUnboundedSender<Command>>,
    /// Users another node announced online (and has not announced offline since): the node,
    /// the user's channels and the user, to tell local peers if that node dies.
    pub(super) remote_online: HashMap<UserKey, RemoteUser>,
    /// The node is stopping: a session that registers now is told to reconnect elsewhere too.
    pub(super) draining: bool,
}

impl HubTask {
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: broadcast::Receiver<Arc<EventBatch>>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut resets = self.bus.as_ref().and_then(|b| b.resets());
        let mut typing = self.bus.as_ref().and_then(|b| b.typing_signals());
        let mut users = self.presence.as_ref().and_then(|p| p.user_signals());
        let mut departures = self.presence.as_ref().and_then(|p| p.departures());
        loop {
            // Commands first: a session's registration must be in place before the batches
            // published after it registered, or it would miss its own memberships.
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                batch = events.recv() => match batch {
                    Ok(batch) => self.batch(&batch),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // Lost batches may have changed who follows what (joins, leaves,
                        // deletions), which no seq repair can restore: every session
                        // reconnects and resumes, rebuilding its subscriptions from the store.
                        tracing::warn!(missed, "realtime hub fell behind the bus: sessions resume");
                        self.kick_everyone(CloseCode::TooSlow);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.expire_typing(),
                Some(t) = next_signal(&mut typing) => self.typing(
                    t.service,
                    t.channel,
                    t.identity.clone(),
                    t.member_sid.clone(),
                    Duration::from_millis(t.timeout_ms),
                ),
                Some(user) = next_signal(&mut users) => self.user_signal(&user),
                Some(nodes) = next_signal(&mut departures) => self.departed(&nodes),
                changed = async { resets.as_mut()?.changed().await.ok() }, if resets.is_some() => {
                    if changed.is_none() {
                        resets = None;
                        continue;
                    }
                    // The bus lost its connection: membership changes published meanwhile are
                    // gone. Sessions resume, rebuilding their channels from the store.
                    tracing::warn!("the bus reconnected: realtime sessions resume");
                    self.kick_everyone(CloseCode::TooSlow);
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Register {
                id,
                service,
                identity,
                user,
                outbox,
                followed,
            } => {
                let key = (service, identity.clone());
                let sessions = self.by_user.entry(key.clone()).or_default();
                if sessions.is_empty() {
                    if let Some(presence) = &self.presence {
                        presence.user_arrived(service, &identity);
                    }
                }
                sessions.insert(id);
                // Asked for every session (a repeat is answered at once), so that each one
                // waits until the subscription is in place.
                let subscribed = self
                    .bus
                    .as_ref()
                    .and_then(|b| b.follow(&Topic::User(service, identity.clone())));
                let _ = followed.send(subscribed);
                if self.draining {
                    tell_to_reconnect(&outbox);
                }
                self.sessions.insert(
                    id,
                    SessionEntry {
                        service,
                        identity,
                        outbox,
                        channels: HashSet::new(),
                    },
                );
                let mut user = user;
                // `None` stays: the service keeps its users' online status to itself.
                user.online = user.online.map(|_| true);
                self.users.insert(key, user);
            }
            Command::Announce { id } => {
                let Some(entry) = self.sessions.get(&id) else {
                    return;
                };
                let key = (entry.service, entry.identity.clone());
                let reachable = self.users.get(&key).is_some_and(|u| u.online.is_some());
                if reachable && self.announced.insert(key.clone()) {
                    if let Some(user) = self.users.get(&key).cloned() {
                        self.send_user_updated(&key, &user, &["online"]);
                    }
                }
            }
            Command::IsOnline {
                service,
                identity,
                reply,
            } => {
                let online = self
                    .by_user
                    .get(&(service, identity))
                    .is_some_and(|s| !s.is_empty());
                let _ = reply.send(online);
            }
            Command::Unregister { id } => self.remove(id),
            Command::Offline {
                key,
                user,
                channels,
            } => self.announce_offline(key, user, channels),
            Command::RemoteOffline { key, node } => self.remote_offline(&key, &node),
            Command::Drain => {
                self.draining = true;
                for entry in self.sessions.values() {
                    tell_to_reconnect(&entry.outbox);
                }
            }
            Command::Subscribe { id, channel, as_of } => {
                let Some(entry) = self.sessions.get_mut(&id) else {
                    return;
                };
                let key = (entry.service, entry.identity.clone());
                if self
                    .left_at
                    .get(&(key, channel))
                    .is_some_and(|left| *left > as_of)
                {
                    // The user left after the membership was read: do not follow.
                    let _ = entry.outbox.offer(Outbound::Unsubscribed { channel });
                    return;
                }
                entry.channels.insert(channel);
                let outbox = entry.outbox.clone();
                self.add_subscriber(channel, id);
                if let Some(upto) = self.last_seq.get(&channel) {
                    let ok = outbox.offer(Outbound::Catchup {
                        channel,
                        upto: *upto,
                    });
                    if !ok {
                        self.remove(id);
                    }
                }
            }
            Command::Typing {
                service,
                channel,
                identity,
                member_sid,
                timeout,
            } => {
                if let Some(bus) = &self.bus {
                    // Members on other nodes see it too (a cluster bus carries it; it is not
                    // stored, and a lost one only shortens an indicator).
                    bus.signal_typing(&TypingSignal {
                        service,
                        channel,
                        identity: identity.clone(),
                        member_sid: member_sid.clone(),
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
                self.typing(service, channel, identity, member_sid, timeout);
            }
            Command::UserUpdated {
                service,
                user,
                reasons,
            } => {
                let key = (service, user.identity.clone());
                let mut user = user;
                if user.online.is_some() {
                    let online = self.by_user.get(&key).is_some_and(|s| !s.is_empty());
                    user.online = Some(online);
                    if online {
                        // Reachability turned on during the session: its end is told too.
                        self.announced.insert(key.clone());
                    }
                }
                self.users.insert(key.clone(), user.clone());
                self.send_user_updated(&key, &user, &reasons);
            }
        }
    }

    pub(super) fn remove(&mut self, id: SessionId) {
        let Some(entry) = self.sessions.remove(&id) else {
            return;
        };
        for channel in &entry.channels {
            self.remove_subscriber(*channel, id);
        }
        let key = (entry.service, entry.identity);
        let now_offline = match self.by_user.get_mut(&key) {
            Some(sessions) => {
                sessions.remove(&id);
                sessions.is_empty()
            }
            None => false,
        };
        if now_offline {
            self.by_user.remove(&key);
            self.unfollow(Topic::User(key.0, key.1.clone()));
            // Recorded now, in order with arrivals; answered once Redis decided.
            let elsewhere = self
                .presence
                .as_ref()
                .and_then(|p| p.user_left(key.0, &key.1));
            self.left_at.retain(|(user, _), _| *user != key);
            let announced = self.announced.remove(&key);
            // Reachability turned off during the session: nothing to tell.
            let told = |user: &UserView| announced && user.online.is_some();
            if let Some(mut user) = self.users.remove(&key).filter(told) {
                user.online = Some(false);
                // Peers are found through the departed sessions' channels.
                let channels: Vec<ChannelSid> = entry.channels.iter().copied().collect();
                match (elsewhere, self.commands.clone()) {
                    // Offline only if no other node has a session of the user either, and not
                    // before a short grace: a client that reconnects (a drain, a resume)
                    // comes back within it, and its peers see no flap.
                    (Some(elsewhere), Some(commands)) => {
                        tokio::spawn(async move {
                            if !elsewhere.await {
                                tokio::time::sleep(OFFLINE_GRACE).await;
                                if let Some(commands) = commands.upgrade() {
                                    let _ = commands.send(Command::Offline {
                                        key,
                                        user,
                                        channels,
                                    });
                                }
                            }
                        });
                    }
                    _ => self.announce_offline(key, user, channels),
                }
            }
        }
    }

    /// Tells every session to close with `code` and forgets them all.
    fn kick_everyone(&mut self, code: CloseCode) {
        for entry in self.sessions.values() {
            entry.outbox.kick.kick(code);
        }
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

/// The next value of a bus's optional signal receiver. Signals are not stored, so what a
/// lagging receiver missed is skipped; a closed receiver is dropped (and `None` returned once);
/// without a receiver it never resolves.
async fn next_signal<T: Clone>(receiver: &mut Option<broadcast::Receiver<T>>) -> Option<T> {
    let Some(rx) = receiver.as_mut() else {
        return std::future::pending().await;
    };
    let next = loop {
        match rx.recv().await {
            Ok(value) => break Some(value),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break None,
        }
    };
    if next.is_none() {
        *receiver = None;
    }
    next
}

/// Tells a session that this node is stopping: `reconnect`, then close 4010.
fn tell_to_reconnect(outbox: &Outbox) {
    let frame: ByteString = json!({"type": "reconnect", "reason": "draining"})
        .to_string()
        .into();
    // The close code first (the first asked for wins): a full outbox must not turn the drain
    // into a slow-consumer close.
    outbox.kick.kick(CloseCode::Draining);
    let _ = outbox.offer(Outbound::Frame(frame));
}
