//! Where a webhook event goes: the service's pre- or post-event URL when its `WebhookFilters`
//! name the event, and the channel's own webhooks; and the jobs a post-event becomes.

use confab_domain::{
    ChannelEvent, ChannelEventKind, ChannelSid, ChannelWebhook, ServiceSid, ServiceWebhooks,
    SidSource, Timestamp, WebhookJob, WebhookJobSid, WebhookMethod, WebhookSid,
};

use crate::events::{post_channel_event, Actor, HookEvent, Params};

/// Where one call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL.
    pub url: String,
    /// How to call it.
    pub method: WebhookMethod,
    /// Retries after the first attempt.
    pub retries: u32,
    /// A channel-scoped webhook: its SID and type (`webhook`, `trigger`), sent as `WebhookSid`
    /// and `WebhookType`.
    pub webhook: Option<(WebhookSid, String)>,
}

fn service_target(hooks: &ServiceWebhooks, url: Option<&String>, retries: u32) -> Option<Target> {
    let url = url.filter(|u| !u.is_empty())?;
    Some(Target {
        url: url.clone(),
        // The REST API refuses other methods; an unreadable stored one falls back to Twilio's
        // default.
        method: WebhookMethod::parse(hooks.method.as_deref()).unwrap_or_default(),
        retries,
        webhook: None,
    })
}

fn filtered(filters: &[String], event: HookEvent) -> bool {
    filters.iter().any(|f| f == event.name())
}

/// The service's pre-event target for `event`: its `PreWebhookUrl`, when its `WebhookFilters`
/// name the event.
pub fn pre_target(hooks: &ServiceWebhooks, event: HookEvent) -> Option<Target> {
    if !filtered(&hooks.filters, event) {
        return None;
    }
    service_target(
        hooks,
        hooks.pre_webhook_url.as_ref(),
        hooks.pre_webhook_retry_count,
    )
}

/// Whether a trigger keyword is in a message body (case-insensitive).
fn triggered(triggers: &[String], body: &str) -> bool {
    let body = body.to_lowercase();
    triggers
        .iter()
        .filter(|t| !t.is_empty())
        .any(|t| body.contains(&t.to_lowercase()))
}

/// The post-event targets of `event`: the service's `PostWebhookUrl` when its filters name the
/// event, each channel webhook of type `webhook` whose filters name it, and, for
/// `onMessageSent`, each `trigger` webhook with a keyword in the body. Studio webhooks are
/// skipped with a log line (there is no Studio here).
pub fn post_targets(
    hooks: &ServiceWebhooks,
    channel_hooks: &[ChannelWebhook],
    event: HookEvent,
    body: Option<&str>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    if filtered(&hooks.filters, event) {
        targets.extend(service_target(
            hooks,
            hooks.post_webhook_url.as_ref(),
            hooks.post_webhook_retry_count,
        ));
    }
    for hook in channel_hooks {
        let fires = match hook.kind.as_str() {
            "webhook" => filtered(&hook.filters, event),
            "trigger" => {
                event == HookEvent::MessageSent
                    && body.is_some_and(|b| triggered(&hook.triggers, b))
            }
            "studio" => {
                if filtered(&hook.filters, event) {
                    tracing::warn!(webhook = %hook.sid, event = event.name(),
                        "studio channel webhook not called: this server has no Studio");
                }
                false
            }
            _ => false,
        };
        let Some(url) = hook.url.as_ref().filter(|u| !u.is_empty()) else {
            continue;
        };
        if fires {
            targets.push(Target {
                url: url.clone(),
                method: WebhookMethod::parse(hook.method.as_deref()).unwrap_or_default(),
                retries: hook.retry_count.unwrap_or(0),
                webhook: Some((hook.sid, hook.kind.clone())),
            });
        }
    }
    targets
}

/// The jobs of one post-event: one per target, each with the event's parameters (and, for a
/// channel webhook, `WebhookSid` and `WebhookType`).
pub fn jobs_for(
    targets: Vec<Target>,
    hook: HookEvent,
    params: &Params,
    channel: Option<ChannelSid>,
    service: ServiceSid,
    now: Timestamp,
    sids: &mut dyn SidSource,
) -> Vec<WebhookJob> {
    targets
        .into_iter()
        .map(|target| {
            let mut params = params.clone();
            if let Some((sid, kind)) = &target.webhook {
                params.push(("WebhookSid".into(), sid.to_string()));
                params.push(("WebhookType".into(), kind.clone()));
            }
            WebhookJob {
                sid: WebhookJobSid::generate(sids),
                service_sid: service,
                channel_sid: channel,
                event_type: hook.name().to_owned(),
                url: target.url,
                method: target.method,
                params,
                retries: target.retries,
                attempts: 0,
                created: now,
            }
        })
        .collect()
}

/// Every post-event job of a channel commit.
pub fn channel_jobs(
    hooks: &ServiceWebhooks,
    channel_hooks: &[ChannelWebhook],
    events: &[ChannelEvent],
    actor: &Actor<'_>,
    now: Timestamp,
    sids: &mut dyn SidSource,
) -> Vec<WebhookJob> {
    let mut jobs = Vec::new();
    for event in events {
        let Some((hook, service, params)) = post_channel_event(event, actor) else {
            continue;
        };
        let body = match &event.kind {
            ChannelEventKind::MessageAdded { message } => Some(message.body.as_str()),
            _ => None,
        };
        let targets = post_targets(hooks, channel_hooks, hook, body);
        if targets.is_empty() {
            continue;
        }
        jobs.extend(jobs_for(
            targets,
            hook,
            &params,
            Some(event.channel_sid),
            service,
            now,
            sids,
        ));
    }
    jobs
}

/// Whether any webhook could fire for this service and channel: when not, a commit builds no
/// parameters at all.
pub fn any_configured(hooks: &ServiceWebhooks, channel_hooks: &[ChannelWebhook]) -> bool {
    let service = hooks.filters.iter().any(|f| !f.is_empty())
        && (hooks
            .pre_webhook_url
            .as_ref()
            .is_some_and(|u| !u.is_empty())
            || hooks
                .post_webhook_url
                .as_ref()
                .is_some_and(|u| !u.is_empty()));
    service || !channel_hooks.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(filters: &[&str]) -> ServiceWebhooks {
        ServiceWebhooks {
            pre_webhook_url: Some("http://pre/".into()),
            post_webhook_url: Some("http://post/".into()),
            method: Some("GET".into()),
            filters: filters.iter().map(|f| f.to_string()).collect(),
            pre_webhook_retry_count: 1,
            post_webhook_retry_count: 2,
        }
    }

    fn channel_hook(bits: u128, kind: &str, filters: &[&str], triggers: &[&str]) -> ChannelWebhook {
        ChannelWebhook {
            sid: WebhookSid::from_bits(bits),
            service_sid: ServiceSid::from_bits(1),
            channel_sid: ChannelSid::from_bits(2),
            kind: kind.into(),
            url: Some(format!("http://channel/{bits}")),
            method: None,
            filters: filters.iter().map(|f| f.to_string()).collect(),
            triggers: triggers.iter().map(|f| f.to_string()).collect(),
            flow_sid: None,
            retry_count: Some(3),
            date_created: Timestamp(0),
            date_updated: Timestamp(0),
        }
    }

    #[test]
    fn the_service_filters_decide() {
        let settings = hooks(&["onMessageSend", "onMessageSent"]);
        let pre = pre_target(&settings, HookEvent::MessageSend).unwrap();
        assert_eq!(
            (pre.url.as_str(), pre.method, pre.retries),
            ("http://pre/", WebhookMethod::Get, 1)
        );
        assert!(pre_target(&settings, HookEvent::MessageUpdate).is_none());
        assert_eq!(
            post_targets(&settings, &[], HookEvent::MessageSent, None).len(),
            1
        );
        assert!(post_targets(&settings, &[], HookEvent::MessageUpdated, None).is_empty());
        let mut no_url = settings.clone();
        no_url.post_webhook_url = Some(String::new());
        assert!(post_targets(&no_url, &[], HookEvent::MessageSent, None).is_empty());
        assert!(
            !any_configured(&hooks(&[]), &[]),
            "no filters, nothing fires"
        );
    }

    #[test]
    fn channel_webhooks_fire_by_filter_or_keyword_and_studio_never() {
        let channel_hooks = [
            channel_hook(1, "webhook", &["onMessageSent"], &[]),
            channel_hook(2, "trigger", &[], &["urgent", "help"]),
            channel_hook(3, "studio", &["onMessageSent"], &[]),
        ];
        let sent = post_targets(
            &hooks(&[]),
            &channel_hooks,
            HookEvent::MessageSent,
            Some("I need HELP"),
        );
        let urls: Vec<&str> = sent.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["http://channel/1", "http://channel/2"]);
        assert_eq!(sent[0].retries, 3);
        let calm = post_targets(
            &hooks(&[]),
            &channel_hooks,
            HookEvent::MessageSent,
            Some("hello"),
        );
        assert_eq!(calm.len(), 1, "no keyword, no trigger");
        let updated = post_targets(
            &hooks(&[]),
            &channel_hooks,
            HookEvent::MessageUpdated,
            Some("help"),
        );
        assert!(updated.is_empty(), "triggers fire on new messages only");
    }

    #[test]
    fn jobs_carry_the_channel_webhook_that_asked() {
        let targets = post_targets(
            &hooks(&["onMessageSent"]),
            &[channel_hook(1, "webhook", &["onMessageSent"], &[])],
            HookEvent::MessageSent,
            None,
        );
        let params: Params = vec![("EventType".into(), "onMessageSent".into())];
        let mut sids = confab_domain::CountingSids(1);
        let jobs = jobs_for(
            targets,
            HookEvent::MessageSent,
            &params,
            None,
            ServiceSid::from_bits(1),
            Timestamp(5),
            &mut sids,
        );
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            jobs[0].params, params,
            "the service's call has the event's parameters"
        );
        assert!(jobs[1]
            .params
            .contains(&("WebhookType".into(), "webhook".into())));
        assert!(jobs[1]
            .params
            .contains(&("WebhookSid".into(), WebhookSid::from_bits(1).to_string())));
        assert_ne!(jobs[0].sid, jobs[1].sid);
    }
}
