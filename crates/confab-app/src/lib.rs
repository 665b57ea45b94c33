//! `confab-app`: the application layer. Every transport (the Twilio REST API, the realtime
//! WebSocket API, and those to come) parses its input, calls one function here, and renders
//! what it returns; so a behaviour lives in one place and is tested once.
//!
//! It owns the use cases ([`channels`], [`messages`], [`media`], [`users`]), the lookups they share
//! ([`lookup`]) and the one error type with every Twilio code ([`error`]). Each use case takes a
//! [`Caller`]: the account (REST, server-side calls) or a user of a service (realtime). Writes go
//! to the channel's actor with the caller, and the actor decides (`confab_domain::policy`)
//! against the channel's current state; reads apply the same visibility rule to what the store
//! holds now. Nothing here keeps a copy of a user's rights.
//!
//! It must not speak HTTP, WebSocket or any wire format (that is `confab-web` and
//! `confab-protocol`), nor order writes (that is the actor in `confab-cluster`).

mod allowance;
pub mod channels;
pub mod error;
mod known;
pub mod lookup;
pub mod media;
pub mod messages;
pub mod users;
mod webhooks;

use std::sync::Arc;

use confab_cluster::{ChannelOp, ChannelRuntime, Policies};
use confab_domain::{ChannelEvent, ChannelEventKind, ChannelSid, Limits, ServiceSid};
use confab_store::Store;

pub use confab_domain::{Caller, Participation};
pub use error::AppError;

/// What every use case returns.
pub type AppResult<T> = Result<T, AppError>;

/// Limits the use cases apply to what one call may ask for.
#[derive(Debug, Clone)]
pub struct AppLimits {
    /// Largest page a list may return.
    pub max_page_size: usize,
    /// Largest history page, in bytes of bodies and attributes: a page stops short of it (and
    /// says more is there), whatever page size was asked for.
    pub max_reply_bytes: usize,
}

impl Default for AppLimits {
    fn default() -> Self {
        Self {
            max_page_size: 1000,
            max_reply_bytes: 256 * 1024,
        }
    }
}

/// The application: the runtime that writes, the store that reads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    runtime: ChannelRuntime,
    store: Arc<dyn Store>,
    limits: AppLimits,
    /// Per inviting user: how many new users it may still create through invites.
    invited: Arc<allowance::Allowances>,
    /// Where media live, and the node's upload slots.
    media: Arc<media::MediaState>,
    /// Channels seen to exist, so that a write need not read its channel first.
    known: Arc<known::KnownChannels>,
}

impl App {
    /// The application over a node's runtime (and its store), keeping media as `media` says.
    pub fn new(runtime: ChannelRuntime, limits: AppLimits, media: media::MediaSettings) -> Self {
        Self {
            store: runtime.store().clone(),
            runtime,
            limits,
            invited: Arc::default(),
            media: Arc::new(media::MediaState::new(media)),
            known: Arc::default(),
        }
    }

    /// The channel runtime.
    pub fn runtime(&self) -> &ChannelRuntime {
        &self.runtime
    }

    /// The store reads go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The domain limits in force on this node.
    pub fn domain_limits(&self) -> &Limits {
        self.runtime.limits()
    }

    /// The limits of one call.
    pub fn limits(&self) -> &AppLimits {
        &self.limits
    }

    /// The node's cache of roles and service settings that decisions read.
    pub fn policies(&self) -> &Policies {
        self.runtime.policies()
    }

    /// Admits the creation of a new user through `inviter`'s invite: within the service's
    /// `users_per_service` and the inviter's `invited_users_per_minute`.
    pub(crate) async fn admit_invited_user(
        &self,
        service: ServiceSid,
        inviter: &str,
    ) -> AppResult<()> {
        let limits = self.domain_limits();
        if self.store.count_users(service).await? >= limits.users_per_service {
            return Err(AppError::service_user_limit(limits.users_per_service));
        }
        if !self
            .invited
            .take(service, inviter, limits.invited_users_per_minute)
        {
            return Err(AppError::too_many_new_users());
        }
        Ok(())
    }

    /// Runs `op` on `channel` for `caller` through the channel's actor, which authorizes it.
    pub async fn execute(
        &self,
        caller: &Caller,
        channel: ChannelSid,
        op: ChannelOp,
    ) -> AppResult<Vec<ChannelEvent>> {
        let events = self.runtime.execute(channel, caller.clone(), op).await?;
        self.forget_removed(&events);
        Ok(events)
    }

    /// [`App::execute`] as the account, firing post-event webhooks when `webhooks` (a REST call
    /// with `X-Twilio-Webhook-Enabled: true`).
    pub async fn execute_as_account(
        &self,
        channel: ChannelSid,
        op: ChannelOp,
        webhooks: bool,
    ) -> AppResult<Vec<ChannelEvent>> {
        let request = confab_cluster::ChannelRequest {
            caller: Caller::Account,
            op,
            webhooks,
        };
        let events = self.runtime.execute_request(channel, request).await?;
        self.forget_removed(&events);
        Ok(events)
    }

    /// A deleted channel is no longer known to exist.
    fn forget_removed(&self, events: &[ChannelEvent]) {
        for event in events {
            if matches!(event.kind, ChannelEventKind::ChannelRemoved { .. }) {
                self.known.forget(event.channel_sid);
            }
        }
    }
}
