//! The webhooks of one command: asking the service's pre-event webhook (keeping the channel's
//! lease while it thinks) and building the post-event jobs a commit stores.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use confab_domain::{
    Caller, ChannelCommand, ChannelEvent, ChannelWebhook, CreateChannel, ServicePolicy, Timestamp,
    WebhookJob,
};
use confab_webhooks::{events, targets, Actor, HookEvent, PreHookChange, Webhooks};

use super::core::ChannelCore;
use crate::error::ChannelError;
use crate::policy::ResolvedCaller;

/// What a commit's post-event jobs are built from, read before the command is applied (so that
/// a failed read leaves the state untouched).
pub(super) struct PostHooks {
    pub(super) hooks: Webhooks,
    policy: Arc<ServicePolicy>,
    channel_hooks: Arc<[ChannelWebhook]>,
}

impl ChannelCore {
    /// Asks the service's pre-event webhook about a user's channel command (when its filters
    /// name the command's event), and applies the changes its answer asks for.
    pub(super) async fn pre_event(
        &mut self,
        resolved: &ResolvedCaller<'_>,
        command: &mut ChannelCommand,
    ) -> Result<(), ChannelError> {
        let Some(event) = events::pre_event_of(command) else {
            return Ok(());
        };
        let Some((hooks, target)) = self.pre_target(resolved, event) else {
            return Ok(());
        };
        let actor = Actor {
            account_sid: hooks.account_sid(),
            identity: Some(resolved.identity()),
        };
        let Some((event, params)) = events::pre_channel_event(command, self.state()?, &actor)
        else {
            return Ok(());
        };
        let change = self.ask(&hooks, &target, event, &params).await?;
        change.apply(command);
        Ok(())
    }

    /// `onChannelAdd` for a user's channel creation.
    pub(super) async fn pre_create(
        &mut self,
        resolved: &ResolvedCaller<'_>,
        create: &mut CreateChannel,
    ) -> Result<(), ChannelError> {
        let Some((hooks, target)) = self.pre_target(resolved, HookEvent::ChannelAdd) else {
            return Ok(());
        };
        let actor = Actor {
            account_sid: hooks.account_sid(),
            identity: Some(resolved.identity()),
        };
        let (event, params) = events::pre_channel_add(create, &actor);
        let change = self.ask(&hooks, &target, event, &params).await?;
        change.apply_to_create(create);
        Ok(())
    }

    /// Where `event` goes before it happens: `None` when this node calls no webhooks or the
    /// service's filters do not name it (checked before any parameter is built).
    fn pre_target(
        &self,
        resolved: &ResolvedCaller<'_>,
        event: HookEvent,
    ) -> Option<(Webhooks, confab_webhooks::Target)> {
        let hooks = self.hooks.clone()?;
        let target = targets::pre_target(&resolved.policy().service.webhooks, event)?;
        Some((hooks, target))
    }

    /// Calls a pre-event webhook, keeping the channel's lease while it thinks.
    async fn ask(
        &mut self,
        hooks: &Webhooks,
        target: &confab_webhooks::Target,
        event: HookEvent,
        params: &confab_webhooks::Params,
    ) -> Result<PreHookChange, ChannelError> {
        Ok(self
            .holding_lease(hooks.pre(target, event, params))
            .await??)
    }

    /// Reads what post-event jobs are built from: `None` when this command fires none (no
    /// webhooks on this node; a REST call without `X-Twilio-Webhook-Enabled`; nothing
    /// configured for the service or the channel).
    pub(super) async fn post_hooks(
        &self,
        resolved: Option<&ResolvedCaller<'_>>,
        requested: bool,
        service: confab_domain::ServiceSid,
    ) -> Result<Option<PostHooks>, ChannelError> {
        let Some(hooks) = &self.hooks else {
            return Ok(None);
        };
        let policy = match resolved {
            Some(resolved) => resolved.policy(),
            None if requested => self.policies.service(service).await?,
            None => return Ok(None),
        };
        let channel_hooks = self.policies.channel_webhooks(self.sid).await?;
        if !targets::any_configured(&policy.service.webhooks, &channel_hooks) {
            return Ok(None);
        }
        Ok(Some(PostHooks {
            hooks: hooks.clone(),
            policy,
            channel_hooks,
        }))
    }

    /// Runs `work` while keeping the channel's lease (the actor's renewal timer does not run
    /// while a command is in flight, and a webhook may think for seconds).
    async fn holding_lease<T>(&mut self, work: impl Future<Output = T>) -> Result<T, ChannelError> {
        let (Some(cluster), Some(epoch)) = (self.cluster.clone(), self.epoch) else {
            return Ok(work.await);
        };
        let period = (cluster.config().lease_ttl / 3).max(std::time::Duration::from_millis(10));
        tokio::pin!(work);
        // Counted from the last renewal, wherever it happened.
        let mut due = self.renewed_at + period;
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {
                    match cluster.renew(self.sid, epoch).await {
                        Ok(true) => self.renewed_at = Instant::now(),
                        Ok(false) => {
                            self.lose_lease();
                            return Err(ChannelError::NotOwner { holder: None });
                        }
                        // Redis is unreachable: the commit will tell (it is fenced). The next
                        // try waits a period, not a spin while the connection comes back.
                        Err(_) => {}
                    }
                    due = Instant::now() + period;
                }
            }
        }
    }
}

/// The post-event jobs of committed events, and when other nodes may claim them.
pub(super) fn post_jobs(
    post: Option<&PostHooks>,
    caller: &Caller,
    events: &[ChannelEvent],
    at: Timestamp,
    sids: &mut dyn confab_domain::SidSource,
) -> (Vec<WebhookJob>, Timestamp) {
    let Some(post) = post else {
        return (Vec::new(), at);
    };
    let actor = Actor {
        account_sid: post.hooks.account_sid(),
        identity: caller.identity(),
    };
    let jobs = targets::channel_jobs(
        &post.policy.service.webhooks,
        &post.channel_hooks,
        events,
        &actor,
        at,
        sids,
    );
    (jobs, post.hooks.jobs_due())
}
