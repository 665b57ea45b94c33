//! The realtime WebSocket API at `GET /v2/realtime` (`docs/protocol.md`).
//!
//! [`hub`] fans committed events out to sessions; [`socket`] takes a WebSocket upgrade and
//! gives the session its connection (and its own task, counted by [`Sessions`]); [`session`] runs one WebSocket (reader, writer with gap
//! repair and coalesced writes, keepalive, limits); [`connection`] decodes a connection's requests
//! and holds its authentication; [`ops`] turns each request into a call of the application
//! layer (`confab-app`) and renders the reply.

mod connection;
mod frames;
pub mod hub;
mod ops;

pub(crate) use ops::online_anywhere;
mod session;
mod sessions;
mod socket;
mod twilsock;

pub use sessions::Sessions;
pub use socket::upgrade_service;

use std::time::Duration;

use actix_web::{web, HttpResponse};

pub use hub::Hub;

/// How the server takes a client frame: as a request, as a request to refuse with an error,
/// or as a reason to close. The decoding every frame goes through (the fuzz target
/// `realtime_request` drives it through here).
pub fn sort_frame(text: &str) -> &'static str {
    match serde_json::from_str::<confab_protocol::realtime::RequestFrame>(text) {
        Ok(_) => "request",
        Err(e) => match frames::classify(text, &e) {
            frames::Undecodable::Close(_) => "close",
            frames::Undecodable::Refuse { .. } => "refuse",
        },
    }
}

/// Limits and timings of realtime sessions. Every one is configurable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Seconds a new connection has to send `init` (else close 4008).
    pub init_timeout_secs: u64,
    /// Seconds between server pings.
    pub ping_interval_secs: u64,
    /// Seconds of silence (no frame, no pong) after which a client is dropped.
    pub client_timeout_secs: u64,
    /// Largest client frame in bytes (else close 1009).
    pub max_frame_bytes: usize,
    /// Frames that may wait for a slow client before it is closed with 4009.
    pub outbox_frames: usize,
    /// Bytes (events and replies together) that may wait for a slow client before it is
    /// closed with 4009: what one client that stops reading can make the node hold.
    pub outbox_bytes: usize,
    /// Largest history page (`getMessages`), in bytes of bodies and attributes.
    pub max_reply_bytes: usize,
    /// Milliseconds a ping, pong or close may wait for a client that does not read, before the
    /// session ends without it.
    pub write_timeout_ms: u64,
    /// Sustained operations per second per connection.
    pub ops_per_sec: u32,
    /// Operations a connection may burst above the sustained rate.
    pub ops_burst: u32,
    /// Refused operations in a row after which the connection is closed with 4029.
    pub close_after_refusals: u32,
    /// Seconds before token expiry when `tokenAboutToExpire` is sent.
    pub token_warning_secs: u64,
    /// Most events replayed for one channel on resume; a larger gap answers `resumed: false`.
    pub max_replay: usize,
    /// Most channels listed in `init` and `getSubscribedChannels`.
    pub max_subscribed: usize,
    /// Longest lifetime of an access token accepted, in seconds, from its `nbf` (or `iat`) to
    /// its `exp` (Twilio's limit: 24 hours). Longer ones are refused with 20157.
    pub max_token_lifetime_secs: u64,
    /// Most WebSocket sessions (realtime and twilsock) one node holds; an upgrade beyond is
    /// answered 503.
    pub max_connections: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            init_timeout_secs: 10,
            ping_interval_secs: 10,
            client_timeout_secs: 30,
            max_frame_bytes: 64 * 1024,
            outbox_frames: 1024,
            outbox_bytes: 8 * 1024 * 1024,
            write_timeout_ms: 2000,
            max_reply_bytes: 256 * 1024,
            ops_per_sec: 50,
            ops_burst: 200,
            close_after_refusals: 100,
            token_warning_secs: 60,
            max_replay: 10_000,
            max_subscribed: 1000,
            max_token_lifetime_secs: 24 * 3600,
            max_connections: 100_000,
        }
    }
}

impl RealtimeConfig {
    fn init_timeout(&self) -> Duration {
        Duration::from_secs(self.init_timeout_secs)
    }
}

/// Registers `GET /v2/realtime` and twilsock's `GET /v3/wsconnect` for requests that are not
/// WebSocket upgrades (before the REST scope, which requires Basic auth). Upgrades never reach
/// the application: actix-http hands them to [`upgrade_service`] with their connection.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/realtime", web::to(not_an_upgrade));
    cfg.route("/v3/wsconnect", web::to(not_an_upgrade));
}

async fn not_an_upgrade() -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body("WebSocket upgrade is expected\n")
}
