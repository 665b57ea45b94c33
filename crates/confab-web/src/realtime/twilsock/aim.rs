//! The chat API that twilio-chat calls through twilsock ("aim", under `Client/v1/`): the
//! configuration, conversations (channels), participants (members), invites, messages, the
//! user's conversations (read horizon, notification level), users and typing
//! (docs/twilio-client-protocol.md, §3).
//!
//! Every call becomes the realtime operation that does the same thing
//! (`confab_protocol::realtime::Request`), run by the session's realtime `Connection` as its
//! user: the same use cases, the same authorization, the same events. The client learns what
//! changed from the Sync events of those events, so mutations answer little.

use confab_app::AppError;
use confab_protocol::realtime::{request::Paging, Request};
use serde_json::{json, Map, Value};

use super::sync::{channel_doc_id, encode_segment, user_channels_id, user_info_id};
use super::{HttpAnswer, Tunnelled, TwilsockSession};

/// A channel (Confab's view) as the descriptor twilio-chat reads (snake_case, attributes as a
/// JSON string).
fn descriptor(conversations: &str, channel: &Value) -> Value {
    let sid = channel["sid"].as_str().unwrap_or_default();
    let url = format!("{conversations}/{sid}");
    json!({
        "sid": sid,
        "conversation_sid": sid,
        "unique_name": channel["uniqueName"],
        "friendly_name": channel["friendlyName"],
        "attributes": channel["attributes"].to_string(),
        "created_by": channel["createdBy"],
        "date_created": channel["dateCreated"],
        "date_updated": channel["dateUpdated"],
        "messages_count": channel["messagesCount"],
        "participants_count": channel["membersCount"],
        "members_count": channel["membersCount"],
        "type": channel["type"],
        "status": channel["status"],
        "last_consumed_message_index": channel["lastConsumedMessageIndex"],
        "notification_level": channel.get("notificationLevel").cloned().unwrap_or_else(|| "default".into()),
        "url": url,
        "links": {
            "participants": format!("{url}/Participants"),
            "messages": format!("{url}/Messages"),
            "invites": format!("{url}/Invites"),
        },
        "sync_objects": {
            "conversation": channel_doc_id(sid),
            "messages": format!("{sid}.messages"),
        },
    })
}

/// Users per page of a channel's user descriptors (each one a user read).
const USERS_PAGE: usize = 50;

/// A user (Confab's view) as a user descriptor.
fn user_descriptor(users: &str, user: &Value) -> Value {
    let identity = user["identity"].as_str().unwrap_or_default();
    json!({
        "identity": identity,
        "friendly_name": user["friendlyName"],
        "attributes": user["attributes"].to_string(),
        "is_online": user["online"],
        "is_notifiable": Value::Null,
        "url": format!("{users}/{}", encode_segment(identity)),
        "sync_unique_name": user_info_id(identity),
        "sync_objects": {"user_info_map": user_info_id(identity)},
    })
}

/// A string field of a body.
fn text(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Attributes as the client sends them (a JSON string) to the JSON value of the realtime API.
fn attributes(body: &Map<String, Value>) -> Result<Option<Value>, AppError> {
    match body.get("attributes") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| AppError::invalid("Attributes must be valid JSON")),
        Some(other) => Ok(Some(other.clone())),
    }
}

fn ok(body: Value) -> Result<HttpAnswer, AppError> {
    Ok(HttpAnswer { status: 200, body })
}

fn created(body: Value) -> Result<HttpAnswer, AppError> {
    Ok(HttpAnswer { status: 201, body })
}

impl TwilsockSession {
    /// Answers one call of the chat API; `path` is what follows `Client/v1/`.
    pub(super) async fn aim(&mut self, request: &Tunnelled, path: &[String]) -> HttpAnswer {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match self.aim_route(request, &path).await {
            Ok(answer) => answer,
            Err(e) => HttpAnswer::error(&e),
        }
    }

    async fn aim_route(
        &mut self,
        request: &Tunnelled,
        path: &[&str],
    ) -> Result<HttpAnswer, AppError> {
        let body = &request.body;
        match (request.method.as_str(), path) {
            ("GET", ["Configuration"]) => ok(self.configuration()),
            ("GET", ["Conversations"]) => {
                let paging = Paging {
                    page_size: request.param("PageSize").and_then(|s| s.parse().ok()),
                    page_token: request.param("PageToken").map(str::to_owned),
                };
                let page = self
                    .run(Request::GetPublicChannelDescriptors(paging))
                    .await?;
                ok(self.descriptor_page(&page))
            }
            ("POST", ["Conversations"]) => {
                let view = self
                    .run(Request::CreateChannel {
                        friendly_name: text(body, "friendly_name"),
                        unique_name: text(body, "unique_name"),
                        is_private: text(body, "type").as_deref() == Some("private"),
                        attributes: attributes(body)?,
                    })
                    .await?;
                created(descriptor(&self.links.conversations(), &view))
            }
            ("GET", ["Conversations", channel]) => {
                let view = self
                    .run(Request::GetChannel {
                        channel: (*channel).to_owned(),
                    })
                    .await?;
                ok(descriptor(&self.links.conversations(), &view))
            }
            ("POST", ["Conversations", channel]) => {
                let view = self
                    .run(Request::UpdateChannel {
                        channel: (*channel).to_owned(),
                        friendly_name: text(body, "friendly_name"),
                        unique_name: text(body, "unique_name"),
                        attributes: attributes(body)?,
                    })
                    .await?;
                ok(descriptor(&self.links.conversations(), &view))
            }
            ("DELETE", ["Conversations", channel]) => {
                self.run(Request::DeleteChannel {
                    channel: (*channel).to_owned(),
                })
                .await?;
                ok(json!({}))
            }
            ("POST", ["Conversations", channel, "Participants"]) => {
                let identity =
                    text(body, "identity").ok_or_else(|| AppError::missing("Identity"))?;
                let channel = (*channel).to_owned();
                let request = if identity == self.identity() {
                    Request::Join { channel }
                } else {
                    Request::Add { channel, identity }
                };
                self.run(request).await?;
                created(json!({}))
            }
            ("DELETE", ["Conversations", channel, "Participants", member]) => {
                let identity = self.member_identity(channel, member).await?;
                let channel = (*channel).to_owned();
                let request = if identity == self.identity() {
                    Request::Leave { channel }
                } else {
                    Request::RemoveMember { channel, identity }
                };
                self.run(request).await?;
                ok(json!({}))
            }
            ("POST", ["Conversations", channel, "Participants", member]) => {
                let identity = self.member_identity(channel, member).await?;
                let attributes = attributes(body)?.unwrap_or_else(|| json!({}));
                let view = self
                    .run(Request::UpdateMemberAttributes {
                        channel: (*channel).to_owned(),
                        identity,
                        attributes,
                    })
                    .await?;
                ok(view)
            }
            ("POST", ["Conversations", channel, "Invites"]) => {
                let identity =
                    text(body, "identity").ok_or_else(|| AppError::missing("Identity"))?;
                self.run(Request::Invite {
                    channel: (*channel).to_owned(),
                    identity,
                })
                .await?;
                created(json!({}))
            }
            ("DELETE", ["Conversations", channel, "Invites", _identity]) => {
                self.run(Request::Decline {
                    channel: (*channel).to_owned(),
                })
                .await?;
                ok(json!({}))
            }
            ("POST", ["Conversations", channel, "Messages"]) => {
                let sent = self
                    .run(Request::SendMessage {
                        channel: (*channel).to_owned(),
                        body: text(body, "body").unwrap_or_default(),
                        attributes: attributes(body)?,
                        client_id: None,
                        media_sid: text(body, "media_sid"),
                    })
                    .await?;
                created(sent)
            }
            ("POST", ["Conversations", channel, "Messages", message]) => {
                let index = self.message_index(channel, message).await?;
                let view = self
                    .run(Request::UpdateMessage {
                        channel: (*channel).to_owned(),
                        index,
                        body: text(body, "body"),
                        attributes: attributes(body)?,
                    })
                    .await?;
                ok(view)
            }
            ("DELETE", ["Conversations", channel, "Messages", message]) => {
                let index = self.message_index(channel, message).await?;
                self.run(Request::RemoveMessage {
                    channel: (*channel).to_owned(),
                    index,
                })
                .await?;
                ok(json!({}))
            }
            ("GET", ["Me", "Conversations"]) => {
                let channels = self.run(Request::GetSubscribedChannels {}).await?;
                let conversations = self.links.conversations();
                let items: Vec<Value> = channels["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|c| descriptor(&conversations, c))
                            .collect()
                    })
                    .unwrap_or_default();
                ok(json!({
                    "conversations": items,
                    "meta": {"next_token": Value::Null, "previous_token": Value::Null},
                }))
            }
            ("GET", ["Me", "Conversations", channel]) => {
                let view = self
                    .run(Request::GetChannel {
                        channel: (*channel).to_owned(),
                    })
                    .await?;
                let unread = if view["status"] == "joined" {
                    self.run(Request::GetUnconsumedMessagesCount {
                        channel: (*channel).to_owned(),
                    })
                    .await?["count"]
                        .clone()
                } else {
                    Value::Null
                };
                let mut d = descriptor(&self.links.conversations(), &view);
                d["unread_messages_count"] = unread;
                ok(d)
            }
            ("POST", ["Me", "Conversations", channel]) => {
                let channel = (*channel).to_owned();
                if let Some(level) = text(body, "notification_level") {
                    self.run(Request::SetNotificationLevel {
                        channel: channel.clone(),
                        level,
                    })
                    .await?;
                }
                let mut unread = Value::Null;
                if let Some(index) = body.get("last_consumed_message_index") {
                    let index = match index {
                        Value::Null => None,
                        v => Some(v.as_u64().ok_or_else(|| {
                            AppError::invalid("last_consumed_message_index must be an index")
                        })?),
                    };
                    unread = self
                        .run(Request::UpdateLastConsumedMessageIndex {
                            channel: channel.clone(),
                            index,
                        })
                        .await?["unreadCount"]
                        .clone();
                }
                ok(json!({"conversation_sid": channel, "unread_messages_count": unread}))
            }
            ("GET", ["Users"]) => {
                let Some(channel) = request
                    .param("ConversationSid")
                    .or(request.param("ChannelSid"))
                else {
                    return Err(AppError::missing("ConversationSid"));
                };
                // By pages of USERS_PAGE (the token is the offset), each user read rated as
                // an operation, charged before anything is read.
                let from: usize = request
                    .param("PageToken")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                if !self.bucket.take_n(USERS_PAGE as u32) {
                    return Err(AppError::too_many_requests());
                }
                let members = self
                    .run(Request::GetMembers {
                        channel: channel.to_owned(),
                    })
                    .await?;
                let members = members["items"].as_array().cloned().unwrap_or_default();
                let mut users = Vec::new();
                for member in members.iter().skip(from).take(USERS_PAGE) {
                    let identity = member["identity"].as_str().unwrap_or_default().to_owned();
                    let user = self.run(Request::GetUser { identity }).await?;
                    users.push(user_descriptor(&self.links.users(), &user));
                }
                let next = from + USERS_PAGE;
                let next_token = (next < members.len()).then(|| next.to_string());
                let prev_token = (from > 0).then(|| from.saturating_sub(USERS_PAGE).to_string());
                ok(json!({"users": users, "meta": {
                    "next_token": next_token, "prev_token": prev_token, "previous_token": prev_token,
                }}))
            }
            ("GET", ["Users", identity]) => {
                let user = self
                    .run(Request::GetUser {
                        identity: (*identity).to_owned(),
                    })
                    .await?;
                ok(user_descriptor(&self.links.users(), &user))
            }
            ("POST", ["Users", identity]) => {
                if *identity != self.identity() {
                    return Err(AppError::forbidden("A user may only change its own info"));
                }
                let user = self
                    .run(Request::UpdateUser {
                        friendly_name: text(body, "friendly_name"),
                        attributes: attributes(body)?,
                    })
                    .await?;
                ok(user_descriptor(&self.links.users(), &user))
            }
            ("POST", ["Typing"]) => {
                let channel = text(body, "ChannelSid")
                    .or_else(|| text(body, "channel_sid"))
                    .ok_or_else(|| AppError::missing("ChannelSid"))?;
                self.run(Request::Typing { channel }).await?;
                ok(json!({"typing_timeout": self.view_typing_timeout()}))
            }
            _ => Err(AppError::not_found(&request.path)),
        }
    }

    /// The configuration resource, the client's first request: where everything else is.
    fn configuration(&self) -> Value {
        let identity = self.identity().to_owned();
        let aim = self.links.aim();
        json!({
            "identity": identity,
            "links": {
                "my_conversations": format!("{aim}/Me/Conversations"),
                "conversations": self.links.conversations(),
                "users": self.links.users(),
                "typing": format!("{aim}/Typing"),
                "media_service": self.links.media(),
                "current_user": format!("{}/{}", self.links.users(), encode_segment(&identity)),
                "messages_receipts": format!("{aim}/MessagesReceipts"),
            },
            "options": {
                "reachability_enabled": self.reachability(),
                "user_infos_to_subscribe": 100,
                "http_cache_interval": "PT5S",
                "consumption_report_interval": "PT5S",
            },
            "sync_objects": {
                "my_conversations": user_channels_id(&identity),
                "my_user_info": user_info_id(&identity),
            },
        })
    }

    /// A page of channels (the realtime API's page) as twilio-chat's page of descriptors.
    fn descriptor_page(&self, page: &Value) -> Value {
        let conversations = self.links.conversations();
        let items: Vec<Value> = page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|c| descriptor(&conversations, c))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "conversations": items,
            "meta": {"next_token": page["nextPageToken"], "previous_token": Value::Null},
        })
    }

    /// The identity of a member named by SID (`MB…`) or identity.
    async fn member_identity(&mut self, channel: &str, member: &str) -> Result<String, AppError> {
        // An identity may start with "MB" too: only a well-formed SID is taken for one.
        if member.parse::<confab_domain::MemberSid>().is_err() {
            return Ok(member.to_owned());
        }
        let members = self
            .run(Request::GetMembers {
                channel: channel.to_owned(),
            })
            .await?;
        // No member with that SID: it is an identity that looks like one.
        Ok(members["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["sid"] == member)
            .and_then(|m| m["identity"].as_str())
            .unwrap_or(member)
            .to_owned())
    }

    /// The index of a message named by SID (`IM…`) or index.
    async fn message_index(&mut self, channel: &str, message: &str) -> Result<u64, AppError> {
        if let Ok(index) = message.parse() {
            return Ok(index);
        }
        let auth = self.conn.auth()?;
        let sid = message.parse().map_err(|_| AppError::message_not_found())?;
        let found = self
            .conn
            .state
            .app
            .message_with_sid(auth.user(), channel, sid)
            .await?;
        Ok(found.index)
    }
}
