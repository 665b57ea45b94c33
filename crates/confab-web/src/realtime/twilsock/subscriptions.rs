//! What a twilsock connection has subscribed to and replays: [`Subscriptions`] (Sync pushes
//! only the events of subscribed objects, each subscription's replay before its live events)
//! and the [`UserClock`] that numbers the events of a user's own objects, which have no
//! sequence of their own, and keeps the newest of them for subscriptions that start later.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use super::events::{document_updated, Notification};
use super::sync::channel_doc_id;

/// The frame a session's reader queues behind the events in its outbox to have a
/// subscription's replay written in order with them: `{"type": REPLAY_MARKER, "object": id}`.
/// It never leaves the node.
pub(super) const REPLAY_MARKER: &str = "twilsockReplay";

/// The objects this connection subscribed to, as in Sync, which pushes the events of those
/// only. A subscription's replay is written before any live event of its object: a client
/// that reconnects subscribes again from the `last_event_id` it had, and a live event pushed
/// before the replay would carry its `last_event_id` past the events it missed, which would
/// then never come. So a subscription holds its object's live events from the moment it
/// starts until its replay is written (in the writer, when the reader's [`REPLAY_MARKER`]
/// reaches it), then lets them through.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    objects: HashMap<String, Subscription>,
    /// The data of live channel documents as last pushed, by document id: a document event
    /// carries the whole document, and a new message changes its `lastMessage`. At most
    /// [`DOCUMENT_CACHE_BYTES`] in all (documents past it are not updated by messages).
    documents: HashMap<String, (Value, usize)>,
    document_bytes: usize,
}

/// The most bytes of channel documents one connection keeps to push `lastMessage` changes.
pub(super) const DOCUMENT_CACHE_BYTES: usize = 1 << 20;

/// The most objects one connection subscribes to (a user in the most channels a session
/// follows, `realtime.max_subscribed`, has three objects in each, and reads users' info).
pub(super) const MAX_SUBSCRIPTIONS: usize = 10_000;

/// The most live events one subscription holds while its replay is read (the replay takes
/// one request's time; a burst beyond this closes the connection instead of growing).
pub(super) const HELD_EVENTS: usize = 1000;

/// More events than [`HELD_EVENTS`] arrived while a subscription's replay was read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TooManyHeld;

#[derive(Debug)]
enum Subscription {
    /// Being replayed: live events wait in `held`; `replay` is set once read.
    Replaying {
        held: Vec<Notification>,
        replay: Option<Replay>,
    },
    Live,
}

/// A subscription's replay: the events after the client's `last_event_id` (or the object's
/// whole state), what the read reflects (`up_to`: live events above it are not covered), and
/// the notice that it is established.
#[derive(Debug)]
pub(super) struct Replay {
    pub(super) events: Vec<Notification>,
    pub(super) up_to: u64,
    pub(super) notice: Notification,
    /// A user object's whole state, numbered after the events held while it was read: those
    /// are sent again after it with newer ids (with their own they would lose to it).
    pub(super) renumber_held: bool,
}

impl Subscriptions {
    /// A subscription of `object` starts (or starts again): its live events are held from now
    /// (those held by an earlier start that was not yet written are kept). `false` when the
    /// connection already has [`MAX_SUBSCRIPTIONS`] others.
    pub(super) fn start(&mut self, object: &str) -> bool {
        if self.objects.len() >= MAX_SUBSCRIPTIONS && !self.objects.contains_key(object) {
            return false;
        }
        let entry = self
            .objects
            .entry(object.to_owned())
            .or_insert(Subscription::Live);
        match entry {
            Subscription::Live => {
                *entry = Subscription::Replaying {
                    held: Vec::new(),
                    replay: None,
                }
            }
            Subscription::Replaying { replay, .. } => *replay = None,
        }
        true
    }

    /// The replay of a started subscription has been read; it is written when the reader's
    /// marker reaches the writer ([`Subscriptions::flush`]).
    pub(super) fn replayed(&mut self, object: &str, replay: Replay) {
        if let Some(Subscription::Replaying { replay: slot, .. }) = self.objects.get_mut(object) {
            *slot = Some(replay);
        }
    }

    /// The subscription ends (cancelled, or it failed): nothing of the object is pushed.
    pub(super) fn cancel(&mut self, object: &str) {
        self.objects.remove(object);
        self.forget_document(object);
    }

    fn forget_document(&mut self, object: &str) {
        if let Some((_, bytes)) = self.documents.remove(object) {
            self.document_bytes -= bytes;
        }
    }

    /// Notes a document's data being pushed (or its removal).
    fn remember(&mut self, n: &Notification) {
        let (Some(object), Some(event)) = (n.object_id(), n.payload.get("event")) else {
            return;
        };
        let object = object.to_owned();
        match n.payload["event_type"].as_str() {
            Some("document_updated") => {
                self.forget_document(&object);
                let data = event["document_data"].clone();
                let bytes = data.to_string().len();
                if self.document_bytes + bytes <= DOCUMENT_CACHE_BYTES {
                    self.document_bytes += bytes;
                    self.documents.insert(object, (data, bytes));
                }
            }
            Some("document_removed") => self.forget_document(&object),
            _ => {}
        }
    }

    /// The channel document event for a new message (event `seq`) of `channel`, when its
    /// document is live here: the document with the message as its `lastMessage`.
    pub(super) fn last_message(
        &mut self,
        channel: &str,
        seq: u64,
        message: &Value,
    ) -> Option<Notification> {
        let document = channel_doc_id(channel);
        if !matches!(self.objects.get(&document), Some(Subscription::Live)) {
            return None;
        }
        let (data, _) = self.documents.get_mut(&document)?;
        data["lastMessage"] =
            json!({"index": message["index"], "timestamp": message["dateCreated"]});
        Some(document_updated(
            &document,
            seq,
            data.clone(),
            &message["dateCreated"],
        ))
    }

    /// What of `n` to push now: events of live subscriptions and notices without an object
    /// pass; events of a subscription being replayed are held; events of objects this
    /// connection did not subscribe to are dropped (a later subscription reads them).
    /// `Err` when more than [`HELD_EVENTS`] would be held for one object: the connection is
    /// closed as too slow (its client subscribes again and loses nothing).
    pub(super) fn admit(&mut self, n: Notification) -> Result<Option<Notification>, TooManyHeld> {
        let Some(object) = n.object_id() else {
            return Ok(Some(n));
        };
        match self.objects.get_mut(object) {
            Some(Subscription::Live) => {
                self.remember(&n);
                Ok(Some(n))
            }
            Some(Subscription::Replaying { held, .. }) if held.len() >= HELD_EVENTS => {
                Err(TooManyHeld)
            }
            Some(Subscription::Replaying { held, .. }) => {
                held.push(n);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The writer reached the marker of `object`'s replay: answers what to push, in order (the
    /// replayed events, the held ones the replay did not cover, the notice), and the
    /// subscription is live. Nothing when the replay is not read yet (a later start's marker
    /// follows). `clock` numbers held events again after a user object's whole state.
    pub(super) fn flush(&mut self, object: &str, clock: &mut UserClock) -> Vec<Notification> {
        let Some(Subscription::Replaying {
            held,
            replay: Some(_),
        }) = self.objects.get_mut(object)
        else {
            return Vec::new();
        };
        let held = std::mem::take(held);
        let Some(Subscription::Replaying {
            replay: Some(replay),
            ..
        }) = self.objects.insert(object.to_owned(), Subscription::Live)
        else {
            return Vec::new();
        };
        // What the replay covers: its events, and the state the read reflected. A whole state
        // covers only what happened before its read (`up_to`); its items' ids are newer.
        let covered = if replay.renumber_held {
            replay.up_to
        } else {
            replay
                .events
                .iter()
                .filter_map(Notification::event_id)
                .max()
                .unwrap_or(0)
                .max(replay.up_to)
        };
        let mut out = replay.events;
        for mut n in held {
            if n.event_id().is_some_and(|id| id <= covered) {
                continue;
            }
            if replay.renumber_held {
                let id = clock.tick();
                n.renumber(id);
                clock.keep(id, n.clone());
            }
            out.push(n);
        }
        let mut notice = replay.notice;
        let newest = out.iter().filter_map(Notification::event_id).max();
        if let (Some(newest), Some(event)) = (newest, notice.payload.get_mut("event")) {
            if newest > event["last_event_id"].as_u64().unwrap_or(0) {
                event["last_event_id"] = Value::from(newest);
            }
        }
        out.push(notice);
        for n in &out {
            self.remember(n);
        }
        out
    }
}

/// Numbers the events of a user's objects within one session, and keeps the newest of them
/// for subscriptions that start after them.
#[derive(Debug)]
pub(super) struct UserClock {
    /// The last id given (ids given by this session are above it at its start).
    last: u64,
    /// Ids from this one up were given by this session.
    first: u64,
    /// The newest events, oldest first.
    kept: VecDeque<(u64, Notification)>,
    capacity: usize,
    /// The id of the newest event no longer kept (0: none was dropped).
    dropped: u64,
    /// The highest id a client brought from elsewhere (a session whose clock was ahead): an id
    /// up to it may not be this session's.
    foreign: u64,
}

impl UserClock {
    /// A clock starting at `now_micros` that keeps the newest `capacity` events.
    pub(super) fn new(now_micros: u64, capacity: usize) -> Self {
        Self {
            last: now_micros,
            first: now_micros + 1,
            kept: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            foreign: 0,
        }
    }

    /// The id of the newest event given (what a read now reflects).
    pub(super) fn current(&self) -> u64 {
        self.last
    }

    /// The next id, not kept (for a state sent whole).
    pub(super) fn tick(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Keeps an event (whose id came from [`UserClock::tick`]) for later subscriptions.
    pub(super) fn keep(&mut self, id: u64, notification: Notification) {
        if self.kept.len() == self.capacity {
            if let Some((id, _)) = self.kept.pop_front() {
                self.dropped = id;
            }
        }
        self.kept.push_back((id, notification));
    }

    /// The kept events of `object` after `last_event_id`, or `None` when some of them may be
    /// missing (the id is from before this session, or older than what is kept): the object's
    /// whole state must be sent instead.
    /// An id ahead of the clock (from a session on a node whose clock was ahead) moves the
    /// clock past it, so that what follows is newer to the client, and asks for the whole state
    /// (as does any id up to it later); an id more than a day ahead is not believed (the
    /// clock stays).
    pub(super) fn since(&mut self, object: &str, last_event_id: u64) -> Option<Vec<Notification>> {
        const DAY_MICROS: u64 = 86_400_000_000;
        if last_event_id > self.last {
            if last_event_id - self.last <= DAY_MICROS {
                self.last = last_event_id;
                self.foreign = last_event_id;
            }
            return None;
        }
        if last_event_id < self.first - 1
            || last_event_id < self.dropped
            || last_event_id <= self.foreign
        {
            return None;
        }
        Some(
            self.kept
                .iter()
                .filter(|(id, n)| *id > last_event_id && n.object_id() == Some(object))
                .map(|(_, n)| n.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::realtime::twilsock::events::{list_item_event, map_item_event, subscription_notice};

    fn list_event(id: u64) -> Notification {
        list_item_event(
            "list_item_added",
            "CH1.messages",
            id,
            &json!(id),
            json!({}),
            &Value::Null,
        )
    }

    fn map_event(id: u64) -> Notification {
        map_item_event(
            "map_item_removed",
            "alice.channels",
            id,
            "CH1",
            json!({}),
            &Value::Null,
        )
    }

    fn replay_of(events: Vec<Notification>, up_to: u64, renumber_held: bool) -> Replay {
        Replay {
            events,
            up_to,
            notice: subscription_notice(
                "subscription_established",
                &json!(1),
                json!({"object_sid": "CH1.messages", "last_event_id": up_to}),
            ),
            renumber_held,
        }
    }

    fn ids(out: &[Notification]) -> Vec<Option<u64>> {
        out.iter().map(Notification::event_id).collect()
    }

    #[test]
    fn only_subscribed_objects_are_pushed_and_a_replay_goes_before_live_events() {
        let mut clock = UserClock::new(1000, 8);
        let mut subs = Subscriptions::default();
        assert_eq!(
            subs.admit(list_event(1)),
            Ok(None),
            "not subscribed: dropped"
        );
        assert!(subs.start("CH1.messages"));
        // Live events while the replay is read are held, the one it covers dropped.
        assert_eq!(subs.admit(list_event(5)), Ok(None));
        assert_eq!(subs.admit(list_event(6)), Ok(None));
        assert!(
            subs.flush("CH1.messages", &mut clock).is_empty(),
            "no replay read yet"
        );
        subs.replayed(
            "CH1.messages",
            replay_of(vec![list_event(4), list_event(5)], 5, false),
        );
        let out = subs.flush("CH1.messages", &mut clock);
        assert_eq!(ids(&out), vec![Some(4), Some(5), Some(6), None]);
        assert_eq!(out[3].payload["event"]["last_event_id"], 6);
        assert_eq!(out[3].payload["event_type"], "subscription_established");
        // Live from now; typing (no object) always passes.
        assert_eq!(subs.admit(list_event(7)), Ok(Some(list_event(7))));
        subs.cancel("CH1.messages");
        assert_eq!(subs.admit(list_event(8)), Ok(None));
    }

    #[test]
    fn a_subscription_started_again_keeps_what_it_held() {
        let mut clock = UserClock::new(1000, 8);
        let mut subs = Subscriptions::default();
        subs.start("CH1.messages");
        subs.replayed("CH1.messages", replay_of(vec![], 3, false));
        assert_eq!(subs.admit(list_event(4)), Ok(None));
        // The client subscribes again before the first replay was written.
        subs.start("CH1.messages");
        assert!(
            subs.flush("CH1.messages", &mut clock).is_empty(),
            "the first marker finds no replay"
        );
        subs.replayed("CH1.messages", replay_of(vec![], 3, false));
        assert_eq!(
            ids(&subs.flush("CH1.messages", &mut clock)),
            vec![Some(4), None]
        );
    }

    #[test]
    fn events_held_while_a_whole_state_was_read_come_after_it_with_newer_ids() {
        let mut clock = UserClock::new(1000, 8);
        let mut subs = Subscriptions::default();
        subs.start("alice.channels");
        let read_at = clock.current();
        // Alice leaves a channel while her channels are read: the event is held...
        let left = clock.tick();
        assert_eq!(subs.admit(map_event(left)), Ok(None));
        // ...and the state, read before it, is numbered after it.
        let state = clock.tick();
        let mut whole = replay_of(vec![map_event(state)], read_at, true);
        whole.notice.payload["event"]["object_sid"] = json!("alice.channels");
        subs.replayed("alice.channels", whole);
        let out = subs.flush("alice.channels", &mut clock);
        let got = ids(&out);
        assert_eq!(got[0], Some(state));
        assert!(got[1].unwrap() > state, "the removal wins: {got:?}");
        assert_eq!(out[1].payload["event_type"], "map_item_removed");
        assert_eq!(
            out[1].payload["event"]["map_revision"],
            got[1].unwrap().to_string()
        );
    }

    #[test]
    fn a_burst_during_a_replay_is_bounded() {
        let mut subs = Subscriptions::default();
        subs.start("CH1.messages");
        for id in 0..HELD_EVENTS as u64 {
            assert_eq!(subs.admit(list_event(id)), Ok(None));
        }
        assert_eq!(subs.admit(list_event(u64::MAX)), Err(TooManyHeld));
    }

    #[test]
    fn a_new_message_updates_a_live_channel_document() {
        let mut clock = UserClock::new(1000, 8);
        let mut subs = Subscriptions::default();
        let message = json!({"index": 4, "dateCreated": "t"});
        assert!(
            subs.last_message("CH1", 9, &message).is_none(),
            "not subscribed"
        );
        subs.start("CH1.channel");
        let state = document_updated("CH1.channel", 8, json!({"friendlyName": "a"}), &Value::Null);
        let mut replay = replay_of(vec![state], 8, false);
        replay.notice.payload["event"]["object_sid"] = json!("CH1.channel");
        subs.replayed("CH1.channel", replay);
        assert!(
            subs.last_message("CH1", 9, &message).is_none(),
            "not live yet"
        );
        subs.flush("CH1.channel", &mut clock);
        let n = subs.last_message("CH1", 9, &message).unwrap();
        assert_eq!(n.event_id(), Some(9));
        assert_eq!(n.payload["event"]["document_data"]["friendlyName"], "a");
        assert_eq!(
            n.payload["event"]["document_data"]["lastMessage"]["index"],
            4
        );
        subs.cancel("CH1.channel");
        assert!(subs.last_message("CH1", 10, &message).is_none());
        assert_eq!(subs.document_bytes, 0);
    }

    #[test]
    fn subscriptions_are_bounded() {
        let mut subs = Subscriptions::default();
        for i in 0..MAX_SUBSCRIPTIONS {
            assert!(subs.start(&format!("u{i}.info")));
        }
        assert!(!subs.start("one-more.info"));
        assert!(
            subs.start("u0.info"),
            "an object already subscribed may start again"
        );
    }

    #[test]
    fn a_clock_behind_the_client_moves_past_its_id() {
        let mut clock = UserClock::new(1000, 8);
        assert!(
            clock.since("alice.channels", 5000).is_none(),
            "the whole state"
        );
        // Another object's id from the same other session: also the whole state.
        assert!(clock.since("alice.info", 4000).is_none());
        assert!(clock.tick() > 5000);
        assert!(
            clock.since("alice.info", 5001).is_some(),
            "this session's own ids replay"
        );
        // An id from far in the future is not believed.
        assert!(clock.since("alice.info", u64::MAX).is_none());
        assert!(clock.tick() < 10_000);
    }
}
