//! Who may do what to a channel: the caller of an operation, and the one decision, taken against
//! the channel's current state and the service's current roles.
//!
//! Every transport names its caller ([`Caller`]); the channel's owner calls [`authorize`] with
//! the state it serializes writes on, so REST, realtime and any later transport cannot disagree,
//! and nothing is decided on a snapshot older than the state the write applies to. Reads use
//! [`participation`], the same visibility rule.
//!
//! The account (REST, server-side calls) may do anything, as in Twilio. What it creates is
//! recorded as the account's (`created_by_account`, `by_account`), never as a user named
//! `system`: a user with that identity gains nothing from the account's resources.

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelCommand, ChannelState, CreateChannel, MemberRef};
use crate::error::DomainError;
use crate::permissions::{can, Action, Permission};
use crate::resources::{Channel, ChannelType, Role, Service};
use crate::sid::{RoleSid, ServiceSid};

/// Who performs an operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Caller {
    /// The account: the REST API and server-side calls. Not role-checked (as in Twilio).
    Account,
    /// A user of a service, acting through a client connection: every operation is checked
    /// against the user's service role and, inside a channel, its member role.
    User {
        /// The service the user belongs to.
        service: ServiceSid,
        /// The user's identity.
        identity: String,
    },
}

impl Caller {
    /// A user of `service`.
    pub fn user(service: ServiceSid, identity: impl Into<String>) -> Self {
        Caller::User {
            service,
            identity: identity.into(),
        }
    }

    /// The user's identity; `None` for the account.
    pub fn identity(&self) -> Option<&str> {
        match self {
            Caller::Account => None,
            Caller::User { identity, .. } => Some(identity),
        }
    }
}

/// A service's settings and roles as they are now: what decisions about its users need.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePolicy {
    /// The service (default roles, limits, timings).
    pub service: Service,
    /// Every role of the service.
    pub roles: Vec<Role>,
}

impl ServicePolicy {
    /// The role with this SID, if the service has it.
    pub fn role(&self, sid: RoleSid) -> Option<&Role> {
        self.roles.iter().find(|r| r.sid == sid)
    }
}

/// A user as a decision sees them: identity, current service role, and the service's roles.
#[derive(Debug, Clone, Copy)]
pub struct UserGrants<'a> {
    /// The user's identity.
    pub identity: &'a str,
    /// The user's service-scope role as stored now (`None`: the user has no record).
    pub service_role: Option<RoleSid>,
    /// The service's settings and roles.
    pub policy: &'a ServicePolicy,
}

/// How the caller stands with a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participation {
    /// A member.
    Joined,
    /// Has a pending invite.
    Invited,
    /// Neither; the channel is public, or the caller created it.
    NotParticipating,
}

impl Participation {
    /// The realtime protocol's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Participation::Joined => "joined",
            Participation::Invited => "invited",
            Participation::NotParticipating => "notParticipating",
        }
    }
}

/// Whether `identity` is the user who created `channel` (never true for the account's channels).
pub fn is_creator(channel: &Channel, identity: &str) -> bool {
    !channel.by_account() && channel.created_by == identity
}

/// How a user stands with a channel, or `ChannelNotFound` when the user may not see it: a
/// private channel is visible to its members, invitees and creator only.
pub fn participation(
    identity: &str,
    channel: &Channel,
    member: bool,
    invited: bool,
) -> Result<Participation, DomainError> {
    if member {
        Ok(Participation::Joined)
    } else if invited {
        Ok(Participation::Invited)
    } else if channel.kind == ChannelType::Private && !is_creator(channel, identity) {
        Err(DomainError::ChannelNotFound)
    } else {
        Ok(Participation::NotParticipating)
    }
}

/// Decides whether the caller may create a channel with `cmd`.
pub fn authorize_create(
    user: Option<&UserGrants<'_>>,
    cmd: &CreateChannel,
) -> Result<(), DomainError> {
    let Some(user) = user else {
        return Ok(());
    };
    if user.policy.service.sid != cmd.service_sid {
        return Err(DomainError::ChannelNotFound);
    }
    // A user's channel names it as its creator; only the account creates channels of nobody.
    if cmd.created_by.as_deref() != Some(user.identity) {
        return Err(forbidden("a user creates channels as itself"));
    }
    if cmd.date_created.is_some() || cmd.date_updated.is_some() {
        return Err(forbidden("only the account may set a channel's dates"));
    }
    check(user, None, Action::CreateChannel, None)
}

/// A user's command with the roles it assigns set as the service defines them now: the
/// service's default channel role for a new member or invitee, its creator role for a channel's
/// creator joining it. Users never choose roles; whatever the request carried is replaced, so
/// that the node that built the command and the owner that applies it cannot disagree.
pub fn with_service_roles(
    user: &UserGrants<'_>,
    state: &ChannelState,
    cmd: ChannelCommand,
) -> ChannelCommand {
    let service = &user.policy.service;
    match cmd {
        ChannelCommand::AddMember(mut a) => {
            let creator = a.identity == user.identity && is_creator(state.channel(), user.identity);
            a.default_role = service.default_channel_role_sid;
            a.role_sid = creator.then_some(service.default_channel_creator_role_sid);
            ChannelCommand::AddMember(a)
        }
        ChannelCommand::Invite(mut i) => {
            i.role_sid = service.default_channel_role_sid;
            ChannelCommand::Invite(i)
        }
        other => other,
    }
}

/// Decides whether the caller may apply `cmd` to the channel in `state`. `user` is `None` for
/// the account, which may do anything. Checks come in the order a client sees them: a channel
/// it may not see does not exist (50300), then membership (50400), then the permission (50107).
pub fn authorize(
    user: Option<&UserGrants<'_>>,
    state: &ChannelState,
    cmd: &ChannelCommand,
) -> Result<(), DomainError> {
    let Some(user) = user else {
        return Ok(());
    };
    let channel = state.channel();
    if user.policy.service.sid != channel.service_sid {
        return Err(DomainError::ChannelNotFound);
    }
    let me = user.identity;
    let member = state.member(me);
    let invited = state.invite(me).is_some();
    participation(me, channel, member.is_some(), invited)?;
    let my_role = member.map(|m| m.role_sid);
    let need_member = || member.map(|_| ()).ok_or(DomainError::NotMember);
    match cmd {
        ChannelCommand::Update(u) => {
            if u.created_by.is_some() || u.date_created.is_some() || u.date_updated.is_some() {
                return Err(forbidden(
                    "only the account may change a channel's creator or dates",
                ));
            }
            let names = u.friendly_name.is_some() || u.unique_name.is_some();
            if names {
                check(user, my_role, Action::EditChannelName, None)?;
            }
            // An update without fields still moves the channel (dateUpdated, an event to every
            // member): it needs the attributes permission like any other change.
            if u.attributes.is_some() || !names {
                check(user, my_role, Action::EditChannelAttributes, None)?;
            }
            Ok(())
        }
        ChannelCommand::Delete => check(user, my_role, Action::DestroyChannel, None),
        ChannelCommand::AddMember(a) if a.identity == me => {
            if member.is_some() {
                return Err(DomainError::AlreadyMember);
            }
            // The creator joins with the service's creator role; anyone else with an invite's
            // role or the service's default, never one of their choosing.
            let service = &user.policy.service;
            let creator_role =
                is_creator(channel, me).then_some(service.default_channel_creator_role_sid);
            if (a.role_sid.is_some() && a.role_sid != creator_role)
                || a.default_role != service.default_channel_role_sid
                || has_overrides(a.date_created, a.date_updated)
                || a.attributes.is_some()
                || a.last_consumed_message_index.is_some()
                || a.last_consumption_timestamp.is_some()
            {
                return Err(forbidden(
                    "only the account may choose a member's role or dates",
                ));
            }
            check(user, None, Action::JoinChannel, None)?;
            if channel.kind == ChannelType::Private && !invited && !is_creator(channel, me) {
                return Err(DomainError::NotAuthorized {
                    permission: Permission::JoinChannel,
                });
            }
            Ok(())
        }
        ChannelCommand::AddMember(a) => {
            if a.role_sid.is_some()
                || a.default_role != user.policy.service.default_channel_role_sid
                || has_overrides(a.date_created, a.date_updated)
                || a.attributes.is_some()
                || a.last_consumed_message_index.is_some()
                || a.last_consumption_timestamp.is_some()
            {
                return Err(forbidden(
                    "only the account may choose a member's role or dates",
                ));
            }
            check(user, my_role, Action::AddMember, None)
        }
        ChannelCommand::Invite(i) => {
            if i.created_by.as_deref().is_some_and(|c| c != me) {
                return Err(forbidden("a user invites as itself"));
            }
            if i.role_sid != user.policy.service.default_channel_role_sid {
                return Err(forbidden("only the account may choose an invitee's role"));
            }
            check(user, my_role, Action::InviteMember, None)
        }
        ChannelCommand::RemoveInvite { .. } => check(user, my_role, Action::InviteMember, None),
        ChannelCommand::Decline { identity } => {
            if identity != me || !invited {
                return Err(DomainError::InviteNotFound);
            }
            Ok(())
        }
        ChannelCommand::RemoveMember { member: target } => {
            let leaving = match target {
                MemberRef::Identity(identity) => identity == me,
                MemberRef::Sid(sid) => member.is_some_and(|m| m.sid == *sid),
            };
            let action = if leaving {
                need_member()?;
                Action::LeaveChannel
            } else {
                Action::RemoveMember
            };
            check(user, my_role, action, None)
        }
        ChannelCommand::UpdateMember(u) => {
            need_member()?;
            let target = match &u.member {
                MemberRef::Identity(identity) => state.member(identity),
                MemberRef::Sid(sid) => state.members().find(|m| m.sid == *sid),
            }
            .ok_or(DomainError::MemberNotFound)?;
            let mine = target.identity == me;
            if u.role_sid.is_some() || has_overrides(u.date_created, u.date_updated) {
                return Err(forbidden(
                    "only the account may change a member's role or dates",
                ));
            }
            if (u.consumption.is_some() || u.last_consumption_timestamp.is_some()) && !mine {
                return Err(forbidden("a user moves only its own read horizon"));
            }
            if u.notification_level.is_some() {
                if !mine {
                    return Err(forbidden("a user sets only its own notification level"));
                }
                check_permission(user, my_role, Permission::EditNotificationLevel)?;
            }
            if u.attributes.is_some() {
                check(
                    user,
                    my_role,
                    Action::EditMemberAttributes,
                    Some(&target.identity),
                )?;
            }
            Ok(())
        }
        ChannelCommand::PostMessage(p) => {
            need_member()?;
            if p.author.as_deref() != Some(me)
                || p.last_updated_by.is_some()
                || has_overrides(p.date_created, p.date_updated)
            {
                return Err(forbidden("a user sends messages as itself, now"));
            }
            check(user, my_role, Action::SendMessage, None)?;
            if p.media.is_some() {
                check_permission(user, my_role, Permission::SendMediaMessage)?;
            }
            Ok(())
        }
        ChannelCommand::UpdateMessage(u) => {
            need_member()?;
            let owner = message_owner(&u.current);
            let c = &u.change;
            if c.author.is_some() || has_overrides(c.date_created, c.date_updated) {
                return Err(forbidden(
                    "only the account may change a message's author or dates",
                ));
            }
            if c.last_updated_by.as_deref().is_some_and(|by| by != me) {
                return Err(forbidden("a user edits messages as itself"));
            }
            if c.body.is_some() || c.attributes.is_none() {
                check(user, my_role, Action::EditMessage, owner)?;
            }
            if c.attributes.is_some() {
                check(user, my_role, Action::EditMessageAttributes, owner)?;
            }
            Ok(())
        }
        ChannelCommand::RemoveMessage { current } => {
            need_member()?;
            check(user, my_role, Action::DeleteMessage, message_owner(current))
        }
    }
}

/// The identity that owns a message for the "own" permissions: its author, unless the account
/// posted it.
fn message_owner(message: &crate::resources::Message) -> Option<&str> {
    (!message.is_by_account()).then_some(message.author.as_str())
}

fn has_overrides<T>(created: Option<T>, updated: Option<T>) -> bool {
    created.is_some() || updated.is_some()
}

fn forbidden(reason: &'static str) -> DomainError {
    DomainError::Forbidden {
        reason: reason.into(),
    }
}

/// The roles a user holds for a decision: its service role and, inside a channel, its member
/// role, as the service defines them now.
fn roles<'a>(user: &UserGrants<'a>, member_role: Option<RoleSid>) -> Vec<&'a Role> {
    [user.service_role, member_role]
        .into_iter()
        .flatten()
        .filter_map(|sid| user.policy.role(sid))
        .collect()
}

fn check(
    user: &UserGrants<'_>,
    member_role: Option<RoleSid>,
    action: Action,
    owner: Option<&str>,
) -> Result<(), DomainError> {
    can(&roles(user, member_role), action, user.identity, owner)
        .map_err(|permission| DomainError::NotAuthorized { permission })
}

fn check_permission(
    user: &UserGrants<'_>,
    member_role: Option<RoleSid>,
    permission: Permission,
) -> Result<(), DomainError> {
    if roles(user, member_role)
        .iter()
        .any(|r| r.permissions.contains(&permission))
    {
        Ok(())
    } else {
        Err(DomainError::NotAuthorized { permission })
    }
}

/// Checks that a user may see the channel and is a member of it: what every message operation
/// needs before the message itself is looked up.
pub fn authorize_member(
    user: Option<&UserGrants<'_>>,
    state: &ChannelState,
) -> Result<(), DomainError> {
    let Some(user) = user else {
        return Ok(());
    };
    let channel = state.channel();
    if user.policy.service.sid != channel.service_sid {
        return Err(DomainError::ChannelNotFound);
    }
    let member = state.member(user.identity);
    let invited = state.invite(user.identity).is_some();
    participation(user.identity, channel, member.is_some(), invited)?;
    member.map(|_| ()).ok_or(DomainError::NotMember)
}

/// Decides whether a user may change a user's info (friendly name, attributes).
pub fn authorize_user_update(user: &UserGrants<'_>, target: &str) -> Result<(), DomainError> {
    check(user, None, Action::EditUserInfo, Some(target))
}

#[cfg(test)]
mod tests;
