//! Twilio's webhook events: their names, which targets each goes to, and the parameters each
//! carries, named as Twilio's Programmable Chat sends them (`EventType`, `ChannelSid`, `Body`,
//! `From`, ...). Dates are ISO 8601 in UTC with milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use confab_domain::{
    Channel, ChannelCommand, ChannelEvent, ChannelEventKind, ChannelState, CreateChannel, Member,
    Message, MessageMedia, ServiceSid, Timestamp, User,
};

/// A webhook event, pre (before the action, may refuse or change it) or post (after the commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// `onMessageSend` (pre).
    MessageSend,
    /// `onMediaMessageSend` (pre): a message that carries a media.
    MediaMessageSend,
    /// `onMessageUpdate` (pre).
    MessageUpdate,
    /// `onMessageRemove` (pre).
    MessageRemove,
    /// `onChannelAdd` (pre).
    ChannelAdd,
    /// `onChannelUpdate` (pre).
    ChannelUpdate,
    /// `onChannelDestroy` (pre).
    ChannelDestroy,
    /// `onMemberAdd` (pre).
    MemberAdd,
    /// `onMemberRemove` (pre).
    MemberRemove,
    /// `onUserUpdate` (pre).
    UserUpdate,
    /// `onMessageSent`.
    MessageSent,
    /// `onMediaMessageSent`: a message that carries a media.
    MediaMessageSent,
    /// `onMessageUpdated`.
    MessageUpdated,
    /// `onMessageRemoved`.
    MessageRemoved,
    /// `onChannelAdded`.
    ChannelAdded,
    /// `onChannelUpdated`.
    ChannelUpdated,
    /// `onChannelDestroyed`.
    ChannelDestroyed,
    /// `onMemberAdded`.
    MemberAdded,
    /// `onMemberUpdated`.
    MemberUpdated,
    /// `onMemberRemoved`.
    MemberRemoved,
    /// `onUserAdded`.
    UserAdded,
    /// `onUserUpdated`.
    UserUpdated,
}

impl HookEvent {
    /// Every event, pre-events first.
    pub const ALL: [HookEvent; 22] = [
        Self::MessageSend,
        Self::MediaMessageSend,
        Self::MessageUpdate,
        Self::MessageRemove,
        Self::ChannelAdd,
        Self::ChannelUpdate,
        Self::ChannelDestroy,
        Self::MemberAdd,
        Self::MemberRemove,
        Self::UserUpdate,
        Self::MessageSent,
        Self::MediaMessageSent,
        Self::MessageUpdated,
        Self::MessageRemoved,
        Self::ChannelAdded,
        Self::ChannelUpdated,
        Self::ChannelDestroyed,
        Self::MemberAdded,
        Self::MemberUpdated,
        Self::MemberRemoved,
        Self::UserAdded,
        Self::UserUpdated,
    ];

    /// Twilio's name, as in `EventType` and `WebhookFilters`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MessageSend => "onMessageSend",
            Self::MediaMessageSend => "onMediaMessageSend",
            Self::MessageUpdate => "onMessageUpdate",
            Self::MessageRemove => "onMessageRemove",
            Self::ChannelAdd => "onChannelAdd",
            Self::ChannelUpdate => "onChannelUpdate",
            Self::ChannelDestroy => "onChannelDestroy",
            Self::MemberAdd => "onMemberAdd",
            Self::MemberRemove => "onMemberRemove",
            Self::UserUpdate => "onUserUpdate",
            Self::MessageSent => "onMessageSent",
            Self::MediaMessageSent => "onMediaMessageSent",
            Self::MessageUpdated => "onMessageUpdated",
            Self::MessageRemoved => "onMessageRemoved",
            Self::ChannelAdded => "onChannelAdded",
            Self::ChannelUpdated => "onChannelUpdated",
            Self::ChannelDestroyed => "onChannelDestroyed",
            Self::MemberAdded => "onMemberAdded",
            Self::MemberUpdated => "onMemberUpdated",
            Self::MemberRemoved => "onMemberRemoved",
            Self::UserAdded => "onUserAdded",
            Self::UserUpdated => "onUserUpdated",
        }
    }

    /// The event with this Twilio name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether it is a pre-event (fired before the action, for client actions only).
    pub fn is_pre(self) -> bool {
        matches!(
            self,
            Self::MessageSend
                | Self::MediaMessageSend
                | Self::MessageUpdate
                | Self::MessageRemove
                | Self::ChannelAdd
                | Self::ChannelUpdate
                | Self::ChannelDestroy
                | Self::MemberAdd
                | Self::MemberRemove
                | Self::UserUpdate
        )
    }
}

/// Twilio's filter names that Confab accepts and never fires: `onMemberUpdate`, which Twilio's
/// filter list has (member changes have no pre-event in Programmable Chat).
const NEVER_FIRED: [&str; 1] = ["onMemberUpdate"];

/// Whether `name` is a `WebhookFilters` value Twilio accepts.
pub fn is_service_filter(name: &str) -> bool {
    HookEvent::from_name(name).is_some() || NEVER_FIRED.contains(&name)
}

/// Whether `name` is a channel webhook filter: a post-event name.
pub fn is_channel_filter(name: &str) -> bool {
    HookEvent::from_name(name).is_some_and(|e| !e.is_pre())
}

/// Who acted, as the webhooks tell it.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The account that owns the service (`AccountSid`).
    pub account_sid: &'a str,
    /// The acting user's identity (`ClientIdentity`); `None` for a REST call, which acts as the
    /// account.
    pub identity: Option<&'a str>,
}

impl Actor<'_> {
    /// `RemovedBy`, `ModifiedBy`: the user, or `system` for the account.
    fn name(&self) -> &str {
        self.identity.unwrap_or("system")
    }
}

/// The parameters of one call, in the order they are sent.
pub type Params = Vec<(String, String)>;

/// Formats a time as the webhooks carry it.
pub fn format_time(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(ts.millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

struct Builder(Params);

impl Builder {
    fn new(event: HookEvent, service: ServiceSid, actor: &Actor<'_>) -> Self {
        let mut b = Self(Vec::with_capacity(12));
        b.put("EventType", event.name());
        b.put("AccountSid", actor.account_sid);
        b.put("InstanceSid", service.to_string());
        if let Some(identity) = actor.identity {
            b.put("ClientIdentity", identity);
        }
        b.put(
            "Source",
            if actor.identity.is_some() {
                "SDK"
            } else {
                "API"
            },
        );
        b
    }

    fn put(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    fn opt(&mut self, name: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.put(name, value);
        }
    }

    fn time(&mut self, name: &str, ts: Timestamp) {
        self.put(name, format_time(ts));
    }

    fn channel(&mut self, channel: &Channel, with_sid: bool) {
        if with_sid {
            self.put("ChannelSid", channel.sid.to_string());
        }
        self.put("ChannelType", channel.kind.as_str());
        self.opt("FriendlyName", channel.friendly_name.clone());
        self.opt("UniqueName", channel.unique_name.clone());
        self.put("Attributes", channel.attributes.as_str());
        self.put("CreatedBy", channel.created_by.clone());
        self.time("DateCreated", channel.date_created);
    }

    fn message(&mut self, message: &Message) {
        self.put("ChannelSid", message.channel_sid.to_string());
        self.put("MessageSid", message.sid.to_string());
        self.put("Index", message.index.to_string());
        self.put("Body", message.body.clone());
        self.put("Attributes", message.attributes.as_str());
        self.put("From", message.author.clone());
        self.time("DateCreated", message.date_created);
        if let Some(media) = &message.media {
            self.media(media);
        }
    }

    fn media(&mut self, media: &MessageMedia) {
        self.put("MediaSid", media.sid.to_string());
        self.put("MediaContentType", media.content_type.clone());
        self.opt("MediaFilename", media.filename.clone());
        self.put("MediaSize", media.size.to_string());
    }

    fn member(&mut self, member: &Member) {
        self.put("ChannelSid", member.channel_sid.to_string());
        self.put("MemberSid", member.sid.to_string());
        self.put("Identity", member.identity.clone());
        self.put("RoleSid", member.role_sid.to_string());
    }

    fn user(&mut self, user: &User) {
        self.put("UserSid", user.sid.to_string());
        self.put("Identity", user.identity.clone());
        self.opt("FriendlyName", user.friendly_name.clone());
        self.put("RoleSid", user.role_sid.to_string());
        self.put("Attributes", user.attributes.as_str());
        self.time("DateCreated", user.date_created);
    }
}

/// `Reason` of a member event: the user acted on themselves (`JOINED`, `LEFT`) or someone else
/// (or the account) acted on them (`ADDED`, `REMOVED`).
fn reason(actor: &Actor<'_>, identity: &str, own: &'static str, other: &'static str) -> String {
    if actor.identity == Some(identity) {
        own
    } else {
        other
    }
    .to_owned()
}

/// The pre-event a channel command fires, if any: cheap, so that a command of a service without
/// a pre-event webhook builds no parameters.
pub fn pre_event_of(command: &ChannelCommand) -> Option<HookEvent> {
    match command {
        ChannelCommand::PostMessage(post) if post.media.is_some() => {
            Some(HookEvent::MediaMessageSend)
        }
        ChannelCommand::PostMessage(_) => Some(HookEvent::MessageSend),
        ChannelCommand::UpdateMessage(_) => Some(HookEvent::MessageUpdate),
        ChannelCommand::RemoveMessage { .. } => Some(HookEvent::MessageRemove),
        ChannelCommand::Update(_) => Some(HookEvent::ChannelUpdate),
        ChannelCommand::Delete => Some(HookEvent::ChannelDestroy),
        ChannelCommand::AddMember(_) => Some(HookEvent::MemberAdd),
        ChannelCommand::RemoveMember { .. } => Some(HookEvent::MemberRemove),
        ChannelCommand::UpdateMember(_)
        | ChannelCommand::Invite(_)
        | ChannelCommand::RemoveInvite { .. }
        | ChannelCommand::Decline { .. } => None,
    }
}

/// The pre-event a channel command fires, with its parameters: what the action would do, read
/// from the command and the channel as it is now. `None` for commands without a pre-event
/// (invites, member updates, read horizons).
pub fn pre_channel_event(
    command: &ChannelCommand,
    state: &ChannelState,
    actor: &Actor<'_>,
) -> Option<(HookEvent, Params)> {
    let channel = state.channel();
    let service = channel.service_sid;
    let (event, mut b) = match command {
        ChannelCommand::PostMessage(post) => {
            let event = pre_event_of(command)?;
            let mut b = Builder::new(event, service, actor);
            b.put("ChannelSid", channel.sid.to_string());
            b.put("Body", post.body.clone());
            b.opt("Attributes", post.attributes.clone());
            b.put(
                "From",
                post.author.clone().unwrap_or_else(|| "system".into()),
            );
            if let Some(media) = &post.media {
                b.media(media);
            }
            (event, b)
        }
        ChannelCommand::UpdateMessage(update) => {
            let current = &update.current;
            let mut b = Builder::new(HookEvent::MessageUpdate, service, actor);
            b.put("ChannelSid", channel.sid.to_string());
            b.put("MessageSid", current.sid.to_string());
            b.put(
                "Body",
                update.change.body.clone().unwrap_or(current.body.clone()),
            );
            b.put(
                "Attributes",
                update
                    .change
                    .attributes
                    .clone()
                    .unwrap_or_else(|| current.attributes.as_str().to_owned()),
            );
            b.put("From", current.author.clone());
            b.time("DateCreated", current.date_created);
            b.put("ModifiedBy", actor.name());
            (HookEvent::MessageUpdate, b)
        }
        ChannelCommand::RemoveMessage { current } => {
            let mut b = Builder::new(HookEvent::MessageRemove, service, actor);
            b.message(current);
            b.put("RemovedBy", actor.name());
            (HookEvent::MessageRemove, b)
        }
        ChannelCommand::Update(update) => {
            let mut b = Builder::new(HookEvent::ChannelUpdate, service, actor);
            b.put("ChannelSid", channel.sid.to_string());
            b.put("ChannelType", channel.kind.as_str());
            let name = |new: &Option<String>, old: &Option<String>| match new {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(v.clone()),
                None => old.clone(),
            };
            b.opt(
                "FriendlyName",
                name(&update.friendly_name, &channel.friendly_name),
            );
            b.opt(
                "UniqueName",
                name(&update.unique_name, &channel.unique_name),
            );
            b.put(
                "Attributes",
                update
                    .attributes
                    .clone()
                    .unwrap_or_else(|| channel.attributes.as_str().to_owned()),
            );
            b.put("CreatedBy", channel.created_by.clone());
            b.time("DateCreated", channel.date_created);
            (HookEvent::ChannelUpdate, b)
        }
        ChannelCommand::Delete => {
            let mut b = Builder::new(HookEvent::ChannelDestroy, service, actor);
            b.channel(channel, true);
            (HookEvent::ChannelDestroy, b)
        }
        ChannelCommand::AddMember(add) => {
            let mut b = Builder::new(HookEvent::MemberAdd, service, actor);
            b.put("ChannelSid", channel.sid.to_string());
            b.put("Identity", add.identity.clone());
            let role = add
                .role_sid
                .or_else(|| state.invite(&add.identity).map(|i| i.role_sid));
            b.opt("RoleSid", role.map(|r| r.to_string()));
            b.put("Reason", reason(actor, &add.identity, "JOINED", "ADDED"));
            (HookEvent::MemberAdd, b)
        }
        ChannelCommand::RemoveMember { member } => {
            let member = match member {
                confab_domain::MemberRef::Sid(sid) => state.members().find(|m| m.sid == *sid),
                confab_domain::MemberRef::Identity(identity) => state.member(identity),
            }?;
            let mut b = Builder::new(HookEvent::MemberRemove, service, actor);
            b.member(member);
            b.put("Reason", reason(actor, &member.identity, "LEFT", "REMOVED"));
            (HookEvent::MemberRemove, b)
        }
        ChannelCommand::UpdateMember(_)
        | ChannelCommand::Invite(_)
        | ChannelCommand::RemoveInvite { .. }
        | ChannelCommand::Decline { .. } => return None,
    };
    b.0.shrink_to_fit();
    Some((event, std::mem::take(&mut b.0)))
}

/// `onChannelAdd`: the channel a creation would make (no SID yet, as in Twilio).
pub fn pre_channel_add(create: &CreateChannel, actor: &Actor<'_>) -> (HookEvent, Params) {
    let mut b = Builder::new(HookEvent::ChannelAdd, create.service_sid, actor);
    b.put("ChannelType", create.kind.as_str());
    b.opt("FriendlyName", create.friendly_name.clone());
    b.opt("UniqueName", create.unique_name.clone());
    b.opt("Attributes", create.attributes.clone());
    b.put(
        "CreatedBy",
        create
            .created_by
            .clone()
            .unwrap_or_else(|| actor.name().to_owned()),
    );
    (HookEvent::ChannelAdd, b.0)
}

/// `onUserUpdate`: the user as the update would leave it.
pub fn pre_user_update(user: &User, actor: &Actor<'_>) -> (HookEvent, Params) {
    let mut b = Builder::new(HookEvent::UserUpdate, user.service_sid, actor);
    b.user(user);
    b.time("DateUpdated", user.date_updated);
    (HookEvent::UserUpdate, b.0)
}

/// The post-event a committed channel event fires, with its parameters. `None` for events
/// without one (invites).
pub fn post_channel_event(
    event: &ChannelEvent,
    actor: &Actor<'_>,
) -> Option<(HookEvent, ServiceSid, Params)> {
    let (hook, service) = match &event.kind {
        ChannelEventKind::ChannelCreated { channel } => {
            (HookEvent::ChannelAdded, channel.service_sid)
        }
        ChannelEventKind::ChannelUpdated { channel, .. } => {
            (HookEvent::ChannelUpdated, channel.service_sid)
        }
        ChannelEventKind::ChannelRemoved { channel } => {
            (HookEvent::ChannelDestroyed, channel.service_sid)
        }
        ChannelEventKind::MemberJoined { member } => (HookEvent::MemberAdded, member.service_sid),
        ChannelEventKind::MemberUpdated { member, .. } => {
            (HookEvent::MemberUpdated, member.service_sid)
        }
        ChannelEventKind::MemberLeft { member } => (HookEvent::MemberRemoved, member.service_sid),
        ChannelEventKind::MessageAdded { message } if message.media.is_some() => {
            (HookEvent::MediaMessageSent, message.service_sid)
        }
        ChannelEventKind::MessageAdded { message } => (HookEvent::MessageSent, message.service_sid),
        ChannelEventKind::MessageUpdated { message, .. } => {
            (HookEvent::MessageUpdated, message.service_sid)
        }
        ChannelEventKind::MessageRemoved { message } => {
            (HookEvent::MessageRemoved, message.service_sid)
        }
        ChannelEventKind::InviteCreated { .. } | ChannelEventKind::InviteRemoved { .. } => {
            return None
        }
    };
    let mut b = Builder::new(hook, service, actor);
    match &event.kind {
        ChannelEventKind::ChannelCreated { channel } => b.channel(channel, true),
        ChannelEventKind::ChannelUpdated { channel, .. } => {
            b.channel(channel, true);
            b.time("DateUpdated", channel.date_updated);
        }
        ChannelEventKind::ChannelRemoved { channel } => {
            b.channel(channel, true);
            b.time("DateDestroyed", event.at);
        }
        ChannelEventKind::MemberJoined { member } => {
            b.member(member);
            b.put("Reason", reason(actor, &member.identity, "JOINED", "ADDED"));
            b.time("DateCreated", member.date_created);
        }
        ChannelEventKind::MemberUpdated { member, .. } => {
            b.member(member);
            b.opt(
                "LastConsumedMessageIndex",
                member.last_consumed_message_index.map(|i| i.to_string()),
            );
            b.time("DateCreated", member.date_created);
            b.time("DateUpdated", member.date_updated);
        }
        ChannelEventKind::MemberLeft { member } => {
            b.member(member);
            b.put("Reason", reason(actor, &member.identity, "LEFT", "REMOVED"));
            b.time("DateCreated", member.date_created);
            b.time("DateRemoved", event.at);
        }
        ChannelEventKind::MessageAdded { message } => b.message(message),
        ChannelEventKind::MessageUpdated { message, .. } => {
            b.message(message);
            b.put(
                "ModifiedBy",
                message
                    .last_updated_by
                    .clone()
                    .unwrap_or_else(|| actor.name().to_owned()),
            );
            b.time("DateUpdated", message.date_updated);
        }
        ChannelEventKind::MessageRemoved { message } => {
            b.message(message);
            b.put("RemovedBy", actor.name());
            b.time("DateRemoved", event.at);
        }
        ChannelEventKind::InviteCreated { .. } | ChannelEventKind::InviteRemoved { .. } => {}
    }
    Some((hook, service, b.0))
}

/// `onUserAdded` and `onUserUpdated`.
pub fn post_user_event(hook: HookEvent, user: &User, actor: &Actor<'_>) -> Params {
    let mut b = Builder::new(hook, user.service_sid, actor);
    b.user(user);
    if hook == HookEvent::UserUpdated {
        b.time("DateUpdated", user.date_updated);
    }
    b.0
}
