//! What every HTTP response carries whatever produced it: security headers (a content security
//! policy the chat page and the SDK satisfy, no sniffing, no framing, no referrer), and `HEAD`
//! answered wherever `GET` is.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// The chat page's policy: its own scripts, styles and connections (the realtime WebSocket is
/// on the same host), images from itself and from `data:`/`blob:` URLs, nothing inline, and no
/// framing by other sites.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Everything else (JSON, scripts, styles as files): nothing runs in its context.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers a response lacks, and serves `HEAD` as `GET` (actix-http sends
/// the head of the response without its body, as `HEAD` requires).
pub async fn secure(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let mut res = next.call(req).await?;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = res.headers_mut();
    let policy = if html { PAGE_POLICY } else { API_POLICY };
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(res)
}
