//! The ordering core: a channel's state, the commands that change it and the events they yield.
//!
//! `ChannelState::apply` is the only place where message `index` and event `seq` are assigned.
//! It validates a command completely before changing anything, so a refused command leaves the
//! state exactly as it was. Time and SIDs come in through [`ApplyContext`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::limits::{check_body, check_identity, check_name, Attributes, Limits};
use crate::media::MessageMedia;
use crate::resources::{Channel, ChannelType, Invite, LastMessage, Member, Message};
use crate::sid::{ChannelSid, InviteSid, MemberSid, MessageSid, RoleSid, ServiceSid, SidSource};
use crate::time::Timestamp;

/// How the account appears where Twilio names an identity (`created_by`, `author`): a name, not
/// a user; records keep a flag beside it so that a user with this identity owns none of them.
pub const ACCOUNT_NAME: &str = "system";

/// What `apply` needs from the outside world.
#[derive(Debug)]
pub struct ApplyContext<'a> {
    /// The time to stamp changes with.
    pub now: Timestamp,
    /// Where new SIDs come from.
    pub sids: &'a mut dyn SidSource,
    /// The limits in force for this channel (node limits lowered by the service's).
    pub limits: &'a Limits,
}

impl std::fmt::Debug for dyn SidSource + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SidSource")
    }
}

/// A member named by SID or by identity, as Twilio's member paths allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberRef {
    /// By member SID.
    Sid(MemberSid),
    /// By the member's identity.
    Identity(String),
}

/// Creates a channel. Goes to the actor of the new SID, which has no state yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateChannel {
    /// The new channel's SID, chosen by the caller so that it can be routed.
    pub sid: ChannelSid,
    /// The service.
    pub service_sid: ServiceSid,
    /// A display name.
    pub friendly_name: Option<String>,
    /// A name unique in the service (the store enforces uniqueness).
    pub unique_name: Option<String>,
    /// Attributes JSON text.
    pub attributes: Option<String>,
    /// Public or private.
    pub kind: ChannelType,
    /// Creator identity (`system` when absent).
    pub created_by: Option<String>,
    /// Override of the creation time (Twilio allows it for imports).
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// Changes a channel's names, attributes or metadata. `Some("")` clears a name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateChannel {
    /// New display name.
    pub friendly_name: Option<String>,
    /// New unique name.
    pub unique_name: Option<String>,
    /// New attributes JSON text.
    pub attributes: Option<String>,
    /// New creator identity.
    pub created_by: Option<String>,
    /// Override of the creation time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// Adds an identity to the channel (also how an invite is accepted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMember {
    /// Who joins.
    pub identity: String,
    /// Their channel role; when absent, the invite's role or `default_role`.
    pub role_sid: Option<RoleSid>,
    /// The role to use when neither the command nor an invite names one.
    pub default_role: RoleSid,
    /// Attributes JSON text.
    pub attributes: Option<String>,
    /// Initial read horizon.
    pub last_consumed_message_index: Option<u64>,
    /// Initial read horizon time.
    pub last_consumption_timestamp: Option<Timestamp>,
    /// Override of the creation time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// How a member's read horizon should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumptionUpdate {
    /// Set it to this index, or to "nothing read".
    Set(Option<u64>),
    /// Move it forward to this index; never back.
    Advance(u64),
    /// Set it to the newest message.
    All,
}

/// Changes a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateMember {
    /// Which member.
    pub member: MemberRef,
    /// New channel role.
    pub role_sid: Option<RoleSid>,
    /// New attributes JSON text.
    pub attributes: Option<String>,
    /// New read horizon.
    pub consumption: Option<ConsumptionUpdate>,
    /// Explicit time of the read horizon change.
    pub last_consumption_timestamp: Option<Timestamp>,
    /// New push notification level (`default` or `muted`).
    pub notification_level: Option<String>,
    /// Override of the creation time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// Appends a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostMessage {
    /// The author's identity; `None` when the account posts without naming one (shown as
    /// `system`, owned by no user).
    pub author: Option<String>,
    /// Whether the author must be a member (realtime clients) or not (REST, which acts as the account).
    pub require_member: bool,
    /// The text.
    pub body: String,
    /// Attributes JSON text.
    pub attributes: Option<String>,
    /// Override of the send time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
    /// Who last changed it.
    pub last_updated_by: Option<String>,
    /// The sender's idempotency key: the owner answers a repeat with the first message.
    pub client_id: Option<String>,
    /// The media it carries. From a request only `sid` is read: the channel's owner fills the
    /// rest from the stored upload and attaches it (a media is attached once).
    #[serde(default)]
    pub media: Option<Box<MessageMedia>>,
}

/// What a message update changes; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageChange {
    /// New body.
    pub body: Option<String>,
    /// New attributes JSON text.
    pub attributes: Option<String>,
    /// New author identity.
    pub author: Option<String>,
    /// Who makes the change.
    pub last_updated_by: Option<String>,
    /// Override of the creation time.
    pub date_created: Option<Timestamp>,
    /// Override of the update time.
    pub date_updated: Option<Timestamp>,
}

/// Changes a message. `current` is the stored message, loaded by the channel's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateMessage {
    /// The message as stored now.
    pub current: Message,
    /// What to change.
    pub change: MessageChange,
}

/// Invites an identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteMember {
    /// Who is invited.
    pub identity: String,
    /// The role they get on joining.
    pub role_sid: RoleSid,
    /// Who invites.
    pub created_by: Option<String>,
}

/// A command to an existing channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelCommand {
    /// Change the channel.
    Update(UpdateChannel),
    /// Delete the channel with everything in it.
    Delete,
    /// Add a member.
    AddMember(AddMember),
    /// Change a member.
    UpdateMember(UpdateMember),
    /// Remove a member.
    RemoveMember {
        /// Which member.
        member: MemberRef,
    },
    /// Append a message.
    PostMessage(PostMessage),
    /// Change a message.
    UpdateMessage(UpdateMessage),
    /// Delete a message.
    RemoveMessage {
        /// The message as stored now.
        current: Message,
    },
    /// Invite an identity.
    Invite(InviteMember),
    /// Revoke an invite.
    RemoveInvite {
        /// Which invite.
        invite: InviteSid,
    },
    /// The invitee declines their invite.
    Decline {
        /// The invitee.
        identity: String,
    },
}

/// Which field of a resource changed, named as the realtime `updateReasons` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpdateReason {
    /// `friendlyName`
    FriendlyName,
    /// `uniqueName`
    UniqueName,
    /// `attributes`
    Attributes,
    /// `createdBy`
    CreatedBy,
    /// `dateCreated`
    DateCreated,
    /// `dateUpdated`
    DateUpdated,
    /// `body`
    Body,
    /// `author`
    Author,
    /// `lastUpdatedBy`
    LastUpdatedBy,
    /// `roleSid`
    RoleSid,
    /// `lastConsumedMessageIndex`
    LastConsumedMessageIndex,
    /// `lastConsumptionTimestamp`
    LastConsumptionTimestamp,
    /// `notificationLevel`
    NotificationLevel,
}

/// Why an invite went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InviteEnd {
    /// The invitee joined.
    Accepted,
    /// The invitee declined.
    Declined,
    /// It was deleted by someone else.
    Revoked,
}

/// What happened to a channel. Each carries the resource as it is after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChannelEventKind {
    /// The channel was created.
    ChannelCreated {
        /// The new channel.
        channel: Channel,
    },
    /// The channel changed.
    ChannelUpdated {
        /// The channel after the change.
        channel: Channel,
        /// What changed.
        reasons: Vec<UpdateReason>,
    },
    /// The channel was deleted.
    ChannelRemoved {
        /// The channel as it was.
        channel: Channel,
    },
    /// A member joined.
    MemberJoined {
        /// The new member.
        member: Member,
    },
    /// A member changed.
    MemberUpdated {
        /// The member after the change.
        member: Member,
        /// What changed.
        reasons: Vec<UpdateReason>,
    },
    /// A member left or was removed.
    MemberLeft {
        /// The member as it was.
        member: Member,
    },
    /// A message was appended.
    MessageAdded {
        /// The new message.
        message: Message,
    },
    /// A message changed.
    MessageUpdated {
        /// The message after the change.
        message: Message,
        /// What changed.
        reasons: Vec<UpdateReason>,
    },
    /// A message was deleted.
    MessageRemoved {
        /// The message as it was.
        message: Message,
    },
    /// An identity was invited.
    InviteCreated {
        /// The new invite.
        invite: Invite,
    },
    /// An invite went away.
    InviteRemoved {
        /// The invite as it was.
        invite: Invite,
        /// Why.
        end: InviteEnd,
    },
}

/// One event of a channel with its place in the channel's event sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEvent {
    /// The channel.
    pub channel_sid: ChannelSid,
    /// Gap-free, strictly increasing per channel, starting at 1.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: ChannelEventKind,
}

/// A channel with its members and pending invites: everything its owner needs to order writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelState {
    channel: Channel,
    members: BTreeMap<String, Member>,
    invites: BTreeMap<String, Invite>,
    removed: bool,
}

fn parse_attributes(
    field: &'static str,
    text: Option<&str>,
    limit: usize,
) -> Result<Option<Attributes>, DomainError> {
    text.map(|t| Attributes::parse(field, t, limit)).transpose()
}

/// A name that may be cleared with an empty string.
fn optional_name(
    field: &'static str,
    value: Option<String>,
    limits: &Limits,
) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => {
            check_name(field, &v, limits)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

impl ChannelState {
    /// Creates a channel, returning its state and the `ChannelCreated` event (seq 1).
    pub fn create(
        cmd: CreateChannel,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<(Self, Vec<ChannelEvent>), DomainError> {
        let limits = ctx.limits;
        let friendly_name = optional_name("FriendlyName", cmd.friendly_name, limits)?;
        let unique_name = optional_name("UniqueName", cmd.unique_name, limits)?;
        if let Some(name) = &unique_name {
            if ChannelSid::is_sid(name) {
                return Err(DomainError::InvalidParameter {
                    field: "UniqueName".into(),
                    reason: "must not look like a channel SID".to_owned(),
                });
            }
        }
        let attributes = parse_attributes(
            "Attributes",
            cmd.attributes.as_deref(),
            limits.channel_attributes_bytes,
        )?
        .unwrap_or_default();
        let (created_by, created_by_account) = match cmd.created_by {
            Some(c) if !c.is_empty() => {
                check_identity("CreatedBy", &c, limits)?;
                (c, false)
            }
            _ => (ACCOUNT_NAME.to_owned(), true),
        };
        let date_created = cmd.date_created.unwrap_or(ctx.now);
        let channel = Channel {
            sid: cmd.sid,
            service_sid: cmd.service_sid,
            friendly_name,
            unique_name,
            attributes,
            kind: cmd.kind,
            created_by,
            created_by_account: Some(created_by_account),
            date_created,
            date_updated: cmd.date_updated.unwrap_or(date_created),
            members_count: 0,
            messages_count: 0,
            last_message: None,
            next_message_index: 0,
            last_seq: 1,
        };
        let event = ChannelEvent {
            channel_sid: channel.sid,
            seq: 1,
            at: ctx.now,
            kind: ChannelEventKind::ChannelCreated {
                channel: channel.clone(),
            },
        };
        let state = Self {
            channel,
            members: BTreeMap::new(),
            invites: BTreeMap::new(),
            removed: false,
        };
        Ok((state, vec![event]))
    }

    /// Rebuilds the state from what the store holds.
    pub fn from_parts(channel: Channel, members: Vec<Member>, invites: Vec<Invite>) -> Self {
        Self {
            channel,
            members: members
                .into_iter()
                .map(|m| (m.identity.clone(), m))
                .collect(),
            invites: invites
                .into_iter()
                .map(|i| (i.identity.clone(), i))
                .collect(),
            removed: false,
        }
    }

    /// The channel with its counters.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The member with this identity.
    pub fn member(&self, identity: &str) -> Option<&Member> {
        self.members.get(identity)
    }

    /// The pending invite of this identity.
    pub fn invite(&self, identity: &str) -> Option<&Invite> {
        self.invites.get(identity)
    }

    /// Every member, by identity.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Whether the channel was deleted (its owner should stop).
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    fn resolve_member(&self, member: &MemberRef) -> Result<&Member, DomainError> {
        match member {
            MemberRef::Identity(identity) => self.members.get(identity),
            MemberRef::Sid(sid) => self.members.values().find(|m| m.sid == *sid),
        }
        .ok_or(DomainError::MemberNotFound)
    }

    /// Applies a command. On success returns the events, each with the next `seq`; on failure
    /// the state is unchanged.
    pub fn apply(
        &mut self,
        cmd: ChannelCommand,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEvent>, DomainError> {
        if self.removed {
            return Err(DomainError::ChannelNotFound);
        }
        let kinds = match cmd {
            ChannelCommand::Update(u) => self.update(u, ctx)?,
            ChannelCommand::Delete => {
                self.removed = true;
                vec![ChannelEventKind::ChannelRemoved {
                    channel: self.channel.clone(),
                }]
            }
            ChannelCommand::AddMember(a) => self.add_member(a, ctx)?,
            ChannelCommand::UpdateMember(u) => self.update_member(u, ctx)?,
            ChannelCommand::RemoveMember { member } => {
                let identity = self.resolve_member(&member)?.identity.clone();
                let member = self
                    .members
                    .remove(&identity)
                    .ok_or(DomainError::MemberNotFound)?;
                self.channel.members_count = self.members.len() as u64;
                self.channel.date_updated = ctx.now;
                vec![ChannelEventKind::MemberLeft { member }]
            }
            ChannelCommand::PostMessage(p) => self.post_message(p, ctx)?,
            ChannelCommand::UpdateMessage(u) => self.update_message(u, ctx)?,
            ChannelCommand::RemoveMessage { current } => {
                if current.channel_sid != self.channel.sid {
                    return Err(DomainError::MessageNotFound);
                }
                self.channel.messages_count = self.channel.messages_count.saturating_sub(1);
                vec![ChannelEventKind::MessageRemoved { message: current }]
            }
            ChannelCommand::Invite(i) => self.invite_member(i, ctx)?,
            ChannelCommand::RemoveInvite { invite } => {
                let identity = self
                    .invites
                    .values()
                    .find(|i| i.sid == invite)
                    .map(|i| i.identity.clone())
                    .ok_or(DomainError::InviteNotFound)?;
                let invite = self
                    .invites
                    .remove(&identity)
                    .ok_or(DomainError::InviteNotFound)?;
                vec![ChannelEventKind::InviteRemoved {
                    invite,
                    end: InviteEnd::Revoked,
                }]
            }
            ChannelCommand::Decline { identity } => {
                let invite = self
                    .invites
                    .remove(&identity)
                    .ok_or(DomainError::InviteNotFound)?;
                vec![ChannelEventKind::InviteRemoved {
                    invite,
                    end: InviteEnd::Declined,
                }]
            }
        };
        Ok(self.sequence(kinds, ctx.now))
    }

    /// Gives each event the next `seq`.
    fn sequence(&mut self, kinds: Vec<ChannelEventKind>, now: Timestamp) -> Vec<ChannelEvent> {
        kinds
            .into_iter()
            .map(|kind| {
                self.channel.last_seq += 1;
                ChannelEvent {
                    channel_sid: self.channel.sid,
                    seq: self.channel.last_seq,
                    at: now,
                    kind,
                }
            })
            .collect()
    }

    fn update(
        &mut self,
        u: UpdateChannel,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        let limits = ctx.limits;
        let mut next = self.channel.clone();
        let mut reasons = Vec::new();
        if let Some(name) = u.friendly_name {
            next.friendly_name = optional_name("FriendlyName", Some(name), limits)?;
            reasons.push(UpdateReason::FriendlyName);
        }
        if let Some(name) = u.unique_name {
            let name = optional_name("UniqueName", Some(name), limits)?;
            if name.as_deref().is_some_and(ChannelSid::is_sid) {
                return Err(DomainError::InvalidParameter {
                    field: "UniqueName".into(),
                    reason: "must not look like a channel SID".to_owned(),
                });
            }
            next.unique_name = name;
            reasons.push(UpdateReason::UniqueName);
        }
        if let Some(attributes) = parse_attributes(
            "Attributes",
            u.attributes.as_deref(),
            limits.channel_attributes_bytes,
        )? {
            next.attributes = attributes;
            reasons.push(UpdateReason::Attributes);
        }
        if let Some(created_by) = u.created_by {
            check_identity("CreatedBy", &created_by, limits)?;
            next.created_by = created_by;
            next.created_by_account = Some(false);
            reasons.push(UpdateReason::CreatedBy);
        }
        if let Some(date) = u.date_created {
            next.date_created = date;
            reasons.push(UpdateReason::DateCreated);
        }
        next.date_updated = u.date_updated.unwrap_or(ctx.now);
        reasons.push(UpdateReason::DateUpdated);
        self.channel = next;
        Ok(vec![ChannelEventKind::ChannelUpdated {
            channel: self.channel.clone(),
            reasons,
        }])
    }

    fn add_member(
        &mut self,
        a: AddMember,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        check_identity("Identity", &a.identity, ctx.limits)?;
        if self.members.contains_key(&a.identity) {
            return Err(DomainError::AlreadyMember);
        }
        if self.members.len() >= ctx.limits.members_per_channel {
            return Err(DomainError::MemberLimitReached {
                limit: ctx.limits.members_per_channel,
            });
        }
        let attributes = parse_attributes(
            "Attributes",
            a.attributes.as_deref(),
            ctx.limits.member_attributes_bytes,
        )?
        .unwrap_or_default();
        let mut kinds = Vec::new();
        let invite = self.invites.remove(&a.identity);
        let role_sid = a
            .role_sid
            .or(invite.as_ref().map(|i| i.role_sid))
            .unwrap_or(a.default_role);
        if let Some(invite) = invite {
            kinds.push(ChannelEventKind::InviteRemoved {
                invite,
                end: InviteEnd::Accepted,
            });
        }
        let date_created = a.date_created.unwrap_or(ctx.now);
        let member = Member {
            sid: MemberSid::generate(ctx.sids),
            channel_sid: self.channel.sid,
            service_sid: self.channel.service_sid,
            identity: a.identity.clone(),
            role_sid,
            attributes,
            last_consumed_message_index: a.last_consumed_message_index,
            last_consumption_timestamp: a
                .last_consumption_timestamp
                .or(a.last_consumed_message_index.map(|_| ctx.now)),
            notification_level: None,
            date_created,
            date_updated: a.date_updated.unwrap_or(date_created),
        };
        self.members.insert(a.identity, member.clone());
        self.channel.members_count = self.members.len() as u64;
        self.channel.date_updated = ctx.now;
        kinds.push(ChannelEventKind::MemberJoined { member });
        Ok(kinds)
    }

    fn update_member(
        &mut self,
        u: UpdateMember,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        let mut next = self.resolve_member(&u.member)?.clone();
        let mut reasons = Vec::new();
        if let Some(role) = u.role_sid {
            next.role_sid = role;
            reasons.push(UpdateReason::RoleSid);
        }
        if let Some(attributes) = parse_attributes(
            "Attributes",
            u.attributes.as_deref(),
            ctx.limits.member_attributes_bytes,
        )? {
            next.attributes = attributes;
            reasons.push(UpdateReason::Attributes);
        }
        if let Some(consumption) = u.consumption {
            let newest = self.channel.last_message.map(|m| m.index);
            let index = match consumption {
                ConsumptionUpdate::Set(index) => index,
                ConsumptionUpdate::Advance(index) => Some(
                    next.last_consumed_message_index
                        .map_or(index, |old| old.max(index)),
                ),
                ConsumptionUpdate::All => newest.or(next.last_consumed_message_index),
            };
            next.last_consumed_message_index = index;
            next.last_consumption_timestamp = Some(u.last_consumption_timestamp.unwrap_or(ctx.now));
            reasons.push(UpdateReason::LastConsumedMessageIndex);
            reasons.push(UpdateReason::LastConsumptionTimestamp);
        } else if let Some(at) = u.last_consumption_timestamp {
            next.last_consumption_timestamp = Some(at);
            reasons.push(UpdateReason::LastConsumptionTimestamp);
        }
        if let Some(level) = u.notification_level {
            if level != "default" && level != "muted" {
                return Err(DomainError::InvalidParameter {
                    field: "NotificationLevel".into(),
                    reason: "must be default or muted".to_owned(),
                });
            }
            next.notification_level = Some(level);
            reasons.push(UpdateReason::NotificationLevel);
        }
        if let Some(date) = u.date_created {
            next.date_created = date;
            reasons.push(UpdateReason::DateCreated);
        }
        next.date_updated = u.date_updated.unwrap_or(ctx.now);
        reasons.push(UpdateReason::DateUpdated);
        self.members.insert(next.identity.clone(), next.clone());
        Ok(vec![ChannelEventKind::MemberUpdated {
            member: next,
            reasons,
        }])
    }

    fn post_message(
        &mut self,
        p: PostMessage,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        check_body(&p.body, ctx.limits)?;
        if p.media.is_some() && !p.body.is_empty() {
            // As in Programmable Chat, a media message has no text: a body beside a media would
            // reach no `onMessageSend` moderation (the message fires `onMediaMessageSend`).
            return Err(DomainError::InvalidParameter {
                field: "Body".into(),
                reason: "a media message has no body".into(),
            });
        }
        if p.client_id
            .as_ref()
            .is_some_and(|c| c.len() > ctx.limits.client_id_bytes)
        {
            return Err(DomainError::TooLong {
                field: "clientId".into(),
                limit: ctx.limits.client_id_bytes,
                unit: "bytes".into(),
            });
        }
        if let Some(author) = &p.author {
            check_identity("From", author, ctx.limits)?;
        }
        let member_sid = p
            .author
            .as_ref()
            .and_then(|a| self.members.get(a))
            .map(|m| m.sid);
        if p.require_member && member_sid.is_none() {
            return Err(DomainError::NotMember);
        }
        let attributes = parse_attributes(
            "Attributes",
            p.attributes.as_deref(),
            ctx.limits.message_attributes_bytes,
        )?
        .unwrap_or_default();
        let date_created = p.date_created.unwrap_or(ctx.now);
        let message = Message {
            sid: MessageSid::generate(ctx.sids),
            channel_sid: self.channel.sid,
            service_sid: self.channel.service_sid,
            index: self.channel.next_message_index,
            by_account: Some(p.author.is_none()),
            author: p.author.unwrap_or_else(|| ACCOUNT_NAME.to_owned()),
            member_sid,
            body: p.body,
            attributes,
            was_edited: false,
            last_updated_by: p.last_updated_by,
            client_id: p.client_id,
            media: p.media,
            date_created,
            date_updated: p.date_updated.unwrap_or(date_created),
        };
        self.channel.next_message_index += 1;
        self.channel.messages_count += 1;
        self.channel.last_message = Some(LastMessage {
            index: message.index,
            date_created: message.date_created,
        });
        Ok(vec![ChannelEventKind::MessageAdded { message }])
    }

    fn update_message(
        &mut self,
        u: UpdateMessage,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        if u.current.channel_sid != self.channel.sid {
            return Err(DomainError::MessageNotFound);
        }
        let mut next = u.current;
        let u = u.change;
        let mut reasons = Vec::new();
        if let Some(body) = u.body {
            check_body(&body, ctx.limits)?;
            next.was_edited = next.was_edited || body != next.body;
            next.body = body;
            reasons.push(UpdateReason::Body);
        }
        if let Some(attributes) = parse_attributes(
            "Attributes",
            u.attributes.as_deref(),
            ctx.limits.message_attributes_bytes,
        )? {
            next.attributes = attributes;
            reasons.push(UpdateReason::Attributes);
        }
        if let Some(author) = u.author {
            check_identity("From", &author, ctx.limits)?;
            next.author = author;
            next.by_account = Some(false);
            reasons.push(UpdateReason::Author);
        }
        if let Some(by) = u.last_updated_by {
            check_identity("LastUpdatedBy", &by, ctx.limits)?;
            next.last_updated_by = Some(by);
            reasons.push(UpdateReason::LastUpdatedBy);
        }
        if let Some(date) = u.date_created {
            next.date_created = date;
            reasons.push(UpdateReason::DateCreated);
        }
        next.date_updated = u.date_updated.unwrap_or(ctx.now);
        reasons.push(UpdateReason::DateUpdated);
        Ok(vec![ChannelEventKind::MessageUpdated {
            message: next,
            reasons,
        }])
    }

    fn invite_member(
        &mut self,
        i: InviteMember,
        ctx: &mut ApplyContext<'_>,
    ) -> Result<Vec<ChannelEventKind>, DomainError> {
        check_identity("Identity", &i.identity, ctx.limits)?;
        if self.members.contains_key(&i.identity) {
            return Err(DomainError::AlreadyMember);
        }
        if self.invites.contains_key(&i.identity) {
            return Err(DomainError::AlreadyInvited);
        }
        let invite = Invite {
            sid: InviteSid::generate(ctx.sids),
            channel_sid: self.channel.sid,
            service_sid: self.channel.service_sid,
            identity: i.identity.clone(),
            role_sid: i.role_sid,
            created_by: i.created_by,
            date_created: ctx.now,
            date_updated: ctx.now,
        };
        self.invites.insert(i.identity, invite.clone());
        Ok(vec![ChannelEventKind::InviteCreated { invite }])
    }
}

#[cfg(test)]
mod tests;
