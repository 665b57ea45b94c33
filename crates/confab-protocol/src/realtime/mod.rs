//! The realtime WebSocket protocol (`docs/protocol.md`): resource views, frames, and the one
//! function that turns a channel event into the frame every member receives.
//!
//! Everything here is shared by the server and the Rust SDK, so both sides read the same shapes:
//! the requests a client sends ([`request`]), the close codes ([`close`]), and the views, replies
//! and event frames the server sends (here).

pub mod close;
pub mod request;

pub use close::CloseCode;
pub use request::{Request, RequestFrame};

use confab_domain::{Channel, ChannelEvent, ChannelEventKind, Member, Message, UpdateReason, User};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::time::format_rfc3339_millis as date;

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;

fn attributes(text: &str) -> Value {
    // Stored attributes were validated as JSON on the way in.
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The newest message of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMessageView {
    /// Its index.
    pub index: u64,
    /// When it was sent.
    pub date_created: String,
}

/// A channel as a client sees it (also the shape of a channel descriptor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// `CH…`
    pub sid: String,
    /// Unique name, if any.
    pub unique_name: Option<String>,
    /// Display name, if any.
    pub friendly_name: Option<String>,
    /// Attributes as JSON.
    pub attributes: Value,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Creator identity.
    pub created_by: String,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Members.
    pub members_count: u64,
    /// Messages.
    pub messages_count: u64,
    /// The newest message.
    pub last_message: Option<LastMessageView>,
    /// `joined`, `invited` or `notParticipating`, for the caller.
    pub status: String,
    /// The caller's read horizon, if it is a member.
    pub last_consumed_message_index: Option<u64>,
    /// The channel's newest event sequence number (where a client resumes from).
    pub last_seq: u64,
    /// The caller's push notification level (`default` or `muted`), where it is a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_level: Option<String>,
}

impl ChannelView {
    /// The view of `channel` for its member `member` (the caller): joined, with its read
    /// horizon and notification level.
    pub fn for_member(channel: &Channel, member: &Member) -> Self {
        Self {
            notification_level: Some(
                member
                    .notification_level
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            ..Self::new(channel, "joined", member.last_consumed_message_index)
        }
    }

    /// The view of `channel` for a caller with `status` and read horizon.
    pub fn new(channel: &Channel, status: &str, last_consumed: Option<u64>) -> Self {
        Self {
            sid: channel.sid.to_string(),
            unique_name: channel.unique_name.clone(),
            friendly_name: channel.friendly_name.clone(),
            attributes: attributes(channel.attributes.as_str()),
            kind: channel.kind.as_str().to_owned(),
            created_by: channel.created_by.clone(),
            date_created: date(channel.date_created),
            date_updated: date(channel.date_updated),
            members_count: channel.members_count,
            messages_count: channel.messages_count,
            last_message: channel.last_message.map(|m| LastMessageView {
                index: m.index,
                date_created: date(m.date_created),
            }),
            status: status.to_owned(),
            last_consumed_message_index: last_consumed,
            last_seq: channel.last_seq,
            notification_level: None,
        }
    }
}

/// A member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// `MB…`
    pub sid: String,
    /// The member's identity.
    pub identity: String,
    /// Its channel role.
    pub role_sid: String,
    /// Attributes as JSON.
    pub attributes: Value,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Read horizon.
    pub last_consumed_message_index: Option<u64>,
    /// When the read horizon last moved.
    pub last_consumption_timestamp: Option<String>,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            sid: m.sid.to_string(),
            identity: m.identity.clone(),
            role_sid: m.role_sid.to_string(),
            attributes: attributes(m.attributes.as_str()),
            date_created: date(m.date_created),
            date_updated: date(m.date_updated),
            last_consumed_message_index: m.last_consumed_message_index,
            last_consumption_timestamp: m.last_consumption_timestamp.map(date),
        }
    }
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// `IM…`
    pub sid: String,
    /// Its index in the channel.
    pub index: u64,
    /// `CH…`
    pub channel_sid: String,
    /// Author identity.
    pub author: String,
    /// Text.
    pub body: String,
    /// Attributes as JSON.
    pub attributes: Value,
    /// `text`, or `media` when it carries a media.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its media, on a `media` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaView>,
    /// The author's membership, if it was a member.
    pub member_sid: Option<String>,
    /// RFC 3339.
    pub date_created: String,
    /// RFC 3339.
    pub date_updated: String,
    /// Who changed it last.
    pub last_updated_by: Option<String>,
}

/// A message's media (twilio-chat's `Media`): fetch `GET /v1/Services/{service}/Media/{sid}`
/// for its content URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaView {
    /// `ME…`
    pub sid: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub content_type: String,
    /// File name, if it has one.
    pub filename: Option<String>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            sid: m.sid.to_string(),
            index: m.index,
            channel_sid: m.channel_sid.to_string(),
            author: m.author.clone(),
            body: m.body.clone(),
            attributes: attributes(m.attributes.as_str()),
            kind: m.kind().to_owned(),
            media: m.media.as_ref().map(|media| MediaView {
                sid: media.sid.to_string(),
                size: media.size,
                content_type: media.content_type.clone(),
                filename: media.filename.clone(),
            }),
            member_sid: m.member_sid.map(|s| s.to_string()),
            date_created: date(m.date_created),
            date_updated: date(m.date_updated),
            last_updated_by: m.last_updated_by.clone(),
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The identity.
    pub identity: String,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Attributes as JSON.
    pub attributes: Value,
    /// Whether the user has a connected session; `null` when the service's reachability is
    /// off (`ReachabilityEnabled`), as in twilio-chat.
    pub online: Option<bool>,
}

impl UserView {
    /// The view of `user` with its online status (`None`: reachability is off).
    pub fn new(user: &User, online: Option<bool>) -> Self {
        Self {
            identity: user.identity.clone(),
            friendly_name: user.friendly_name.clone(),
            attributes: attributes(user.attributes.as_str()),
            online,
        }
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageView<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page, `null` on the last.
    pub next_page_token: Option<String>,
}

/// A page of messages around an anchor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesPage {
    /// Ascending by index.
    pub items: Vec<MessageView>,
    /// Whether older messages exist.
    pub has_prev_page: bool,
    /// Whether newer messages exist.
    pub has_next_page: bool,
}

/// An error in a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Twilio error code.
    pub code: u32,
    /// For people.
    pub message: String,
    /// The HTTP status the code corresponds to.
    pub status: u16,
}

/// A reply frame.
pub fn reply_ok(id: u64, result: &impl Serialize) -> String {
    json!({"type": "reply", "id": id, "ok": true, "result": result}).to_string()
}

/// An error reply frame.
pub fn reply_err(id: u64, error: &ErrorBody) -> String {
    json!({"type": "reply", "id": id, "ok": false, "error": error}).to_string()
}

/// An event frame. `channel` and `seq` are left out when `None`.
pub fn event(name: &str, channel: Option<&str>, seq: Option<u64>, data: &impl Serialize) -> String {
    let mut frame = json!({"type": "event", "event": name, "data": data});
    if let Some(channel) = channel {
        frame["channel"] = json!(channel);
    }
    if let Some(seq) = seq {
        frame["seq"] = json!(seq);
    }
    frame.to_string()
}

fn reasons(r: &[UpdateReason]) -> Value {
    json!(r)
}

/// The frame every member of the channel receives for `event`, or `None` when the event is not
/// addressed to the members (an invite, the creation). Identical for every member, so it is
/// rendered once per event and the bytes shared.
pub fn member_frame(event: &ChannelEvent) -> Option<String> {
    let channel = event.channel_sid.to_string();
    let ch = Some(channel.as_str());
    let seq = Some(event.seq);
    let frame = match &event.kind {
        ChannelEventKind::MessageAdded { message } => {
            self::event("messageAdded", ch, seq, &MessageView::from(message))
        }
        ChannelEventKind::MessageUpdated {
            message,
            reasons: r,
        } => self::event(
            "messageUpdated",
            ch,
            seq,
            &json!({"message": MessageView::from(message), "updateReasons": reasons(r)}),
        ),
        ChannelEventKind::MessageRemoved { message } => {
            self::event("messageRemoved", ch, seq, &MessageView::from(message))
        }
        ChannelEventKind::MemberJoined { member } => {
            self::event("memberJoined", ch, seq, &MemberView::from(member))
        }
        ChannelEventKind::MemberLeft { member } => {
            self::event("memberLeft", ch, seq, &MemberView::from(member))
        }
        // A member's notification level is its own business: a change of nothing else is
        // not told to the channel.
        ChannelEventKind::MemberUpdated { reasons: r, .. }
            if r.iter().all(|reason| {
                matches!(
                    reason,
                    UpdateReason::NotificationLevel | UpdateReason::DateUpdated
                )
            }) =>
        {
            return None
        }
        ChannelEventKind::MemberUpdated { member, reasons: r } => {
            let told: Vec<UpdateReason> = r
                .iter()
                .copied()
                .filter(|reason| *reason != UpdateReason::NotificationLevel)
                .collect();
            self::event(
                "memberUpdated",
                ch,
                seq,
                &json!({"member": MemberView::from(member), "updateReasons": reasons(&told)}),
            )
        }
        ChannelEventKind::ChannelUpdated {
            channel,
            reasons: r,
        } => self::event(
            "channelUpdated",
            ch,
            seq,
            &json!({"channel": ChannelView::new(channel, "joined", None), "updateReasons": reasons(r)}),
        ),
        ChannelEventKind::ChannelRemoved { channel } => self::event(
            "channelRemoved",
            ch,
            seq,
            &ChannelView::new(channel, "notParticipating", None),
        ),
        ChannelEventKind::ChannelCreated { .. }
        | ChannelEventKind::InviteCreated { .. }
        | ChannelEventKind::InviteRemoved { .. } => return None,
    };
    Some(frame)
}

/// A frame as the client receives it, for SDKs and tests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    /// The answer to a request.
    Reply {
        /// The request's id.
        id: u64,
        /// Whether it succeeded.
        ok: bool,
        /// The result, on success.
        #[serde(default)]
        result: Option<Value>,
        /// The error, on failure.
        #[serde(default)]
        error: Option<ErrorBody>,
    },
    /// Something happened.
    Event {
        /// Its name (`messageAdded`, ...).
        event: String,
        /// The channel, for channel events.
        #[serde(default)]
        channel: Option<String>,
        /// The channel event sequence number, for channel events but typing.
        #[serde(default)]
        seq: Option<u64>,
        /// The payload.
        data: Value,
    },
    /// The token expires in `ttl` seconds: send `updateToken`.
    TokenAboutToExpire {
        /// Seconds left.
        ttl: u64,
    },
    /// The token expired; the connection closes with 4002.
    TokenExpired,
    /// The node is draining: reconnect (possibly elsewhere) and resume.
    Reconnect {
        /// Why.
        reason: String,
    },
}
