//! The one error type of the domain. Each variant is something a caller can act on; the web
//! layer maps each to a Twilio error code in one table.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::permissions::Permission;

/// Why a command was refused. A refused command changes nothing.
/// Serializable so that a node can hand a refusal back to the node that forwarded the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DomainError {
    /// A parameter is missing or malformed.
    #[error("Invalid parameter {field}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the client spells it.
        field: Cow<'static, str>,
        /// What is wrong with it.
        reason: String,
    },
    /// Attributes are not valid JSON.
    #[error("{field} must be a valid JSON string")]
    InvalidAttributes {
        /// Which attributes (channel, member, message or user).
        field: Cow<'static, str>,
    },
    /// A value is longer than its configured limit.
    #[error("{field} is too long: at most {limit} {unit}")]
    TooLong {
        /// The parameter's name.
        field: Cow<'static, str>,
        /// The configured limit.
        limit: usize,
        /// `bytes` or `characters`.
        unit: Cow<'static, str>,
    },
    /// The message body exceeds its configured limit.
    #[error("Message body is too long: at most {limit} bytes")]
    BodyTooLong {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The channel does not exist (or was deleted).
    #[error("Channel not found")]
    ChannelNotFound,
    /// A channel with this SID already exists.
    #[error("Channel already exists")]
    ChannelExists,
    /// The member does not exist in this channel.
    #[error("Member not found")]
    MemberNotFound,
    /// The identity is already a member of the channel.
    #[error("Member already exists")]
    AlreadyMember,
    /// The identity is not a member of the channel.
    #[error("User not member of channel")]
    NotMember,
    /// The channel holds as many members as its limit allows.
    #[error("Channel member limit of {limit} reached")]
    MemberLimitReached {
        /// The limit in force.
        limit: usize,
    },
    /// The user belongs to as many channels as its limit allows.
    #[error("User channel limit of {limit} reached")]
    UserChannelLimitReached {
        /// The limit in force.
        limit: usize,
    },
    /// The message does not exist in this channel.
    #[error("Message not found")]
    MessageNotFound,
    /// The invite does not exist.
    #[error("Invite not found")]
    InviteNotFound,
    /// The identity already has a pending invite to the channel.
    #[error("Invite already exists")]
    AlreadyInvited,
    /// The media does not exist in this service, or the sender may not attach it (it is
    /// another user's upload).
    #[error("Media not found")]
    MediaNotFound,
    /// The media is attached to a message already: a media is attached once.
    #[error("Media {media} is already attached to a message")]
    MediaAttached {
        /// The media's SID.
        media: crate::MediaSid,
    },
    /// An upload is larger than the service's media size limit.
    #[error("Message media size is too large: at most {limit} bytes")]
    MediaTooLarge {
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The acting identity's roles do not grant the permission the action needs.
    #[error("User unauthorized for command: needs {permission}")]
    NotAuthorized {
        /// The permission that was missing.
        permission: Permission,
    },
    /// What the caller asked for is reserved to the account (or to the target user), whatever
    /// its roles.
    #[error("User unauthorized for command: {reason}")]
    Forbidden {
        /// What is reserved, for people.
        reason: Cow<'static, str>,
    },
}
