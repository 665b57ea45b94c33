//! `/v2/Services/{ServiceSid}/Roles`: named permission sets.

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::AppError;
use confab_cluster::{now, RandomSids};
use confab_domain::{limits::check_name, Permission, Role, RoleSid, RoleType};
use confab_protocol::rest as json;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Services/{service}/Roles")
            .post(create)
            .get(list),
    )
    .service(
        web::resource("/Services/{service}/Roles/{sid}")
            .get(fetch)
            .post(update)
            .delete(delete),
    );
}

/// The `Permission` values of a request: at least one, each one Twilio knows.
fn permissions(form: &Form) -> Result<Vec<Permission>, AppError> {
    let names = form.all("Permission");
    if names.is_empty() {
        return Err(AppError::missing("Permission"));
    }
    let mut permissions = Vec::with_capacity(names.len());
    for name in names {
        let p: Permission = name
            .parse()
            .map_err(|_| AppError::unknown_permission(&name))?;
        if !permissions.contains(&p) {
            permissions.push(p);
        }
    }
    Ok(permissions)
}

fn role_sid(sid: &str) -> Result<RoleSid, AppError> {
    sid.parse().map_err(|_| AppError::role_not_found())
}

async fn create(
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let friendly_name = form.required("FriendlyName")?;
    check_name("FriendlyName", &friendly_name, state.runtime.limits())?;
    let kind = match form.required("Type")?.as_str() {
        "channel" => RoleType::Channel,
        "deployment" => RoleType::Deployment,
        _ => {
            return Err(AppError::role_type_mismatch(
                "Invalid role type: must be channel or deployment",
            )
            .into())
        }
    };
    let permissions = permissions(&form)?;
    let now = now();
    let role = Role {
        sid: RoleSid::generate(&mut RandomSids),
        service_sid: service.sid,
        friendly_name,
        kind,
        permissions,
        date_created: now,
        date_updated: now,
    };
    state.store.create_role(&role).await?;
    state.app.policies().forget_service(service.sid);
    Ok(created(json::role(&role, &state.urls)))
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
        .list_roles(service.sid, paging.request())
        .await?;
    let items = page
        .items
        .iter()
        .map(|r| json::role(r, &state.urls))
        .collect();
    Ok(paging.respond(&req, &state, "roles", vec![], &page, items))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let role = state.app.load_role(service.sid, role_sid(&path.1)?).await?;
    Ok(ok(json::role(&role, &state.urls)))
}

async fn update(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let mut role = state.app.load_role(service.sid, role_sid(&path.1)?).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    role.permissions = permissions(&form)?;
    role.date_updated = now();
    state.store.update_role(&role).await?;
    // Open sessions act on the new permissions at once on this node, within the policy cache's
    // lifetime on the others.
    state.app.policies().forget_service(role.service_sid);
    Ok(ok(json::role(&role, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let service = state.app.load_service(&path.0).await?;
    let sid = role_sid(&path.1)?;
    if [
        service.default_service_role_sid,
        service.default_channel_role_sid,
        service.default_channel_creator_role_sid,
    ]
    .contains(&sid)
    {
        return Err(AppError::invalid("A default role of the service cannot be deleted").into());
    }
    if !state.store.delete_role(service.sid, sid).await? {
        return Err(AppError::role_not_found().into());
    }
    state.app.policies().forget_service(service.sid);
    Ok(no_content())
}
