//! `/v2/Services`: services with their settings.

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::AppError;
use confab_cluster::{now, ChannelOp, RandomSids};
use confab_domain::{
    limits::check_name, ChannelCommand, DefaultRoles, NotificationSetting, Service, ServiceLimits,
    ServiceSid,
};
use confab_protocol::rest as json;
use confab_store::PageRequest;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/Services").post(create).get(list))
        .service(
            web::resource("/Services/{sid}")
                .get(fetch)
                .post(update)
                .delete(delete),
        )
        .service(web::resource("/Services/{sid}/Bindings").get(list_bindings))
        .service(web::resource("/Services/{sid}/Users/{user}/Bindings").get(list_bindings));
}

/// Creates a service with the default roles and the node's limits, as Twilio's defaults have
/// it (reachability as asked).
pub(crate) async fn create_service(
    state: &AppState,
    friendly_name: String,
    reachability_enabled: bool,
) -> Result<Service, ApiError> {
    let now = now();
    let mut sids = RandomSids;
    let sid = ServiceSid::generate(&mut sids);
    let roles = DefaultRoles::new(sid, &mut sids, now);
    let node = state.runtime.limits();
    let limits = ServiceLimits {
        channel_members: u32::try_from(node.members_per_channel).unwrap_or(u32::MAX),
        user_channels: u32::try_from(node.channels_per_user.min(250)).unwrap_or(250),
    };
    let service = Service {
        reachability_enabled,
        ..Service::new(sid, friendly_name, &roles, limits, now)
    };
    state
        .store
        .create_service(&service, &roles.into_vec())
        .await?;
    Ok(service)
}

async fn create(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let friendly_name = form
        .string("FriendlyName")
        .ok_or_else(AppError::friendly_name_missing)?;
    check_name("FriendlyName", &friendly_name, state.runtime.limits())?;
    let service = create_service(&state, friendly_name, false).await?;
    Ok(created(json::service(&service, &state.urls)))
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let page = state.store.list_services(paging.request()).await?;
    let items = page
        .items
        .iter()
        .map(|s| json::service(s, &state.urls))
        .collect();
    Ok(paging.respond(&req, &state, "services", vec![], &page, items))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    Ok(ok(json::service(&service, &state.urls)))
}

fn setting(form: &Form, prefix: &str, setting: &mut NotificationSetting) -> Result<(), ApiError> {
    if let Some(enabled) = form.bool(&format!("{prefix}.Enabled"))? {
        setting.enabled = enabled;
    }
    if let Some(template) = form.string(&format!("{prefix}.Template")) {
        setting.template = Some(template);
    }
    if let Some(sound) = form.string(&format!("{prefix}.Sound")) {
        setting.sound = Some(sound);
    }
    Ok(())
}

/// Most retries a service's webhook may ask for: with the 1 s doubling backoff, ten retries
/// span about seventeen minutes.
const MAX_WEBHOOK_RETRIES: u32 = 10;

async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut service = state.app.load_service(&path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let node = state.runtime.limits();
    if let Some(name) = form.string("FriendlyName") {
        check_name("FriendlyName", &name, node)?;
        service.friendly_name = name;
    }
    for (key, slot) in [
        (
            "DefaultServiceRoleSid",
            &mut service.default_service_role_sid,
        ),
        (
            "DefaultChannelRoleSid",
            &mut service.default_channel_role_sid,
        ),
        (
            "DefaultChannelCreatorRoleSid",
            &mut service.default_channel_creator_role_sid,
        ),
    ] {
        if let Some(role) = form.sid(key)? {
            state.app.load_role(service.sid, role).await?;
            *slot = role;
        }
    }
    if let Some(v) = form.bool("ReadStatusEnabled")? {
        service.read_status_enabled = v;
    }
    if let Some(v) = form.bool("ReachabilityEnabled")? {
        service.reachability_enabled = v;
    }
    if let Some(v) = form.u32("TypingIndicatorTimeout")? {
        service.typing_indicator_timeout = v;
    }
    if let Some(v) = form.u32("ConsumptionReportInterval")? {
        service.consumption_report_interval = v;
    }
    if let Some(v) = form.u32("Limits.ChannelMembers")? {
        if v == 0 || v as usize > node.members_per_channel {
            return Err(AppError::invalid(format!(
                "Limits.ChannelMembers must be between 1 and {}",
                node.members_per_channel
            ))
            .into());
        }
        service.limits.channel_members = v;
    }
    if let Some(v) = form.u32("Limits.UserChannels")? {
        if v == 0 || v as usize > node.channels_per_user {
            return Err(AppError::invalid(format!(
                "Limits.UserChannels must be between 1 and {}",
                node.channels_per_user
            ))
            .into());
        }
        service.limits.user_channels = v;
    }
    let n = &mut service.notifications;
    setting(&form, "Notifications.NewMessage", &mut n.new_message)?;
    if let Some(v) = form.bool("Notifications.NewMessage.BadgeCountEnabled")? {
        n.new_message.badge_count_enabled = Some(v);
    }
    setting(
        &form,
        "Notifications.AddedToChannel",
        &mut n.added_to_channel,
    )?;
    setting(
        &form,
        "Notifications.RemovedFromChannel",
        &mut n.removed_from_channel,
    )?;
    setting(
        &form,
        "Notifications.InvitedToChannel",
        &mut n.invited_to_channel,
    )?;
    if let Some(v) = form.bool("Notifications.LogEnabled")? {
        n.log_enabled = v;
    }
    let w = &mut service.webhooks;
    if let Some(v) = form.string("PreWebhookUrl") {
        w.pre_webhook_url = Some(v);
    }
    if let Some(v) = form.string("PostWebhookUrl") {
        w.post_webhook_url = Some(v);
    }
    if let Some(v) = form.string("WebhookMethod") {
        if v != "GET" && v != "POST" {
            return Err(AppError::invalid("WebhookMethod must be GET or POST").into());
        }
        w.method = Some(v);
    }
    if form.has("WebhookFilters") {
        let filters = form.all("WebhookFilters");
        if let Some(bad) = filters
            .iter()
            .find(|f| !confab_webhooks::events::is_service_filter(f))
        {
            return Err(AppError::invalid_webhook(format!("Invalid webhook filter: {bad}")).into());
        }
        w.filters = filters;
    }
    if let Some(v) = form.u32("PreWebhookRetryCount")? {
        if v > MAX_WEBHOOK_RETRIES {
            return Err(AppError::invalid_webhook_retry_count(MAX_WEBHOOK_RETRIES).into());
        }
        w.pre_webhook_retry_count = v;
    }
    if let Some(v) = form.u32("PostWebhookRetryCount")? {
        if v > MAX_WEBHOOK_RETRIES {
            return Err(AppError::invalid_webhook_retry_count(MAX_WEBHOOK_RETRIES).into());
        }
        w.post_webhook_retry_count = v;
    }
    if let Some(v) = form.string("Media.CompatibilityMessage") {
        service.media_compatibility_message = Some(v);
    }
    // Confab's extension: Twilio's limit is fixed; here a service may lower (or raise up to the
    // node's `media.max_upload_bytes`) its own.
    if let Some(v) = form.u32("Media.SizeLimitMb")? {
        if v == 0 {
            return Err(AppError::invalid("Media.SizeLimitMb must be at least 1").into());
        }
        service.media_size_limit_mb = v;
    }
    service.date_updated = now();
    state.store.update_service(&service).await?;
    state.app.policies().forget_service(service.sid);
    Ok(ok(json::service(&service, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    // Each channel is deleted through its actor, so that a live actor cannot write it back and
    // its members hear `channelRemoved`; the store then removes what is left in one transaction.
    loop {
        let page = state
            .store
            .list_channels(service.sid, &[], &PageRequest::first(100))
            .await?;
        if page.items.is_empty() {
            break;
        }
        for channel in page.items {
            super::execute(
                &state,
                super::WebhooksRequested(false),
                channel.sid,
                ChannelOp::Apply(ChannelCommand::Delete),
            )
            .await?;
        }
    }
    state.app.delete_service_media(service.sid).await?;
    state.store.delete_service(service.sid).await?;
    state.app.policies().forget_service(service.sid);
    Ok(no_content())
}

/// Push bindings are not implemented: a service has none, so every list is empty.
async fn list_bindings(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let service = state
        .app
        .load_service(req.match_info().get("sid").unwrap_or_default())
        .await?;
    if let Some(user) = req.match_info().get("user") {
        state.app.load_user(service.sid, user).await?;
    }
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let page = confab_store::Page::<()> {
        items: vec![],
        next: None,
    };
    Ok(paging.respond(&req, &state, "bindings", vec![], &page, vec![]))
}
