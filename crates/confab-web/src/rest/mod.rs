//! The Twilio Chat v2 REST API: routes, paging and lookups shared by the resource modules.

mod channels;
mod credentials;
mod members;
mod messages;
mod roles;
pub(crate) mod services;
mod users;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use confab_app::AppError;
use confab_cluster::ChannelOp;
use confab_domain::{ChannelEvent, ChannelSid};
use confab_protocol::rest::{self as json, PageMeta};
use confab_store::{Page, PageRequest, PageStart};
use serde_json::Value;

use crate::error::ApiError;
use crate::form::Form;
use crate::AppState;

/// Registers the REST API under `/v2` (authenticated) on an app that has `AppState` as data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        // The router tries each resource's pattern in turn, one regex search each (7 % of a
        // node posting REST messages when messages came last): the busiest resources go first.
        // No two patterns match one path (their literal segments differ), so the order changes
        // nothing else.
        web::scope("/v2")
            .wrap(from_fn(authenticate))
            .configure(messages::routes)
            .configure(channels::routes)
            .configure(members::routes)
            .configure(users::routes)
            .configure(services::routes)
            .configure(roles::routes)
            .configure(credentials::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(AppError::not_found(req.path()).into())
}

/// Refuses every request without valid HTTP Basic credentials (Twilio error 20003).
async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let allowed = req
        .app_data::<web::Data<AppState>>()
        .map(|state| {
            let header = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok());
            state.credentials.check_header(header)
        })
        .unwrap_or(false);
    if !allowed {
        let (req, _) = req.into_parts();
        let response =
            actix_web::ResponseError::error_response(&ApiError(AppError::unauthenticated()));
        return Ok(ServiceResponse::new(req, response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The query string of a request as a `Form`.
pub(crate) fn query(req: &HttpRequest) -> Form {
    Form::parse(req.query_string().as_bytes())
}

/// A list request's paging parameters.
pub(crate) struct Paging {
    request: PageRequest,
    page: u64,
    token: Option<String>,
}

impl Paging {
    /// Reads `PageSize`, `Page` and `PageToken`.
    pub(crate) fn from_query(
        q: &Form,
        state: &AppState,
        descending: bool,
    ) -> Result<Self, ApiError> {
        let size = q
            .u64("PageSize")?
            .unwrap_or(state.limits.default_page_size as u64);
        if size == 0 || size > state.limits.max_page_size as u64 {
            return Err(AppError::invalid(format!(
                "PageSize must be between 1 and {}",
                state.limits.max_page_size
            ))
            .into());
        }
        let page = q.u64("Page")?.unwrap_or(0);
        let token = q.string("PageToken");
        let start = match &token {
            Some(t) => PageStart::After(
                t.strip_prefix("PT")
                    .ok_or_else(|| AppError::invalid("Invalid PageToken"))?
                    .to_owned(),
            ),
            None if page > 0 => PageStart::Offset(page.saturating_mul(size)),
            None => PageStart::First,
        };
        Ok(Self {
            request: PageRequest {
                size: size as usize,
                start,
                descending,
            },
            page,
            token,
        })
    }

    pub(crate) fn request(&self) -> &PageRequest {
        &self.request
    }

    /// The list response for a page whose items were rendered into `items`.
    pub(crate) fn respond<T>(
        &self,
        req: &HttpRequest,
        state: &AppState,
        key: &'static str,
        filters: Vec<(String, String)>,
        page: &Page<T>,
        items: Vec<Value>,
    ) -> HttpResponse {
        let meta = PageMeta {
            list_url: format!("{}{}", state.urls.base, req.path()),
            filters,
            page: self.page,
            page_size: self.request.size,
            page_token: self.token.clone(),
            next_token: page.next.as_ref().map(|c| format!("PT{c}")),
            key,
        };
        HttpResponse::Ok().json(json::page(items, &meta))
    }
}

/// Runs a channel operation as the account (REST calls are not role-checked, as in Twilio),
/// firing post-event webhooks when the request asked for them.
pub(crate) async fn execute(
    state: &AppState,
    hooks: WebhooksRequested,
    channel: ChannelSid,
    op: ChannelOp,
) -> Result<Vec<ChannelEvent>, ApiError> {
    Ok(state.app.execute_as_account(channel, op, hooks.0).await?)
}

/// Whether a REST request asks for post-event webhooks: `X-Twilio-Webhook-Enabled: true` (any
/// case). Without it a REST action fires none, as in Twilio (no feedback loops from a backend
/// that reacts to webhooks through the REST API).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebhooksRequested(pub(crate) bool);

impl actix_web::FromRequest for WebhooksRequested {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let on = req
            .headers()
            .get("X-Twilio-Webhook-Enabled")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        std::future::ready(Ok(Self(on)))
    }
}

pub(crate) fn created(body: Value) -> HttpResponse {
    HttpResponse::Created().json(body)
}

pub(crate) fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

pub(crate) fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
