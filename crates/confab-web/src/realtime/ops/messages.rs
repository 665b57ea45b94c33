//! Message operations: send, history, edit, remove, typing, and the read horizon.

use std::time::Duration;

use confab_app::messages::{Direction, NewMessage};
use confab_app::AppError;
use confab_domain::{ConsumptionUpdate, DomainError};
use confab_protocol::realtime::{MessageView, MessagesPage};
use serde_json::{json, Value};

use super::{attributes_text, reply, OpResult};
use crate::realtime::connection::Connection;

impl Connection {
    pub(super) async fn send_message(
        &self,
        key: &str,
        body: String,
        attributes: Option<Value>,
        client_id: Option<String>,
        media_sid: Option<String>,
    ) -> OpResult {
        let media = media_sid
            .map(|sid| sid.parse().map_err(|_| DomainError::MediaNotFound))
            .transpose()?;
        let message = NewMessage {
            body,
            attributes: attributes_text(attributes),
            client_id,
            media,
        };
        let message = self
            .state
            .app
            .send_message(&self.auth()?.caller, key, message)
            .await?;
        Ok(json!({"index": message.index, "sid": message.sid}))
    }

    pub(super) async fn get_messages(
        &self,
        key: &str,
        page_size: Option<usize>,
        anchor: Option<u64>,
        direction: Option<&str>,
    ) -> OpResult {
        let direction = match direction {
            None | Some("backwards") => Direction::Backwards,
            Some("forward") => Direction::Forward,
            Some(_) => return Err(AppError::invalid("direction must be backwards or forward")),
        };
        let page = self
            .state
            .app
            .history(
                self.auth()?.user(),
                key,
                page_size.unwrap_or(30),
                anchor,
                direction,
            )
            .await?;
        reply(MessagesPage {
            items: page.items.iter().map(MessageView::from).collect(),
            has_prev_page: page.has_prev,
            has_next_page: page.has_next,
        })
    }

    pub(super) async fn update_message(
        &self,
        key: &str,
        index: u64,
        body: Option<String>,
        attributes: Option<Value>,
    ) -> OpResult {
        let message = self
            .state
            .app
            .update_message(
                &self.auth()?.caller,
                key,
                index,
                body,
                attributes_text(attributes),
            )
            .await?;
        reply(MessageView::from(&message))
    }

    pub(super) async fn remove_message(&self, key: &str, index: u64) -> OpResult {
        self.state
            .app
            .remove_message(&self.auth()?.caller, key, index)
            .await?;
        Ok(json!({}))
    }

    pub(super) async fn typing(&self, key: &str) -> OpResult {
        let auth = self.auth()?;
        let (channel, member) = self.state.app.member_channel(auth.user(), key).await?;
        // The service's timeout as it is now, not as it was when the session started.
        let service = self.state.app.policies().service(auth.service).await?;
        let timeout =
            Duration::from_secs(u64::from(service.service.typing_indicator_timeout.max(1)));
        self.state.hub.typing(
            auth.service,
            channel.sid,
            auth.identity.clone(),
            member.sid.to_string(),
            timeout,
        );
        Ok(json!({}))
    }

    pub(super) async fn consume(&self, key: &str, update: ConsumptionUpdate) -> OpResult {
        let app = &self.state.app;
        let (channel, member) = app.consume(&self.auth()?.caller, key, update).await?;
        Ok(json!({"unreadCount": app.unread(&channel, &member).await?}))
    }

    pub(super) async fn unread_count(&self, key: &str) -> OpResult {
        let app = &self.state.app;
        let (channel, member) = app.member_channel(self.auth()?.user(), key).await?;
        Ok(json!({"count": app.unconsumed(&channel, &member).await?}))
    }

    pub(super) async fn messages_count(&self, key: &str) -> OpResult {
        let (channel, _) = self
            .state
            .app
            .member_channel(self.auth()?.user(), key)
            .await?;
        Ok(json!({"count": channel.messages_count}))
    }
}
