//! `/v2/Services/{ServiceSid}/Channels` and a channel's `/Webhooks`.

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::lookup::find_event;
use confab_app::AppError;
use confab_cluster::{now, ChannelOp, RandomSids};
use confab_domain::{
    ChannelCommand, ChannelEventKind, ChannelSid, ChannelType, ChannelWebhook, CreateChannel,
    UpdateChannel, WebhookSid,
};
use confab_protocol::rest as json;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Services/{service}/Channels")
            .post(create)
            .get(list),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}")
            .get(fetch)
            .post(update)
            .delete(delete),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Webhooks")
            .post(create_webhook)
            .get(list_webhooks),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Webhooks/{sid}")
            .get(fetch_webhook)
            .post(update_webhook)
            .delete(delete_webhook),
    );
}

fn channel_type(value: &str) -> Result<ChannelType, ApiError> {
    match value {
        "public" => Ok(ChannelType::Public),
        "private" => Ok(ChannelType::Private),
        _ => Err(AppError::invalid("Type must be public or private").into()),
    }
}

fn created_channel(
    events: &[confab_domain::ChannelEvent],
) -> Result<confab_domain::Channel, AppError> {
    find_event(events, |k| match k {
        ChannelEventKind::ChannelCreated { channel }
        | ChannelEventKind::ChannelUpdated { channel, .. } => Some(channel.clone()),
        _ => None,
    })
}

async fn create(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let kind = form
        .get("Type")
        .map(channel_type)
        .transpose()?
        .unwrap_or(ChannelType::Public);
    let unique_name = form.string("UniqueName").filter(|n| !n.is_empty());
    if let Some(name) = &unique_name {
        if ChannelSid::is_sid(name) {
            return Err(AppError::unique_name_is_sid().into());
        }
    }
    let sid = ChannelSid::generate(&mut RandomSids);
    let create = CreateChannel {
        sid,
        service_sid: service.sid,
        friendly_name: form.string("FriendlyName"),
        unique_name,
        attributes: form.string("Attributes"),
        kind,
        created_by: form.string("CreatedBy"),
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
    };
    let events = super::execute(&state, hooks, sid, ChannelOp::Create(create)).await?;
    Ok(created(json::channel(
        &created_channel(&events)?,
        &state.urls,
    )))
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    let q = query(&req);
    let types = q
        .all("Type")
        .iter()
        .map(|t| channel_type(t))
        .collect::<Result<Vec<_>, _>>()?;
    let paging = Paging::from_query(&q, &state, false)?;
    let page = state
        .store
        .list_channels(service.sid, &types, paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|c| json::channel(c, &state.urls))
        .collect();
    Ok(paging.respond(
        &req,
        &state,
        "channels",
        q.pairs_of(&["Type"]),
        &page,
        items,
    ))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    Ok(ok(json::channel(&channel, &state.urls)))
}

async fn update(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    if let Some(name) = form.get("UniqueName") {
        if ChannelSid::is_sid(name) {
            return Err(AppError::unique_name_is_sid().into());
        }
    }
    let command = ChannelCommand::Update(UpdateChannel {
        friendly_name: form.string("FriendlyName"),
        unique_name: form.string("UniqueName"),
        attributes: form.string("Attributes"),
        created_by: form.string("CreatedBy"),
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
    });
    let events = super::execute(&state, hooks, channel.sid, ChannelOp::Apply(command)).await?;
    Ok(ok(json::channel(&created_channel(&events)?, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    super::execute(
        &state,
        hooks,
        channel.sid,
        ChannelOp::Apply(ChannelCommand::Delete),
    )
    .await?;
    Ok(no_content())
}

// === webhooks ===

fn webhook_not_found() -> AppError {
    AppError::webhook_not_found()
}

/// Applies the `Configuration.*` parameters to a webhook.
fn configure(form: &Form, webhook: &mut ChannelWebhook) -> Result<(), ApiError> {
    if let Some(url) = form.string("Configuration.Url") {
        webhook.url = Some(url);
    }
    if let Some(method) = form.string("Configuration.Method") {
        let method = method.to_ascii_uppercase();
        if method != "GET" && method != "POST" {
            return Err(AppError::invalid("Configuration.Method must be GET or POST").into());
        }
        webhook.method = Some(method);
    }
    if form.has("Configuration.Filters") {
        let filters = form.all("Configuration.Filters");
        if let Some(bad) = filters
            .iter()
            .find(|f| !confab_webhooks::events::is_channel_filter(f))
        {
            return Err(AppError::invalid_channel_webhook_filter(bad).into());
        }
        webhook.filters = filters;
    }
    if form.has("Configuration.Triggers") {
        let triggers = form.all("Configuration.Triggers");
        if triggers.len() > 5 {
            return Err(AppError::too_many_webhook_triggers().into());
        }
        webhook.triggers = triggers;
    }
    if let Some(flow) = form.string("Configuration.FlowSid") {
        webhook.flow_sid = Some(flow);
    }
    if let Some(retries) = form.u32("Configuration.RetryCount")? {
        if retries > 3 {
            return Err(AppError::invalid_webhook(
                "Configuration.RetryCount must be between 0 and 3",
            )
            .into());
        }
        webhook.retry_count = Some(retries);
    }
    Ok(())
}

async fn create_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let kind = form.required("Type")?;
    if !["webhook", "trigger", "studio"].contains(&kind.as_str()) {
        return Err(AppError::invalid("Type must be webhook, trigger or studio").into());
    }
    let existing = state
        .store
        .list_webhooks(
            channel.sid,
            &confab_store::PageRequest::first(state.limits.webhooks_per_channel + 1),
        )
        .await?;
    if existing.items.len() >= state.limits.webhooks_per_channel {
        return Err(AppError::too_many_webhooks().into());
    }
    let now = now();
    let mut webhook = ChannelWebhook {
        sid: WebhookSid::generate(&mut RandomSids),
        service_sid: service.sid,
        channel_sid: channel.sid,
        kind,
        url: None,
        method: None,
        filters: vec![],
        triggers: vec![],
        flow_sid: None,
        retry_count: None,
        date_created: now,
        date_updated: now,
    };
    configure(&form, &mut webhook)?;
    state.store.put_webhook(&webhook).await?;
    state.app.policies().forget_channel_webhooks(channel.sid);
    Ok(created(json::webhook(&webhook, &state.urls)))
}

async fn list_webhooks(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let page = state
        .store
        .list_webhooks(channel.sid, paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|w| json::webhook(w, &state.urls))
        .collect();
    Ok(paging.respond(&req, &state, "webhooks", vec![], &page, items))
}

async fn load_webhook(
    state: &AppState,
    path: &(String, String, String),
) -> Result<ChannelWebhook, AppError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let sid: WebhookSid = path.2.parse().map_err(|_| webhook_not_found())?;
    state
        .store
        .get_webhook(channel.sid, sid)
        .await?
        .ok_or_else(webhook_not_found)
}

async fn fetch_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let webhook = load_webhook(&state, &path).await?;
    Ok(ok(json::webhook(&webhook, &state.urls)))
}

async fn update_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut webhook = load_webhook(&state, &path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    configure(&form, &mut webhook)?;
    webhook.date_updated = now();
    state.store.put_webhook(&webhook).await?;
    state
        .app
        .policies()
        .forget_channel_webhooks(webhook.channel_sid);
    Ok(ok(json::webhook(&webhook, &state.urls)))
}

async fn delete_webhook(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let webhook = load_webhook(&state, &path).await?;
    state
        .store
        .delete_webhook(webhook.channel_sid, webhook.sid)
        .await?;
    state
        .app
        .policies()
        .forget_channel_webhooks(webhook.channel_sid);
    Ok(no_content())
}
