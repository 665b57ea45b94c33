//! `confab-web`: Confab's HTTP face.
//!
//! It owns the Twilio Chat v2 REST API ([`rest`]): routing, form parsing ([`form`]), HTTP Basic
//! authentication ([`auth`]), paging, and the single mapping of failures to Twilio error codes
//! ([`error`]); the realtime WebSocket gateway ([`realtime`]: sessions, the fan-out hub, the
//! operations) and Twilio-format access tokens ([`token`]).
//!
//! It must not store anything itself, order channel writes or decide who may do what: those are
//! the application layer's use cases (`confab-app`), which every transport here calls with its
//! caller. REST calls act as the account and are not role-checked (as in Twilio); realtime
//! sessions act as their user. `realtime` never imports `rest`.

pub mod assets;
pub mod auth;
pub mod dev;
pub mod error;
pub mod form;
pub mod headers;
pub mod media;
pub mod metrics;
pub mod realtime;
pub mod rest;
pub mod token;

use std::sync::Arc;

use confab_cluster::ChannelRuntime;
use confab_protocol::rest::Urls;
use confab_store::Store;

pub use auth::Credentials;
pub use error::ApiError;

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Page size when a list request names none.
    pub default_page_size: usize,
    /// Largest page size a list request may ask for.
    pub max_page_size: usize,
    /// Most webhooks one channel may have.
    pub webhooks_per_channel: usize,
    /// How long one media upload's body may take to arrive.
    pub upload_timeout: std::time::Duration,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            default_page_size: 50,
            max_page_size: 1000,
            webhooks_per_channel: 5,
            upload_timeout: std::time::Duration::from_secs(300),
        }
    }
}

/// What every request handler works with. Shared by all of a node's HTTP workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases every transport calls.
    pub app: confab_app::App,
    /// Where channel writes go.
    pub runtime: ChannelRuntime,
    /// Where reads go.
    pub store: Arc<dyn Store>,
    /// Who may call the REST API.
    pub credentials: Credentials,
    /// The node's public base URL and account, for `url` and `links`.
    pub urls: Urls,
    /// HTTP limits.
    pub limits: WebLimits,
    /// Realtime session limits and timings.
    pub realtime: realtime::RealtimeConfig,
    /// The node's realtime fan-out hub.
    pub hub: realtime::Hub,
    /// The node's WebSocket sessions: their bound, and the wait for them when it stops.
    pub sessions: realtime::Sessions,
    /// Whether `POST /dev/token` hands out tokens (see [`dev`]).
    pub dev_tokens: bool,
    /// Whether each `/dev/token` request must also come from this host, directly: a loopback
    /// peer, a loopback `Host`, and no forwarding header (`dev_tokens = "auto"`; a reverse
    /// proxy on the same host, or DNS rebinding, must not turn the endpoint on for the world).
    pub dev_tokens_loopback_only: bool,
    /// Serializes the creation of the development service.
    pub dev_lock: Arc<tokio::sync::Mutex<()>>,
    /// Where to record metrics, if anywhere.
    pub metrics: Option<metrics::WebMetrics>,
}
