//! Channel use cases: what a caller sees of channels, creating, joining, leaving, inviting,
//! removing, changing and deleting them.

use std::collections::HashMap;

use confab_cluster::{ChannelOp, RandomSids};
use confab_domain::policy::participation;
use confab_domain::{
    AddMember, Caller, Channel, ChannelCommand, ChannelEventKind, ChannelSid, ChannelType,
    CreateChannel, InviteMember, Member, MemberRef, Participation, ServiceSid, UpdateChannel,
    UpdateMember,
};
use confab_store::{MemberKey, Page, PageRequest, PageStart, UserChannels};

use crate::lookup::find_event;
use crate::{App, AppError, AppResult};

/// A channel as one user sees it: how the user stands with it, and its membership if any.
#[derive(Debug, Clone)]
pub struct SeenChannel {
    /// The channel.
    pub channel: Channel,
    /// How the caller stands with it.
    pub participation: Participation,
    /// The caller's membership, when it is a member.
    pub member: Option<Member>,
}

/// A user of a service, as the use cases that act for a user need it.
#[derive(Debug, Clone, Copy)]
pub struct UserRef<'a> {
    /// The service.
    pub service: ServiceSid,
    /// The identity.
    pub identity: &'a str,
}

impl<'a> UserRef<'a> {
    /// The user a caller is; the account is refused (these use cases act for a user).
    pub fn of(caller: &'a Caller) -> AppResult<Self> {
        match caller {
            Caller::User { service, identity } => Ok(Self {
                service: *service,
                identity,
            }),
            Caller::Account => Err(AppError::invalid("this operation acts for a user")),
        }
    }
}

/// What a user changes of a membership; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct MemberChange {
    /// New attributes JSON text.
    pub attributes: Option<String>,
    /// New notification level (`default` or `muted`), the caller's own only.
    pub notification_level: Option<String>,
}

/// What a caller asks for when it creates a channel.
#[derive(Debug, Clone, Default)]
pub struct NewChannel {
    /// Display name.
    pub friendly_name: Option<String>,
    /// Unique name.
    pub unique_name: Option<String>,
    /// Attributes JSON text.
    pub attributes: Option<String>,
    /// Private rather than public.
    pub private: bool,
}

fn updated_channel(kind: &ChannelEventKind) -> Option<Channel> {
    match kind {
        ChannelEventKind::ChannelCreated { channel }
        | ChannelEventKind::ChannelUpdated { channel, .. } => Some(channel.clone()),
        _ => None,
    }
}

impl App {
    /// The channel named by `key`, if the user may see it (a private channel is visible to its
    /// members, invitees and creator only: 50300 for anyone else).
    pub async fn visible_channel(&self, user: UserRef<'_>, key: &str) -> AppResult<SeenChannel> {
        let channel = self.load_channel(user.service, key).await?;
        let member = self
            .store
            .get_member(channel.sid, &MemberKey::Identity(user.identity.to_owned()))
            .await?;
        let invited = member.is_none()
            && !self
                .store
                .list_invites(
                    channel.sid,
                    &[user.identity.to_owned()],
                    &PageRequest::first(1),
                )
                .await?
                .items
                .is_empty();
        let participation = participation(user.identity, &channel, member.is_some(), invited)?;
        Ok(SeenChannel {
            channel,
            participation,
            member,
        })
    }

    /// The channel and the user's membership of it (50400 when the user is not a member).
    pub async fn member_channel(
        &self,
        user: UserRef<'_>,
        key: &str,
    ) -> AppResult<(Channel, Member)> {
        let seen = self.visible_channel(user, key).await?;
        let member = seen.member.ok_or_else(AppError::not_member)?;
        Ok((seen.channel, member))
    }

    /// The user's memberships and pending invites with their channels, as a session starts (at
    /// most `max` of each): one read where the store can.
    pub async fn user_channels(&self, user: UserRef<'_>, max: usize) -> AppResult<UserChannels> {
        Ok(self
            .store
            .user_channels(user.service, user.identity, max)
            .await?)
    }

    /// One page of the user's memberships with their channels.
    pub async fn memberships_page(
        &self,
        user: UserRef<'_>,
        page: &PageRequest,
    ) -> AppResult<Page<(Channel, Member)>> {
        let got = self
            .store
            .list_memberships(user.service, user.identity, page)
            .await?;
        let items = self
            .with_channels(user.service, got.items, |m| m.channel_sid)
            .await?;
        Ok(Page {
            items,
            next: got.next,
        })
    }

    /// Each item with its channel, read at once; an item whose channel was deleted meanwhile is
    /// left out.
    async fn with_channels<T>(
        &self,
        service: ServiceSid,
        items: Vec<T>,
        channel_of: impl Fn(&T) -> ChannelSid,
    ) -> AppResult<Vec<(Channel, T)>> {
        if items.is_empty() {
            // An empty page: no read at all.
            return Ok(Vec::new());
        }
        let sids: Vec<ChannelSid> = items.iter().map(&channel_of).collect();
        let channels: HashMap<ChannelSid, Channel> = self
            .store
            .get_channels(service, &sids)
            .await?
            .into_iter()
            .map(|c| (c.sid, c))
            .collect();
        Ok(items
            .into_iter()
            .filter_map(|item| Some((channels.get(&channel_of(&item))?.clone(), item)))
            .collect())
    }

    /// A page of the service's channels of the given types (all types when empty).
    pub async fn list_channels(
        &self,
        service: ServiceSid,
        types: &[ChannelType],
        page: &PageRequest,
    ) -> AppResult<Page<Channel>> {
        Ok(self.store.list_channels(service, types, page).await?)
    }

    /// Creates a channel for the caller (a user needs `createChannel`).
    pub async fn create_channel(&self, caller: &Caller, new: NewChannel) -> AppResult<Channel> {
        let user = UserRef::of(caller)?;
        let sid = ChannelSid::generate(&mut RandomSids);
        let create = CreateChannel {
            sid,
            service_sid: user.service,
            friendly_name: new.friendly_name,
            unique_name: new.unique_name,
            attributes: new.attributes,
            kind: if new.private {
                ChannelType::Private
            } else {
                ChannelType::Public
            },
            created_by: Some(user.identity.to_owned()),
            date_created: None,
            date_updated: None,
        };
        let events = self.execute(caller, sid, ChannelOp::Create(create)).await?;
        find_event(&events, updated_channel)
    }

    /// The channel after a write, as stored (the write's events carry the resource they
    /// changed, not always the channel's counters).
    async fn fresh(&self, channel: &Channel) -> AppResult<Channel> {
        Ok(self
            .store
            .get_channel(channel.service_sid, channel.sid)
            .await?
            .unwrap_or_else(|| channel.clone()))
    }

    /// The user joins the channel: with the creator role if it created it, an invite's role if
    /// invited, the service's default channel role otherwise (all as the service says now).
    pub async fn join(&self, caller: &Caller, key: &str) -> AppResult<(Channel, Member)> {
        let user = UserRef::of(caller)?;
        let channel = self.load_channel(user.service, key).await?;
        let service = self.policies().service(user.service).await?.service.clone();
        let creator = confab_domain::policy::is_creator(&channel, user.identity);
        let command = ChannelCommand::AddMember(AddMember {
            identity: user.identity.to_owned(),
            role_sid: creator.then_some(service.default_channel_creator_role_sid),
            default_role: service.default_channel_role_sid,
            attributes: None,
            last_consumed_message_index: None,
            last_consumption_timestamp: None,
            date_created: None,
            date_updated: None,
        });
        let events = self
            .execute(caller, channel.sid, ChannelOp::Apply(command))
            .await?;
        let member = find_event(&events, |k| match k {
            ChannelEventKind::MemberJoined { member } => Some(member.clone()),
            _ => None,
        })?;
        Ok((self.fresh(&channel).await?, member))
    }

    /// The user leaves the channel.
    pub async fn leave(&self, caller: &Caller, key: &str) -> AppResult<Channel> {
        let user = UserRef::of(caller)?;
        let channel = self.load_channel(user.service, key).await?;
        let command = ChannelCommand::RemoveMember {
            member: MemberRef::Identity(user.identity.to_owned()),
        };
        self.execute(caller, channel.sid, ChannelOp::Apply(command))
            .await?;
        self.fresh(&channel).await
    }

    /// The user declines its invite to the channel.
    pub async fn decline(&self, caller: &Caller, key: &str) -> AppResult<Channel> {
        let user = UserRef::of(caller)?;
        let channel = self.load_channel(user.service, key).await?;
        let command = ChannelCommand::Decline {
            identity: user.identity.to_owned(),
        };
        self.execute(caller, channel.sid, ChannelOp::Apply(command))
            .await?;
        self.fresh(&channel).await
    }

    /// The user invites `identity` (`add`: adds it at once) with the service's default channel
    /// role. The invitee's user record is created, as in Twilio, once the write is allowed.
    pub async fn invite(
        &self,
        caller: &Caller,
        key: &str,
        identity: &str,
        add: bool,
    ) -> AppResult<()> {
        let user = UserRef::of(caller)?;
        // Visibility first: what follows must not tell a stranger that a private channel exists.
        let channel_sid = self.visible_channel(user, key).await?.channel.sid;
        confab_domain::limits::check_identity("Identity", identity, self.domain_limits())?;
        let service = self.policies().service(user.service).await?.service.clone();
        // Inviting (or adding) an unknown identity creates its user: bounded per service and
        // per inviting user.
        if self
            .store
            .get_user_by_identity(user.service, identity)
            .await?
            .is_none()
        {
            self.admit_invited_user(user.service, user.identity).await?;
        }
        let command = if add {
            ChannelCommand::AddMember(AddMember {
                identity: identity.to_owned(),
                role_sid: None,
                default_role: service.default_channel_role_sid,
                attributes: None,
                last_consumed_message_index: None,
                last_consumption_timestamp: None,
                date_created: None,
                date_updated: None,
            })
        } else {
            ChannelCommand::Invite(InviteMember {
                identity: identity.to_owned(),
                role_sid: service.default_channel_role_sid,
                created_by: Some(user.identity.to_owned()),
            })
        };
        self.execute(caller, channel_sid, ChannelOp::Apply(command))
            .await?;
        self.ensure_user_for(caller, false, &service, identity)
            .await?;
        Ok(())
    }

    /// Removes `identity` from the channel (the user itself: it leaves).
    pub async fn remove_member(&self, caller: &Caller, key: &str, identity: &str) -> AppResult<()> {
        let user = UserRef::of(caller)?;
        let channel_sid = self.channel_sid(user.service, key).await?;
        let command = ChannelCommand::RemoveMember {
            member: MemberRef::Identity(identity.to_owned()),
        };
        self.execute(caller, channel_sid, ChannelOp::Apply(command))
            .await?;
        Ok(())
    }

    /// Changes a member's attributes (its own with `editOwnMemberAttributes`, anyone's with
    /// `editAnyMemberAttributes`) or the caller's own notification level; returns the member.
    pub async fn update_member(
        &self,
        caller: &Caller,
        key: &str,
        identity: &str,
        change: MemberChange,
    ) -> AppResult<Member> {
        let user = UserRef::of(caller)?;
        let channel_sid = self.channel_sid(user.service, key).await?;
        let command = ChannelCommand::UpdateMember(UpdateMember {
            member: MemberRef::Identity(identity.to_owned()),
            role_sid: None,
            attributes: change.attributes,
            consumption: None,
            last_consumption_timestamp: None,
            notification_level: change.notification_level,
            date_created: None,
            date_updated: None,
        });
        let events = self
            .execute(caller, channel_sid, ChannelOp::Apply(command))
            .await?;
        find_event(&events, |k| match k {
            ChannelEventKind::MemberUpdated { member, .. } => Some(member.clone()),
            _ => None,
        })
    }

    /// Changes the channel's names or attributes; returns it as the user now sees it.
    pub async fn update_channel(
        &self,
        caller: &Caller,
        key: &str,
        change: UpdateChannel,
    ) -> AppResult<SeenChannel> {
        let user = UserRef::of(caller)?;
        let channel_sid = self.channel_sid(user.service, key).await?;
        let events = self
            .execute(
                caller,
                channel_sid,
                ChannelOp::Apply(ChannelCommand::Update(change)),
            )
            .await?;
        let channel = find_event(&events, updated_channel)?;
        self.visible_channel(user, channel.sid.to_string().as_str())
            .await
            .map(|seen| SeenChannel { channel, ..seen })
    }

    /// Deletes the channel with everything in it.
    pub async fn delete_channel(&self, caller: &Caller, key: &str) -> AppResult<()> {
        let user = UserRef::of(caller)?;
        let channel_sid = self.channel_sid(user.service, key).await?;
        self.execute(
            caller,
            channel_sid,
            ChannelOp::Apply(ChannelCommand::Delete),
        )
        .await?;
        Ok(())
    }

    /// Every member of a channel the user may see.
    pub async fn members(&self, user: UserRef<'_>, key: &str) -> AppResult<Vec<Member>> {
        let seen = self.visible_channel(user, key).await?;
        let mut page = PageRequest::first(200);
        let mut items = Vec::new();
        loop {
            let got = self
                .store
                .list_members(seen.channel.sid, &[], &page)
                .await?;
            items.extend(got.items);
            match got.next {
                Some(cursor) => page.start = PageStart::After(cursor),
                None => break,
            }
        }
        Ok(items)
    }
}
