//! The Sync objects a twilio-chat client reads, as a view of Confab's state and events (Sync is
//! not a second store here): their ids, their data, and the Sync events that Confab's realtime
//! events become (docs/twilio-client-protocol.md, §4).
//!
//! Objects and their event ids:
//!
//! | id | Sync type | holds | event ids |
//! |---|---|---|---|
//! | `CH….channel` | document | the channel | the channel's event `seq` |
//! | `CH….messages` | list | its messages, by index | the channel's event `seq` |
//! | `CH….roster` | map | its members, by member SID | the channel's event `seq` |
//! | `<identity>.channels` | map | the user's channels (joined, invited), by channel SID | the session's user clock |
//! | `<identity>.info` | map | a user's `friendlyName`, `attributes`, `reachability` | the session's user clock |
//!
//! A channel's objects number their events with the channel's `seq`, which the session's writer
//! already delivers in order, without gaps or repeats, and which the store replays: a
//! subscription from `last_event_id` is a read of the channel's events after it. A user's
//! objects have no such sequence, so each session numbers their events with its own clock
//! ([`UserClock`]: increasing, and above every id an earlier session of the user can have given,
//! as it starts from the time in microseconds) and keeps the newest of them to replay.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

/// The message type of Sync events in order (each advances the object's `last_event_id`).
pub(super) const SYNC_EVENT: &str = "twilio.sync.event";
/// The message type of typing indicators.
pub(super) const TYPING_INDICATOR: &str = "twilio.ipmsg.typing_indicator";

/// One Sync object of the view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum SyncObject {
    /// A channel's document (by channel SID or unique name, as the client names it).
    Channel(String),
    /// A channel's messages list.
    Messages(String),
    /// A channel's members map.
    Roster(String),
    /// A user's channels map.
    UserChannels(String),
    /// A user's info map.
    UserInfo(String),
}

/// The Sync type of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncKind {
    Document,
    List,
    Map,
}

impl SyncKind {
    /// From the collection of a URL path (`Documents`, `Lists`, `Maps`) or a subscription's
    /// `object_type` (`document`, `list`, `map`).
    pub(super) fn parse(name: &str) -> Option<Self> {
        match name {
            "Documents" | "document" => Some(Self::Document),
            "Lists" | "list" => Some(Self::List),
            "Maps" | "map" => Some(Self::Map),
            _ => None,
        }
    }

    /// The collection of its URLs.
    pub(super) fn collection(self) -> &'static str {
        match self {
            Self::Document => "Documents",
            Self::List => "Lists",
            Self::Map => "Maps",
        }
    }

    /// Its name in subscriptions and event types.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::List => "list",
            Self::Map => "map",
        }
    }
}

impl SyncObject {
    /// The object of an id and a Sync type; `None` when there is no such object.
    pub(super) fn parse(kind: SyncKind, id: &str) -> Option<Self> {
        let (name, suffix) = id.rsplit_once('.')?;
        if name.is_empty() {
            return None;
        }
        let name = name.to_owned();
        match (kind, suffix) {
            (SyncKind::Document, "channel") => Some(Self::Channel(name)),
            (SyncKind::List, "messages") => Some(Self::Messages(name)),
            (SyncKind::Map, "roster") => Some(Self::Roster(name)),
            (SyncKind::Map, "channels") => Some(Self::UserChannels(name)),
            (SyncKind::Map, "info") => Some(Self::UserInfo(name)),
            _ => None,
        }
    }

    /// Its id, which is also its SID and unique name.
    pub(super) fn id(&self) -> String {
        match self {
            Self::Channel(c) => channel_doc_id(c),
            Self::Messages(c) => format!("{c}.messages"),
            Self::Roster(c) => format!("{c}.roster"),
            Self::UserChannels(identity) => user_channels_id(identity),
            Self::UserInfo(identity) => user_info_id(identity),
        }
    }

    /// Its Sync type.
    pub(super) fn kind(&self) -> SyncKind {
        match self {
            Self::Channel(_) => SyncKind::Document,
            Self::Messages(_) => SyncKind::List,
            Self::Roster(_) | Self::UserChannels(_) | Self::UserInfo(_) => SyncKind::Map,
        }
    }

    /// The channel (SID or unique name) whose objects this is one of.
    pub(super) fn channel(&self) -> Option<&str> {
        match self {
            Self::Channel(c) | Self::Messages(c) | Self::Roster(c) => Some(c),
            Self::UserChannels(_) | Self::UserInfo(_) => None,
        }
    }
}

/// The id of a channel's document: twilio-chat derives it from the SID (`<sid>.channel`).
pub(super) fn channel_doc_id(channel: &str) -> String {
    format!("{channel}.channel")
}

/// The id of a user's channels map.
pub(super) fn user_channels_id(identity: &str) -> String {
    format!("{identity}.channels")
}

/// The id of a user's info map.
pub(super) fn user_info_id(identity: &str) -> String {
    format!("{identity}.info")
}

/// Attributes as the client parses them from messages, members and users: a JSON string.
fn attributes_string(attributes: &Value) -> Value {
    match attributes {
        Value::Null => Value::from("{}"),
        other => Value::from(other.to_string()),
    }
}

/// A message (Confab's view) as a messages list item's data.
pub(super) fn message_data(message: &Value) -> Value {
    let mut data = json!({
        "sid": message["sid"],
        "author": message["author"],
        "text": message["body"],
        "timestamp": message["dateCreated"],
        "dateUpdated": message["dateUpdated"],
        "lastUpdatedBy": message["lastUpdatedBy"],
        "attributes": attributes_string(&message["attributes"]),
        "type": message.get("type").cloned().unwrap_or_else(|| "text".into()),
        "memberSid": message["memberSid"],
    });
    if let Some(media) = message.get("media").filter(|m| m.is_object()) {
        data["media"] = json!({
            "sid": media["sid"],
            "filename": media["filename"],
            "contentType": media["contentType"],
            "size": media["size"],
        });
    }
    data
}

/// A member (Confab's view) as a roster item's data.
pub(super) fn member_data(member: &Value) -> Value {
    let identity = member["identity"].as_str().unwrap_or_default();
    json!({
        "identity": identity,
        "roleSid": member["roleSid"],
        "lastConsumedMessageIndex": member["lastConsumedMessageIndex"],
        "lastConsumptionTimestamp": member["lastConsumptionTimestamp"],
        "attributes": attributes_string(&member["attributes"]),
        "dateCreated": member["dateCreated"],
        "dateUpdated": member["dateUpdated"],
        "type": "chat",
        "userInfo": user_info_id(identity),
    })
}

/// A channel (Confab's view) as its document's data: what every member sees alike (the
/// caller's status and read horizon are in the user's channels map, not here).
pub(super) fn channel_data(channel: &Value) -> Value {
    let sid = channel["sid"].as_str().unwrap_or_default();
    let last_message = match channel.get("lastMessage") {
        Some(m) if m.is_object() => {
            json!({"index": m["index"], "timestamp": m["dateCreated"]})
        }
        _ => Value::Null,
    };
    json!({
        "sid": sid,
        "messages": format!("{sid}.messages"),
        "roster": format!("{sid}.roster"),
        "friendlyName": channel["friendlyName"],
        "uniqueName": channel["uniqueName"],
        "attributes": channel["attributes"],
        "type": channel["type"],
        "createdBy": channel["createdBy"],
        "dateCreated": channel["dateCreated"],
        "dateUpdated": channel["dateUpdated"],
        "lastMessage": last_message,
    })
}

/// A channel of the user (Confab's view, with the caller's status) as the user's channels map
/// item's data.
pub(super) fn user_channel_data(channel: &Value) -> Value {
    let sid = channel["sid"].as_str().unwrap_or_default();
    json!({
        "channel": channel_doc_id(sid),
        "status": channel["status"],
        "type": channel["type"],
        "lastConsumedMessageIndex": channel["lastConsumedMessageIndex"],
        "notificationLevel": channel.get("notificationLevel").cloned().unwrap_or_else(|| "default".into()),
    })
}

/// A user (Confab's view) as its info map's items, by key; `reachability` only when the service
/// has reachability on.
pub(super) fn user_info_items(user: &Value, reachability: bool) -> Vec<(&'static str, Value)> {
    let mut items = vec![
        ("friendlyName", json!({"value": user["friendlyName"]})),
        (
            "attributes",
            json!({"value": attributes_string(&user["attributes"])}),
        ),
    ];
    if reachability {
        let online = user["online"].as_bool().unwrap_or(false);
        items.push((
            "reachability",
            json!({"online": online, "notifiable": false}),
        ));
    }
    items
}

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

/// A subscription notice (`subscription_established`, ...) for the objects of one request.
pub(super) fn subscription_notice(
    event_type: &str,
    correlation_id: &Value,
    events: Vec<Value>,
) -> Notification {
    Notification {
        message_type: SYNC_EVENT,
        payload: json!({"event_type": event_type, "correlation_id": correlation_id, "events": events}),
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

/// A map descriptor (with its items when asked for).
pub(super) fn map_descriptor(
    base: &str,
    object: &SyncObject,
    last_event_id: u64,
    items: Option<Vec<Value>>,
) -> Value {
    let mut d = descriptor(base, object, last_event_id);
    if let Some(items) = items {
        d["items"] = Value::Array(items);
    }
    d
}

/// The fields every descriptor has.
pub(super) fn descriptor(base: &str, object: &SyncObject, last_event_id: u64) -> Value {
    let id = object.id();
    let url = format!(
        "{base}/v3/{}/{}",
        object.kind().collection(),
        encode_segment(&id)
    );
    let mut d = Map::new();
    d.insert("sid".into(), Value::from(id.clone()));
    d.insert("unique_name".into(), Value::from(id));
    d.insert("url".into(), Value::from(url.clone()));
    d.insert("revision".into(), Value::from(last_event_id.to_string()));
    d.insert("last_event_id".into(), Value::from(last_event_id));
    d.insert("date_updated".into(), Value::Null);
    d.insert("date_expires".into(), Value::Null);
    if object.kind() != SyncKind::Document {
        d.insert("links".into(), json!({"items": format!("{url}/Items")}));
    }
    Value::Object(d)
}

/// A map item of a read.
pub(super) fn map_item(base: &str, object: &SyncObject, key: &str, data: Value, id: u64) -> Value {
    json!({
        "key": key,
        "url": format!("{base}/v3/Maps/{}/Items/{}", encode_segment(&object.id()), encode_segment(key)),
        "revision": id.to_string(),
        "last_event_id": id,
        "data": data,
        "date_updated": Value::Null,
        "date_expires": Value::Null,
    })
}

/// A list item of a read.
pub(super) fn list_item(
    base: &str,
    object: &SyncObject,
    index: u64,
    data: Value,
    id: u64,
) -> Value {
    json!({
        "index": index,
        "url": format!("{base}/v3/Lists/{}/Items/{index}", encode_segment(&object.id())),
        "revision": id.to_string(),
        "last_event_id": id,
        "data": data,
        "date_updated": Value::Null,
        "date_expires": Value::Null,
    })
}

/// Percent-encodes one URL path segment (what JavaScript's `encodeURIComponent` leaves alone
/// stays).
pub(super) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
    fn ids_name_their_object() {
        let doc = SyncObject::parse(SyncKind::Document, "CH1.channel").unwrap();
        assert_eq!(doc, SyncObject::Channel("CH1".into()));
        assert_eq!(doc.id(), "CH1.channel");
        assert_eq!(
            SyncObject::parse(SyncKind::Map, "a.b@c.channels"),
            Some(SyncObject::UserChannels("a.b@c".into()))
        );
        assert_eq!(SyncObject::parse(SyncKind::List, "CH1.roster"), None);
        assert_eq!(SyncObject::parse(SyncKind::Map, ".info"), None);
        assert_eq!(encode_segment("a b/c.info"), "a%20b%2Fc.info");
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

    #[test]
    fn typing_names_the_timeout() {
        let frame = json!({"type": "event", "event": "typingStarted", "channel": "CH1",
            "data": {"identity": "bob", "memberSid": "MB1"}});
        let out = translate(&frame, &ctx(), &mut UserClock::new(0, 1));
        assert_eq!(out[0].message_type, TYPING_INDICATOR);
        assert_eq!(out[0].payload["typing_timeout"], 5);
    }
}
