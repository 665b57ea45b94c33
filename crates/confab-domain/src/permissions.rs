//! Roles and permissions with Twilio's names, the four default roles of a service, and the one
//! function that decides whether an actor may perform an action.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::resources::{Role, RoleType};
use crate::sid::{RoleSid, ServiceSid, SidSource};
use crate::time::Timestamp;

macro_rules! permissions {
    ($($variant:ident => $name:literal,)*) => {
        /// A permission, named exactly as Twilio names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Permission {
            $(
                #[doc = concat!("`", $name, "`")]
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl Permission {
            /// Every permission, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// Twilio's name for the permission.
            pub fn name(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Permission::$variant),)*
                    _ => Err(UnknownPermission(s.chars().take(64).collect())),
                }
            }
        }
    };
}

permissions! {
    AddMember => "addMember",
    CreateChannel => "createChannel",
    DeleteAnyMessage => "deleteAnyMessage",
    DeleteOwnMessage => "deleteOwnMessage",
    DestroyChannel => "destroyChannel",
    EditAnyMemberAttributes => "editAnyMemberAttributes",
    EditAnyMessage => "editAnyMessage",
    EditAnyMessageAttributes => "editAnyMessageAttributes",
    EditAnyUserInfo => "editAnyUserInfo",
    EditChannelAttributes => "editChannelAttributes",
    EditChannelName => "editChannelName",
    EditNotificationLevel => "editNotificationLevel",
    EditOwnMemberAttributes => "editOwnMemberAttributes",
    EditOwnMessage => "editOwnMessage",
    EditOwnMessageAttributes => "editOwnMessageAttributes",
    EditOwnUserInfo => "editOwnUserInfo",
    InviteMember => "inviteMember",
    JoinChannel => "joinChannel",
    LeaveChannel => "leaveChannel",
    RemoveMember => "removeMember",
    SendMediaMessage => "sendMediaMessage",
    SendMessage => "sendMessage",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A permission name Twilio does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

use Permission::*;

const SERVICE_ADMIN: &[Permission] = &[
    CreateChannel,
    JoinChannel,
    DestroyChannel,
    InviteMember,
    RemoveMember,
    EditChannelName,
    EditChannelAttributes,
    AddMember,
    EditAnyMessage,
    EditAnyMessageAttributes,
    DeleteAnyMessage,
    EditAnyUserInfo,
    EditAnyMemberAttributes,
    EditOwnUserInfo,
];
const SERVICE_USER: &[Permission] = &[CreateChannel, JoinChannel, EditOwnUserInfo];
const CHANNEL_ADMIN: &[Permission] = &[
    SendMessage,
    SendMediaMessage,
    LeaveChannel,
    InviteMember,
    RemoveMember,
    EditChannelName,
    EditChannelAttributes,
    AddMember,
    EditAnyMessage,
    EditAnyMessageAttributes,
    DeleteAnyMessage,
    DestroyChannel,
    EditOwnMessage,
    EditOwnMessageAttributes,
    DeleteOwnMessage,
    EditAnyMemberAttributes,
    EditOwnMemberAttributes,
    EditNotificationLevel,
];
const CHANNEL_USER: &[Permission] = &[
    SendMessage,
    SendMediaMessage,
    LeaveChannel,
    EditOwnMessage,
    EditOwnMessageAttributes,
    DeleteOwnMessage,
    EditOwnMemberAttributes,
    EditNotificationLevel,
];

/// The roles every new service starts with, and which of them are the service's defaults.
#[derive(Debug, Clone)]
pub struct DefaultRoles {
    /// `service admin` (deployment scope).
    pub service_admin: Role,
    /// `service user` (deployment scope): the default role of a new user.
    pub service_user: Role,
    /// `channel admin` (channel scope): the default role of a channel's creator.
    pub channel_admin: Role,
    /// `channel user` (channel scope): the default role of a new member.
    pub channel_user: Role,
}

impl DefaultRoles {
    /// Makes the four default roles of `service`.
    pub fn new(service: ServiceSid, sids: &mut dyn SidSource, now: Timestamp) -> Self {
        let mut role = |name: &str, kind: RoleType, permissions: &[Permission]| Role {
            sid: RoleSid::generate(sids),
            service_sid: service,
            friendly_name: name.to_owned(),
            kind,
            permissions: permissions.to_vec(),
            date_created: now,
            date_updated: now,
        };
        Self {
            service_admin: role("service admin", RoleType::Deployment, SERVICE_ADMIN),
            service_user: role("service user", RoleType::Deployment, SERVICE_USER),
            channel_admin: role("channel admin", RoleType::Channel, CHANNEL_ADMIN),
            channel_user: role("channel user", RoleType::Channel, CHANNEL_USER),
        }
    }

    /// The four roles as a list.
    pub fn into_vec(self) -> Vec<Role> {
        vec![
            self.service_admin,
            self.service_user,
            self.channel_admin,
            self.channel_user,
        ]
    }
}

/// Something an actor wants to do. Actions on another user's resource need the "any" permission;
/// on one's own, either the "own" or the "any" permission is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create a channel.
    CreateChannel,
    /// Join a public channel (or a private one the actor is invited to).
    JoinChannel,
    /// Leave a channel.
    LeaveChannel,
    /// Delete a channel.
    DestroyChannel,
    /// Change a channel's friendly or unique name.
    EditChannelName,
    /// Change a channel's attributes.
    EditChannelAttributes,
    /// Add another user to a channel.
    AddMember,
    /// Invite another user to a channel.
    InviteMember,
    /// Remove another member from a channel.
    RemoveMember,
    /// Send a message.
    SendMessage,
    /// Change a message's body.
    EditMessage,
    /// Change a message's attributes.
    EditMessageAttributes,
    /// Delete a message.
    DeleteMessage,
    /// Change a member's attributes.
    EditMemberAttributes,
    /// Change a user's friendly name or attributes.
    EditUserInfo,
}

impl Action {
    /// The (own, any) permissions: `own` is enough when the actor owns the target.
    fn permissions(self) -> (Option<Permission>, Permission) {
        match self {
            Action::CreateChannel => (None, CreateChannel),
            Action::JoinChannel => (None, JoinChannel),
            Action::LeaveChannel => (None, LeaveChannel),
            Action::DestroyChannel => (None, DestroyChannel),
            Action::EditChannelName => (None, EditChannelName),
            Action::EditChannelAttributes => (None, EditChannelAttributes),
            Action::AddMember => (None, AddMember),
            Action::InviteMember => (None, InviteMember),
            Action::RemoveMember => (None, RemoveMember),
            Action::SendMessage => (None, SendMessage),
            Action::EditMessage => (Some(EditOwnMessage), EditAnyMessage),
            Action::EditMessageAttributes => {
                (Some(EditOwnMessageAttributes), EditAnyMessageAttributes)
            }
            Action::DeleteMessage => (Some(DeleteOwnMessage), DeleteAnyMessage),
            Action::EditMemberAttributes => {
                (Some(EditOwnMemberAttributes), EditAnyMemberAttributes)
            }
            Action::EditUserInfo => (Some(EditOwnUserInfo), EditAnyUserInfo),
        }
    }
}

/// Decides whether `actor`, holding `roles` (its service role and, inside a channel, its channel
/// role), may perform `action` on a target owned by `owner` (`None` when the target has no owner).
/// Returns the permission that was missing when it may not.
pub fn can(
    roles: &[&Role],
    action: Action,
    actor: &str,
    owner: Option<&str>,
) -> Result<(), Permission> {
    let (own, any) = action.permissions();
    let granted = |p: Permission| roles.iter().any(|r| r.permissions.contains(&p));
    if granted(any) {
        return Ok(());
    }
    match own {
        Some(own) if owner == Some(actor) && granted(own) => Ok(()),
        Some(own) if owner == Some(actor) => Err(own),
        _ => Err(any),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::CountingSids;

    fn roles() -> DefaultRoles {
        DefaultRoles::new(ServiceSid::from_bits(1), &mut CountingSids(0), Timestamp(0))
    }

    #[test]
    fn permission_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.name().parse::<Permission>().unwrap(), *p);
        }
        assert!("flyToTheMoon".parse::<Permission>().is_err());
    }

    #[test]
    fn channel_user_may_delete_own_message_but_not_others() {
        let r = roles();
        let mine = can(
            &[&r.service_user, &r.channel_user],
            Action::DeleteMessage,
            "alice",
            Some("alice"),
        );
        let theirs = can(
            &[&r.service_user, &r.channel_user],
            Action::DeleteMessage,
            "alice",
            Some("bob"),
        );
        assert_eq!(mine, Ok(()));
        assert_eq!(theirs, Err(DeleteAnyMessage));
    }

    #[test]
    fn channel_user_cannot_destroy_channel_but_channel_admin_can() {
        let r = roles();
        assert_eq!(
            can(
                &[&r.service_user, &r.channel_user],
                Action::DestroyChannel,
                "a",
                None
            ),
            Err(DestroyChannel)
        );
        assert_eq!(
            can(
                &[&r.service_user, &r.channel_admin],
                Action::DestroyChannel,
                "a",
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn service_admin_may_delete_any_message() {
        let r = roles();
        assert_eq!(
            can(
                &[&r.service_admin],
                Action::DeleteMessage,
                "root",
                Some("bob")
            ),
            Ok(())
        );
    }

    #[test]
    fn own_permission_is_reported_when_owner_lacks_it() {
        let r = roles();
        assert_eq!(
            can(&[&r.service_user], Action::EditMessage, "a", Some("a")),
            Err(EditOwnMessage)
        );
    }
}
