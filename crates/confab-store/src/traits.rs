//! The store traits, one per aggregate, each with its contract.
//!
//! Common contract of every method:
//! - A method that returns `Ok` after a write has made it durable on the backend's terms (for
//!   `SqliteStore`: committed to the WAL, which survives a process crash).
//! - A method that returns `Err` wrote nothing (except `StoreError::Backend`, where the outcome
//!   is unknown and the caller must re-read).
//! - Reads see every write whose method has returned.
//! - Lists are paged with [`PageRequest`]; a cursor from one page continues exactly after its last
//!   item, even when items were added since.

use async_trait::async_trait;
use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, ChannelWebhook, Credential,
    CredentialSid, Invite, InviteSid, Media, MediaSid, Member, MemberSid, Message, MessageSid,
    Role, RoleSid, Service, ServiceSid, Timestamp, User, UserSid, WebhookJob, WebhookJobSid,
    WebhookSid,
};

use crate::error::StoreError;

/// An identity's channels as a session starts: [`ChannelStore::user_channels`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserChannels {
    /// Its memberships with their channels, in joining order.
    pub memberships: Vec<(Channel, Member)>,
    /// Its pending invites with their channels, in creation order.
    pub invitations: Vec<(Channel, Invite)>,
}

impl UserChannels {
    /// The channels to read for these memberships and invites.
    pub fn channel_sids(members: &[Member], invites: &[Invite]) -> Vec<ChannelSid> {
        let members = members.iter().map(|m| m.channel_sid);
        members
            .chain(invites.iter().map(|i| i.channel_sid))
            .collect()
    }

    /// Pairs each of the first `max` memberships and invites with its channel among
    /// `channels`, leaving out those whose channel is not there (deleted since they were read).
    pub fn pair(
        channels: Vec<Channel>,
        members: Vec<Member>,
        invites: Vec<Invite>,
        max: usize,
    ) -> Self {
        let channels: std::collections::HashMap<ChannelSid, Channel> =
            channels.into_iter().map(|c| (c.sid, c)).collect();
        let with_channel = |sid: ChannelSid| channels.get(&sid).cloned();
        Self {
            memberships: members
                .into_iter()
                .take(max)
                .filter_map(|m| Some((with_channel(m.channel_sid)?, m)))
                .collect(),
            invitations: invites
                .into_iter()
                .take(max)
                .filter_map(|i| Some((with_channel(i.channel_sid)?, i)))
                .collect(),
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PageStart {
    /// At the beginning.
    #[default]
    First,
    /// Right after the item a previous page's cursor names.
    After(String),
    /// After skipping this many items (Twilio's `Page` without a token).
    Offset(u64),
}

/// A request for one page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items to return (at least 1).
    pub size: usize,
    /// Where to start.
    pub start: PageStart,
    /// Newest first instead of oldest first.
    pub descending: bool,
}

impl PageRequest {
    /// The first page of `size` items, oldest first.
    pub fn first(size: usize) -> Self {
        Self {
            size,
            start: PageStart::First,
            descending: false,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Cursor for the next page, `None` on the last page.
    pub next: Option<String>,
}

/// A member looked up by SID or by identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKey {
    /// By SID.
    Sid(MemberSid),
    /// By identity.
    Identity(String),
}

/// Everything a channel's owner loads to rebuild the channel's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// The channel with its counters and ordering state.
    pub channel: Channel,
    /// All members.
    pub members: Vec<Member>,
    /// All pending invites.
    pub invites: Vec<Invite>,
}

/// One atomic write to one channel: its state after the change and the events that led there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCommit {
    /// The channel after the change.
    pub channel: Channel,
    /// The events, in `seq` order, continuing the stored sequence without a gap.
    pub events: Vec<ChannelEvent>,
    /// The writer's lease epoch on the channel, in cluster mode: a store that keeps leases
    /// refuses the commit (`StoreError::Fenced`) unless the lease still has this epoch. `None`
    /// for a single node, which owns every channel.
    pub fence: Option<u64>,
    /// Post-event webhook calls the events cause, stored in the same transaction (so a crash
    /// after the commit cannot lose them) and claimable by any node from `jobs_due` on.
    pub jobs: Vec<WebhookJob>,
    /// When `jobs` become claimable ([`WebhookJobStore::claim_jobs`]): the committing node
    /// delivers them itself before then, and another node takes over a job it did not finish.
    pub jobs_due: Timestamp,
}

impl ChannelCommit {
    /// Whether the commit can change the channel's kind or unique name (it creates or updates
    /// the channel). Most commits (messages, members) cannot: a backend may then replace only
    /// the channel's record and leave what it keys by name and kind alone.
    pub fn may_rename(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e.kind,
                ChannelEventKind::ChannelCreated { .. } | ChannelEventKind::ChannelUpdated { .. }
            )
        })
    }
}

/// Services.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    /// Creates a service together with its roles, atomically.
    async fn create_service(&self, service: &Service, roles: &[Role]) -> Result<(), StoreError>;
    /// The service, if it exists.
    async fn get_service(&self, sid: ServiceSid) -> Result<Option<Service>, StoreError>;
    /// Services in creation order.
    async fn list_services(&self, page: &PageRequest) -> Result<Page<Service>, StoreError>;
    /// Replaces a service's record. `NotFound` if it does not exist.
    async fn update_service(&self, service: &Service) -> Result<(), StoreError>;
    /// Deletes a service and everything in it, atomically. `false` if it did not exist.
    async fn delete_service(&self, sid: ServiceSid) -> Result<bool, StoreError>;
}

/// Roles of a service.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Creates a role. `Conflict(Sid)` if the SID exists.
    async fn create_role(&self, role: &Role) -> Result<(), StoreError>;
    /// The role, if it exists in this service.
    async fn get_role(&self, service: ServiceSid, sid: RoleSid)
        -> Result<Option<Role>, StoreError>;
    /// The service's roles in creation order.
    async fn list_roles(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError>;
    /// Replaces a role's record. `NotFound` if it does not exist.
    async fn update_role(&self, role: &Role) -> Result<(), StoreError>;
    /// Deletes a role. `false` if it did not exist.
    async fn delete_role(&self, service: ServiceSid, sid: RoleSid) -> Result<bool, StoreError>;
}

/// Users of a service. Identities are unique per service.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. `Conflict(UserIdentity)` if the identity is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this SID.
    async fn get_user(&self, service: ServiceSid, sid: UserSid)
        -> Result<Option<User>, StoreError>;
    /// The user with this identity.
    async fn get_user_by_identity(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<User>, StoreError>;
    /// The service's users in creation order.
    async fn list_users(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;
    /// How many users the service has.
    async fn count_users(&self, service: ServiceSid) -> Result<u64, StoreError>;
    /// Replaces a user's record (the identity never changes). `NotFound` if it does not exist.
    async fn update_user(&self, user: &User) -> Result<(), StoreError>;
    /// Deletes a user record (memberships are removed through their channels). `false` if absent.
    async fn delete_user(&self, service: ServiceSid, sid: UserSid) -> Result<bool, StoreError>;
}

/// Channels with their members, messages, invites and events.
///
/// Writes: only [`ChannelStore::commit`], and only by the channel's owner, one commit at a time
/// per channel; in cluster mode the commit carries the owner's lease epoch and a stale owner's
/// commit is refused whole. A commit is atomic: the channel row, every effect of its events (members,
/// messages, invites put or removed; a `ChannelRemoved` event deletes the channel with all it
/// holds) and the events themselves are stored together or not at all.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Stores one channel write atomically. `Conflict(ChannelUniqueName)` if the channel's unique
    /// name is taken by another channel of the service; nothing is written then.
    async fn commit(&self, commit: &ChannelCommit) -> Result<(), StoreError>;
    /// The channel with its members and invites, for its owner.
    async fn load_channel(&self, sid: ChannelSid) -> Result<Option<ChannelSnapshot>, StoreError>;
    /// The channel, if it exists in this service.
    async fn get_channel(
        &self,
        service: ServiceSid,
        sid: ChannelSid,
    ) -> Result<Option<Channel>, StoreError>;
    /// Those of `sids` that exist in this service, in the order asked. One read where the
    /// backend can (a user's channel list at `init` is one read, not one per channel).
    async fn get_channels(
        &self,
        service: ServiceSid,
        sids: &[ChannelSid],
    ) -> Result<Vec<Channel>, StoreError> {
        let mut found = Vec::with_capacity(sids.len());
        for sid in sids {
            found.extend(self.get_channel(service, *sid).await?);
        }
        Ok(found)
    }
    /// The channel with this unique name.
    async fn get_channel_by_unique_name(
        &self,
        service: ServiceSid,
        unique_name: &str,
    ) -> Result<Option<Channel>, StoreError>;
    /// The service's channels of the given types (all types when empty), in creation order.
    async fn list_channels(
        &self,
        service: ServiceSid,
        types: &[ChannelType],
        page: &PageRequest,
    ) -> Result<Page<Channel>, StoreError>;
    /// A member of the channel.
    async fn get_member(
        &self,
        channel: ChannelSid,
        key: &MemberKey,
    ) -> Result<Option<Member>, StoreError>;
    /// The channel's members (only these identities when not empty), in joining order.
    async fn list_members(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError>;
    /// The memberships of an identity across the service, in joining order.
    async fn list_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError>;
    /// How many channels an identity belongs to in the service.
    async fn count_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<u64, StoreError>;
    /// A message of the channel.
    async fn get_message(
        &self,
        channel: ChannelSid,
        sid: MessageSid,
    ) -> Result<Option<Message>, StoreError>;
    /// The channel's messages by index (`descending` for newest first).
    async fn list_messages(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;
    /// How many messages of the channel have an index above `after` (all when `None`).
    async fn count_messages_after(
        &self,
        channel: ChannelSid,
        after: Option<u64>,
    ) -> Result<u64, StoreError>;
    /// An invite of the channel.
    async fn get_invite(
        &self,
        channel: ChannelSid,
        sid: InviteSid,
    ) -> Result<Option<Invite>, StoreError>;
    /// The channel's invites (only these identities when not empty), in creation order.
    async fn list_invites(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError>;
    /// The pending invites of an identity across the service, in creation order.
    async fn list_user_invites(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError>;
    /// What a session needs of an identity's channels as it starts: its first `max` memberships
    /// (in joining order) and its first `max` pending invites (in creation order), each with its
    /// channel; an item whose channel is gone is left out. One read where the backend can:
    /// `init` needs all of it, and each read is a hop to the backend and back.
    async fn user_channels(
        &self,
        service: ServiceSid,
        identity: &str,
        max: usize,
    ) -> Result<UserChannels, StoreError> {
        let page = PageRequest::first(max.max(1));
        let members = self.list_memberships(service, identity, &page).await?.items;
        let invites = self
            .list_user_invites(service, identity, &page)
            .await?
            .items;
        let sids = UserChannels::channel_sids(&members, &invites);
        let channels = if sids.is_empty() {
            Vec::new()
        } else {
            self.get_channels(service, &sids).await?
        };
        Ok(UserChannels::pair(channels, members, invites, max))
    }
    /// The channel's retained events with `seq > after`, in `seq` order, at most `limit`.
    /// Older events may have been pruned: the first returned `seq` tells whether the range is whole.
    async fn events_after(
        &self,
        channel: ChannelSid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChannelEvent>, StoreError>;
}

/// Push credentials of the account.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Creates or replaces a credential.
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError>;
    /// The credential, if it exists.
    async fn get_credential(&self, sid: CredentialSid) -> Result<Option<Credential>, StoreError>;
    /// Credentials in creation order.
    async fn list_credentials(&self, page: &PageRequest) -> Result<Page<Credential>, StoreError>;
    /// Deletes a credential. `false` if it did not exist.
    async fn delete_credential(&self, sid: CredentialSid) -> Result<bool, StoreError>;
}

/// Webhooks configured on channels.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates or replaces a webhook.
    async fn put_webhook(&self, webhook: &ChannelWebhook) -> Result<(), StoreError>;
    /// The webhook, if it exists on this channel.
    async fn get_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<Option<ChannelWebhook>, StoreError>;
    /// The channel's webhooks in creation order.
    async fn list_webhooks(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<ChannelWebhook>, StoreError>;
    /// Deletes a webhook. `false` if it did not exist.
    async fn delete_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<bool, StoreError>;
}

/// Post-event webhook calls waiting for delivery: a durable queue shared by every node.
///
/// Contract: a job is stored by [`ChannelStore::commit`] (with the events it reports) or by
/// [`WebhookJobStore::enqueue_jobs`], and stays until [`WebhookJobStore::finish_job`] deletes it.
/// Each job has a due time; [`WebhookJobStore::claim_jobs`] hands out due jobs and moves their
/// due time to `hold_until` in the same atomic step, so two claims never get the same job while
/// its hold lasts, and a job whose claimant died becomes due again when the hold ends (delivery
/// is at least once).
#[async_trait]
pub trait WebhookJobStore: Send + Sync {
    /// Stores jobs that no channel commit carries (user events), due at `due`.
    async fn enqueue_jobs(&self, jobs: &[WebhookJob], due: Timestamp) -> Result<(), StoreError>;
    /// Up to `limit` jobs due at `now`, earliest due first, each now due at `hold_until`.
    async fn claim_jobs(
        &self,
        now: Timestamp,
        hold_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<WebhookJob>, StoreError>;
    /// Replaces a job's record (its attempts) and makes it due at `due`. A job already finished
    /// stays finished.
    async fn retry_job(&self, job: &WebhookJob, due: Timestamp) -> Result<(), StoreError>;
    /// Deletes a job: delivered or given up. Deleting a missing job is not an error.
    async fn finish_job(&self, sid: WebhookJobSid) -> Result<(), StoreError>;
    /// How many jobs are stored, and when the oldest of them was created.
    async fn pending_jobs(&self) -> Result<(u64, Option<Timestamp>), StoreError>;
}

/// The records of uploaded media; their bytes are kept apart, in a blob store.
///
/// Contract: a media is attached to at most one message, ever. [`MediaStore::attach_media`] is
/// a compare-and-set: it attaches an unattached media and answers the record, answers it
/// unchanged when it is attached to that same message already (a retried send), and refuses
/// (`Conflict(Sid)`) when it is attached to another. [`MediaStore::detach_media`] undoes an
/// attachment whose message was never committed.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores a new media record. `Conflict(Sid)` if the SID exists.
    async fn create_media(&self, media: &Media) -> Result<(), StoreError>;
    /// The media, if it exists in this service.
    async fn get_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError>;
    /// Attaches the media to a message (see the trait's contract). `None` if it does not exist
    /// in this service.
    async fn attach_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        channel: ChannelSid,
        message: MessageSid,
        at: Timestamp,
    ) -> Result<Option<Media>, StoreError>;
    /// Detaches the media from `message` if it is attached to it; otherwise does nothing.
    async fn detach_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        message: MessageSid,
    ) -> Result<(), StoreError>;
    /// Deletes a media record; answers it if it existed.
    async fn delete_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError>;
    /// The media attached to messages of a channel (to delete with the channel).
    async fn channel_media(&self, channel: ChannelSid) -> Result<Vec<Media>, StoreError>;
    /// Deletes every media record of a service, attached or not, and answers them (their bytes
    /// are the caller's to delete).
    async fn delete_service_media(&self, service: ServiceSid) -> Result<Vec<Media>, StoreError>;
    /// Up to `limit` unattached media uploaded before `before`, oldest first.
    async fn unattached_media_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Media>, StoreError>;
    /// Deletes a media record if it is still unattached (an attach that came first wins);
    /// answers it if it was deleted.
    async fn delete_unattached_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError>;
}

/// The records a node's authorization cache copies, counted by [`ChangeCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachedRecords {
    /// Services and their roles.
    Services,
    /// Users (a user's service role).
    Users,
    /// Channel webhooks.
    Webhooks,
}

impl CachedRecords {
    /// Every kind: what deleting a service changes.
    pub const ALL: [CachedRecords; 3] = [Self::Services, Self::Users, Self::Webhooks];
}

/// Tells a cache of [`CachedRecords`] whether what it copied may have changed since.
pub trait ChangeCounts: Send + Sync {
    /// How many writes of `records` this store has committed, when it sees all of them.
    ///
    /// Contract: `Some(n)` promises that every write of these records (by any method, the
    /// deletion of a service or a channel included) goes through this store or its clones in
    /// this process, and that the count has grown by the time such a write's method returns,
    /// and after the write is visible to reads. So a value read after the count was `n` is
    /// current for as long as the count is still `n`; and a decision made after a write's
    /// method returned sees the write. `None` (the default): other processes may write them (a
    /// cluster's other nodes), and a cache must bound their age another way.
    fn changes(&self, records: CachedRecords) -> Option<u64> {
        let _ = records;
        None
    }
}

/// Every aggregate's store together: what a node runs on.
pub trait Store:
    ServiceStore
    + RoleStore
    + UserStore
    + ChannelStore
    + CredentialStore
    + WebhookStore
    + WebhookJobStore
    + MediaStore
    + ChangeCounts
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: ServiceStore
        + RoleStore
        + UserStore
        + ChannelStore
        + CredentialStore
        + WebhookStore
        + WebhookJobStore
        + MediaStore
        + ChangeCounts
        + std::fmt::Debug
{
}
