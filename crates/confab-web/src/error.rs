//! The one place where every failure becomes a Twilio error: code, HTTP status and message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use confab_cluster::ChannelError;
use confab_domain::DomainError;
use confab_store::{Conflict, StoreError};

/// An error as the REST API returns it: `{code, message, more_info, status}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Twilio's error code.
    pub code: u32,
    /// The HTTP status.
    pub status: u16,
    /// A message for people.
    pub message: String,
}

impl ApiError {
    /// An error with this code, status and message.
    pub fn new(code: u32, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    /// 20001: a parameter is missing or malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(20001, 400, message)
    }

    /// 20003: authentication failed.
    pub fn unauthenticated() -> Self {
        Self::new(20003, 401, "Authenticate")
    }

    /// 20404: the resource does not exist.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            20404,
            404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// A required parameter is absent.
    pub fn missing(param: &str) -> Self {
        Self::invalid(format!(
            "Missing required parameter {param} in the post body"
        ))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Basic realm=\"Confab\""));
        }
        response.json(confab_protocol::rest::error(
            self.code,
            &self.message,
            self.status,
        ))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        let (code, status) = match &e {
            DomainError::InvalidParameter { .. } => (20001, 400),
            DomainError::InvalidAttributes { .. } => (50304, 400),
            DomainError::TooLong { field, .. } => match field.as_ref() {
                "FriendlyName" => (50003, 400),
                "UniqueName" => (50004, 400),
                "Identity" => (50207, 400),
                "Attributes" => (50303, 400),
                "LastUpdatedBy" => (50505, 400),
                "From" => (50310, 400),
                _ => (20001, 400),
            },
            DomainError::BodyTooLong { .. } => (50504, 400),
            DomainError::ChannelNotFound => (50300, 404),
            DomainError::ChannelExists => (50307, 409),
            DomainError::MemberNotFound => (50402, 404),
            DomainError::AlreadyMember => (50404, 409),
            DomainError::NotMember => (50400, 403),
            DomainError::MemberLimitReached { .. } => (50403, 403),
            DomainError::MessageNotFound => (50500, 404),
            DomainError::InviteNotFound => (50601, 404),
            DomainError::AlreadyInvited => (50212, 409),
            DomainError::NotAuthorized { .. } => (50107, 403),
        };
        Self::new(code, status, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::ChannelUniqueName) => Self::new(
                50307,
                409,
                "Channel with provided unique name already exists",
            ),
            StoreError::Conflict(Conflict::UserIdentity) => {
                Self::new(50201, 409, "User already exists")
            }
            StoreError::Conflict(Conflict::Sid) => Self::new(20001, 409, "Resource already exists"),
            StoreError::NotFound => Self::new(20404, 404, "The requested resource was not found"),
            StoreError::InvalidCursor => Self::invalid("Invalid PageToken"),
            StoreError::Closed => Self::new(20503, 503, "Service is shutting down"),
            StoreError::Fenced => Self::new(20503, 503, "Channel is moving to another node: retry"),
            StoreError::Backend(detail) | StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "store failure");
                Self::new(20500, 500, "Internal server error")
            }
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Domain(d) => d.into(),
            ChannelError::Store(s) => s.into(),
            ChannelError::ServiceNotFound => Self::new(20404, 404, "Service not found"),
            ChannelError::Unavailable(why) => {
                Self::new(20503, 503, format!("Channel unavailable: {why}"))
            }
            // The router retries a command elsewhere until its deadline; only then do these
            // reach a client, which may retry (with the same idempotency key for a message).
            ChannelError::NotOwner { .. } => {
                Self::new(20503, 503, "Channel unavailable: its owner is moving")
            }
            ChannelError::Unreachable(why) => {
                Self::new(20503, 503, format!("Channel owner unreachable: {why}"))
            }
        }
    }
}
