//! How a failure goes out over HTTP: the application's Twilio error ([`AppError`], with its code
//! table and named constructors in `confab-app`) rendered as Twilio's error JSON with its status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use confab_app::AppError;
use confab_cluster::ChannelError;
use confab_domain::DomainError;
use confab_store::StoreError;

/// An error as the REST API returns it: `{code, message, more_info, status}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(pub AppError);

impl std::ops::Deref for ApiError {
    type Target = AppError;
    fn deref(&self) -> &AppError {
        &self.0
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.0.status == 401 {
            response.insert_header(("WWW-Authenticate", "Basic realm=\"Confab\""));
        }
        response.json(confab_protocol::rest::error(
            self.0.code,
            &self.0.message,
            self.0.status,
        ))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self(e.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self(e.into())
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        Self(e.into())
    }
}
