//! The Sync events a twilio-chat client receives: Confab's realtime events translated into
//! `twilio.sync.event` notifications for the objects of [`super::sync`] (a user's own objects
//! numbered by the session's [`UserClock`]), typing indicators, and subscription notices.

use serde_json::{json, Value};

use super::subscriptions::UserClock;
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
    pub(super) fn event_id(&self) -> Option<u64> {
        self.payload.get("event")?.get("id")?.as_u64()
    }

    /// Gives the event a new id (and the revisions that follow it).
    pub(super) fn renumber(&mut self, id: u64) {
        let Some(Value::Object(event)) = self.payload.get_mut("event") else {
            return;
        };
        event.insert("id".into(), Value::from(id));
        for revision in [
            "item_revision",
            "map_revision",
            "list_revision",
            "document_revision",
        ] {
            if event.contains_key(revision) {
                event.insert(revision.into(), Value::from(id.to_string()));
            }
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

/// What a session needs to turn Confab's events into Sync events for its user.
#[derive(Debug, Clone)]
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
            user_channels_event(
                &mut out,
                clock,
                ctx,
                "map_item_updated",
                channel,
                &data["channel"],
            );
        }
        ("channelRemoved", _) => {
            let doc = channel_doc_id(channel);
            out.push(Notification::sync(
                "document_removed",
                json!({"document_sid": doc, "id": seq.unwrap_or_default()}),
            ));
            user_channels_event(&mut out, clock, ctx, "map_item_removed", channel, data);
        }
        ("channelJoined" | "channelInvited", None) => {
            user_channels_event(&mut out, clock, ctx, "map_item_added", channel, data);
        }
        ("channelLeft", None) => {
            user_channels_event(&mut out, clock, ctx, "map_item_removed", channel, data);
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

/// An event of the user's channels map about `channel` (its view, as the user sees it),
/// numbered by `clock` and kept for later subscriptions.
fn user_channels_event(
    out: &mut Vec<Notification>,
    clock: &mut UserClock,
    ctx: &ViewContext,
    event_type: &str,
    channel: &str,
    view: &Value,
) {
    let id = clock.tick();
    let n = map_item_event(
        event_type,
        &user_channels_id(&ctx.identity),
        id,
        channel,
        user_channel_data(view),
        &view["dateUpdated"],
    );
    keep_user_event(out, clock, n, id);
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

    #[test]
    fn typing_names_the_timeout() {
        let frame = json!({"type": "event", "event": "typingStarted", "channel": "CH1",
            "data": {"identity": "bob", "memberSid": "MB1"}});
        let out = translate(&frame, &ctx(), &mut UserClock::new(0, 1));
        assert_eq!(out[0].message_type, TYPING_INDICATOR);
        assert_eq!(out[0].payload["typing_timeout"], 5);
    }
}
