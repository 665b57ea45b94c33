//! Fan-out of committed event batches: channel events to their local subscribers, the events
//! addressed to one user, synchronisation marks, the bookkeeping of who follows which channel
//! (and which topics the bus brings here), and the offers of frames to sessions' outboxes.

use std::collections::HashSet;

use bytestring::ByteString;
use confab_cluster::{EventBatch, Topic};
use confab_domain::{ChannelEventKind, ChannelSid, InviteEnd, ServiceSid, UpdateReason};
use confab_protocol::realtime::{self as rt, ChannelView};

use super::task::HubTask;
use super::{Outbound, SessionId, UserKey};

impl HubTask {
    pub(super) fn batch(&mut self, batch: &EventBatch) {
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
            ChannelEventKind::InviteRemoved { invite, end } if *end != InviteEnd::Accepted => {
                // A declined or revoked invitation leaves the invitee's subscribed set (an
                // accepted one is followed by its `channelJoined`).
                let key = (service, invite.identity.clone());
                let view = ChannelView::new(channel, "notParticipating", None);
                let left: ByteString =
                    rt::event("channelLeft", Some(&sid_text), None, &view).into();
                self.offer_user(&key, || Outbound::Frame(left.clone()));
            }
            ChannelEventKind::MemberUpdated { member, reasons }
                if reasons.contains(&UpdateReason::NotificationLevel) =>
            {
                // The level is the member's own: its sessions (all of them, on every node that
                // has one) hear it as a change of their view of the channel; nobody else does.
                let key = (service, member.identity.clone());
                let view = ChannelView::for_member(channel, member);
                let frame: ByteString = rt::event(
                    "channelUpdated",
                    Some(&sid_text),
                    None,
                    &serde_json::json!({"channel": view, "updateReasons": ["notificationLevel"]}),
                )
                .into();
                self.offer_user(&key, || Outbound::Frame(frame.clone()));
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

    /// A channel gains a local subscriber; the first makes the bus bring its events here.
    pub(super) fn add_subscriber(&mut self, channel: ChannelSid, id: SessionId) {
        let subs = self.subscribers.entry(channel).or_default();
        let first = subs.is_empty();
        subs.insert(id);
        if first {
            self.follow(Topic::Channel(channel));
        }
    }

    /// A channel loses a local subscriber; after the last, the bus stops bringing its events.
    pub(super) fn remove_subscriber(&mut self, channel: ChannelSid, id: SessionId) {
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

    pub(super) fn unfollow(&self, topic: Topic) {
        if let Some(bus) = &self.bus {
            bus.unfollow(&topic);
        }
    }

    /// Delivers a frame (no seq) to a channel's subscribers, except the sessions of `except`.
    pub(super) fn offer_channel(
        &mut self,
        channel: ChannelSid,
        frame: &ByteString,
        except: Option<&UserKey>,
    ) {
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

    /// Offers a frame to each of `peers`; the slow ones are dropped.
    pub(super) fn offer_to(&mut self, peers: HashSet<SessionId>, frame: &ByteString) {
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
}
