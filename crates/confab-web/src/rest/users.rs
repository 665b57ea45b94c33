//! `/v2/Services/{ServiceSid}/Users` and a user's channels (`/Users/{UserSid}/Channels`).

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::lookup::find_event;
use confab_app::AppError;
use confab_cluster::{now, ChannelOp, RandomSids};
use confab_domain::{
    limits::{check_identity, check_name},
    Attributes, Caller, ChannelCommand, ConsumptionUpdate, Member, MemberRef, UpdateMember, User,
    UserSid,
};
use confab_protocol::rest as json;
use confab_store::{MemberKey, Page, PageRequest, PageStart};
use confab_webhooks::HookEvent;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Services/{service}/Users")
            .post(create)
            .get(list),
    )
    .service(
        web::resource("/Services/{service}/Users/{user}")
            .get(fetch)
            .post(update)
            .delete(delete),
    )
    .service(web::resource("/Services/{service}/Users/{user}/Channels").get(list_channels))
    .service(
        web::resource("/Services/{service}/Users/{user}/Channels/{channel}")
            .get(fetch_channel)
            .post(update_channel)
            .delete(delete_channel),
    );
}

async fn render(state: &AppState, user: &User) -> Result<serde_json::Value, ApiError> {
    let joined = state
        .store
        .count_memberships(user.service_sid, &user.identity)
        .await?;
    // `is_online` only where the service tracks it (`ReachabilityEnabled`), as in Twilio.
    let policy = state.app.policies().service(user.service_sid).await?;
    let online = match policy.service.reachability_enabled {
        true => {
            Some(crate::realtime::online_anywhere(state, user.service_sid, &user.identity).await)
        }
        false => None,
    };
    Ok(json::user(user, joined, online, &state.urls))
}

async fn create(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let limits = state.runtime.limits();
    let identity = form
        .string("Identity")
        .ok_or_else(AppError::identity_missing)?;
    check_identity("Identity", &identity, limits)?;
    if UserSid::is_sid(&identity) {
        return Err(
            AppError::invalid_identity("Identity should not match user SID pattern").into(),
        );
    }
    let role_sid = match form.sid("RoleSid")? {
        Some(sid) => state.app.load_role(service.sid, sid).await?.sid,
        None => service.default_service_role_sid,
    };
    let friendly_name = form.string("FriendlyName");
    if let Some(name) = &friendly_name {
        check_name("FriendlyName", name, limits)?;
    }
    let attributes = match form.get("Attributes") {
        Some(text) => Attributes::parse("Attributes", text, limits.user_attributes_bytes)?,
        None => Attributes::default(),
    };
    let now = now();
    let user = User {
        sid: UserSid::generate(&mut RandomSids),
        service_sid: service.sid,
        identity,
        friendly_name,
        attributes,
        role_sid,
        date_created: now,
        date_updated: now,
    };
    state.store.create_user(&user).await?;
    // A decision may have cached that the identity had no user (and so no role).
    state
        .app
        .policies()
        .forget_user(service.sid, &user.identity);
    state
        .app
        .user_webhooks(
            &Caller::Account,
            hooks.0,
            &service,
            HookEvent::UserAdded,
            &user,
        )
        .await;
    Ok(created(render(&state, &user).await?))
}

async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let page = state
        .store
        .list_users(service.sid, paging.request())
        .await?;
    let mut items = Vec::with_capacity(page.items.len());
    for user in &page.items {
        items.push(render(&state, user).await?);
    }
    Ok(paging.respond(&req, &state, "users", vec![], &page, items))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let user = state.app.load_user(service.sid, &path.1).await?;
    Ok(ok(render(&state, &user).await?))
}

async fn update(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let mut user = state.app.load_user(service.sid, &path.1).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let limits = state.runtime.limits();
    if let Some(sid) = form.sid("RoleSid")? {
        user.role_sid = state.app.load_role(service.sid, sid).await?.sid;
    }
    if let Some(name) = form.string("FriendlyName") {
        check_name("FriendlyName", &name, limits)?;
        user.friendly_name = Some(name);
    }
    if let Some(text) = form.get("Attributes") {
        user.attributes = Attributes::parse("Attributes", text, limits.user_attributes_bytes)?;
    }
    user.date_updated = now();
    state.store.update_user(&user).await?;
    // A new role applies to the user's open sessions at once on this node.
    state
        .app
        .policies()
        .forget_user(user.service_sid, &user.identity);
    state
        .app
        .user_webhooks(
            &Caller::Account,
            hooks.0,
            &service,
            HookEvent::UserUpdated,
            &user,
        )
        .await;
    Ok(ok(render(&state, &user).await?))
}

async fn delete(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let user = state.app.load_user(service.sid, &path.1).await?;
    // Deleting a user removes it from every channel, each through the channel's actor.
    loop {
        let page = state
            .store
            .list_memberships(service.sid, &user.identity, &PageRequest::first(100))
            .await?;
        if page.items.is_empty() {
            break;
        }
        for member in page.items {
            let command = ChannelCommand::RemoveMember {
                member: MemberRef::Sid(member.sid),
            };
            super::execute(&state, hooks, member.channel_sid, ChannelOp::Apply(command)).await?;
        }
    }
    state.store.delete_user(service.sid, user.sid).await?;
    state
        .app
        .policies()
        .forget_user(user.service_sid, &user.identity);
    Ok(no_content())
}

// === a user's channels ===

async fn render_user_channel(
    state: &AppState,
    user: &User,
    member: &Member,
) -> Result<serde_json::Value, ApiError> {
    let unread = match member.last_consumed_message_index {
        Some(index) => Some(
            state
                .store
                .count_messages_after(member.channel_sid, Some(index))
                .await?,
        ),
        None => None,
    };
    Ok(json::user_channel(user, member, unread, &state.urls))
}

/// The user's channels: its memberships (`joined`), then the channels it is invited to
/// (`invited`), as Twilio lists them. A page token of the second part starts with `i`.
async fn list_channels(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let user = state.app.load_user(service.sid, &path.1).await?;
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let request = paging.request();
    // Where the invites start, when this page reaches them: a token of the second part, a
    // page number past the memberships, or the memberships' last page.
    let invites_start = match &request.start {
        PageStart::After(cursor) if cursor.starts_with('i') => match &cursor[1..] {
            "" => Some(PageStart::First),
            rest => Some(PageStart::After(rest.to_owned())),
        },
        PageStart::Offset(n) => {
            let joined = state
                .store
                .count_memberships(service.sid, &user.identity)
                .await?;
            n.checked_sub(joined).map(PageStart::Offset)
        }
        _ => None,
    };
    let mut items = Vec::with_capacity(request.size);
    let mut next = None;
    let invites_start = match invites_start {
        Some(start) => Some(start),
        None => {
            let page = state
                .store
                .list_memberships(service.sid, &user.identity, request)
                .await?;
            for member in &page.items {
                items.push(render_user_channel(&state, &user, member).await?);
            }
            next = page.next.clone();
            next.is_none().then_some(PageStart::First)
        }
    };
    if let Some(start) = invites_start {
        let room = request.size - items.len();
        let invites = state
            .store
            .list_user_invites(
                service.sid,
                &user.identity,
                &PageRequest {
                    // One to look ahead when the page is full already.
                    size: room.max(1),
                    start,
                    descending: false,
                },
            )
            .await?;
        if room == 0 {
            next = (!invites.items.is_empty()).then(|| "i".to_owned());
        } else {
            for invite in &invites.items {
                items.push(json::user_channel_invited(&user, invite, &state.urls));
            }
            next = invites.next.map(|c| format!("i{c}"));
        }
    }
    let page = Page {
        items: Vec::<()>::new(),
        next,
    };
    Ok(paging.respond(&req, &state, "channels", vec![], &page, items))
}

/// The user and its membership of the channel in the path (20404 when it is not a member).
async fn membership(
    state: &AppState,
    path: &(String, String, String),
) -> Result<(User, Member), ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let user = state.app.load_user(service.sid, &path.1).await?;
    let channel = state.app.load_channel(service.sid, &path.2).await?;
    let member = state
        .store
        .get_member(channel.sid, &MemberKey::Identity(user.identity.clone()))
        .await?
        .ok_or_else(AppError::member_identity_not_found)?;
    Ok((user, member))
}

async fn fetch_channel(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    match membership(&state, &path).await {
        Ok((user, member)) => Ok(ok(render_user_channel(&state, &user, &member).await?)),
        Err(not_member) => {
            // Invited: the channel is the user's too, with status `invited`.
            let service = state.app.load_service(&path.0).await?;
            let user = state.app.load_user(service.sid, &path.1).await?;
            let channel = state.app.load_channel(service.sid, &path.2).await?;
            let invite = state
                .store
                .list_invites(
                    channel.sid,
                    std::slice::from_ref(&user.identity),
                    &PageRequest::first(1),
                )
                .await?
                .items
                .into_iter()
                .next();
            match invite {
                Some(invite) => Ok(ok(json::user_channel_invited(&user, &invite, &state.urls))),
                None => Err(not_member),
            }
        }
    }
}

async fn update_channel(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (user, member) = membership(&state, &path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let command = ChannelCommand::UpdateMember(UpdateMember {
        member: MemberRef::Sid(member.sid),
        role_sid: None,
        attributes: None,
        consumption: form
            .u64("LastConsumedMessageIndex")?
            .map(|i| ConsumptionUpdate::Set(Some(i))),
        last_consumption_timestamp: form.timestamp("LastConsumptionTimestamp")?,
        notification_level: form.string("NotificationLevel"),
        date_created: None,
        date_updated: None,
    });
    let events =
        super::execute(&state, hooks, member.channel_sid, ChannelOp::Apply(command)).await?;
    let member = find_event(&events, |k| match k {
        confab_domain::ChannelEventKind::MemberUpdated { member, .. } => Some(member.clone()),
        _ => None,
    })?;
    Ok(ok(render_user_channel(&state, &user, &member).await?))
}

async fn delete_channel(
    state: web::Data<AppState>,
    hooks: super::WebhooksRequested,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, member) = membership(&state, &path).await?;
    let command = ChannelCommand::RemoveMember {
        member: MemberRef::Sid(member.sid),
    };
    super::execute(&state, hooks, member.channel_sid, ChannelOp::Apply(command)).await?;
    Ok(no_content())
}
