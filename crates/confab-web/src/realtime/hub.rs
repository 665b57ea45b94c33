//! The node-local fan-out hub: one task that owns every session's subscriptions and turns each
//! committed channel event into one frame, whose bytes are shared by every recipient.
//!
//! The hub never waits on a session: it offers each frame to the session's bounded outbox with
//! `try_send`. A session whose outbox is full is too slow: the hub forgets it and signals it to
//! close with 4009, so that it reconnects and resumes; memory stays bounded by the outbox size.
//! Typing indicators live here too, with one tick driving every typing timeout of the node.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use confab_cluster::{Bus, EventBatch, Topic, TypingSignal, UserSignal};
use confab_domain::{ChannelEventKind, ChannelSid, ServiceSid};
use confab_protocol::realtime::{self as rt, ChannelView, UserView};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, Notify};

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

/// Tells a session to close with a code (4009 too slow, 4010 draining).
#[derive(Debug, Default)]
pub struct Kick {
    code: AtomicU16,
    notify: Notify,
}

impl Kick {
    /// Asks the session to close with `code`; the first code asked for wins.
    pub fn kick(&self, code: u16) {
        let _ = self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    /// Resolves with the close code once the session was kicked.
    pub async fn kicked(&self) -> u16 {
        loop {
            let code = self.code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.notify.notified().await;
        }
    }
}

/// The sending side of a session's outbox, as the hub holds it.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Bounded queue to the session's writer.
    pub tx: mpsc::Sender<Outbound>,
    /// How the session is told to close.
    pub kick: Arc<Kick>,
}

impl Outbox {
    /// Offers an item; `false` when the session is too slow (and has been told to close).
    pub fn offer(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.kick(4009);
                false
            }
            // The session is gone; its unregister is on its way.
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
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
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hub command")
    }
}

impl Hub {
    /// Starts the hub task on the current runtime, fed by `bus`.
    pub fn start(bus: &Arc<dyn Bus>, metrics: Option<crate::metrics::WebMetrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = bus.subscribe();
        let task = HubTask {
            metrics,
            bus: Some(bus.clone()),
            commands: Some(tx.downgrade()),
            ..HubTask::default()
        };
        tokio::spawn(task.run(rx, events));
        Self {
            commands: tx,
            next_id: Arc::new(AtomicU64::new(1)),
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

    /// Whether `identity` has a session on this node.
    pub async fn is_online(&self, service: ServiceSid, identity: &str) -> bool {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(Command::IsOnline {
            service,
            identity: identity.to_owned(),
            reply,
        });
        rx.await.unwrap_or(false)
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

struct SessionEntry {
    service: ServiceSid,
    identity: String,
    outbox: Outbox,
    channels: HashSet<ChannelSid>,
}

struct Typist {
    service: ServiceSid,
    member_sid: String,
    until: Instant,
}

type UserKey = (ServiceSid, String);

#[derive(Default)]
struct HubTask {
    sessions: HashMap<SessionId, SessionEntry>,
    by_user: HashMap<UserKey, HashSet<SessionId>>,
    users: HashMap<UserKey, UserView>,
    subscribers: HashMap<ChannelSid, HashSet<SessionId>>,
    /// Newest `seq` known to exist per followed channel (for catching up new subscribers).
    last_seq: HashMap<ChannelSid, u64>,
    /// Newest `seq` of the batches applied per channel: a batch at or below it is a copy (it
    /// came on two topics) or stale (from an owner that was superseded) and is ignored.
    applied: HashMap<ChannelSid, u64>,
    /// The seq at which a connected user last left a channel, so that a subscription based on
    /// an older membership read is refused.
    left_at: HashMap<(UserKey, ChannelSid), u64>,
    /// Users whose online status was announced to their peers.
    announced: HashSet<UserKey>,
    typing: HashMap<(ChannelSid, String), Typist>,
    metrics: Option<crate::metrics::WebMetrics>,
    /// Told which channels and users have listeners here (a cluster bus subscribes to them).
    bus: Option<Arc<dyn Bus>>,
    /// The hub's own command queue, for answers of tasks it spawns (weak: the hub ends when
    /// the last handle is dropped).
    commands: Option<mpsc::WeakUnboundedSender<Command>>,
    /// Users another node announced online (and has not announced offline since): the node,
    /// the user's channels and the user, to tell local peers if that node dies.
    remote_online: HashMap<UserKey, RemoteUser>,
}

/// A user online on another node, as its announcement described them.
struct RemoteUser {
    node: String,
    channels: Vec<ChannelSid>,
    user: serde_json::Value,
}

impl HubTask {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: broadcast::Receiver<Arc<EventBatch>>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut resets = self.bus.as_ref().and_then(|b| b.resets());
        let mut typing = self.bus.as_ref().and_then(|b| b.typing_signals());
        let mut users = self.bus.as_ref().and_then(|b| b.user_signals());
        let mut departures = self.bus.as_ref().and_then(|b| b.departures());
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
                        self.kick_everyone(4009);
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
                    self.kick_everyone(4009);
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
                    if let Some(bus) = &self.bus {
                        bus.user_arrived(service, &identity);
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
                user.online = true;
                self.users.insert(key, user);
            }
            Command::Announce { id } => {
                let Some(entry) = self.sessions.get(&id) else {
                    return;
                };
                let key = (entry.service, entry.identity.clone());
                if self.announced.insert(key.clone()) {
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
                let frame: ByteString = json!({"type": "reconnect", "reason": "draining"})
                    .to_string()
                    .into();
                for entry in self.sessions.values() {
                    let _ = entry.outbox.tx.try_send(Outbound::Frame(frame.clone()));
                    entry.outbox.kick.kick(4010);
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
                user.online = self.by_user.get(&key).is_some_and(|s| !s.is_empty());
                self.users.insert(key.clone(), user.clone());
                self.send_user_updated(&key, &user, &reasons);
            }
        }
    }

    fn remove(&mut self, id: SessionId) {
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
            let elsewhere = self.bus.as_ref().and_then(|b| b.user_left(key.0, &key.1));
            self.left_at.retain(|(user, _), _| *user != key);
            let announced = self.announced.remove(&key);
            if let Some(mut user) = self.users.remove(&key).filter(|_| announced) {
                user.online = false;
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

    /// Delivers a frame (no seq) to a channel's subscribers, except the sessions of `except`.
    fn offer_channel(&mut self, channel: ChannelSid, frame: &ByteString, except: Option<&UserKey>) {
        let Some(subs) = self.subscribers.get(&channel) else {
            return;
        };
        let except: HashSet<SessionId> = except
            .and_then(|k| self.by_user.get(k))
            .cloned()
            .unwrap_or_default();
        let mut slow = Vec::new();
        for id in subs {
            if except.contains(id) {
                continue;
            }
            if let Some(entry) = self.sessions.get(id) {
                if !entry.outbox.offer(Outbound::Frame(frame.clone())) {
                    slow.push(*id);
                }
            }
        }
        for id in slow {
            self.remove(id);
        }
    }

    /// Delivers an item to every session of a user.
    fn offer_user(&mut self, key: &UserKey, item: impl Fn() -> Outbound) {
        let Some(ids) = self.by_user.get(key) else {
            return;
        };
        let mut slow = Vec::new();
        for id in ids {
            if let Some(entry) = self.sessions.get(id) {
                if !entry.outbox.offer(item()) {
                    slow.push(*id);
                }
            }
        }
        for id in slow {
            self.remove(id);
        }
    }

    /// `identity` is typing in `channel` (here or on another node): starts or extends its
    /// indicator.
    fn typing(
        &mut self,
        service: ServiceSid,
        channel: ChannelSid,
        identity: String,
        member_sid: String,
        timeout: Duration,
    ) {
        let until = Instant::now() + timeout;
        let key = (channel, identity.clone());
        match self.typing.get_mut(&key) {
            Some(typist) => typist.until = until,
            None => {
                self.typing.insert(
                    key,
                    Typist {
                        service,
                        member_sid: member_sid.clone(),
                        until,
                    },
                );
                self.send_typing("typingStarted", service, channel, &identity, &member_sid);
            }
        }
    }

    fn send_typing(
        &mut self,
        name: &str,
        service: ServiceSid,
        channel: ChannelSid,
        identity: &str,
        member_sid: &str,
    ) {
        let frame: ByteString = rt::event(
            name,
            Some(&channel.to_string()),
            None,
            &json!({"identity": identity, "memberSid": member_sid}),
        )
        .into();
        self.offer_channel(channel, &frame, Some(&(service, identity.to_owned())));
    }

    fn expire_typing(&mut self) {
        let now = Instant::now();
        let expired: Vec<(ChannelSid, String)> = self
            .typing
            .iter()
            .filter(|(_, t)| t.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.end_typing(&key);
        }
    }

    fn end_typing(&mut self, key: &(ChannelSid, String)) {
        if let Some(typist) = self.typing.remove(key) {
            self.send_typing(
                "typingEnded",
                typist.service,
                key.0,
                &key.1,
                &typist.member_sid,
            );
        }
    }

    fn send_user_updated(&mut self, key: &UserKey, user: &UserView, reasons: &[&str]) {
        let frame = user_frame(user, reasons);
        let mut peers: HashSet<SessionId> = HashSet::new();
        let mut channels: HashSet<ChannelSid> = HashSet::new();
        if let Some(ids) = self.by_user.get(key) {
            for id in ids {
                peers.insert(*id);
                if let Some(entry) = self.sessions.get(id) {
                    for channel in &entry.channels {
                        channels.insert(*channel);
                        if let Some(subs) = self.subscribers.get(channel) {
                            peers.extend(subs.iter().copied());
                        }
                    }
                }
            }
        }
        let online = (reasons == ["online"]).then_some(user.online);
        self.signal_user(key, user, &frame, channels.into_iter().collect(), online);
        self.offer_to(peers, &frame);
    }

    /// Tells the other nodes about a user's change (their peers of the user see it).
    fn signal_user(
        &self,
        key: &UserKey,
        user: &UserView,
        frame: &ByteString,
        channels: Vec<ChannelSid>,
        online: Option<bool>,
    ) {
        if let Some(bus) = &self.bus {
            bus.signal_user(&UserSignal {
                service: key.0,
                identity: key.1.clone(),
                frame: frame.to_string(),
                online,
                channels,
                user: serde_json::to_value(user).unwrap_or_default(),
                node: String::new(),
            });
        }
    }

    /// A user changed on another node: its sessions here and the members of its channels here
    /// are told.
    fn user_signal(&mut self, signal: &UserSignal) {
        let key = (signal.service, signal.identity.clone());
        if signal.online == Some(false) && self.by_user.contains_key(&key) {
            // Another node saw the user's last session there end while one began here:
            // the user is online, and says so again (to every node).
            if let Some(user) = self.users.get(&key).cloned() {
                self.send_user_updated(&key, &user, &["online"]);
            }
            return;
        }
        match signal.online {
            Some(true) => {
                self.remote_online.insert(
                    key.clone(),
                    RemoteUser {
                        node: signal.node.clone(),
                        channels: signal.channels.clone(),
                        user: signal.user.clone(),
                    },
                );
            }
            Some(false) => {
                self.remote_online.remove(&key);
            }
            None => {}
        }
        let mut peers: HashSet<SessionId> = HashSet::new();
        if let Some(ids) = self.by_user.get(&(signal.service, signal.identity.clone())) {
            peers.extend(ids.iter().copied());
        }
        for channel in &signal.channels {
            if let Some(subs) = self.subscribers.get(channel) {
                peers.extend(subs.iter().copied());
            }
        }
        let frame = ByteString::from(signal.frame.clone());
        self.offer_to(peers, &frame);
    }

    /// The user's last session (on every node) ended.
    fn announce_offline(&mut self, key: UserKey, user: UserView, channels: Vec<ChannelSid>) {
        if self.by_user.contains_key(&key) {
            // A session of the user arrived here meanwhile: still online.
            return;
        }
        let frame = user_frame(&user, &["online"]);
        for channel in &channels {
            self.offer_channel(*channel, &frame, None);
        }
        self.signal_user(&key, &user, &frame, channels, Some(false));
    }

    /// Nodes left the cluster: users they announced online are checked (after the offline
    /// grace, so that their clients may reconnect elsewhere first).
    fn departed(&mut self, nodes: &[String]) {
        let (Some(bus), Some(commands)) = (self.bus.clone(), self.commands.clone()) else {
            return;
        };
        for (key, remote) in &self.remote_online {
            if !nodes.contains(&remote.node) {
                continue;
            }
            let key = key.clone();
            let node = remote.node.clone();
            let bus = bus.clone();
            let commands = commands.clone();
            tokio::spawn(async move {
                tokio::time::sleep(OFFLINE_GRACE).await;
                let elsewhere = match bus.online_elsewhere(key.0, &key.1) {
                    Some(check) => check.await,
                    None => false,
                };
                if !elsewhere {
                    if let Some(commands) = commands.upgrade() {
                        let _ = commands.send(Command::RemoteOffline { key, node });
                    }
                }
            });
        }
    }

    /// A user announced by a node that died is on no node: tell the local peers (every node
    /// does the same for its own).
    fn remote_offline(&mut self, key: &UserKey, node: &str) {
        if self.by_user.contains_key(key) {
            return;
        }
        // Announced again since (by a live node): still online.
        let Some(remote) = self.remote_online.get(key).filter(|r| r.node == node) else {
            return;
        };
        let Ok(mut user) = serde_json::from_value::<UserView>(remote.user.clone()) else {
            self.remote_online.remove(key);
            return;
        };
        user.online = false;
        let frame = user_frame(&user, &["online"]);
        let channels = remote.channels.clone();
        self.remote_online.remove(key);
        let mut peers = HashSet::new();
        for channel in &channels {
            if let Some(subs) = self.subscribers.get(channel) {
                peers.extend(subs.iter().copied());
            }
        }
        self.offer_to(peers, &frame);
    }

    /// Offers a frame to each of `peers`; the slow ones are dropped.
    fn offer_to(&mut self, peers: HashSet<SessionId>, frame: &ByteString) {
        let mut slow = Vec::new();
        for id in peers {
            if let Some(entry) = self.sessions.get(&id) {
                if !entry.outbox.offer(Outbound::Frame(frame.clone())) {
                    slow.push(id);
                }
            }
        }
        for id in slow {
            self.remove(id);
        }
    }

    /// A channel gains a local subscriber; the first makes the bus bring its events here.
    fn add_subscriber(&mut self, channel: ChannelSid, id: SessionId) {
        let subs = self.subscribers.entry(channel).or_default();
        let first = subs.is_empty();
        subs.insert(id);
        if first {
            self.follow(Topic::Channel(channel));
        }
    }

    /// A channel loses a local subscriber; after the last, the bus stops bringing its events.
    fn remove_subscriber(&mut self, channel: ChannelSid, id: SessionId) {
        let Some(subs) = self.subscribers.get_mut(&channel) else {
            return;
        };
        subs.remove(&id);
        if subs.is_empty() {
            self.subscribers.remove(&channel);
            self.unfollow(Topic::Channel(channel));
        }
    }

    fn follow(&self, topic: Topic) {
        if let Some(bus) = &self.bus {
            // Channel topics need no wait: the bus sends a synchronisation mark once it
            // follows the channel, and sessions catch up from the store.
            let _ = bus.follow(&topic);
        }
    }

    fn unfollow(&self, topic: Topic) {
        if let Some(bus) = &self.bus {
            bus.unfollow(&topic);
        }
    }

    /// A synchronisation mark: the channel's events go up to `upto`. Each follower delivers
    /// what it has not delivered yet (its writer fetches it from the store).
    fn sync(&mut self, channel: ChannelSid, upto: u64) {
        let Some(subs) = self.subscribers.get(&channel) else {
            return;
        };
        let known = self.last_seq.entry(channel).or_insert(0);
        *known = (*known).max(upto);
        let mut slow = Vec::new();
        for id in subs {
            if let Some(entry) = self.sessions.get(id) {
                if !entry.outbox.offer(Outbound::Catchup { channel, upto }) {
                    slow.push(*id);
                }
            }
        }
        for id in slow {
            self.remove(id);
        }
    }

    /// Tells every session to close with `code` and forgets them all.
    fn kick_everyone(&mut self, code: u16) {
        for entry in self.sessions.values() {
            entry.outbox.kick.kick(code);
        }
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }

    fn batch(&mut self, batch: &EventBatch) {
        let channel = &batch.channel;
        let sid = channel.sid;
        let Some(newest) = batch.events.last().map(|e| e.seq) else {
            self.sync(sid, channel.last_seq);
            return;
        };
        if self.applied.get(&sid).is_some_and(|done| *done >= newest) {
            return;
        }
        self.applied.insert(sid, newest);
        if let Some(last) = batch.events.last() {
            self.last_seq.insert(sid, last.seq);
        }
        let service = channel.service_sid;
        for event in &batch.events {
            // Membership changes first adjust who follows the channel, so that a joining user
            // receives its own `memberJoined` and a leaving one its `memberLeft`.
            if let ChannelEventKind::MemberJoined { member } = &event.kind {
                let key = (service, member.identity.clone());
                self.left_at.remove(&(key.clone(), sid));
                let ids: Vec<SessionId> = self
                    .by_user
                    .get(&key)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for id in ids {
                    if let Some(entry) = self.sessions.get_mut(&id) {
                        entry.channels.insert(sid);
                        let _ = entry.outbox.offer(Outbound::Subscribed {
                            channel: sid,
                            after: event.seq - 1,
                        });
                        self.add_subscriber(sid, id);
                    }
                }
            }
            let started = std::time::Instant::now();
            // Rendered only when a session here follows the channel: REST-only traffic and
            // channels without local listeners cost no serialization.
            let followed = self.subscribers.get(&sid).is_some_and(|s| !s.is_empty());
            let frame: Option<ByteString> = if followed {
                rt::member_frame(event).map(Into::into)
            } else {
                None
            };
            let mut slow = Vec::new();
            let mut delivered = 0u64;
            if let Some(subs) = self.subscribers.get(&sid) {
                for id in subs {
                    if let Some(entry) = self.sessions.get(id) {
                        let item = Outbound::Seq {
                            channel: sid,
                            seq: event.seq,
                            at_ms: event.at.millis(),
                            frame: frame.clone(),
                        };
                        if entry.outbox.offer(item) {
                            delivered += 1;
                        } else {
                            slow.push(*id);
                        }
                    }
                }
            }
            if let Some(m) = &self.metrics {
                if frame.is_some() {
                    m.events_delivered.inc_by(delivered);
                }
                m.outbox_drops.inc_by(slow.len() as u64);
                m.fanout_seconds.observe(started.elapsed().as_secs_f64());
            }
            for id in slow {
                self.remove(id);
            }
            self.user_scoped(service, channel, event);
        }
    }

    /// The events addressed to one user rather than to the channel's members.
    fn user_scoped(
        &mut self,
        service: ServiceSid,
        channel: &confab_domain::Channel,
        event: &confab_domain::ChannelEvent,
    ) {
        let sid = channel.sid;
        let sid_text = sid.to_string();
        match &event.kind {
            ChannelEventKind::MemberJoined { member } => {
                let key = (service, member.identity.clone());
                if let Some(remote) = self.remote_online.get_mut(&key) {
                    // Its peers here include this channel's members from now on.
                    if !remote.channels.contains(&sid) {
                        remote.channels.push(sid);
                    }
                }
                let view = ChannelView::new(channel, "joined", member.last_consumed_message_index);
                let added: ByteString =
                    rt::event("channelAdded", Some(&sid_text), None, &view).into();
                let joined: ByteString =
                    rt::event("channelJoined", Some(&sid_text), None, &view).into();
                self.offer_user(&key, || Outbound::Frame(added.clone()));
                self.offer_user(&key, || Outbound::Frame(joined.clone()));
            }
            ChannelEventKind::MemberLeft { member } => {
                let key = (service, member.identity.clone());
                if let Some(remote) = self.remote_online.get_mut(&key) {
                    remote.channels.retain(|c| *c != sid);
                }
                let view = ChannelView::new(channel, "notParticipating", None);
                let left: ByteString =
                    rt::event("channelLeft", Some(&sid_text), None, &view).into();
                self.offer_user(&key, || Outbound::Frame(left.clone()));
                self.offer_user(&key, || Outbound::Unsubscribed { channel: sid });
                if self.by_user.contains_key(&key) {
                    self.left_at.insert((key.clone(), sid), event.seq);
                }
                let ids: Vec<SessionId> = self
                    .by_user
                    .get(&key)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for id in ids {
                    if let Some(entry) = self.sessions.get_mut(&id) {
                        entry.channels.remove(&sid);
                    }
                    self.remove_subscriber(sid, id);
                }
                self.end_typing(&(sid, member.identity.clone()));
            }
            ChannelEventKind::InviteCreated { invite } => {
                let key = (service, invite.identity.clone());
                let view = ChannelView::new(channel, "invited", None);
                let added: ByteString =
                    rt::event("channelAdded", Some(&sid_text), None, &view).into();
                let invited: ByteString =
                    rt::event("channelInvited", Some(&sid_text), None, &view).into();
                self.offer_user(&key, || Outbound::Frame(added.clone()));
                self.offer_user(&key, || Outbound::Frame(invited.clone()));
            }
            ChannelEventKind::MessageAdded { message } => {
                // A message ends its author's typing indicator at once.
                let key = (sid, message.author.clone());
                if self.typing.contains_key(&key) {
                    self.end_typing(&key);
                }
            }
            ChannelEventKind::ChannelRemoved { .. } => {
                if let Some(subs) = self.subscribers.remove(&sid) {
                    self.unfollow(Topic::Channel(sid));
                    for id in subs {
                        if let Some(entry) = self.sessions.get_mut(&id) {
                            entry.channels.remove(&sid);
                            let _ = entry.outbox.offer(Outbound::Unsubscribed { channel: sid });
                        }
                    }
                }
                self.last_seq.remove(&sid);
                self.applied.remove(&sid);
                self.typing.retain(|(c, _), _| *c != sid);
            }
            _ => {}
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

fn user_frame(user: &UserView, reasons: &[&str]) -> ByteString {
    rt::event(
        "userUpdated",
        None,
        None,
        &json!({"user": user, "updateReasons": reasons}),
    )
    .into()
}
