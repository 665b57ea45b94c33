//! The development token endpoint: `POST /dev/token` signs a token for any identity in a
//! development service, so that the chat page works within a minute of `cargo run`.
//!
//! Anyone who can reach it can act as anyone, so it is only on when the node allows it: by
//! default only when the node listens on a loopback address (`dev_tokens = "auto"`), and then
//! only for requests straight from this host (loopback peer, loopback `Host`, no forwarding
//! header), so that a reverse proxy on the same host or DNS rebinding cannot reach it. `GET
//! /dev/config` tells the page whether it is on; when it is off the page asks for a pasted token.

use actix_web::{web, HttpRequest, HttpResponse};
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

async fn config(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let on = state.dev_tokens && refusal(&state, &req).is_none();
    HttpResponse::Ok().json(json!({"devTokens": on}))
}

/// Headers a proxy adds: a request carrying one did not come straight from this host.
const FORWARDING_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

/// Whether a `Host` header names this machine: `localhost` or a loopback address, with or
/// without a port.
fn loopback_host(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        // `[::1]:8080`
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why this request may not have a development token, if it may not.
fn refusal(state: &AppState, req: &HttpRequest) -> Option<&'static str> {
    if !state.dev_tokens {
        return Some("development tokens are off on this node");
    }
    if !state.dev_tokens_loopback_only {
        return None;
    }
    if !req.peer_addr().is_some_and(|a| a.ip().is_loopback()) {
        return Some("the client is not on this host");
    }
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host.is_some_and(loopback_host) {
        return Some("the Host header does not name this host");
    }
    if FORWARDING_HEADERS
        .iter()
        .any(|h| req.headers().contains_key(*h))
    {
        return Some("the request came through a proxy");
    }
    // A page of another site (a browser that reaches this host) must not get tokens.
    let origin = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|h| h.to_str().ok());
    if let Some(origin) = origin {
        let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if !loopback_host(host) {
            return Some("the request comes from a page of another site");
        }
    }
    if req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Some("the request comes from a page of another site");
    }
    None
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
    req: HttpRequest,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.dev_tokens {
        return Err(AppError::forbidden("Development tokens are disabled on this node").into());
    }
    if let Some(why) = refusal(&state, &req) {
        tracing::warn!(
            peer = ?req.peer_addr(),
            reason = why,
            "development token refused"
        );
        return Err(AppError::forbidden(format!(
            "Development tokens are served only to clients on this host, directly: {why}"
        ))
        .into());
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

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_hosts_are_this_host() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]:9",
            "::1",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "chat.example.com",
            "203.0.113.7",
            "localhost.example.com",
            "10.0.0.1:80",
            "",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
