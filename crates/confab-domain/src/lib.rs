//! `confab-domain`: the rules of a chat service, and nothing else.
//!
//! It owns typed SIDs ([`sid`]), the resources and their fields ([`resources`]), roles,
//! permissions and the one authorization check ([`permissions`]), limits and validation
//! ([`limits`]), the ordering core of a channel ([`channel`]): `ChannelState::apply` assigns
//! message indices and event sequence numbers, and the record of a pending webhook call
//! ([`webhook`]).
//!
//! It must not do I/O, read the clock, draw randomness or know wire formats: time and SID
//! generation are passed in, so every rule here is deterministic and testable on its own.

pub mod channel;
pub mod error;
pub mod limits;
pub mod media;
pub mod permissions;
pub mod policy;
pub mod resources;
pub mod sid;
pub mod time;
pub mod webhook;

pub use channel::{
    AddMember, ApplyContext, ChannelCommand, ChannelEvent, ChannelEventKind, ChannelState,
    ConsumptionUpdate, CreateChannel, InviteEnd, InviteMember, MemberRef, MessageChange,
    PostMessage, UpdateChannel, UpdateMember, UpdateMessage, UpdateReason,
};
pub use error::DomainError;
pub use limits::{Attributes, Limits};
pub use media::{Media, MessageMedia};
pub use permissions::{can, Action, DefaultRoles, Permission};
pub use policy::{Caller, Participation, ServicePolicy, UserGrants};
pub use resources::*;
pub use sid::*;
pub use time::Timestamp;
pub use webhook::{WebhookJob, WebhookMethod};
