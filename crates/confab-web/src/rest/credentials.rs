//! `/v2/Credentials`: push credentials of the account (stored; push delivery is not built).

use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::AppError;
use confab_cluster::{now, RandomSids};
use confab_domain::{limits::check_name, Credential, CredentialSid};
use confab_protocol::rest as json;

use super::{created, no_content, ok, query, Paging};
use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/Credentials").post(create).get(list))
        .service(
            web::resource("/Credentials/{sid}")
                .get(fetch)
                .post(update)
                .delete(delete),
        );
}

fn not_found(sid: &str) -> AppError {
    AppError::not_found(&format!("/Credentials/{sid}"))
}

/// Applies the optional parameters shared by create and update.
fn apply(form: &Form, credential: &mut Credential, state: &AppState) -> Result<(), ApiError> {
    if let Some(name) = form.string("FriendlyName") {
        check_name("FriendlyName", &name, state.runtime.limits())?;
        credential.friendly_name = Some(name);
    }
    if let Some(sandbox) = form.bool("Sandbox")? {
        credential.sandbox = Some(sandbox.to_string());
    }
    let secrets = &mut credential.secrets;
    for (key, slot) in [
        ("Certificate", &mut secrets.certificate),
        ("PrivateKey", &mut secrets.private_key),
        ("ApiKey", &mut secrets.api_key),
        ("Secret", &mut secrets.secret),
    ] {
        if let Some(value) = form.string(key) {
            *slot = Some(value);
        }
    }
    Ok(())
}

async fn create(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    let kind = form.required("Type")?;
    if !["apn", "gcm", "fcm"].contains(&kind.as_str()) {
        return Err(AppError::invalid("Type must be apn, gcm or fcm").into());
    }
    let now = now();
    let mut credential = Credential {
        sid: CredentialSid::generate(&mut RandomSids),
        friendly_name: None,
        kind,
        sandbox: None,
        secrets: Default::default(),
        date_created: now,
        date_updated: now,
    };
    apply(&form, &mut credential, &state)?;
    state.store.put_credential(&credential).await?;
    Ok(created(json::credential(&credential, &state.urls)))
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let paging = Paging::from_query(&query(&req), &state, false)?;
    let page = state.store.list_credentials(paging.request()).await?;
    let items = page
        .items
        .iter()
        .map(|c| json::credential(c, &state.urls))
        .collect();
    Ok(paging.respond(&req, &state, "credentials", vec![], &page, items))
}

async fn load(state: &AppState, sid: &str) -> Result<Credential, AppError> {
    let parsed: CredentialSid = sid.parse().map_err(|_| not_found(sid))?;
    state
        .store
        .get_credential(parsed)
        .await?
        .ok_or_else(|| not_found(sid))
}

async fn fetch(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let credential = load(&state, &path).await?;
    Ok(ok(json::credential(&credential, &state.urls)))
}

async fn update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut credential = load(&state, &path).await?;
    let form = Form::read(payload, state.limits.max_body_bytes).await?;
    apply(&form, &mut credential, &state)?;
    credential.date_updated = now();
    state.store.put_credential(&credential).await?;
    Ok(ok(json::credential(&credential, &state.urls)))
}

async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let credential = load(&state, &path).await?;
    state.store.delete_credential(credential.sid).await?;
    Ok(no_content())
}
