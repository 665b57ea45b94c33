//! User use cases: reading a user and changing one's own info.

use confab_domain::policy::authorize_user_update;
use confab_domain::{Attributes, Caller, User};
use confab_webhooks::HookEvent;

use crate::channels::UserRef;
use crate::{App, AppError, AppResult};

/// A change of a user's info; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New display name.
    pub friendly_name: Option<String>,
    /// New attributes JSON text.
    pub attributes: Option<String>,
}

impl App {
    /// The user of `service` with this identity (50200 when there is none).
    pub async fn user(&self, user: UserRef<'_>, identity: &str) -> AppResult<User> {
        self.store
            .get_user_by_identity(user.service, identity)
            .await?
            .ok_or_else(AppError::user_not_found)
    }

    /// The caller changes its own friendly name or attributes (`editOwnUserInfo`, as its service
    /// role grants it now); returns the user and the names of what changed.
    pub async fn update_own_user(
        &self,
        caller: &Caller,
        change: UserChange,
    ) -> AppResult<(User, Vec<&'static str>)> {
        let me = UserRef::of(caller)?;
        let resolved = self
            .policies()
            .resolve(caller)
            .await?
            .ok_or_else(|| AppError::invalid("this operation acts for a user"))?;
        authorize_user_update(&resolved.grants(), me.identity)?;
        let limits = self.domain_limits();
        let mut wanted = UserChange::default();
        if let Some(name) = change.friendly_name {
            confab_domain::limits::check_name("friendlyName", &name, limits)?;
            wanted.friendly_name = Some(name);
        }
        if let Some(attributes) = change.attributes {
            Attributes::parse("attributes", &attributes, limits.user_attributes_bytes)?;
            wanted.attributes = Some(attributes);
        }
        let policy = resolved.policy();
        let service = &policy.service;
        if service.webhooks.pre_webhook_url.is_some() {
            // The pre-event webhook sees the user as the change would leave it, and may change
            // the change.
            let mut preview = self.user(me, me.identity).await?;
            apply(&mut preview, &wanted, limits)?;
            preview.date_updated = confab_cluster::now();
            let answer = self.pre_user_update(service, me.identity, &preview).await?;
            if let Some(name) = answer.friendly_name {
                confab_domain::limits::check_name("friendlyName", &name, limits)?;
                wanted.friendly_name = Some(name);
            }
            if let Some(attributes) = answer.attributes {
                Attributes::parse("attributes", &attributes, limits.user_attributes_bytes)?;
                wanted.attributes = Some(attributes);
            }
        }
        // Read again after the webhook (it may have thought for seconds): only the fields this
        // change names are written over what is stored now, so that a role given meanwhile
        // stays.
        let mut user = self.user(me, me.identity).await?;
        let reasons = apply(&mut user, &wanted, limits)?;
        user.date_updated = confab_cluster::now();
        self.store.update_user(&user).await?;
        self.user_webhooks(caller, false, service, HookEvent::UserUpdated, &user)
            .await;
        Ok((user, reasons))
    }
}

/// Applies a change to a user; returns the names of the fields it sets.
fn apply(
    user: &mut User,
    change: &UserChange,
    limits: &confab_domain::Limits,
) -> AppResult<Vec<&'static str>> {
    let mut reasons = Vec::new();
    if let Some(name) = &change.friendly_name {
        user.friendly_name = Some(name.clone());
        reasons.push("friendlyName");
    }
    if let Some(attributes) = &change.attributes {
        user.attributes =
            Attributes::parse("attributes", attributes, limits.user_attributes_bytes)?;
        reasons.push("attributes");
    }
    Ok(reasons)
}
