//! A channel's `/Members` and `/Invites`.

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::lookup::find_event;
use confab_app::AppError;
use confab_cluster::ChannelOp;
use confab_domain::{
    AddMember, Caller, Channel, ChannelCommand, ChannelEventKind, ConsumptionUpdate, InviteMember,
    InviteSid, Member, MemberRef, MemberSid, RoleSid, Service, UpdateMember,
};
use confab_protocol::rest as json;
use confab_store::MemberKey;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Services/{service}/Channels/{channel}/Members")
            .post(create)
            .get(list),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Members/{member}")
            .get(fetch)
            .post(update)
            .delete(delete),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Invites")
            .post(create_invite)
            .get(list_invites),
    )
    .service(
        web::resource("/Services/{service}/Channels/{channel}/Invites/{invite}")
            .get(fetch_invite)
            .delete(delete_invite),
    );
}

async fn service_and_channel(
    state: &AppState,
    service: &str,
    channel: &str,
) -> Result<(Service, Channel), ApiError> {
    let service = state.app.load_service(service).await?;
    let channel = state.app.load_channel(service.sid, channel).await?;
    Ok((service, channel))
}

fn member_ref(key: &str) -> MemberRef {
    match key.parse::<MemberSid>() {
        Ok(sid) => MemberRef::Sid(sid),
        Err(_) => MemberRef::Identity(key.to_owned()),
    }
}

/// The `Identity` (required, 50204) and optional `RoleSid` (which must exist, 50100) of a member
/// or invite to be created; the user is created if the identity is new, as Twilio does.
async fn newcomer(
    state: &AppState,
    hooks: super::WebhooksRequested,
    service: &Service,
    form: &Form,
) -> Result<(String, Option<RoleSid>), ApiError> {
    let identity = form
        .string("Identity")
        .ok_or_else(AppError::identity_missing)?;
    let role_sid = match form.sid("RoleSid")? {
        Some(sid) => Some(state.app.load_role(service.sid, sid).await?.sid),
        None => None,
    };
    state
        .app
        .ensure_user_for(&Caller::Account, hooks.0, service, &identity)
        .await?;
    Ok((identity, role_sid))
}

fn member_not_found() -> AppError {
    AppError::member_not_found()
}

async fn load_member(state: &AppState, channel: &Channel, key: &str) -> Result<Member, AppError> {
    let key = match member_ref(key) {
        MemberRef::Sid(sid) => MemberKey::Sid(sid),
        MemberRef::Identity(identity) => MemberKey::Identity(identity),
    };
    state
        .store
        .get_member(channel.sid, &key)
        .await?
        .ok_or_else(member_not_found)
}

fn member_from(events: &[confab_domain::ChannelEvent]) -> Result<Member, AppError> {
    find_event(events, |k| match k {
        ChannelEventKind::MemberJoined { member }
        | ChannelEventKind::MemberUpdated { member, .. } => Some(member.clone()),
        _ => None,
    })
}

async fn create(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (service, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let (identity, role_sid) = newcomer(&state, hooks, &service, &form).await?;
    let command = ChannelCommand::AddMember(AddMember {
        identity,
        role_sid,
        default_role: service.default_channel_role_sid,
        attributes: form.string("Attributes"),
        last_consumed_message_index: form.u64("LastConsumedMessageIndex")?,
        last_consumption_timestamp: form.timestamp("LastConsumptionTimestamp")?,
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
    });
    let events = super::execute(&state, hooks, channel.sid, ChannelOp::Apply(command)).await?;
    Ok(created(json::member(&member_from(&events)?, &state.urls)))
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let q = query(&req);
    let paging = Paging::from_query(&q, &state, false)?;
    let page = state
        .store
        .list_members(channel.sid, &q.all("Identity"), paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|m| json::member(m, &state.urls))
        .collect();
    Ok(paging.respond(
        &req,
        &state,
        "members",
        q.pairs_of(&["Identity"]),
        &page,
        items,
    ))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let member = load_member(&state, &channel, &path.2).await?;
    Ok(ok(json::member(&member, &state.urls)))
}

async fn update(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (service, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let role_sid = match form.sid("RoleSid")? {
        Some(sid) => Some(state.app.load_role(service.sid, sid).await?.sid),
        None => None,
    };
    let consumption = match form.get("LastConsumedMessageIndex") {
        Some("") | Some("null") => Some(ConsumptionUpdate::Set(None)),
        Some(_) => form
            .u64("LastConsumedMessageIndex")?
            .map(|i| ConsumptionUpdate::Set(Some(i))),
        None => None,
    };
    let command = ChannelCommand::UpdateMember(UpdateMember {
        member: member_ref(&path.2),
        role_sid,
        attributes: form.string("Attributes"),
        consumption,
        last_consumption_timestamp: form.timestamp("LastConsumptionTimestamp")?,
        notification_level: None,
        date_created: form.timestamp("DateCreated")?,
        date_updated: form.timestamp("DateUpdated")?,
    });
    let events = super::execute(&state, hooks, channel.sid, ChannelOp::Apply(command)).await?;
    Ok(ok(json::member(&member_from(&events)?, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let command = ChannelCommand::RemoveMember {
        member: member_ref(&path.2),
    };
    super::execute(&state, hooks, channel.sid, ChannelOp::Apply(command)).await?;
    Ok(no_content())
}

// === invites ===

fn invite_not_found() -> AppError {
    AppError::invite_not_found()
}

async fn create_invite(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (service, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let (identity, role_sid) = newcomer(&state, hooks, &service, &form).await?;
    let command = ChannelCommand::Invite(InviteMember {
        identity,
        role_sid: role_sid.unwrap_or(service.default_channel_role_sid),
        created_by: None,
    });
    let events = super::execute(&state, hooks, channel.sid, ChannelOp::Apply(command)).await?;
    let invite = find_event(&events, |k| match k {
        ChannelEventKind::InviteCreated { invite } => Some(invite.clone()),
        _ => None,
    })?;
    Ok(created(json::invite(&invite, &state.urls)))
}

async fn list_invites(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let q = query(&req);
    let paging = Paging::from_query(&q, &state, false)?;
    let page = state
        .store
        .list_invites(channel.sid, &q.all("Identity"), paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|i| json::invite(i, &state.urls))
        .collect();
    Ok(paging.respond(
        &req,
        &state,
        "invites",
        q.pairs_of(&["Identity"]),
        &page,
        items,
    ))
}

async fn fetch_invite(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let sid: InviteSid = path.2.parse().map_err(|_| invite_not_found())?;
    let invite = state
        .store
        .get_invite(channel.sid, sid)
        .await?
        .ok_or_else(invite_not_found)?;
    Ok(ok(json::invite(&invite, &state.urls)))
}

async fn delete_invite(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, channel) = service_and_channel(&state, &path.0, &path.1).await?;
    let invite: InviteSid = path.2.parse().map_err(|_| invite_not_found())?;
    super::execute(
        &state,
        hooks,
        channel.sid,
        ChannelOp::Apply(ChannelCommand::RemoveInvite { invite }),
    )
    .await?;
    Ok(no_content())
}
