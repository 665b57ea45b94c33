//! The resources of a chat service, with the fields Twilio Chat v2 gives them. These are the
//! stored records; the wire shapes (REST JSON, realtime frames) are built from them elsewhere.

use serde::{Deserialize, Serialize};

use crate::limits::Attributes;
use crate::permissions::Permission;
use crate::sid::{
    ChannelSid, CredentialSid, InviteSid, MemberSid, MessageSid, RoleSid, ServiceSid, UserSid,
    WebhookSid,
};
use crate::time::Timestamp;

/// A chat service: the container of roles, users and channels, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Its SID.
    pub sid: ServiceSid,
    /// A human-readable name.
    pub friendly_name: String,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
    /// The role new users get.
    pub default_service_role_sid: RoleSid,
    /// The role new members get.
    pub default_channel_role_sid: RoleSid,
    /// The role a channel's creator gets on joining it.
    pub default_channel_creator_role_sid: RoleSid,
    /// Whether read status (consumption horizon) is tracked.
    pub read_status_enabled: bool,
    /// Whether users' online status is tracked.
    pub reachability_enabled: bool,
    /// Seconds after the last `typing` before `typingEnded` is sent.
    pub typing_indicator_timeout: u32,
    /// Seconds between consumption reports a client should send.
    pub consumption_report_interval: u32,
    /// Per-service limits (at most the node's limits).
    pub limits: ServiceLimits,
    /// Webhook settings: the service's pre- and post-event URLs and the events they get.
    pub webhooks: ServiceWebhooks,
    /// Push notification settings, stored and returned.
    pub notifications: Notifications,
    /// The text shown by clients that cannot display media.
    pub media_compatibility_message: Option<String>,
    /// The largest media upload, in MB (Twilio's `media.size_limit_mb`, 150 by default); the
    /// node's own bound (`media.max_upload_bytes`) caps it.
    #[serde(default = "default_media_size_limit_mb")]
    pub media_size_limit_mb: u32,
}

/// Twilio's default `media.size_limit_mb`.
pub const DEFAULT_MEDIA_SIZE_LIMIT_MB: u32 = 150;

fn default_media_size_limit_mb() -> u32 {
    DEFAULT_MEDIA_SIZE_LIMIT_MB
}

impl Service {
    /// A new service with Twilio's defaults (read status on, reachability off, a 5 s typing
    /// timeout, 10 s consumption reports, no webhooks or notifications) and `roles` as its
    /// default roles.
    pub fn new(
        sid: ServiceSid,
        friendly_name: impl Into<String>,
        roles: &crate::permissions::DefaultRoles,
        limits: ServiceLimits,
        now: Timestamp,
    ) -> Self {
        Self {
            sid,
            friendly_name: friendly_name.into(),
            date_created: now,
            date_updated: now,
            default_service_role_sid: roles.service_user.sid,
            default_channel_role_sid: roles.channel_user.sid,
            default_channel_creator_role_sid: roles.channel_admin.sid,
            read_status_enabled: true,
            reachability_enabled: false,
            typing_indicator_timeout: 5,
            consumption_report_interval: 10,
            limits,
            webhooks: ServiceWebhooks::default(),
            notifications: Notifications::default(),
            media_compatibility_message: None,
            media_size_limit_mb: DEFAULT_MEDIA_SIZE_LIMIT_MB,
        }
    }
}

/// A service's limits on channel size and channels per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLimits {
    /// Most members a channel of this service may hold.
    pub channel_members: u32,
    /// Most channels a user of this service may belong to.
    pub user_channels: u32,
}

/// A service's webhook settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceWebhooks {
    /// URL called before an action takes effect.
    pub pre_webhook_url: Option<String>,
    /// URL called after an action took effect.
    pub post_webhook_url: Option<String>,
    /// `GET` or `POST`.
    pub method: Option<String>,
    /// The events that trigger webhooks.
    pub filters: Vec<String>,
    /// Retries of the pre-event webhook.
    pub pre_webhook_retry_count: u32,
    /// Retries of the post-event webhook.
    pub post_webhook_retry_count: u32,
}

/// Settings of one kind of push notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSetting {
    /// Whether it is sent.
    pub enabled: bool,
    /// Its template.
    pub template: Option<String>,
    /// Its sound.
    pub sound: Option<String>,
    /// For new messages: whether the badge count is sent.
    pub badge_count_enabled: Option<bool>,
}

/// A service's push notification settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    /// On a new message.
    pub new_message: NotificationSetting,
    /// When the user is added to a channel.
    pub added_to_channel: NotificationSetting,
    /// When the user is removed from a channel.
    pub removed_from_channel: NotificationSetting,
    /// When the user is invited to a channel.
    pub invited_to_channel: NotificationSetting,
    /// Whether notification logging is on.
    pub log_enabled: bool,
}

/// The scope a role applies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleType {
    /// Permissions inside one channel (given to members).
    Channel,
    /// Permissions across the service (given to users).
    Deployment,
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Its SID.
    pub sid: RoleSid,
    /// The service it belongs to.
    pub service_sid: ServiceSid,
    /// Its name.
    pub friendly_name: String,
    /// Its scope.
    pub kind: RoleType,
    /// What it grants.
    pub permissions: Vec<Permission>,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

/// A user of a service, known by its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its SID.
    pub sid: UserSid,
    /// The service it belongs to.
    pub service_sid: ServiceSid,
    /// The identity the application knows it by (unique in the service).
    pub identity: String,
    /// A display name.
    pub friendly_name: Option<String>,
    /// Free-form JSON.
    pub attributes: Attributes,
    /// Its service-scope role.
    pub role_sid: RoleSid,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

/// Whether a channel is listed for discovery and open to joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// Listed and joinable by anyone with `joinChannel`.
    Public,
    /// Only members and invitees see it.
    Private,
}

impl ChannelType {
    /// Twilio's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Public => "public",
            ChannelType::Private => "private",
        }
    }
}

/// The newest message of a channel, as channel listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    /// Its index.
    pub index: u64,
    /// When it was sent.
    pub date_created: Timestamp,
}

/// A channel and its counters. `next_message_index` and `last_seq` are the channel's ordering
/// state: only the channel's owner advances them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Its SID.
    pub sid: ChannelSid,
    /// The service it belongs to.
    pub service_sid: ServiceSid,
    /// A display name.
    pub friendly_name: Option<String>,
    /// An application-chosen name, unique in the service.
    pub unique_name: Option<String>,
    /// Free-form JSON.
    pub attributes: Attributes,
    /// Public or private.
    pub kind: ChannelType,
    /// The identity that created it (`system` for the REST API).
    pub created_by: String,
    /// Whether the account created it without naming a creator: `created_by` then reads
    /// `system`, which names no user (a user with that identity is not its creator). `None` on
    /// records written before the flag existed: see [`Channel::by_account`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_account: Option<bool>,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
    /// How many members it has.
    pub members_count: u64,
    /// How many messages it holds.
    pub messages_count: u64,
    /// Its newest message, if any.
    pub last_message: Option<LastMessage>,
    /// The index the next message gets.
    pub next_message_index: u64,
    /// The `seq` of the newest channel event.
    pub last_seq: u64,
}

impl Channel {
    /// Whether the account created it. A record from before the flag was kept is the
    /// account's when it names `system`, which the account wrote when it named nobody (a user
    /// with that identity loses the channels it created before, never gains the account's).
    pub fn by_account(&self) -> bool {
        self.created_by_account
            .unwrap_or(self.created_by == crate::channel::ACCOUNT_NAME)
    }
}

/// A user's membership of a channel, with its read horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its SID.
    pub sid: MemberSid,
    /// The channel.
    pub channel_sid: ChannelSid,
    /// The service.
    pub service_sid: ServiceSid,
    /// The member's identity.
    pub identity: String,
    /// Its channel-scope role.
    pub role_sid: RoleSid,
    /// Free-form JSON.
    pub attributes: Attributes,
    /// The index of the newest message the member has read, if any.
    pub last_consumed_message_index: Option<u64>,
    /// When the read horizon last moved.
    pub last_consumption_timestamp: Option<Timestamp>,
    /// Push notification level for this channel: `default` or `muted`.
    #[serde(default)]
    pub notification_level: Option<String>,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

/// A message in a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its SID.
    pub sid: MessageSid,
    /// The channel.
    pub channel_sid: ChannelSid,
    /// The service.
    pub service_sid: ServiceSid,
    /// Its position in the channel: strictly increasing, assigned by the channel's owner.
    pub index: u64,
    /// The author's identity (`system` for REST posts without `From`).
    pub author: String,
    /// Whether the account posted it without naming an author: `author` then reads `system`,
    /// which names no user (a user with that identity does not own it). `None` on records
    /// written before the flag existed: see [`Message::is_by_account`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_account: Option<bool>,
    /// The author's membership when it was sent, if the author was a member.
    pub member_sid: Option<MemberSid>,
    /// The text.
    pub body: String,
    /// Free-form JSON.
    pub attributes: Attributes,
    /// Whether the body was changed after sending.
    pub was_edited: bool,
    /// Who changed it last.
    pub last_updated_by: Option<String>,
    /// The sender's idempotency key, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The media it carries instead of (or beside) text: a message with media has `type`
    /// `media`. Absent on text messages and on records from before media existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Box<crate::media::MessageMedia>>,
    /// When it was sent.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

impl Message {
    /// `media` when it carries media, `text` otherwise (Twilio's `type`).
    pub fn kind(&self) -> &'static str {
        if self.media.is_some() {
            "media"
        } else {
            "text"
        }
    }

    /// Whether the account posted it (for records from before the flag was kept: whether it
    /// names `system` as its author; see [`Channel::by_account`]).
    pub fn is_by_account(&self) -> bool {
        self.by_account
            .unwrap_or(self.author == crate::channel::ACCOUNT_NAME)
    }
}

/// An invitation of an identity to a channel. Joining accepts it; declining removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Its SID.
    pub sid: InviteSid,
    /// The channel.
    pub channel_sid: ChannelSid,
    /// The service.
    pub service_sid: ServiceSid,
    /// Who is invited.
    pub identity: String,
    /// The role the invitee gets on joining.
    pub role_sid: RoleSid,
    /// Who invited them.
    pub created_by: Option<String>,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

/// A push credential (APN, GCM or FCM). Secrets are kept but never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Its SID.
    pub sid: CredentialSid,
    /// A display name.
    pub friendly_name: Option<String>,
    /// `apn`, `gcm` or `fcm`.
    pub kind: String,
    /// For APN: whether the sandbox is used.
    pub sandbox: Option<String>,
    /// The secret material (certificate, private key, API key, secret), never returned.
    pub secrets: CredentialSecrets,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}

/// The secret parts of a credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSecrets {
    /// APN certificate.
    pub certificate: Option<String>,
    /// APN private key.
    pub private_key: Option<String>,
    /// GCM API key.
    pub api_key: Option<String>,
    /// FCM secret.
    pub secret: Option<String>,
}

/// A webhook configured on one channel, stored and returned (delivery comes later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelWebhook {
    /// Its SID.
    pub sid: WebhookSid,
    /// The service.
    pub service_sid: ServiceSid,
    /// The channel.
    pub channel_sid: ChannelSid,
    /// `webhook`, `trigger` or `studio`.
    pub kind: String,
    /// Where it calls.
    pub url: Option<String>,
    /// `GET` or `POST`.
    pub method: Option<String>,
    /// The events it fires on.
    pub filters: Vec<String>,
    /// The words that trigger it (for `trigger`).
    pub triggers: Vec<String>,
    /// The Studio flow (for `studio`).
    pub flow_sid: Option<String>,
    /// How often it is retried.
    pub retry_count: Option<u32>,
    /// When it was created.
    pub date_created: Timestamp,
    /// When it last changed.
    pub date_updated: Timestamp,
}
