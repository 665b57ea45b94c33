//! Webhooks of user actions that are not channel commands (a channel's actor handles those):
//! `onUserUpdate` before a user changes its own info, `onUserAdded` and `onUserUpdated` after.
//!
//! A user write and its post-event jobs are two store writes (the user's record is not a
//! channel commit): the jobs are stored right after the user, so a crash between the two, or a
//! store failure on the second, loses that event's webhook (logged). Channel events have no
//! such window.

use confab_domain::{Caller, Service, User};
use confab_webhooks::{events, targets, Actor, HookEvent, PreHookChange};

use crate::{App, AppResult};

impl App {
    /// Asks the service's pre-event webhook about a change of the caller's own user info
    /// (`onUserUpdate`, with the user as the change would leave it); returns what the answer
    /// changes.
    pub(crate) async fn pre_user_update(
        &self,
        service: &Service,
        identity: &str,
        updated: &User,
    ) -> AppResult<PreHookChange> {
        let Some(hooks) = self.runtime.webhooks() else {
            return Ok(PreHookChange::default());
        };
        let Some(target) = targets::pre_target(&service.webhooks, HookEvent::UserUpdate) else {
            return Ok(PreHookChange::default());
        };
        let actor = Actor {
            account_sid: hooks.account_sid(),
            identity: Some(identity),
        };
        let (event, params) = events::pre_user_update(updated, &actor);
        Ok(hooks.pre(&target, event, &params).await?)
    }

    /// Stores and delivers the post-event webhook of a user event (`onUserAdded`,
    /// `onUserUpdated`) when the service's filters name it. `caller` acted: a user's actions
    /// always fire webhooks, the account's only when `requested` (REST with
    /// `X-Twilio-Webhook-Enabled: true`). Called after the user is written, so a failure here
    /// is logged, not returned: the action happened.
    pub async fn user_webhooks(
        &self,
        caller: &Caller,
        requested: bool,
        service: &Service,
        hook: HookEvent,
        user: &User,
    ) {
        let Some(hooks) = self.runtime.webhooks() else {
            return;
        };
        if caller.identity().is_none() && !requested {
            return;
        }
        let targets = targets::post_targets(&service.webhooks, &[], hook, None);
        if targets.is_empty() {
            return;
        }
        let actor = Actor {
            account_sid: hooks.account_sid(),
            identity: caller.identity(),
        };
        let params = events::post_user_event(hook, user, &actor);
        let jobs = targets::jobs_for(
            targets,
            hook,
            &params,
            None,
            service.sid,
            confab_cluster::now(),
            &mut confab_cluster::RandomSids,
        );
        match self.store.enqueue_jobs(&jobs, hooks.jobs_due()).await {
            Ok(()) => hooks.submit(jobs),
            Err(e) => tracing::error!(event = hook.name(), user = %user.sid, error = %e,
                "cannot store a user event's webhook jobs: the event's webhook is lost"),
        }
    }
}
