//! What a connection does with a frame before any operation runs: the rate limit, and the
//! sorting of frames that do not decode into a request (close, or answer with which error).

use std::time::Instant;

use confab_app::AppError;
use confab_protocol::realtime::{CloseCode, ErrorBody, Request};
use serde_json::Value;

use crate::token::TokenError;

/// Ops per second with a burst allowance.
pub(super) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` operations per second, with bursts of `burst`; starts full.
    pub(super) fn new(rate: u32, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            last: Instant::now(),
        }
    }

    pub(super) fn take(&mut self) -> bool {
        self.take_n(1)
    }

    /// Takes `n` operations' worth at once, or none.
    pub(super) fn take_n(&mut self, n: u32) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

pub(super) fn error_body(e: &AppError) -> ErrorBody {
    ErrorBody {
        code: e.code,
        message: e.message.clone(),
        status: e.status,
    }
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn token_error(e: TokenError) -> (AppError, CloseCode) {
    match e {
        TokenError::Expired => (AppError::token_expired(), CloseCode::TokenExpired),
        TokenError::Invalid(why) => (AppError::token_rejected(why), CloseCode::BadToken),
        TokenError::TooLong { max_secs } => (
            AppError::token_lifetime_too_long(max_secs),
            CloseCode::BadToken,
        ),
    }
}

/// Why a frame could not be decoded into a request.
pub(super) enum Undecodable {
    /// Not a request at all: close.
    Close(&'static str),
    /// A request with an `id` whose operation or parameters are wrong: answer it (and close,
    /// for a malformed `init`: a session without a token has nothing to go on with).
    Refuse {
        id: u64,
        init: bool,
        known: bool,
        error: AppError,
    },
}

/// A request frame (it has an `id`) that did not decode into a request.
pub(super) struct Malformed {
    /// Its `type` is `init`.
    pub(super) init: bool,
    /// Its `type` names an operation (its parameters are wrong).
    pub(super) known: bool,
    /// What the client is told.
    pub(super) error: AppError,
}

/// Sorts out a frame that did not decode, so that the client learns what was wrong.
pub(super) fn classify(text: &str, error: &serde_json::Error) -> Undecodable {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Undecodable::Close("frame is not JSON");
    };
    let Some(id) = frame.get("id").and_then(Value::as_u64) else {
        return Undecodable::Close("frame is not a request");
    };
    let op = frame.get("type").and_then(Value::as_str);
    let error = match op {
        Some(op) if Request::is_operation(op) => {
            AppError::invalid(format!("Invalid parameters: {error}"))
        }
        Some(op) => AppError::unknown_operation(format!("Unknown operation {op:?}")),
        None => AppError::unknown_operation("Unknown or malformed operation"),
    };
    Undecodable::Refuse {
        id,
        init: op == Some("init"),
        known: op.is_some_and(Request::is_operation),
        error,
    }
}
