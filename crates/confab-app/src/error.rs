//! The one error type of the application layer: a Twilio error (code, HTTP status, message),
//! with a named constructor for every code the server emits and the one table that maps the
//! domain's, the store's and the runtime's failures to codes. Every transport renders it: REST as
//! Twilio's error JSON, realtime as the `error` of a reply.

use confab_cluster::ChannelError;
use confab_domain::{DomainError, Permission};
use confab_store::{Conflict, StoreError};

/// A refusal or failure as a client sees it. A refused operation changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    /// Twilio's error code.
    pub code: u32,
    /// The HTTP status the code goes with.
    pub status: u16,
    /// A message for people.
    pub message: String,
}

impl AppError {
    fn new(code: u32, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    // === 20xxx: requests, authentication, the server ===

    /// 20001: a parameter is missing or malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(20001, 400, message)
    }

    /// 20001: a required parameter is absent.
    pub fn missing(param: &str) -> Self {
        Self::invalid(format!(
            "Missing required parameter {param} in the post body"
        ))
    }

    /// 20001 with 409: a resource with this SID exists.
    pub fn already_exists() -> Self {
        Self::new(20001, 409, "Resource already exists")
    }

    /// 20001 with 413: the request body is over the limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            20001,
            413,
            format!("Request body is larger than {limit} bytes"),
        )
    }

    /// 20003: HTTP authentication failed.
    pub fn unauthenticated() -> Self {
        Self::new(20003, 401, "Authenticate")
    }

    /// 20104: the access token expired.
    pub fn token_expired() -> Self {
        Self::new(
            20104,
            401,
            "Access Token expired or expiration date invalid",
        )
    }

    /// 20157: the access token is valid for longer than the node accepts.
    pub fn token_lifetime_too_long(max_secs: u64) -> Self {
        Self::new(
            20157,
            401,
            format!("Access Token expiration time exceeds the maximum of {max_secs} seconds"),
        )
    }

    /// 20403: the caller may not use this endpoint.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(20403, 403, message)
    }

    /// 20404: the resource does not exist.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            20404,
            404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// 20404: a resource that is gone (no path to name).
    pub fn resource_not_found() -> Self {
        Self::new(20404, 404, "The requested resource was not found")
    }

    /// 20404: the service does not exist.
    pub fn service_not_found() -> Self {
        Self::new(20404, 404, "Service not found")
    }

    /// 20429: too many requests.
    pub fn too_many_requests() -> Self {
        Self::new(20429, 429, "Too many requests")
    }

    /// 20429: a user created too many users through invites, too fast.
    pub fn too_many_new_users() -> Self {
        Self::new(
            20429,
            429,
            "Too many new users invited: retry later, or invite existing users",
        )
    }

    /// 20403: the service has as many users as a user's invite may make it have.
    pub fn service_user_limit(limit: u64) -> Self {
        Self::new(
            20403,
            403,
            format!("The service has {limit} users: an invite cannot create another"),
        )
    }

    /// 20500: an internal failure; the detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(20500, 500, "Internal server error")
    }

    /// 20503: the server or the channel cannot take the request now; retrying is safe.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(20503, 503, message)
    }

    // === 5005x, 50076: webhooks ===

    /// 50056: the pre-event webhook answered other than 2xx: the action is refused.
    pub fn webhook_refused(status: u16) -> Self {
        Self::new(
            50056,
            403,
            format!("Webhook disabled processing of command (it answered HTTP {status})"),
        )
    }

    /// 50057: the pre-event webhook could not be called: the action is refused.
    pub fn webhook_failed(why: &str) -> Self {
        Self::new(
            50057,
            502,
            format!("Webhook call failed to execute successfully: {why}"),
        )
    }

    /// 50076: the pre-event webhook did not answer in time: the action is refused.
    pub fn webhook_timeout() -> Self {
        Self::new(
            50076,
            504,
            "Webhook failed to execute successfully due to timeout",
        )
    }

    /// 50325: a channel webhook filter is not a post-event name.
    pub fn invalid_channel_webhook_filter(filter: &str) -> Self {
        Self::new(
            50325,
            400,
            format!("Invalid channel webhook filter: {filter} is not a post-event webhook"),
        )
    }

    /// 50322: more than five trigger keywords.
    pub fn too_many_webhook_triggers() -> Self {
        Self::new(50322, 400, "Too many channel webhook triggers (at most 5)")
    }

    /// 50065: a webhook retry count out of range.
    pub fn invalid_webhook_retry_count(max: u32) -> Self {
        Self::new(
            50065,
            400,
            format!("Invalid webhook retry count: it must be between 0 and {max}"),
        )
    }

    /// 50054: a webhook setting is malformed.
    pub fn invalid_webhook(message: impl Into<String>) -> Self {
        Self::new(50054, 400, message)
    }

    // === 50xxx: Programmable Chat ===

    /// 50000: a role or service needs a friendly name.
    pub fn friendly_name_missing() -> Self {
        Self::new(50000, 400, "FriendlyName not provided")
    }

    /// 50100: the role does not exist in the service.
    pub fn role_not_found() -> Self {
        Self::new(50100, 404, "Role not found")
    }

    /// 50104: a permission name Twilio does not know.
    pub fn unknown_permission(name: &str) -> Self {
        Self::new(50104, 400, format!("Permission not found: {name}"))
    }

    /// 50105: the role's type does not fit where it is used.
    pub fn role_type_mismatch(message: impl Into<String>) -> Self {
        Self::new(50105, 400, message)
    }

    /// 50107: the caller's roles do not grant `permission`.
    pub fn not_authorized(permission: Permission) -> Self {
        Self::new(
            50107,
            403,
            format!("User not authorized for command: needs {permission}"),
        )
    }

    /// 50200: the user does not exist.
    pub fn user_not_found() -> Self {
        Self::new(50200, 404, "User not found")
    }

    /// 50201: a user with this identity exists.
    pub fn user_exists() -> Self {
        Self::new(50201, 409, "User already exists")
    }

    /// 50204: an identity is required.
    pub fn identity_missing() -> Self {
        Self::new(50204, 400, "Identity not provided")
    }

    /// 50206: the identity is not acceptable.
    pub fn invalid_identity(message: impl Into<String>) -> Self {
        Self::new(50206, 400, message)
    }

    /// 50300: the channel does not exist, or the caller may not see it.
    pub fn channel_not_found() -> Self {
        Self::new(50300, 404, "Channel not found")
    }

    /// 50306: a unique name must not look like a channel SID.
    pub fn unique_name_is_sid() -> Self {
        Self::new(
            50306,
            400,
            "Unique name should not match channel SID pattern",
        )
    }

    /// 50307: another channel of the service has this unique name.
    pub fn unique_name_taken() -> Self {
        Self::new(
            50307,
            409,
            "Channel with provided unique name already exists",
        )
    }

    /// 50320: the channel webhook does not exist.
    pub fn webhook_not_found() -> Self {
        Self::new(50320, 404, "Channel webhook not found")
    }

    /// 50321: the channel has as many webhooks as allowed.
    pub fn too_many_webhooks() -> Self {
        Self::new(50321, 403, "Too many channel webhooks")
    }

    /// 50302: the realtime operation is unknown or its frame malformed.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(50302, 400, message)
    }

    /// 50400: the caller is not a member of the channel.
    pub fn not_member() -> Self {
        Self::new(50400, 403, "User not member of channel")
    }

    /// 50400 with 404: the identity named is not a member (REST member lookups).
    pub fn member_identity_not_found() -> Self {
        Self::new(50400, 404, "User not member of channel")
    }

    /// 50402: the member does not exist.
    pub fn member_not_found() -> Self {
        Self::new(50402, 404, "Member not found")
    }

    /// 50404: the identity is a member already.
    pub fn already_member() -> Self {
        Self::new(50404, 409, "Member already exists")
    }

    /// 50500: the message does not exist.
    pub fn message_not_found() -> Self {
        Self::new(50500, 404, "Message not found")
    }

    /// 50601: the invite does not exist.
    pub fn invite_not_found() -> Self {
        Self::new(50601, 404, "Invite not found")
    }

    /// 51007: the access token was refused.
    pub fn token_rejected(why: impl std::fmt::Display) -> Self {
        Self::new(
            51007,
            401,
            format!("Token authentication is rejected: {why}"),
        )
    }

    /// Whether this is a refusal of the caller's credentials (51007).
    pub fn is_token_rejection(&self) -> bool {
        self.code == 51007
    }
}

impl From<DomainError> for AppError {
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
            DomainError::UserChannelLimitReached { .. } => (50208, 403),
            DomainError::MessageNotFound => (50500, 404),
            DomainError::MediaNotFound => (20404, 404),
            DomainError::MediaAttached { .. } => (50511, 409),
            DomainError::MediaTooLarge { .. } => (50512, 413),
            DomainError::InviteNotFound => (50601, 404),
            DomainError::AlreadyInvited => (50212, 409),
            DomainError::NotAuthorized { permission } => return Self::not_authorized(*permission),
            DomainError::Forbidden { .. } => (50107, 403),
        };
        Self::new(code, status, message)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::ChannelUniqueName) => Self::unique_name_taken(),
            StoreError::Conflict(Conflict::UserIdentity) => Self::user_exists(),
            StoreError::Conflict(Conflict::Sid) => Self::already_exists(),
            StoreError::NotFound => Self::resource_not_found(),
            StoreError::InvalidCursor => Self::invalid("Invalid PageToken"),
            StoreError::Closed => Self::unavailable("Service is shutting down"),
            StoreError::Fenced => Self::unavailable("Channel is moving to another node: retry"),
            StoreError::Backend(detail) | StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "store failure");
                Self::new(20500, 500, "Internal server error")
            }
        }
    }
}

impl From<confab_webhooks::WebhookError> for AppError {
    fn from(e: confab_webhooks::WebhookError) -> Self {
        match e {
            confab_webhooks::WebhookError::Refused(status) => Self::webhook_refused(status),
            confab_webhooks::WebhookError::Timeout => Self::webhook_timeout(),
            confab_webhooks::WebhookError::Failed(why) => Self::webhook_failed(&why),
        }
    }
}

impl From<ChannelError> for AppError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Domain(d) => d.into(),
            ChannelError::Store(s) => s.into(),
            ChannelError::ServiceNotFound => Self::service_not_found(),
            ChannelError::Unavailable(why) => {
                Self::unavailable(format!("Channel unavailable: {why}"))
            }
            // The router retries a command elsewhere until its deadline; only then do these
            // reach a client, which may retry (with the same idempotency key for a message).
            ChannelError::NotOwner { .. } => {
                Self::unavailable("Channel unavailable: its owner is moving")
            }
            ChannelError::Unreachable(why) => {
                Self::unavailable(format!("Channel owner unreachable: {why}"))
            }
            ChannelError::Webhook(e) => e.into(),
            ChannelError::OwnerGone { .. } => {
                Self::unavailable("Channel unavailable: its owner is gone")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_twilio_codes() {
        let e: AppError = DomainError::NotAuthorized {
            permission: Permission::DestroyChannel,
        }
        .into();
        assert_eq!((e.code, e.status), (50107, 403));
        assert!(e.message.contains("destroyChannel"));
        let e: AppError = DomainError::Forbidden { reason: "x".into() }.into();
        assert_eq!((e.code, e.status), (50107, 403));
        let e: AppError = ChannelError::Domain(DomainError::NotMember).into();
        assert_eq!((e.code, e.status), (50400, 403));
    }
}
