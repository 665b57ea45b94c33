//! A channel's `/Messages`.

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::lookup::find_event;
use confab_app::AppError;
use confab_cluster::{ChannelOp, MessageChange};
use confab_domain::{
    ChannelCommand, ChannelEventKind, DomainError, MessageMedia, MessageSid, PostMessage,
};
use confab_protocol::rest as json;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Services/{service}/Channels/{channel}/Messages")
            .post(create)
            .get(list),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Messages/{message}")
            .get(fetch)
            .post(update)
            .delete(delete),
    );
}

fn message_not_found() -> AppError {
    AppError::message_not_found()
}

fn message_sid(text: &str) -> Result<MessageSid, AppError> {
    text.parse().map_err(|_| message_not_found())
}

async fn create(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.service_sid(&path.0).await?;
    let channel = state.app.channel_sid(service, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let command = ChannelCommand::PostMessage(PostMessage {
        // Without `From` the account is the author (shown as `system`, owned by no user).
        author: form.string("From").filter(|f| !f.is_empty()),
        // REST acts as the account: any author may post, member or not (as in Twilio).
        require_member: false,
        body: form.string("Body").unwrap_or_default(),
        attributes: form.string("Attributes"),
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
        last_updated_by: form.string("LastUpdatedBy"),
        client_id: None,
        media: form
            .string("MediaSid")
            .map(|sid| {
                sid.parse()
                    .map(|sid| Box::new(MessageMedia::requested(sid)))
                    .map_err(|_| AppError::from(DomainError::MediaNotFound))
            })
            .transpose()?,
    });
    let events = super::execute(&state, hooks, channel, ChannelOp::Apply(command)).await?;
    let message = find_event(&events, |k| match k {
        ChannelEventKind::MessageAdded { message } => Some(message.clone()),
        _ => None,
    })?;
    Ok(created(json::message(&message, &state.urls)))
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let q = query(&req);
    let descending = match q.get("Order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(AppError::invalid("Order must be asc or desc").into()),
    };
    let paging = Paging::from_query(&q, &state, descending)?;
    let page = state
        .store
        .list_messages(channel.sid, paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|m| json::message(m, &state.urls))
        .collect();
    Ok(paging.respond(
        &req,
        &state,
        "messages",
        q.pairs_of(&["Order"]),
        &page,
        items,
    ))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let message = state
        .store
        .get_message(channel.sid, message_sid(&path.2)?)
        .await?
        .ok_or_else(message_not_found)?;
    Ok(ok(json::message(&message, &state.urls)))
}

async fn update(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let message = message_sid(&path.2)?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let change = MessageChange {
        body: form.string("Body"),
        attributes: form.string("Attributes"),
        author: form.string("From"),
        last_updated_by: form.string("LastUpdatedBy"),
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
    };
    let events = super::execute(
        &state,
        hooks,
        channel.sid,
        ChannelOp::UpdateMessage { message, change },
    )
    .await?;
    let message = find_event(&events, |k| match k {
        ChannelEventKind::MessageUpdated { message, .. } => Some(message.clone()),
        _ => None,
    })?;
    Ok(ok(json::message(&message, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let channel = state.app.load_channel(service.sid, &path.1).await?;
    let message = message_sid(&path.2)?;
    super::execute(
        &state,
        hooks,
        channel.sid,
        ChannelOp::RemoveMessage { message },
    )
    .await?;
    Ok(no_content())
}
