//! The realtime operations: each decodes nothing (the frame is already a typed
//! `confab_protocol::realtime::Request`), calls one use case of the application layer as the
//! connection's user, and renders the result as the protocol's reply. Split by resource.

mod channels;
mod messages;
mod users;

pub(crate) use users::online_anywhere;

use confab_app::channels::MemberChange;
use confab_app::AppError;
use confab_protocol::realtime::Request;
use serde_json::Value;

use super::connection::Connection;

type OpResult = Result<Value, AppError>;

/// Serializes a reply value (plain data: it cannot fail).
fn reply(value: impl serde::Serialize) -> OpResult {
    serde_json::to_value(value).map_err(AppError::internal)
}

/// Attributes as clients send them (any JSON) to the text the domain parses.
fn attributes_text(attributes: Option<Value>) -> Option<String> {
    attributes.map(|a| a.to_string())
}

impl Connection {
    /// Runs one operation of an initialized connection (`init` and `updateToken` are handled
    /// by the connection itself).
    pub(super) async fn dispatch(&mut self, request: Request) -> OpResult {
        use Request as R;
        match request {
            R::Init { .. } | R::UpdateToken { .. } => Err(AppError::invalid("Already initialized")),
            R::GetPublicChannelDescriptors(paging) => self.public_descriptors(paging).await,
            R::GetUserChannelDescriptors(paging) => self.user_descriptors(paging).await,
            R::GetSubscribedChannels {} => self.subscribed_channels().await,
            R::GetChannel { channel } => self.get_channel(&channel).await,
            R::CreateChannel {
                friendly_name,
                unique_name,
                is_private,
                attributes,
            } => {
                self.create_channel(friendly_name, unique_name, is_private, attributes)
                    .await
            }
            R::Join { channel } => self.join(&channel).await,
            R::Leave { channel } => self.leave(&channel).await,
            R::Decline { channel } => self.decline(&channel).await,
            R::Invite { channel, identity } => self.invite(&channel, &identity, false).await,
            R::Add { channel, identity } => self.invite(&channel, &identity, true).await,
            R::RemoveMember { channel, identity } => self.remove_member(&channel, &identity).await,
            R::UpdateMemberAttributes {
                channel,
                identity,
                attributes,
            } => {
                let change = MemberChange {
                    attributes: attributes_text(Some(attributes)),
                    notification_level: None,
                };
                self.update_member(&channel, &identity, change).await
            }
            R::SetNotificationLevel { channel, level } => {
                let change = MemberChange {
                    attributes: None,
                    notification_level: Some(level),
                };
                let me = self.auth()?.identity.clone();
                self.update_member(&channel, &me, change).await
            }
            R::UpdateChannel {
                channel,
                friendly_name,
                unique_name,
                attributes,
            } => {
                self.update_channel(&channel, friendly_name, unique_name, attributes)
                    .await
            }
            R::DeleteChannel { channel } => self.delete_channel(&channel).await,
            R::GetMembers { channel } => self.get_members(&channel).await,
            R::GetMembersCount { channel } => self.members_count(&channel).await,
            R::SendMessage {
                channel,
                body,
                attributes,
                client_id,
                media_sid,
            } => {
                self.send_message(&channel, body, attributes, client_id, media_sid)
                    .await
            }
            R::GetMessages {
                channel,
                page_size,
                anchor,
                direction,
            } => {
                self.get_messages(&channel, page_size, anchor, direction.as_deref())
                    .await
            }
            R::UpdateMessage {
                channel,
                index,
                body,
                attributes,
            } => self.update_message(&channel, index, body, attributes).await,
            R::RemoveMessage { channel, index } => self.remove_message(&channel, index).await,
            R::Typing { channel } => self.typing(&channel).await,
            R::UpdateLastConsumedMessageIndex { channel, index } => {
                self.consume(&channel, confab_domain::ConsumptionUpdate::Set(index))
                    .await
            }
            R::AdvanceLastConsumedMessageIndex { channel, index } => {
                self.consume(&channel, confab_domain::ConsumptionUpdate::Advance(index))
                    .await
            }
            R::SetAllMessagesConsumed { channel } => {
                self.consume(&channel, confab_domain::ConsumptionUpdate::All)
                    .await
            }
            R::SetNoMessagesConsumed { channel } => {
                self.consume(&channel, confab_domain::ConsumptionUpdate::Set(None))
                    .await
            }
            R::GetUnconsumedMessagesCount { channel } => self.unread_count(&channel).await,
            R::GetMessagesCount { channel } => self.messages_count(&channel).await,
            R::GetUser { identity } => self.get_user(&identity).await,
            R::UpdateUser {
                friendly_name,
                attributes,
            } => self.update_user(friendly_name, attributes).await,
        }
    }
}
