//! The Sync events a twilio-chat client receives: Confab's realtime events translated into
//! `twilio.sync.event` notifications for the objects of [`super::sync`], typing indicators, and
//! the per-session [`UserClock`] that numbers (and keeps, for later subscriptions) the events of
//! a user's objects, which have no sequence of their own.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use super::sync::{
    channel_data, channel_doc_id, member_data, message_data, user_channel_data, user_channels_id,
    user_info_id, user_info_items,
};

/// The message type of Sync events in order (each advances the object's `last_event_id`).
pub(super) const SYNC_EVENT: &str = "twilio.sync.event";
/// The message type of typing indicators.
pub(super) const TYPING_INDICATOR: &str = "twilio.ipmsg.typing_indicator";

/// One notification for the client: its message type and payload.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Notification {
    pub(super) message_type: &'static str,
    pub(super) payload: Value,
}

impl Notification {
    fn sync(event_type: &str, event: Value) -> Self {
        Self {
            message_type: SYNC_EVENT,
            payload: json!({"event_type": event_type, "event": event}),
        }
    }

    /// The event's id (`None` for typing and subscription notices).
    fn event_id(&self) -> Option<u64> {
        self.payload.get("event")?.get("id")?.as_u64()
    }

    /// The object an event of it is about (`None` for typing and subscription notices).
    pub(super) fn object_id(&self) -> Option<&str> {
        let event = self.payload.get("event")?;
        ["map_sid", "list_sid", "document_sid"]
            .iter()
            .find_map(|field| event.get(*field).and_then(Value::as_str))
    }
}

/// A map item event (`map_item_added`, `map_item_updated`, `map_item_removed`).
pub(super) fn map_item_event(
    event_type: &str,
    map: &str,
    id: u64,
    key: &str,
    data: Value,
    at: &Value,
) -> Notification {
    Notification::sync(
        event_type,
        json!({
            "map_sid": map,
            "id": id,
            "item_key": key,
            "item_data": data,
            "item_revision": id.to_string(),
            "date_created": at,
            "map_revision": id.to_string(),
        }),
    )
}

/// A list item event (`list_item_added`, `list_item_updated`, `list_item_removed`).
pub(super) fn list_item_event(
    event_type: &str,
    list: &str,
    id: u64,
    index: &Value,
    data: Value,
    at: &Value,
) -> Notification {
    Notification::sync(
        event_type,
        json!({
            "list_sid": list,
            "id": id,
            "item_index": index,
            "item_data": data,
            "item_revision": id.to_string(),
            "date_created": at,
            "list_revision": id.to_string(),
        }),
    )
}

/// A document's new data.
pub(super) fn document_updated(document: &str, id: u64, data: Value, at: &Value) -> Notification {
    Notification::sync(
        "document_updated",
        json!({
            "document_sid": document,
            "id": id,
            "document_revision": id.to_string(),
            "document_data": data,
            "date_created": at,
        }),
    )
}

/// A subscription notice (`subscription_established`, ...) about one object. One notice per
/// object with `event` (not a batch in `events`): twilio-sync 3.4.0 reads either, but 3.0.6,
/// bundled in twilio-chat 6.0.0's browser build, reads only `event`.
pub(super) fn subscription_notice(
    event_type: &str,
    correlation_id: &Value,
    event: Value,
) -> Notification {
    Notification {
        message_type: SYNC_EVENT,
        payload: json!({"event_type": event_type, "correlation_id": correlation_id, "event": event}),
    }
}

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
}

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

/// A subscription's replay: the events after the client's `last_event_id`, up to `up_to`
/// (what they and the store reflect), and the notice that it is established.
#[derive(Debug)]
pub(super) struct Replay {
    pub(super) events: Vec<Notification>,
    pub(super) up_to: u64,
    pub(super) notice: Notification,
}

impl Subscriptions {
    /// A subscription of `object` starts (or starts again): its live events are held from now
    /// (those held by an earlier start that was not yet written are kept).
    pub(super) fn start(&mut self, object: &str) {
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
            Some(Subscription::Live) => Ok(Some(n)),
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
    /// follows).
    pub(super) fn flush(&mut self, object: &str) -> Vec<Notification> {
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
        let covered = replay
            .events
            .iter()
            .filter_map(Notification::event_id)
            .max()
            .unwrap_or(0)
            .max(replay.up_to);
        let mut out = replay.events;
        out.extend(
            held.into_iter()
                .filter(|n| n.event_id().is_none_or(|id| id > covered)),
        );
        let mut notice = replay.notice;
        let newest = out.iter().filter_map(Notification::event_id).max();
        if let (Some(newest), Some(event)) = (newest, notice.payload.get_mut("event")) {
            if newest > event["last_event_id"].as_u64().unwrap_or(0) {
                event["last_event_id"] = Value::from(newest);
            }
        }
        out.push(notice);
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
    pub(super) fn since(&self, object: &str, last_event_id: u64) -> Option<Vec<Notification>> {
        if last_event_id < self.first - 1 || last_event_id < self.dropped {
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

/// What a session needs to turn Confab's events into Sync events for its user.
#[derive(Debug)]
pub(super) struct ViewContext {
    /// The session's identity.
    pub(super) identity: String,
    /// Whether the service has reachability on.
    pub(super) reachability: bool,
    /// The service's typing timeout, in seconds.
    pub(super) typing_timeout_secs: u64,
}

/// Turns one Confab realtime frame (an event, or a session notice) into Sync notifications.
/// Channel events take their id from their `seq`; user events from `clock` (and are kept there
/// for subscriptions that start later).
pub(super) fn translate(
    frame: &Value,
    ctx: &ViewContext,
    clock: &mut UserClock,
) -> Vec<Notification> {
    let Some(name) = frame["event"].as_str() else {
        return Vec::new();
    };
    let data = &frame["data"];
    let channel = frame["channel"].as_str().unwrap_or_default();
    let seq = frame["seq"].as_u64();
    let mut out = Vec::new();
    match (name, seq) {
        ("messageAdded" | "messageRemoved", Some(seq)) => {
            let event_type = if name == "messageAdded" {
                "list_item_added"
            } else {
                "list_item_removed"
            };
            out.push(list_item_event(
                event_type,
                &format!("{channel}.messages"),
                seq,
                &data["index"],
                message_data(data),
                &data["dateUpdated"],
            ));
        }
        ("messageUpdated", Some(seq)) => {
            let message = &data["message"];
            out.push(list_item_event(
                "list_item_updated",
                &format!("{channel}.messages"),
                seq,
                &message["index"],
                message_data(message),
                &message["dateUpdated"],
            ));
        }
        ("memberJoined" | "memberLeft" | "memberUpdated", Some(seq)) => {
            let (member, event_type) = match name {
                "memberJoined" => (data, "map_item_added"),
                "memberLeft" => (data, "map_item_removed"),
                _ => (&data["member"], "map_item_updated"),
            };
            out.push(map_item_event(
                event_type,
                &format!("{channel}.roster"),
                seq,
                member["sid"].as_str().unwrap_or_default(),
                member_data(member),
                &member["dateUpdated"],
            ));
            // The user's own read horizon is also in its channels map.
            if name == "memberUpdated" && member["identity"].as_str() == Some(&ctx.identity) {
                let id = clock.tick();
                let item = json!({
                    "channel": channel_doc_id(channel),
                    "status": "joined",
                    "lastConsumedMessageIndex": member["lastConsumedMessageIndex"],
                });
                let n = map_item_event(
                    "map_item_updated",
                    &user_channels_id(&ctx.identity),
                    id,
                    channel,
                    item,
                    &member["dateUpdated"],
                );
                keep_user_event(&mut out, clock, n, id);
            }
        }
        ("channelUpdated", Some(seq)) => {
            let channel_view = &data["channel"];
            out.push(document_updated(
                &channel_doc_id(channel),
                seq,
                channel_data(channel_view),
                &channel_view["dateUpdated"],
            ));
        }
        // The user-scoped update: the caller's own notification level.
        ("channelUpdated", None) => {
            let channel_view = &data["channel"];
            let id = clock.tick();
            let n = map_item_event(
                "map_item_updated",
                &user_channels_id(&ctx.identity),
                id,
                channel,
                user_channel_data(channel_view),
                &channel_view["dateUpdated"],
            );
            keep_user_event(&mut out, clock, n, id);
        }
        ("channelRemoved", _) => {
            let doc = channel_doc_id(channel);
            out.push(Notification::sync(
                "document_removed",
                json!({"document_sid": doc, "id": seq.unwrap_or_default()}),
            ));
            let id = clock.tick();
            let n = map_item_event(
                "map_item_removed",
                &user_channels_id(&ctx.identity),
                id,
                channel,
                user_channel_data(data),
                &data["dateUpdated"],
            );
            keep_user_event(&mut out, clock, n, id);
        }
        ("channelJoined" | "channelInvited", None) => {
            let id = clock.tick();
            let n = map_item_event(
                "map_item_added",
                &user_channels_id(&ctx.identity),
                id,
                channel,
                user_channel_data(data),
                &data["dateUpdated"],
            );
            keep_user_event(&mut out, clock, n, id);
        }
        ("channelLeft", None) => {
            let id = clock.tick();
            let n = map_item_event(
                "map_item_removed",
                &user_channels_id(&ctx.identity),
                id,
                channel,
                user_channel_data(data),
                &data["dateUpdated"],
            );
            keep_user_event(&mut out, clock, n, id);
        }
        ("typingStarted", _) => out.push(Notification {
            message_type: TYPING_INDICATOR,
            payload: json!({
                "channel_sid": channel,
                "identity": data["identity"],
                "typing_timeout": ctx.typing_timeout_secs,
            }),
        }),
        ("userUpdated", _) => {
            let user = &data["user"];
            let identity = user["identity"].as_str().unwrap_or_default();
            let map = user_info_id(identity);
            for (key, value) in user_info_items(user, ctx.reachability) {
                let id = clock.tick();
                let n = map_item_event("map_item_updated", &map, id, key, value, &Value::Null);
                keep_user_event(&mut out, clock, n, id);
            }
        }
        _ => {}
    }
    out
}

/// Sends a user event and keeps it for later subscriptions.
fn keep_user_event(out: &mut Vec<Notification>, clock: &mut UserClock, n: Notification, id: u64) {
    clock.keep(id, n.clone());
    out.push(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ViewContext {
        ViewContext {
            identity: "alice".into(),
            reachability: true,
            typing_timeout_secs: 5,
        }
    }

    #[test]
    fn a_message_becomes_a_list_item_numbered_by_its_seq() {
        let frame = json!({"type": "event", "event": "messageAdded", "channel": "CH1", "seq": 7,
            "data": {"sid": "IM1", "index": 3, "body": "hi", "author": "bob",
                     "attributes": {"a": 1}, "type": "text", "dateCreated": "t", "dateUpdated": "t"}});
        let mut clock = UserClock::new(1000, 8);
        let out = translate(&frame, &ctx(), &mut clock);
        assert_eq!(out.len(), 1);
        let event = &out[0].payload["event"];
        assert_eq!(out[0].payload["event_type"], "list_item_added");
        assert_eq!(event["list_sid"], "CH1.messages");
        assert_eq!(event["id"], 7);
        assert_eq!(event["item_index"], 3);
        assert_eq!(event["item_data"]["text"], "hi");
        assert_eq!(event["item_data"]["attributes"], "{\"a\":1}");
        assert_eq!(clock.current(), 1000, "channel events use no user id");
    }

    #[test]
    fn own_channel_events_are_kept_for_later_subscriptions() {
        let mut clock = UserClock::new(1000, 8);
        let joined = json!({"type": "event", "event": "channelJoined", "channel": "CH1",
            "data": {"sid": "CH1", "status": "joined", "type": "public"}});
        let seen_at = clock.current();
        let out = translate(&joined, &ctx(), &mut clock);
        assert_eq!(out[0].payload["event"]["map_sid"], "alice.channels");
        assert_eq!(
            out[0].payload["event"]["item_data"]["channel"],
            "CH1.channel"
        );
        let replay = clock.since("alice.channels", seen_at).unwrap();
        assert_eq!(replay, out);
        assert!(clock
            .since("alice.channels", clock.current())
            .unwrap()
            .is_empty());
        // From an earlier session: what happened in between is unknown.
        assert!(clock.since("alice.channels", 10).is_none());
    }

    #[test]
    fn a_clock_that_forgot_events_asks_for_the_whole_state() {
        let mut clock = UserClock::new(1000, 2);
        for _ in 0..3 {
            let id = clock.tick();
            clock.keep(
                id,
                map_item_event(
                    "map_item_updated",
                    "alice.channels",
                    id,
                    "CH1",
                    json!({}),
                    &Value::Null,
                ),
            );
        }
        assert!(clock.since("alice.channels", 1000).is_none());
        assert_eq!(clock.since("alice.channels", 1001).unwrap().len(), 2);
    }

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

    fn replay_of(ids: &[u64], up_to: u64) -> Replay {
        Replay {
            events: ids.iter().map(|id| list_event(*id)).collect(),
            up_to,
            notice: subscription_notice(
                "subscription_established",
                &json!(1),
                json!({"object_sid": "CH1.messages", "last_event_id": up_to}),
            ),
        }
    }

    fn ids(out: &[Notification]) -> Vec<Option<u64>> {
        out.iter().map(Notification::event_id).collect()
    }

    #[test]
    fn only_subscribed_objects_are_pushed_and_a_replay_goes_before_live_events() {
        let mut subs = Subscriptions::default();
        assert_eq!(
            subs.admit(list_event(1)),
            Ok(None),
            "not subscribed: dropped"
        );
        subs.start("CH1.messages");
        // Live events while the replay is read are held, the one it covers dropped.
        assert_eq!(subs.admit(list_event(5)), Ok(None));
        assert_eq!(subs.admit(list_event(6)), Ok(None));
        assert!(subs.flush("CH1.messages").is_empty(), "no replay read yet");
        subs.replayed("CH1.messages", replay_of(&[4, 5], 5));
        let out = subs.flush("CH1.messages");
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
        let mut subs = Subscriptions::default();
        subs.start("CH1.messages");
        subs.replayed("CH1.messages", replay_of(&[], 3));
        assert_eq!(subs.admit(list_event(4)), Ok(None));
        // The client subscribes again before the first replay was written.
        subs.start("CH1.messages");
        assert!(
            subs.flush("CH1.messages").is_empty(),
            "the first marker finds no replay"
        );
        subs.replayed("CH1.messages", replay_of(&[], 3));
        assert_eq!(ids(&subs.flush("CH1.messages")), vec![Some(4), None]);
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
    fn typing_names_the_timeout() {
        let frame = json!({"type": "event", "event": "typingStarted", "channel": "CH1",
            "data": {"identity": "bob", "memberSid": "MB1"}});
        let out = translate(&frame, &ctx(), &mut UserClock::new(0, 1));
        assert_eq!(out[0].message_type, TYPING_INDICATOR);
        assert_eq!(out[0].payload["typing_timeout"], 5);
    }
}
