//! The requests a realtime client sends: one variant per operation of `docs/protocol.md`, each
//! with its parameters, tagged by `type`. The server decodes frames into [`RequestFrame`]; the
//! Rust SDK encodes them from it, so both sides share one definition of every operation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request frame: `{"type": op, "id": n, ...params}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Echoed in the reply.
    pub id: u64,
    /// The operation and its parameters.
    #[serde(flatten)]
    pub request: Request,
}

/// Paging of a descriptor list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    /// Items per page (the server clamps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<usize>,
    /// The `nextPageToken` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
}

/// An operation with its parameters. `channel` is a channel SID or unique name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Request {
    /// Authenticates the connection and resumes channels from their last seen `seq`.
    Init {
        /// A Twilio-format access token.
        token: String,
        /// Channel SID → last `seq` the client saw.
        #[serde(default)]
        resume: HashMap<String, u64>,
    },
    /// Replaces the token before it expires.
    UpdateToken {
        /// The new token (same identity and service).
        token: String,
    },
    /// Lists the service's public channels.
    GetPublicChannelDescriptors(Paging),
    /// Lists the channels the user is a member of.
    GetUserChannelDescriptors(Paging),
    /// The user's joined and invited channels.
    GetSubscribedChannels {},
    /// One channel the user may see.
    #[serde(rename_all = "camelCase")]
    GetChannel {
        /// Which channel.
        channel: String,
    },
    /// Creates a channel.
    #[serde(rename_all = "camelCase")]
    CreateChannel {
        /// Display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        friendly_name: Option<String>,
        /// Unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unique_name: Option<String>,
        /// Private rather than public.
        #[serde(default)]
        is_private: bool,
        /// Attributes (any JSON).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
    },
    /// Joins a channel.
    Join {
        /// Which channel.
        channel: String,
    },
    /// Leaves a channel.
    Leave {
        /// Which channel.
        channel: String,
    },
    /// Declines an invite.
    Decline {
        /// Which channel.
        channel: String,
    },
    /// Invites a user.
    Invite {
        /// Which channel.
        channel: String,
        /// Who.
        identity: String,
    },
    /// Adds a user at once.
    Add {
        /// Which channel.
        channel: String,
        /// Who.
        identity: String,
    },
    /// Removes a member (the caller itself: leaves).
    RemoveMember {
        /// Which channel.
        channel: String,
        /// Who.
        identity: String,
    },
    /// Changes a member's attributes (twilio-chat's `Member.updateAttributes`).
    UpdateMemberAttributes {
        /// Which channel.
        channel: String,
        /// Whose membership.
        identity: String,
        /// The new attributes.
        attributes: Value,
    },
    /// Sets the caller's push notification level in a channel: `default` or `muted`
    /// (twilio-chat's `Channel.setUserNotificationLevel`).
    SetNotificationLevel {
        /// Which channel.
        channel: String,
        /// `default` or `muted`.
        level: String,
    },
    /// Changes a channel's names or attributes.
    #[serde(rename_all = "camelCase")]
    UpdateChannel {
        /// Which channel.
        channel: String,
        /// New display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        friendly_name: Option<String>,
        /// New unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unique_name: Option<String>,
        /// New attributes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
    },
    /// Deletes a channel.
    DeleteChannel {
        /// Which channel.
        channel: String,
    },
    /// Lists a channel's members.
    GetMembers {
        /// Which channel.
        channel: String,
    },
    /// Sends a message.
    #[serde(rename_all = "camelCase")]
    SendMessage {
        /// Which channel.
        channel: String,
        /// The text (may be empty on a media message).
        #[serde(default)]
        body: String,
        /// Attributes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
        /// An idempotency key: a repeat answers with the first message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// A media the sender uploaded (`ME…`), to attach: the message's `type` is `media`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_sid: Option<String>,
    },
    /// A page of history.
    #[serde(rename_all = "camelCase")]
    GetMessages {
        /// Which channel.
        channel: String,
        /// Items per page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page_size: Option<usize>,
        /// The index the page starts or ends at.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor: Option<u64>,
        /// `backwards` (default) or `forward`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<String>,
    },
    /// Edits a message.
    UpdateMessage {
        /// Which channel.
        channel: String,
        /// The message's index.
        index: u64,
        /// New body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// New attributes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
    },
    /// Removes a message.
    RemoveMessage {
        /// Which channel.
        channel: String,
        /// The message's index.
        index: u64,
    },
    /// The user is typing.
    Typing {
        /// Which channel.
        channel: String,
    },
    /// Sets the read horizon (`null`: nothing read).
    UpdateLastConsumedMessageIndex {
        /// Which channel.
        channel: String,
        /// The newest index read.
        #[serde(default)]
        index: Option<u64>,
    },
    /// Moves the read horizon forward, never back.
    AdvanceLastConsumedMessageIndex {
        /// Which channel.
        channel: String,
        /// The newest index read.
        index: u64,
    },
    /// Everything is read.
    SetAllMessagesConsumed {
        /// Which channel.
        channel: String,
    },
    /// Nothing is read.
    SetNoMessagesConsumed {
        /// Which channel.
        channel: String,
    },
    /// Messages after the read horizon.
    GetUnconsumedMessagesCount {
        /// Which channel.
        channel: String,
    },
    /// Messages in the channel.
    GetMessagesCount {
        /// Which channel.
        channel: String,
    },
    /// Members of the channel.
    GetMembersCount {
        /// Which channel.
        channel: String,
    },
    /// A user with its online status.
    GetUser {
        /// Whose.
        identity: String,
    },
    /// Changes the caller's own user info.
    #[serde(rename_all = "camelCase")]
    UpdateUser {
        /// New display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        friendly_name: Option<String>,
        /// New attributes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Value>,
    },
}

impl Request {
    /// Every operation's name, as the `type` of its frame.
    pub const OPERATIONS: &'static [&'static str] = &[
        "init",
        "updateToken",
        "getPublicChannelDescriptors",
        "getUserChannelDescriptors",
        "getSubscribedChannels",
        "getChannel",
        "createChannel",
        "join",
        "leave",
        "decline",
        "invite",
        "add",
        "removeMember",
        "updateMemberAttributes",
        "setNotificationLevel",
        "updateChannel",
        "deleteChannel",
        "getMembers",
        "sendMessage",
        "getMessages",
        "updateMessage",
        "removeMessage",
        "typing",
        "updateLastConsumedMessageIndex",
        "advanceLastConsumedMessageIndex",
        "setAllMessagesConsumed",
        "setNoMessagesConsumed",
        "getUnconsumedMessagesCount",
        "getMessagesCount",
        "getMembersCount",
        "getUser",
        "updateUser",
    ];

    /// Whether `name` is an operation of the protocol.
    pub fn is_operation(name: &str) -> bool {
        Self::OPERATIONS.contains(&name)
    }

    /// The frame for this request with `id`.
    pub fn frame(self, id: u64) -> String {
        // Serializing plain data into a string cannot fail.
        serde_json::to_string(&RequestFrame { id, request: self }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(v: Value) -> Request {
        serde_json::from_value::<RequestFrame>(v).unwrap().request
    }

    #[test]
    fn frames_decode_as_documented() {
        assert_eq!(
            decode(json!({"type": "sendMessage", "id": 3, "channel": "general", "body": "hi"})),
            Request::SendMessage {
                channel: "general".into(),
                body: "hi".into(),
                attributes: None,
                client_id: None,
                media_sid: None
            }
        );
        assert_eq!(
            decode(json!({"type": "getSubscribedChannels", "id": 1})),
            Request::GetSubscribedChannels {}
        );
        assert_eq!(
            decode(json!({"type": "getPublicChannelDescriptors", "id": 1, "pageSize": 5})),
            Request::GetPublicChannelDescriptors(Paging {
                page_size: Some(5),
                page_token: None
            })
        );
        assert_eq!(
            decode(
                json!({"type": "updateLastConsumedMessageIndex", "id": 1, "channel": "c", "index": null})
            ),
            Request::UpdateLastConsumedMessageIndex {
                channel: "c".into(),
                index: None
            }
        );
    }

    #[test]
    fn every_operation_round_trips_by_name() {
        let samples = [
            Request::GetChannel {
                channel: "c".into(),
            },
            Request::UpdateUser {
                friendly_name: Some("n".into()),
                attributes: None,
            },
            Request::Init {
                token: "t".into(),
                resume: HashMap::new(),
            },
        ];
        for request in samples {
            let text = request.clone().frame(9);
            let value: Value = serde_json::from_str(&text).unwrap();
            assert!(Request::is_operation(value["type"].as_str().unwrap()));
            assert_eq!(value["id"], 9);
            assert_eq!(decode(value), request);
        }
    }

    #[test]
    fn the_media_and_member_seeds_of_the_fuzz_corpus_decode() {
        let seed = |bytes: &[u8]| {
            serde_json::from_slice::<RequestFrame>(bytes)
                .unwrap()
                .request
        };
        assert!(matches!(
            seed(include_bytes!(
                "../../../../fuzz/corpus/realtime_request/send-media"
            )),
            Request::SendMessage {
                media_sid: Some(_),
                ..
            }
        ));
        assert!(matches!(
            seed(include_bytes!(
                "../../../../fuzz/corpus/realtime_request/member-attributes"
            )),
            Request::UpdateMemberAttributes { .. }
        ));
        assert_eq!(
            seed(include_bytes!(
                "../../../../fuzz/corpus/realtime_request/notification-level"
            )),
            Request::SetNotificationLevel {
                channel: "general".into(),
                level: "muted".into()
            }
        );
    }
}
