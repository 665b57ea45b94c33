//! The development token endpoint: `POST /dev/token` signs a token for any identity in a
//! development service, so that the chat page works within a minute of `cargo run`.
//!
//! Anyone who can reach it can act as anyone, so it is only on when the node allows it: by
//! default only when the node listens on a loopback address (`dev_tokens = "auto"`). `GET
//! /dev/config` tells the page whether it is on; when it is off the page asks for a pasted token.

use actix_web::{web, HttpResponse};
use confab_app::AppError;
use confab_domain::ServiceSid;
use confab_store::{PageRequest, PageStart};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

/// The friendly name of the service the endpoint hands out tokens for.
pub const DEV_SERVICE_NAME: &str = "Confab development";

/// Registers `/dev/config` and `/dev/token`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dev/config", web::get().to(config))
        .route("/dev/token", web::post().to(token));
}

async fn config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"devTokens": state.dev_tokens}))
}

#[derive(Deserialize)]
struct TokenRequest {
    identity: String,
}

/// The development service, created on first use.
async fn dev_service(state: &AppState) -> Result<ServiceSid, ApiError> {
    let mut page = PageRequest::first(100);
    loop {
        let got = state.store.list_services(&page).await?;
        if let Some(s) = got
            .items
            .iter()
            .find(|s| s.friendly_name == DEV_SERVICE_NAME)
        {
            return Ok(s.sid);
        }
        match got.next {
            Some(cursor) => page.start = PageStart::After(cursor),
            None => break,
        }
    }
    // The chat page's users see each other online: reachability on.
    let service =
        crate::rest::services::create_service(state, DEV_SERVICE_NAME.to_owned(), true).await?;
    Ok(service.sid)
}

async fn token(
    state: web::Data<AppState>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.dev_tokens {
        return Err(AppError::forbidden("Development tokens are disabled on this node").into());
    }
    let identity = body.identity.trim().to_owned();
    confab_domain::limits::check_identity("identity", &identity, state.runtime.limits())?;
    // One development service per node; concurrent first sign-ins are serialized here.
    let _guard = state.dev_lock.lock().await;
    let service = dev_service(&state).await?;
    let token = crate::token::mint(&state.credentials, &identity, service, 24 * 3600)
        .map_err(|e| ApiError(AppError::internal(e)))?;
    Ok(HttpResponse::Ok()
        .json(json!({"token": token, "identity": identity, "serviceSid": service})))
}
