//! Channel and member operations: descriptors, get, create, join, leave, decline, invite, add,
//! remove, update, delete, members.

use confab_app::channels::{MemberChange, NewChannel, SeenChannel};
use confab_app::AppError;
use confab_domain::{Channel, ChannelType, UpdateChannel};
use confab_protocol::realtime::{request::Paging, ChannelView, MemberView, PageView};
use confab_store::{PageRequest, PageStart};
use serde_json::{json, Value};

use super::{attributes_text, reply, OpResult};
use crate::realtime::connection::Connection;

fn view(channel: &Channel, status: &str, last_consumed: Option<u64>) -> ChannelView {
    ChannelView::new(channel, status, last_consumed)
}

fn seen_view(seen: &SeenChannel) -> ChannelView {
    match &seen.member {
        Some(member) => ChannelView::for_member(&seen.channel, member),
        None => view(&seen.channel, seen.participation.as_str(), None),
    }
}

impl Connection {
    fn page(&self, paging: Paging) -> PageRequest {
        PageRequest {
            size: paging
                .page_size
                .unwrap_or(50)
                .clamp(1, self.state.app.limits().max_page_size),
            start: paging.page_token.map_or(PageStart::First, PageStart::After),
            descending: false,
        }
    }

    pub(super) async fn public_descriptors(&self, paging: Paging) -> OpResult {
        let page = self.page(paging);
        let me = self.auth()?.user();
        let got = self
            .state
            .app
            .list_channels(me.service, &[ChannelType::Public], &page)
            .await?;
        let items: Vec<ChannelView> = got
            .items
            .iter()
            .map(|c| view(c, "notParticipating", None))
            .collect();
        reply(PageView {
            items,
            next_page_token: got.next,
        })
    }

    pub(super) async fn user_descriptors(&self, paging: Paging) -> OpResult {
        let page = self.page(paging);
        let got = self
            .state
            .app
            .memberships_page(self.auth()?.user(), &page)
            .await?;
        let items: Vec<ChannelView> = got
            .items
            .iter()
            .map(|(c, m)| ChannelView::for_member(c, m))
            .collect();
        reply(PageView {
            items,
            next_page_token: got.next,
        })
    }

    pub(super) async fn subscribed_channels(&self) -> OpResult {
        let me = self.auth()?.user();
        let max = self.state.realtime.max_subscribed;
        let channels = self.state.app.user_channels(me, max).await?;
        let mut views: Vec<ChannelView> = channels
            .memberships
            .iter()
            .map(|(c, m)| ChannelView::for_member(c, m))
            .collect();
        for (channel, _) in &channels.invitations {
            views.push(view(channel, "invited", None));
        }
        Ok(json!({ "items": views }))
    }

    pub(super) async fn get_channel(&self, key: &str) -> OpResult {
        let seen = self
            .state
            .app
            .visible_channel(self.auth()?.user(), key)
            .await?;
        reply(seen_view(&seen))
    }

    pub(super) async fn create_channel(
        &self,
        friendly_name: Option<String>,
        unique_name: Option<String>,
        private: bool,
        attributes: Option<Value>,
    ) -> OpResult {
        let new = NewChannel {
            friendly_name,
            unique_name,
            attributes: attributes_text(attributes),
            private,
        };
        let channel = self
            .state
            .app
            .create_channel(&self.auth()?.caller, new)
            .await?;
        reply(view(&channel, "notParticipating", None))
    }

    pub(super) async fn join(&self, key: &str) -> OpResult {
        let (channel, member) = self.state.app.join(&self.auth()?.caller, key).await?;
        reply(ChannelView::for_member(&channel, &member))
    }

    pub(super) async fn leave(&self, key: &str) -> OpResult {
        let channel = self.state.app.leave(&self.auth()?.caller, key).await?;
        reply(view(&channel, "notParticipating", None))
    }

    pub(super) async fn decline(&self, key: &str) -> OpResult {
        let channel = self.state.app.decline(&self.auth()?.caller, key).await?;
        reply(view(&channel, "notParticipating", None))
    }

    pub(super) async fn invite(&self, key: &str, identity: &str, add: bool) -> OpResult {
        self.state
            .app
            .invite(&self.auth()?.caller, key, identity, add)
            .await?;
        Ok(json!({}))
    }

    pub(super) async fn remove_member(&self, key: &str, identity: &str) -> OpResult {
        self.state
            .app
            .remove_member(&self.auth()?.caller, key, identity)
            .await?;
        Ok(json!({}))
    }

    pub(super) async fn update_member(
        &self,
        key: &str,
        identity: &str,
        change: MemberChange,
    ) -> OpResult {
        let member = self
            .state
            .app
            .update_member(&self.auth()?.caller, key, identity, change)
            .await?;
        let mut view =
            serde_json::to_value(MemberView::from(&member)).map_err(AppError::internal)?;
        // The level is the member's own business: only its own replies show it.
        if member.identity != self.auth()?.identity {
            return Ok(view);
        }
        view["notificationLevel"] =
            json!(member.notification_level.as_deref().unwrap_or("default"));
        Ok(view)
    }

    pub(super) async fn update_channel(
        &self,
        key: &str,
        friendly_name: Option<String>,
        unique_name: Option<String>,
        attributes: Option<Value>,
    ) -> OpResult {
        let change = UpdateChannel {
            friendly_name,
            unique_name,
            attributes: attributes_text(attributes),
            ..UpdateChannel::default()
        };
        let seen = self
            .state
            .app
            .update_channel(&self.auth()?.caller, key, change)
            .await?;
        reply(seen_view(&seen))
    }

    pub(super) async fn delete_channel(&self, key: &str) -> OpResult {
        self.state
            .app
            .delete_channel(&self.auth()?.caller, key)
            .await?;
        Ok(json!({}))
    }

    pub(super) async fn get_members(&self, key: &str) -> OpResult {
        let members = self.state.app.members(self.auth()?.user(), key).await?;
        let items: Vec<MemberView> = members.iter().map(MemberView::from).collect();
        Ok(json!({ "items": items }))
    }

    pub(super) async fn members_count(&self, key: &str) -> OpResult {
        let seen = self
            .state
            .app
            .visible_channel(self.auth()?.user(), key)
            .await?;
        Ok(json!({"count": seen.channel.members_count}))
    }
}
