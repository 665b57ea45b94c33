//! Twilio's client protocol at `GET /v3/wsconnect`, so that an unmodified `twilio-chat` app
//! works against Confab (docs/twilio-client-protocol.md has what the client expects).
//!
//! twilsock is a transport over the realtime API, not a second application: a session runs a
//! realtime [`Connection`] as its user (the same `init`, hub registration, operations, limits
//! and delivery guarantees), and translates in both directions. Requests the client tunnels
//! through the socket go by path: the chat API (`…/Client/v1/…`, [`aim`]) becomes realtime
//! operations; the Sync API (`…/v3/…`, `…/v4/Subscriptions`, [`cds`]) reads a view of the
//! same state ([`sync`]), with replaying subscriptions ([`replay`], [`subscriptions`]).
//! Events the hub delivers become Sync events ([`events`]), pushed as `notification` frames.
//! [`session`] runs one connection.

mod aim;
mod cds;
mod events;
mod replay;
mod session;
mod subscriptions;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use confab_app::AppError;
use confab_domain::ServiceSid;
use confab_protocol::twilsock::Frame;
use serde_json::{json, Map, Value};

use super::connection::Connection;
use super::frames::TokenBucket;

pub(super) use session::run;

/// An HTTP request the client tunnelled through the socket (`message`).
#[derive(Debug, Clone)]
pub(super) struct Tunnelled {
    /// `GET`, `POST`, `DELETE`.
    pub(super) method: String,
    /// The path as sent (for errors).
    pub(super) path: String,
    /// Its segments, percent-decoded.
    pub(super) segments: Vec<String>,
    /// The query parameters.
    pub(super) params: HashMap<String, String>,
    /// The body: a JSON object, or the pairs of a form.
    pub(super) body: Map<String, Value>,
}

impl Tunnelled {
    /// Reads the request of a `message` frame.
    pub(super) fn from_frame(frame: &Frame) -> Result<Self, AppError> {
        let http = frame
            .header
            .get("http_request")
            .and_then(Value::as_object)
            .ok_or_else(|| AppError::invalid("message without http_request"))?;
        let method = http
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let path = http
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let raw_path = path.split(['?', '#']).next().unwrap_or_default();
        let segments = raw_path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|d| d.into_owned())
                    .map_err(|_| AppError::invalid("the path is not UTF-8"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut params = HashMap::new();
        if let Some(query) = path.split_once('?').map(|(_, q)| q) {
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                params.insert(k.into_owned(), v.into_owned());
            }
        }
        if let Some(given) = http.get("params").and_then(Value::as_object) {
            for (k, v) in given {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a.first().map(value_text).unwrap_or_default(),
                    other => value_text(other),
                };
                params.insert(k.clone(), v);
            }
        }
        let payload_type = frame
            .header
            .get("payload_type")
            .and_then(Value::as_str)
            .unwrap_or("application/json");
        let body = if payload_type.starts_with("application/x-www-form-urlencoded") {
            form_urlencoded::parse(&frame.payload)
                .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned())))
                .collect()
        } else {
            match serde_json::from_slice::<Value>(&frame.payload) {
                Ok(Value::Object(map)) => map,
                // Empty, `null` (twilio-chat's DELETE) or not an object: no parameters.
                _ => Map::new(),
            }
        };
        Ok(Self {
            method,
            path,
            segments,
            params,
            body,
        })
    }

    /// A query parameter.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The HTTP answer to a tunnelled request.
#[derive(Debug, Clone)]
pub(super) struct HttpAnswer {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl HttpAnswer {
    /// Twilio's error body for a refusal.
    pub(super) fn error(e: &AppError) -> Self {
        Self {
            status: e.status,
            body: json!({"code": e.code, "message": e.message, "status": e.status}),
        }
    }
}

/// Where the client finds things: absolute URLs on the address it reached this node at.
#[derive(Debug, Clone)]
pub(super) struct Links {
    /// `http(s)://host[:port]`.
    http: String,
    /// The session's service, once known.
    service: Option<ServiceSid>,
}

impl Links {
    pub(super) fn aim(&self) -> String {
        format!("{}/aim/Client/v1", self.http)
    }

    pub(super) fn conversations(&self) -> String {
        format!("{}/Conversations", self.aim())
    }

    pub(super) fn users(&self) -> String {
        format!("{}/Users", self.aim())
    }

    pub(super) fn cds(&self) -> String {
        format!("{}/cds", self.http)
    }

    /// The media API (plain HTTP with `X-Twilio-Token`, not through the socket).
    pub(super) fn media(&self) -> String {
        match self.service {
            Some(service) => format!("{}/v1/Services/{service}/Media", self.http),
            None => String::new(),
        }
    }
}

/// What the session's reader and writer share: how events become Sync events.
#[derive(Debug)]
pub(super) struct ViewState {
    context: events::ViewContext,
    clock: subscriptions::UserClock,
    subscriptions: subscriptions::Subscriptions,
}

/// One twilsock connection's state, on its reader's side.
pub(super) struct TwilsockSession {
    /// The realtime connection it runs.
    conn: Connection,
    links: Links,
    view: Arc<Mutex<ViewState>>,
    /// Notifications to send after the reply being written (subscription notices).
    after_reply: Vec<events::Notification>,
    /// Objects whose subscription replay is read, to be written by the writer after the reply
    /// (through the outbox, in order with live events: [`subscriptions::Subscriptions`]).
    replays_after_reply: Vec<String>,
    bucket: TokenBucket,
    refusals_in_row: u32,
    reachability: bool,
    typing_timeout_secs: u64,
}

impl TwilsockSession {
    /// The session's identity (empty before `init`).
    pub(super) fn identity(&self) -> &str {
        self.conn.auth.as_ref().map_or("", |a| a.identity.as_str())
    }

    pub(super) fn reachability(&self) -> bool {
        self.reachability
    }

    pub(super) fn view_typing_timeout(&self) -> u64 {
        self.typing_timeout_secs
    }

    /// The id of the newest user event given.
    pub(super) fn user_clock_now(&self) -> u64 {
        self.view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clock
            .current()
    }

    /// Runs a realtime operation as the session's user.
    pub(super) async fn run(
        &mut self,
        request: confab_protocol::realtime::Request,
    ) -> Result<Value, AppError> {
        Box::pin(self.conn.dispatch(request)).await
    }
}
