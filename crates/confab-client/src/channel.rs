//! `Channel`: the operations on one channel, mirroring `twilio-chat`'s `Channel`.

use confab_protocol::realtime::Request;
use serde_json::Value;

use crate::{ChannelView, Client, ClientError, MemberView, MessageView};

/// Which way `get_messages` pages from its anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Older messages, ending at the anchor (the default, as in `twilio-chat`).
    #[default]
    Backwards,
    /// Newer messages, starting at the anchor.
    Forward,
}

/// A page of messages, ascending by index.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesPage {
    /// The messages.
    pub items: Vec<MessageView>,
    /// Whether older messages exist.
    pub has_prev_page: bool,
    /// Whether newer messages exist.
    pub has_next_page: bool,
}

/// A channel, as last fetched, with its operations.
#[derive(Debug, Clone)]
pub struct Channel {
    client: Client,
    view: ChannelView,
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
}

impl Channel {
    pub(crate) fn new(client: Client, view: ChannelView) -> Self {
        Self { client, view }
    }

    /// The channel's SID.
    pub fn sid(&self) -> &str {
        &self.view.sid
    }

    /// The channel as last fetched.
    pub fn view(&self) -> &ChannelView {
        &self.view
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn ch(&self) -> String {
        self.view.sid.clone()
    }

    async fn call(&self, request: Request) -> Result<Value, ClientError> {
        self.client.send(request).await
    }

    async fn call_view(&mut self, request: Request) -> Result<(), ClientError> {
        let v = self.call(request).await?;
        self.view = parse(v)?;
        Ok(())
    }

    /// Joins the channel.
    pub async fn join(&mut self) -> Result<(), ClientError> {
        self.call_view(Request::Join { channel: self.ch() }).await
    }

    /// Leaves the channel.
    pub async fn leave(&mut self) -> Result<(), ClientError> {
        self.call_view(Request::Leave { channel: self.ch() }).await
    }

    /// Declines an invitation to the channel.
    pub async fn decline(&mut self) -> Result<(), ClientError> {
        self.call_view(Request::Decline { channel: self.ch() })
            .await
    }

    /// Invites an identity.
    pub async fn invite(&self, identity: &str) -> Result<(), ClientError> {
        self.call(Request::Invite {
            channel: self.ch(),
            identity: identity.to_owned(),
        })
        .await
        .map(|_| ())
    }

    /// Adds an identity as a member.
    pub async fn add(&self, identity: &str) -> Result<(), ClientError> {
        self.call(Request::Add {
            channel: self.ch(),
            identity: identity.to_owned(),
        })
        .await
        .map(|_| ())
    }

    /// Removes a member.
    pub async fn remove_member(&self, identity: &str) -> Result<(), ClientError> {
        self.call(Request::RemoveMember {
            channel: self.ch(),
            identity: identity.to_owned(),
        })
        .await
        .map(|_| ())
    }

    /// Deletes the channel.
    pub async fn delete(&self) -> Result<(), ClientError> {
        self.call(Request::DeleteChannel { channel: self.ch() })
            .await
            .map(|_| ())
    }

    fn update(&self) -> Request {
        Request::UpdateChannel {
            channel: self.ch(),
            friendly_name: None,
            unique_name: None,
            attributes: None,
        }
    }

    /// Changes the friendly name.
    pub async fn update_friendly_name(&mut self, name: &str) -> Result<(), ClientError> {
        let mut request = self.update();
        if let Request::UpdateChannel { friendly_name, .. } = &mut request {
            *friendly_name = Some(name.to_owned());
        }
        self.call_view(request).await
    }

    /// Changes the unique name.
    pub async fn update_unique_name(&mut self, name: &str) -> Result<(), ClientError> {
        let mut request = self.update();
        if let Request::UpdateChannel { unique_name, .. } = &mut request {
            *unique_name = Some(name.to_owned());
        }
        self.call_view(request).await
    }

    /// Replaces the attributes.
    pub async fn update_attributes(&mut self, attributes: Value) -> Result<(), ClientError> {
        let mut request = self.update();
        if let Request::UpdateChannel { attributes: a, .. } = &mut request {
            *a = Some(attributes);
        }
        self.call_view(request).await
    }

    /// The members.
    pub async fn get_members(&self) -> Result<Vec<MemberView>, ClientError> {
        let v = self
            .call(Request::GetMembers { channel: self.ch() })
            .await?;
        parse(v["items"].clone())
    }

    /// Sends a message; returns its index. Retried after a reconnect with the same client id,
    /// so it is stored exactly once.
    pub async fn send_message(&self, body: &str) -> Result<u64, ClientError> {
        self.send_message_with(body, None).await
    }

    /// Sends a message with attributes; returns its index.
    pub async fn send_message_with(
        &self,
        body: &str,
        attributes: Option<Value>,
    ) -> Result<u64, ClientError> {
        let client_id = format!("{:032x}", rand::random::<u128>());
        self.send_message_with_client_id(body, attributes, &client_id)
            .await
    }

    /// Sends a message under the caller's idempotency key: however often it is sent again
    /// with the same `client_id` (after an error, from another connection), it is stored once
    /// and every call answers with the same index.
    pub async fn send_message_with_client_id(
        &self,
        body: &str,
        attributes: Option<Value>,
        client_id: &str,
    ) -> Result<u64, ClientError> {
        self.send_request(Request::SendMessage {
            channel: self.ch(),
            body: body.to_owned(),
            attributes,
            client_id: Some(client_id.to_owned()),
            media_sid: None,
        })
        .await
    }

    /// Sends a `sendMessage` request that carries a client id until it is answered.
    pub(crate) async fn send_request(&self, request: Request) -> Result<u64, ClientError> {
        loop {
            match self.call(request.clone()).await {
                Ok(v) => {
                    return v["index"]
                        .as_u64()
                        .ok_or_else(|| ClientError::Protocol("no index".into()))
                }
                // The reply was lost with the connection: send again, the client id makes the
                // retry return the first message instead of a second one.
                Err(ClientError::Disconnected) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A page of messages (like `getMessages(pageSize, anchor, direction)`).
    pub async fn get_messages(
        &self,
        page_size: Option<usize>,
        anchor: Option<u64>,
        direction: Direction,
    ) -> Result<MessagesPage, ClientError> {
        let direction = match direction {
            Direction::Backwards => "backwards",
            Direction::Forward => "forward",
        };
        let v = self
            .call(Request::GetMessages {
                channel: self.ch(),
                page_size,
                anchor,
                direction: Some(direction.to_owned()),
            })
            .await?;
        parse(v)
    }

    /// Changes a message's body.
    pub async fn update_message(&self, index: u64, body: &str) -> Result<MessageView, ClientError> {
        let v = self
            .call(Request::UpdateMessage {
                channel: self.ch(),
                index,
                body: Some(body.to_owned()),
                attributes: None,
            })
            .await?;
        parse(v)
    }

    /// Changes a message's attributes.
    pub async fn update_message_attributes(
        &self,
        index: u64,
        attributes: Value,
    ) -> Result<MessageView, ClientError> {
        let v = self
            .call(Request::UpdateMessage {
                channel: self.ch(),
                index,
                body: None,
                attributes: Some(attributes),
            })
            .await?;
        parse(v)
    }

    /// Deletes a message.
    pub async fn remove_message(&self, index: u64) -> Result<(), ClientError> {
        self.call(Request::RemoveMessage {
            channel: self.ch(),
            index,
        })
        .await
        .map(|_| ())
    }

    /// Tells the other members that the user is typing.
    pub async fn typing(&self) -> Result<(), ClientError> {
        self.call(Request::Typing { channel: self.ch() })
            .await
            .map(|_| ())
    }

    async fn unread(&self, request: Request) -> Result<u64, ClientError> {
        let v = self.call(request).await?;
        v["unreadCount"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("no unreadCount".into()))
    }

    /// Sets the read horizon (`None`: nothing read); returns the unread count.
    pub async fn update_last_consumed_message_index(
        &self,
        index: Option<u64>,
    ) -> Result<u64, ClientError> {
        self.unread(Request::UpdateLastConsumedMessageIndex {
            channel: self.ch(),
            index,
        })
        .await
    }

    /// Moves the read horizon forward only; returns the unread count.
    pub async fn advance_last_consumed_message_index(
        &self,
        index: u64,
    ) -> Result<u64, ClientError> {
        self.unread(Request::AdvanceLastConsumedMessageIndex {
            channel: self.ch(),
            index,
        })
        .await
    }

    /// Marks every message read; returns the unread count.
    pub async fn set_all_messages_consumed(&self) -> Result<u64, ClientError> {
        self.unread(Request::SetAllMessagesConsumed { channel: self.ch() })
            .await
    }

    /// Marks no message read; returns the unread count.
    pub async fn set_no_messages_consumed(&self) -> Result<u64, ClientError> {
        self.unread(Request::SetNoMessagesConsumed { channel: self.ch() })
            .await
    }

    async fn count(&self, request: Request) -> Result<u64, ClientError> {
        let v = self.call(request).await?;
        v["count"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("no count".into()))
    }

    /// Messages after the read horizon; `None` while the caller has no read horizon (as
    /// twilio-chat's `getUnconsumedMessagesCount()` resolves with `null`).
    pub async fn get_unconsumed_messages_count(&self) -> Result<Option<u64>, ClientError> {
        let v = self
            .call(Request::GetUnconsumedMessagesCount { channel: self.ch() })
            .await?;
        match &v["count"] {
            Value::Null => Ok(None),
            count => count
                .as_u64()
                .map(Some)
                .ok_or_else(|| ClientError::Protocol("no count".into())),
        }
    }

    /// Messages in the channel.
    pub async fn get_messages_count(&self) -> Result<u64, ClientError> {
        self.count(Request::GetMessagesCount { channel: self.ch() })
            .await
    }

    /// Members of the channel.
    pub async fn get_members_count(&self) -> Result<u64, ClientError> {
        self.count(Request::GetMembersCount { channel: self.ch() })
            .await
    }
}
