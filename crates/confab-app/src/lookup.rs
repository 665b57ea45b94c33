//! Lookups every transport shares: a service, channel, user or role named by SID or name, the
//! user a new member or invite needs, and the event a write produced.

use std::sync::Arc;

use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, Role, RoleSid, Service, ServicePolicy,
    ServiceSid, User, UserSid,
};

use confab_domain::Caller;

use crate::{App, AppError, AppResult};

impl App {
    /// A service by its SID as a client wrote it (20404 naming `/Services/{key}` when none).
    pub async fn load_service(&self, key: &str) -> AppResult<Service> {
        let not_found = || AppError::not_found(&format!("/Services/{key}"));
        let sid: ServiceSid = key.parse().map_err(|_| not_found())?;
        self.store.get_service(sid).await?.ok_or_else(not_found)
    }

    /// The SID of a service as a client wrote it (20404 naming `/Services/{key}` when there is
    /// none), from the policy cache ([`App::cached_service`]): a write that needs only to know
    /// the service exists does not read it each time.
    pub async fn service_sid(&self, key: &str) -> AppResult<ServiceSid> {
        let not_found = || AppError::not_found(&format!("/Services/{key}"));
        let sid: ServiceSid = key.parse().map_err(|_| not_found())?;
        match self.cached_service(sid).await? {
            Some(_) => Ok(sid),
            None => Err(not_found()),
        }
    }

    /// The service as the policy cache has it: at most `runtime.policy_cache_ms` old, and
    /// current at once after a change through this node (`None` when there is none).
    pub async fn cached_service(&self, sid: ServiceSid) -> AppResult<Option<Arc<ServicePolicy>>> {
        match self.policies().service(sid).await {
            Ok(policy) => Ok(Some(policy)),
            Err(confab_cluster::ChannelError::ServiceNotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A channel of `service` by SID or unique name (50300 when there is none).
    pub async fn load_channel(&self, service: ServiceSid, key: &str) -> AppResult<Channel> {
        let found = if let Ok(sid) = key.parse::<ChannelSid>() {
            self.store.get_channel(service, sid).await?
        } else {
            self.store.get_channel_by_unique_name(service, key).await?
        };
        found.ok_or_else(AppError::channel_not_found)
    }

    /// The SID of a channel of `service` named by SID or unique name (50300 when there is
    /// none). Read from the store, so that no actor (and, in a cluster, no lease) is started
    /// for a channel that does not exist; a SID of a channel this node has seen exist in
    /// `service` is not read again (`known.rs`).
    pub async fn channel_sid(&self, service: ServiceSid, key: &str) -> AppResult<ChannelSid> {
        if let Ok(sid) = key.parse::<ChannelSid>() {
            if self.known.contains(service, sid) {
                return Ok(sid);
            }
        }
        let channel = self.load_channel(service, key).await?;
        self.known.insert(service, channel.sid);
        Ok(channel.sid)
    }

    /// A user by SID or identity (50200 when there is none).
    pub async fn load_user(&self, service: ServiceSid, key: &str) -> AppResult<User> {
        let found = if UserSid::is_sid(key) {
            let sid: UserSid = key.parse().map_err(|_| AppError::user_not_found())?;
            self.store.get_user(service, sid).await?
        } else {
            self.store.get_user_by_identity(service, key).await?
        };
        found.ok_or_else(AppError::user_not_found)
    }

    /// A role of the service (50100 when there is none).
    pub async fn load_role(&self, service: ServiceSid, sid: RoleSid) -> AppResult<Role> {
        self.store
            .get_role(service, sid)
            .await?
            .ok_or_else(AppError::role_not_found)
    }

    /// The user with this identity, created with the service's default role if there is none
    /// (adding a member or inviting an unknown identity creates the user, as in Twilio).
    pub async fn ensure_user(&self, service: &Service, identity: &str) -> AppResult<User> {
        Ok(self.find_or_create_user(service, identity).await?.0)
    }

    /// [`App::ensure_user`] for an action of `caller` (a connection, an invite, a REST member
    /// or invite creation): a user created here fires `onUserAdded` (for the account only when
    /// `requested`, as [`App::user_webhooks`] says).
    pub async fn ensure_user_for(
        &self,
        caller: &Caller,
        requested: bool,
        service: &Service,
        identity: &str,
    ) -> AppResult<User> {
        let (user, created) = self.find_or_create_user(service, identity).await?;
        if created {
            self.user_webhooks(
                caller,
                requested,
                service,
                confab_webhooks::HookEvent::UserAdded,
                &user,
            )
            .await;
        }
        Ok(user)
    }

    /// The user, and whether this call created it.
    async fn find_or_create_user(
        &self,
        service: &Service,
        identity: &str,
    ) -> AppResult<(User, bool)> {
        if let Some(user) = self
            .store
            .get_user_by_identity(service.sid, identity)
            .await?
        {
            return Ok((user, false));
        }
        confab_domain::limits::check_identity("Identity", identity, self.domain_limits())?;
        // The service as stored now, not a copy up to a TTL old: a user is not created in a
        // service already deleted, nor with a default role already changed (a cached copy
        // serves only while the embedded store has written no service since it was read).
        let service = self
            .policies()
            .current_service(service.sid)
            .await?
            .ok_or_else(AppError::service_not_found)?;
        let now = confab_cluster::now();
        let user = User {
            sid: UserSid::generate(&mut confab_cluster::RandomSids),
            service_sid: service.sid,
            identity: identity.to_owned(),
            friendly_name: None,
            attributes: Default::default(),
            role_sid: service.default_service_role_sid,
            date_created: now,
            date_updated: now,
        };
        match self.store.create_user(&user).await {
            Ok(()) => Ok((user, true)),
            // Someone else created it meanwhile: use theirs.
            Err(confab_store::StoreError::Conflict(_)) => self
                .store
                .get_user_by_identity(service.sid, identity)
                .await?
                .map(|user| (user, false))
                .ok_or_else(AppError::user_not_found),
            Err(e) => Err(e.into()),
        }
    }
}

/// The first event of the given shape among committed events.
pub fn find_event<T>(
    events: &[ChannelEvent],
    pick: impl Fn(&ChannelEventKind) -> Option<T>,
) -> AppResult<T> {
    events
        .iter()
        .find_map(|e| pick(&e.kind))
        .ok_or_else(|| AppError::internal("a committed write produced no event of its kind"))
}
