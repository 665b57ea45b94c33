//! `ChannelCore`: what a channel's actor works on, and the work of one command: owning the
//! channel (lease), loading it, authorizing the caller, asking the pre-event webhook and
//! building the post-event jobs (`hooks.rs`), applying the domain rules, committing,
//! publishing, and recognising retried posts by their client ids.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use confab_domain::{
    policy, ApplyContext, Caller, ChannelCommand, ChannelEvent, ChannelEventKind, ChannelSid,
    ChannelState, CreateChannel, DomainError, Limits, MessageSid, ServicePolicy, UpdateMessage,
};
use confab_media::BlobStore;
use confab_store::{ChannelCommit, Store, StoreError};
use confab_webhooks::Webhooks;

use super::hooks::{post_jobs, PostHooks};
use super::{ChannelOp, ChannelRequest};
use crate::broker::{Broker, EventBatch};
use crate::cluster::Cluster;
use crate::error::ChannelError;
use crate::policy::Policies;
use crate::runtime::{now, RandomSids};

/// What makes a post a repeat: its author (`None` for the account, which is nobody's
/// identity) and the client id it carried.
pub(super) type ClientKey = (Option<String>, String);

/// The state an actor works on, moved out of the actor while a command is in flight (no other
/// message is handled meanwhile, so nothing else can need it).
#[derive(Debug)]
pub(super) struct ChannelCore {
    pub(super) sid: ChannelSid,
    pub(super) store: Arc<dyn Store>,
    pub(super) broker: Arc<dyn Broker>,
    pub(super) policies: Policies,
    pub(super) node_limits: Limits,
    /// `None` until loaded; after loading, the channel (`None` inside when it does not exist)
    /// and the limits in force for it.
    pub(super) loaded: Option<(Option<ChannelState>, Limits)>,
    pub(super) sids: RandomSids,
    /// (author, client id) -> (seq, message) of recent posts that carried a client id.
    pub(super) client_ids: HashMap<ClientKey, (u64, MessageSid)>,
    /// Keys of `client_ids`, oldest first, for eviction.
    pub(super) client_order: VecDeque<ClientKey>,
    pub(super) client_ids_loaded: bool,
    pub(super) client_id_window: usize,
    /// Cluster mode: the cluster, and the epoch of the channel's lease while this node holds it.
    pub(super) cluster: Option<Cluster>,
    pub(super) epoch: Option<u64>,
    /// When the lease was last taken or extended.
    pub(super) renewed_at: Instant,
    /// The lease was just taken: tell other nodes how far the channel goes (its events may not
    /// all have been published by the previous owner).
    pub(super) announce: bool,
    /// The node's webhooks: pre-event calls, and delivery of the jobs a commit stores.
    pub(super) hooks: Option<Webhooks>,
    /// Where media bytes are, to delete those of removed messages; `None` deletes records only.
    pub(super) blobs: Option<Arc<dyn BlobStore>>,
}

impl ChannelCore {
    /// Takes the channel's lease if cluster mode is on and it is not held yet. Called before
    /// loading, so that the state loaded includes every commit of earlier owners (they are
    /// fenced off from then on).
    async fn own(&mut self) -> Result<(), ChannelError> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if self.epoch.is_none() {
            let epoch = cluster.acquire(self.sid).await?;
            self.epoch = Some(epoch);
            self.renewed_at = Instant::now();
            self.announce = true;
            tracing::debug!(channel = %self.sid, epoch, "took the channel's lease");
            cluster.owned_changed(1);
            if let Some(m) = cluster.metrics() {
                m.ownership_changes.inc();
            }
        }
        Ok(())
    }

    /// Extends the lease before a commit when its last renewal is a third of its TTL old: under
    /// a steady stream of commands the actor's renewal timer may not get a turn, and a command
    /// that outlived the lease must not waste its commit on a fence.
    async fn keep_lease(&mut self) -> Result<(), ChannelError> {
        let (Some(cluster), Some(epoch)) = (&self.cluster, self.epoch) else {
            return Ok(());
        };
        if self.renewed_at.elapsed() < cluster.config().lease_ttl / 3 {
            return Ok(());
        }
        match cluster.renew(self.sid, epoch).await {
            Ok(true) => {
                self.renewed_at = Instant::now();
                Ok(())
            }
            Ok(false) => {
                self.lose_lease();
                Err(ChannelError::NotOwner { holder: None })
            }
            // Redis is unreachable: the commit will tell (it is fenced).
            Err(_) => Ok(()),
        }
    }

    /// Forgets the lease and the state built under it.
    pub(super) fn lose_lease(&mut self) {
        if self.epoch.take().is_some() {
            tracing::warn!(channel = %self.sid, "lost the channel's lease: giving the channel up");
            if let Some(cluster) = &self.cluster {
                cluster.owned_changed(-1);
                if let Some(m) = cluster.metrics() {
                    m.lease_losses.inc();
                }
            }
        }
        self.loaded = None;
        self.client_ids_loaded = false;
    }

    /// Takes the lease away for releasing it; `None` when none is held.
    pub(super) fn take_lease(&mut self) -> Option<(Cluster, ChannelSid, u64)> {
        let epoch = self.epoch.take()?;
        if let Some(cluster) = &self.cluster {
            cluster.owned_changed(-1);
        }
        self.loaded = None;
        self.client_ids_loaded = false;
        Some((self.cluster.clone()?, self.sid, epoch))
    }

    /// Loads the channel and its service's limits from the store.
    async fn load(
        &mut self,
        create_in: Option<confab_domain::ServiceSid>,
    ) -> Result<(), ChannelError> {
        let snapshot = self.store.load_channel(self.sid).await?;
        let service_sid = match (&snapshot, create_in) {
            (Some(s), _) => s.channel.service_sid,
            (None, Some(service)) => service,
            (None, None) => {
                self.loaded = Some((None, self.node_limits.clone()));
                return Ok(());
            }
        };
        let service = self
            .store
            .get_service(service_sid)
            .await?
            .ok_or(ChannelError::ServiceNotFound)?;
        let mut limits = self.node_limits.clone();
        limits.members_per_channel = limits
            .members_per_channel
            .min(service.limits.channel_members as usize);
        let state = snapshot.map(|s| ChannelState::from_parts(s.channel, s.members, s.invites));
        self.loaded = Some((state, limits));
        Ok(())
    }

    pub(super) async fn execute(
        &mut self,
        request: ChannelRequest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let ChannelRequest {
            caller,
            op,
            webhooks,
        } = request;
        if self.loaded.is_none() {
            let create_in = match &op {
                ChannelOp::Create(c) => Some(c.service_sid),
                _ => None,
            };
            self.own().await?;
            self.load(create_in).await?;
        }
        if std::mem::take(&mut self.announce) {
            if let Some((Some(state), _)) = &self.loaded {
                self.broker.publish(Arc::new(EventBatch {
                    channel: state.channel().clone(),
                    events: Vec::new(),
                }));
            }
        }
        self.keep_lease().await?;
        let result = self.execute_loaded(&caller, op, webhooks).await;
        if let Err(ChannelError::Store(StoreError::Fenced)) = &result {
            // Another node took the channel over (this one was paused or cut off): nothing
            // was written; the router sends the command to the new owner.
            self.lose_lease();
            return Err(ChannelError::NotOwner { holder: None });
        }
        if let Err(ChannelError::Store(_)) = &result {
            // The in-memory state may be ahead of the store (the commit failed or its outcome
            // is unknown): drop it so the next command reloads what was really stored.
            self.loaded = None;
            self.client_ids_loaded = false;
        }
        result
    }

    /// Authorizes and runs one operation on the loaded channel. The caller's permissions are
    /// checked here, against the state the write applies to, and nowhere else.
    async fn execute_loaded(
        &mut self,
        caller: &Caller,
        op: ChannelOp,
        webhooks: bool,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        // A store failure here says nothing about the channel's state: keep it loaded.
        let resolved = self.policies.resolve(caller).await.map_err(|e| match e {
            ChannelError::Store(e) => {
                tracing::warn!(channel = %self.sid, error = %e, "cannot read the caller's roles");
                ChannelError::Unavailable("the caller's roles cannot be read")
            }
            other => other,
        })?;
        let user = resolved.as_ref().map(|r| r.grants());
        let command = match op {
            ChannelOp::Create(mut create) => {
                policy::authorize_create(user.as_ref(), &create)?;
                if matches!(self.loaded, Some((Some(_), _))) {
                    // Before the webhook: a retried creation must reach `create`'s answer.
                    return Err(DomainError::ChannelExists.into());
                }
                if let Some(resolved) = &resolved {
                    self.pre_create(resolved, &mut create).await?;
                }
                let post = self
                    .post_hooks(resolved.as_ref(), webhooks, create.service_sid)
                    .await?;
                self.keep_lease().await?;
                return self.create(create, caller, post).await;
            }
            // A user names a message by SID; the stored message is read here, never taken from
            // the request (its author decides the "own" permissions).
            ChannelOp::Apply(
                ChannelCommand::UpdateMessage(_) | ChannelCommand::RemoveMessage { .. },
            ) if user.is_some() => {
                return Err(DomainError::Forbidden {
                    reason: "messages are changed by SID".into(),
                }
                .into())
            }
            ChannelOp::Apply(command) => match &user {
                // The roles a user's command assigns are the service's, as its owner reads them.
                Some(user) => policy::with_service_roles(user, self.state()?, command),
                None => command,
            },
            // Membership first: a stranger learns nothing about which messages exist.
            ChannelOp::UpdateMessage { message, change } => {
                policy::authorize_member(user.as_ref(), self.state()?)?;
                let current = self.stored_message(message).await?;
                ChannelCommand::UpdateMessage(UpdateMessage { current, change })
            }
            ChannelOp::RemoveMessage { message } => {
                policy::authorize_member(user.as_ref(), self.state()?)?;
                ChannelCommand::RemoveMessage {
                    current: self.stored_message(message).await?,
                }
            }
        };
        policy::authorize(user.as_ref(), self.state()?, &command)?;
        if let ChannelCommand::AddMember(add) = &command {
            // A user's resolution already read the service; the account's reads it here.
            let policy = match &resolved {
                Some(resolved) => resolved.policy(),
                None => {
                    let service = self.state()?.channel().service_sid;
                    self.policies.service(service).await?
                }
            };
            self.admit_member(&add.identity, &policy).await?;
        }
        let mut client_key = None;
        let command = match command {
            ChannelCommand::PostMessage(post) if post.client_id.is_some() => {
                let key = (
                    post.author.clone(),
                    post.client_id.clone().unwrap_or_default(),
                );
                if let Some(earlier) = self.earlier_post(&key).await? {
                    // A retry: answer with the first message, write and publish nothing.
                    return Ok(vec![earlier]);
                }
                client_key = Some(key);
                ChannelCommand::PostMessage(post)
            }
            command => command,
        };
        let mut command = command;
        self.resolve_media(caller, &mut command).await?;
        if let Some(resolved) = &resolved {
            self.pre_event(resolved, &mut command).await?;
        }
        let service = self.state()?.channel().service_sid;
        let post = self
            .post_hooks(resolved.as_ref(), webhooks, service)
            .await?;
        // The reads and the webhook above may have taken a while: a lease renewed last a third
        // of its TTL ago is renewed before the commit needs it.
        self.keep_lease().await?;
        let Some((Some(state), limits)) = &mut self.loaded else {
            return Err(DomainError::ChannelNotFound.into());
        };
        let at = now();
        let mut ctx = ApplyContext {
            now: at,
            sids: &mut self.sids,
            limits,
        };
        let events = state.apply(command, &mut ctx)?;
        let (jobs, jobs_due) = post_jobs(post.as_ref(), caller, &events, at, &mut self.sids);
        let commit = ChannelCommit {
            channel: state.channel().clone(),
            events,
            fence: self.epoch,
            jobs,
            jobs_due,
        };
        let attached = match self.attach_media(&commit.events, at).await {
            Ok(attached) => attached,
            Err(e) => {
                // The state above holds the refused message: read it again.
                self.loaded = None;
                self.client_ids_loaded = false;
                return Err(e);
            }
        };
        if let Err(e) = self.store.commit(&commit).await {
            // Only when nothing was written: after a backend failure the message may be stored,
            // and its media stays attached (a later post here finds out which).
            let unwritten = matches!(
                e,
                StoreError::Fenced | StoreError::Conflict(_) | StoreError::NotFound
            );
            if let (Some(message), true) = (&attached, unwritten) {
                self.detach_media(message).await;
            }
            return Err(e.into());
        }
        self.forget_removed_media(&commit.events).await;
        let Some((Some(state), limits)) = &mut self.loaded else {
            return Err(ChannelError::Unavailable(
                "the channel was unloaded during a commit",
            ));
        };
        if state.is_removed() {
            self.loaded = Some((None, limits.clone()));
        }
        if let Some(key) = client_key {
            self.remember_client_id(key, &commit.events);
        }
        Ok(self.publish(commit, post))
    }

    async fn create(
        &mut self,
        create: CreateChannel,
        caller: &Caller,
        post: Option<PostHooks>,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let Some((slot, limits)) = &mut self.loaded else {
            return Err(ChannelError::Unavailable("channel not loaded"));
        };
        if slot.is_some() {
            return Err(DomainError::ChannelExists.into());
        }
        let at = now();
        let mut ctx = ApplyContext {
            now: at,
            sids: &mut self.sids,
            limits,
        };
        let (state, events) = ChannelState::create(create, &mut ctx)?;
        let (jobs, jobs_due) = post_jobs(post.as_ref(), caller, &events, at, &mut self.sids);
        let commit = ChannelCommit {
            channel: state.channel().clone(),
            events,
            fence: self.epoch,
            jobs,
            jobs_due,
        };
        self.store.commit(&commit).await?;
        *slot = Some(state);
        Ok(self.publish(commit, post))
    }

    /// Publishes a committed write, hands its webhook jobs to delivery, and returns its events.
    fn publish(&self, mut commit: ChannelCommit, post: Option<PostHooks>) -> Vec<ChannelEvent> {
        if let Some(post) = post {
            post.hooks.submit(std::mem::take(&mut commit.jobs));
        }
        self.publish_events(commit)
    }

    /// Publishes committed events and returns them.
    fn publish_events(&self, commit: ChannelCommit) -> Vec<ChannelEvent> {
        let batch = Arc::new(EventBatch {
            channel: commit.channel,
            events: commit.events,
        });
        self.broker.publish(batch.clone());
        // Clones the events only when a listener still holds the batch.
        Arc::try_unwrap(batch).map_or_else(|b| b.events.clone(), |b| b.events)
    }

    /// Records the message a client id produced, evicting the oldest beyond the window.
    fn remember_client_id(&mut self, key: ClientKey, events: &[ChannelEvent]) {
        let added = events.iter().find_map(|e| match &e.kind {
            ChannelEventKind::MessageAdded { message } => Some((e.seq, message.sid)),
            _ => None,
        });
        let Some(added) = added else {
            return;
        };
        self.client_ids.insert(key.clone(), added);
        self.client_order.push_back(key);
        while self.client_order.len() > self.client_id_window {
            if let Some(old) = self.client_order.pop_front() {
                self.client_ids.remove(&old);
            }
        }
    }

    /// The `MessageAdded` of an earlier post with the same (author, client id), if any.
    async fn earlier_post(
        &mut self,
        key: &ClientKey,
    ) -> Result<Option<ChannelEvent>, ChannelError> {
        if !self.client_ids_loaded {
            self.load_client_ids().await?;
        }
        let Some((seq, sid)) = self.client_ids.get(key).copied() else {
            return Ok(None);
        };
        let message = self
            .store
            .get_message(self.sid, sid)
            .await?
            .ok_or(ChannelError::Domain(DomainError::MessageNotFound))?;
        Ok(Some(ChannelEvent {
            channel_sid: self.sid,
            seq,
            at: message.date_created,
            kind: ChannelEventKind::MessageAdded { message },
        }))
    }

    /// Fills the client-id window from the newest stored messages, so that a retry after a
    /// restart or an idle stop is still recognised.
    async fn load_client_ids(&mut self) -> Result<(), ChannelError> {
        let page = confab_store::PageRequest {
            size: self.client_id_window.max(1),
            start: confab_store::PageStart::First,
            descending: true,
        };
        let newest = self.store.list_messages(self.sid, &page).await?;
        self.client_ids.clear();
        self.client_order.clear();
        for message in newest.items.into_iter().rev() {
            let by_account = message.is_by_account();
            if let Some(client_id) = message.client_id {
                let key = ((!by_account).then_some(message.author), client_id);
                self.client_ids.insert(key.clone(), (0, message.sid));
                self.client_order.push_back(key);
            }
        }
        self.client_ids_loaded = true;
        Ok(())
    }

    /// Admits a new member under the service's limits as they are now (a change through REST
    /// applies to loaded channels at once on this node, within the policy cache's lifetime on
    /// others), each lowered by the node's: the channel's member limit (`Limits.ChannelMembers`,
    /// checked by the domain) and the user's channel limit (`Limits.UserChannels`), checked here
    /// for every caller: a join, an accepted invite, an add, a REST member creation. The
    /// user's channels are counted from the store, so two joins of one user to different
    /// channels at the same moment may both pass.
    async fn admit_member(
        &mut self,
        identity: &str,
        policy: &ServicePolicy,
    ) -> Result<(), ChannelError> {
        let limits = &policy.service.limits;
        let members = self
            .node_limits
            .members_per_channel
            .min(limits.channel_members as usize);
        if let Some((_, in_force)) = &mut self.loaded {
            in_force.members_per_channel = members;
        }
        let state = self.state()?;
        if state.member(identity).is_some() {
            // The domain answers AlreadyMember.
            return Ok(());
        }
        let channels = (limits.user_channels as usize).min(self.node_limits.channels_per_user);
        let joined = self
            .store
            .count_memberships(state.channel().service_sid, identity)
            .await?;
        if joined >= channels as u64 {
            return Err(DomainError::UserChannelLimitReached { limit: channels }.into());
        }
        Ok(())
    }

    /// The loaded channel's state (`ChannelNotFound` when it does not exist).
    pub(super) fn state(&self) -> Result<&ChannelState, ChannelError> {
        match &self.loaded {
            Some((Some(state), _)) => Ok(state),
            _ => Err(DomainError::ChannelNotFound.into()),
        }
    }

    async fn stored_message(
        &self,
        sid: MessageSid,
    ) -> Result<confab_domain::Message, ChannelError> {
        if !matches!(self.loaded, Some((Some(_), _))) {
            return Err(DomainError::ChannelNotFound.into());
        }
        self.store
            .get_message(self.sid, sid)
            .await?
            .ok_or(ChannelError::Domain(DomainError::MessageNotFound))
    }
}
