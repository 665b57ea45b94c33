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
//! ([`super::events::UserClock`]: increasing, and above every id an earlier session of the user can have given,
//! as it starts from the time in microseconds) and keeps the newest of them to replay.
//! [`super::events`] turns Confab's events into the Sync events of these objects.

use serde_json::{json, Map, Value};

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
}
