//! Configuration: defaults, then a TOML file, then `CONFAB_*` environment variables, then flags.
//!
//! Every option has an environment variable: the option's path in the TOML file, upper-cased,
//! dots turned into underscores, prefixed with `CONFAB_` (`[limits] message_body_bytes` is
//! `CONFAB_LIMITS_MESSAGE_BODY_BYTES`). The file is named by `--config` or `CONFAB_CONFIG`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_domain::Limits;
use confab_store::SqliteOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ServerError;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// When the development token endpoint (`POST /dev/token`) is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DevTokens {
    /// On when the node listens on a loopback address only.
    #[default]
    Auto,
    /// Always on (anyone who reaches the node can act as anyone: development only).
    On,
    /// Off.
    Off,
}

/// Settings of the channel runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Seconds without a command after which a channel actor stops.
    pub idle_timeout_secs: u64,
    /// Commands that may queue at one channel actor.
    pub mailbox_capacity: usize,
    /// Threads the channel actors run on.
    pub arbiters: usize,
    /// Undelivered events a bus subscriber may fall behind by.
    pub bus_capacity: usize,
    /// Recent posts per channel whose client ids are remembered for idempotent retries.
    pub client_id_window: usize,
    /// Milliseconds an authorization decision may use a service's roles and a user's service
    /// role read earlier: a change made through another node of a cluster applies within it.
    pub policy_cache_ms: u64,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 300,
            mailbox_capacity: 256,
            arbiters: 2,
            bus_capacity: 16_384,
            client_id_window: 1000,
            policy_cache_ms: 500,
        }
    }
}

/// Settings of cluster mode (used when `redis_url` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// A node whose heartbeat is older than this many milliseconds is dead.
    pub node_ttl_ms: u64,
    /// Channel lease duration in milliseconds: a dead owner's channels move after this.
    pub lease_ms: u64,
    /// How long a command forwarded to another node waits for its reply, in milliseconds.
    pub route_timeout_ms: u64,
    /// How long a command keeps being retried while its channel has no reachable owner.
    pub route_deadline_ms: u64,
    /// Prefix of every Redis key and pub/sub topic (deployments can share a server).
    pub key_prefix: String,
    /// Channel events kept per channel in Redis, for resume.
    pub event_retention: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_ttl_ms: 3000,
            lease_ms: 1500,
            route_timeout_ms: 5000,
            route_deadline_ms: 20_000,
            key_prefix: "confab".into(),
            event_retention: 10_000,
        }
    }
}

/// Where media bytes are kept (`[media]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// Files under `media.dir` (the embedded default).
    Fs,
    /// An S3-compatible bucket (`[media.s3]`): what a cluster needs, unless every node mounts
    /// one shared `media.dir`.
    S3,
    /// No media: uploads are refused (503). For a cluster without a bucket, where files on
    /// each node's own disk would be served by that node only.
    Off,
}

/// Media uploads (`[media]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// `fs`, `s3` or `off`.
    pub backend: MediaBackend,
    /// The directory of the `fs` backend (default: `data_dir/media`).
    pub dir: Option<PathBuf>,
    /// The largest upload in bytes; a service's `Media.SizeLimitMb` is capped by it.
    pub max_upload_bytes: u64,
    /// Content types accepted: exact (`application/pdf`), a family (`image/*`) or all (`*/*`).
    pub allowed_types: Vec<String>,
    /// How long a temporary content URL works, in seconds.
    pub url_ttl_secs: u64,
    /// Uploads this node reads at once (more are refused with 20429): with
    /// `max_upload_bytes`, a bound on the memory uploads hold.
    pub uploads_in_flight: usize,
    /// Uploads one user may make a minute on one node (20429 beyond).
    pub uploads_per_minute: u32,
    /// Seconds one upload's body may take to arrive (a slow client holds an upload slot).
    pub upload_timeout_secs: u64,
    /// Seconds an upload may stay unsent (attached to no message) before it is deleted.
    pub unattached_ttl_secs: u64,
    /// The bucket of the `s3` backend.
    pub s3: confab_media::S3Options,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            backend: MediaBackend::Fs,
            dir: None,
            max_upload_bytes: 32 * 1024 * 1024,
            allowed_types: vec!["*/*".into()],
            url_ttl_secs: 300,
            uploads_in_flight: 16,
            uploads_per_minute: 30,
            upload_timeout_secs: 300,
            unattached_ttl_secs: 86_400,
            s3: confab_media::S3Options::default(),
        }
    }
}

impl MediaSettings {
    /// The blob store these settings name (`None` for `off`).
    pub fn blobs(
        &self,
        data_dir: &Path,
    ) -> Result<Option<std::sync::Arc<dyn confab_media::BlobStore>>, ServerError> {
        if self.max_upload_bytes == 0
            || self.uploads_in_flight == 0
            || self.url_ttl_secs == 0
            || self.upload_timeout_secs == 0
            || self.unattached_ttl_secs == 0
        {
            return Err(ServerError::Config(
                "media.max_upload_bytes, uploads_in_flight, url_ttl_secs, upload_timeout_secs and \
                 unattached_ttl_secs must be positive"
                    .into(),
            ));
        }
        Ok(Some(match self.backend {
            MediaBackend::Off => return Ok(None),
            MediaBackend::Fs => {
                let dir = self.dir.clone().unwrap_or_else(|| data_dir.join("media"));
                std::sync::Arc::new(confab_media::FsBlobs::open(&dir).map_err(|e| {
                    ServerError::Config(format!("media.dir {}: {e}", dir.display()))
                })?)
            }
            MediaBackend::S3 => std::sync::Arc::new(
                confab_media::S3Blobs::new(&self.s3)
                    .map_err(|e| ServerError::Config(e.to_string()))?,
            ),
        }))
    }
}

/// Settings of webhook calls (`[webhooks]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// How long one webhook call may take, in milliseconds (Twilio: 5000). A pre-event
    /// webhook that does not answer in time refuses the action (50076).
    pub timeout_ms: u64,
    /// Calls in flight to one URL at most (four times as many may wait; more are put back).
    pub per_url_concurrency: usize,
    /// Wait before the first retry of a post-event webhook, in milliseconds; doubles per try.
    pub retry_base_ms: u64,
    /// Longest wait between two tries, in milliseconds.
    pub retry_max_ms: u64,
    /// How often a node looks for due post-event jobs, in milliseconds.
    pub poll_ms: u64,
    /// How long a job a node took stays hidden from the others, in milliseconds: after a crash,
    /// its jobs are delivered by another node (or after the restart) once this has passed.
    pub claim_hold_ms: u64,
    /// Jobs a node holds in memory at most.
    pub max_in_memory: usize,
    /// When not empty, the only hosts webhooks may call.
    pub allowed_hosts: Vec<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let defaults = confab_webhooks::WebhookConfig::default();
        Self {
            timeout_ms: defaults.timeout.as_millis() as u64,
            per_url_concurrency: defaults.per_url_concurrency,
            retry_base_ms: defaults.retry_base.as_millis() as u64,
            retry_max_ms: defaults.retry_max.as_millis() as u64,
            poll_ms: defaults.poll_interval.as_millis() as u64,
            claim_hold_ms: defaults.claim_hold.as_millis() as u64,
            max_in_memory: defaults.max_in_memory,
            allowed_hosts: Vec::new(),
        }
    }
}

impl WebhookSettings {
    /// The webhook configuration, signed with the account's auth token. In a cluster
    /// (`route_timeout_ms` set), one pre-event decision stays 250 ms within the time a node waits
    /// for a forwarded command's answer.
    pub fn to_config(
        &self,
        account_sid: String,
        auth_token: String,
        route_timeout_ms: Option<u64>,
    ) -> Result<confab_webhooks::WebhookConfig, ServerError> {
        use std::time::Duration;
        let refuse = |message: String| Err(ServerError::Config(message));
        // Times are added to clock readings in milliseconds: a day is far beyond any use.
        const DAY_MS: u64 = 86_400_000;
        for (name, value) in [
            ("timeout_ms", self.timeout_ms),
            ("retry_base_ms", self.retry_base_ms),
            ("retry_max_ms", self.retry_max_ms),
            ("poll_ms", self.poll_ms),
            ("claim_hold_ms", self.claim_hold_ms),
        ] {
            if value == 0 || value > DAY_MS {
                return refuse(format!(
                    "webhooks.{name} ({value}) must be between 1 and {DAY_MS} milliseconds"
                ));
            }
        }
        // A job in a node's hands waits for its URL at most four calls long, then makes its
        // own: a shorter hold lets other nodes take jobs this one is still delivering.
        if self.claim_hold_ms <= 5 * self.timeout_ms {
            return refuse(format!(
                "webhooks.claim_hold_ms ({}) must be longer than five webhook calls \
                 (5 x webhooks.timeout_ms = {})",
                self.claim_hold_ms,
                5 * self.timeout_ms
            ));
        }
        if let Some(route) = route_timeout_ms.filter(|route| *route <= 500) {
            return refuse(format!(
                "cluster.route_timeout_ms ({route}) leaves pre-event webhooks no time: it must \
                 exceed 500 milliseconds"
            ));
        }
        Ok(confab_webhooks::WebhookConfig {
            account_sid,
            auth_token,
            pre_budget: route_timeout_ms
                .map(|route| Duration::from_millis(route.saturating_sub(250).max(1))),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            per_url_concurrency: self.per_url_concurrency.max(1),
            retry_base: Duration::from_millis(self.retry_base_ms.max(1)),
            retry_max: Duration::from_millis(self.retry_max_ms.max(1)),
            poll_interval: Duration::from_millis(self.poll_ms.max(10)),
            claim_hold: Duration::from_millis(self.claim_hold_ms.max(1)),
            max_in_memory: self.max_in_memory.max(1),
            allowed_hosts: self.allowed_hosts.clone(),
        })
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Page size of lists when the request names none.
    pub default_page_size: usize,
    /// Largest page size a request may ask for.
    pub max_page_size: usize,
    /// Most webhooks per channel.
    pub webhooks_per_channel: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let web = confab_web::WebLimits::default();
        Self {
            workers: 0,
            max_body_bytes: web.max_body_bytes,
            default_page_size: web.default_page_size,
            max_page_size: web.max_page_size,
            webhooks_per_channel: web.webhooks_per_channel,
        }
    }
}

/// Everything a node can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the client-facing HTTP server (REST).
    pub listen: String,
    /// Address of the admin server (`/healthz`, `/readyz`).
    pub admin_listen: String,
    /// Directory of the embedded store and generated credentials.
    pub data_dir: PathBuf,
    /// Base URL of `url`, `links` and paging URLs (default: `http://` + the bound address).
    pub public_url: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// The development token endpoint used by the chat page.
    pub dev_tokens: DevTokens,
    /// Account SID (`AC…`); generated and kept in the data directory when unset.
    pub account_sid: Option<String>,
    /// Auth token of the account.
    pub auth_token: Option<String>,
    /// API key SID (`SK…`).
    pub api_key_sid: Option<String>,
    /// API key secret.
    pub api_key_secret: Option<String>,
    /// Seconds a stopping node waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// Redis URL: turns cluster mode on (Redis holds the state; nodes share the channels).
    pub redis_url: Option<String>,
    /// This node's name in the cluster (default: generated at start).
    pub node_id: Option<String>,
    /// Cluster mode.
    pub cluster: ClusterSettings,
    /// Limits of chat resources.
    pub limits: Limits,
    /// The embedded store.
    pub sqlite: SqliteOptions,
    /// The channel runtime.
    pub runtime: RuntimeSettings,
    /// The HTTP layer.
    pub http: HttpSettings,
    /// Realtime WebSocket sessions.
    pub realtime: confab_web::realtime::RealtimeConfig,
    /// Webhook calls.
    pub webhooks: WebhookSettings,
    /// Media uploads.
    pub media: MediaSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            data_dir: PathBuf::from("./confab-data"),
            public_url: None,
            log_format: LogFormat::Text,
            dev_tokens: DevTokens::Auto,
            account_sid: None,
            auth_token: None,
            api_key_sid: None,
            api_key_secret: None,
            shutdown_timeout_secs: 30,
            redis_url: None,
            node_id: None,
            cluster: ClusterSettings::default(),
            limits: Limits::default(),
            sqlite: SqliteOptions::default(),
            runtime: RuntimeSettings::default(),
            http: HttpSettings::default(),
            realtime: confab_web::realtime::RealtimeConfig::default(),
            webhooks: WebhookSettings::default(),
            media: MediaSettings::default(),
        }
    }
}

impl Config {
    /// Defaults overlaid with the TOML file (if any) and then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServerError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ServerError::Config(format!("cannot read {}: {e}", path.display()))
                })?;
                Self::parse(&text)
                    .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Defaults overlaid with a TOML document.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Overlays `CONFAB_*` variables on every option, each parsed as the option's type.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ServerError> {
        let mut tree = serde_json::to_value(&*self)
            .map_err(|e| ServerError::Config(format!("cannot represent config: {e}")))?;
        let mut changed = false;
        overlay(&mut tree, "CONFAB", &env, &mut changed)?;
        if changed {
            *self = serde_json::from_value(tree)
                .map_err(|e| ServerError::Config(format!("environment: {e}")))?;
        }
        Ok(())
    }

    /// The idle timeout of channel actors.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.runtime.idle_timeout_secs)
    }
}

/// Walks the config tree; a leaf at path `a.b_c` is replaced by `CONFAB_A_B_C` when set.
fn overlay(
    node: &mut Value,
    name: &str,
    env: &impl Fn(&str) -> Option<String>,
    changed: &mut bool,
) -> Result<(), ServerError> {
    if let Value::Object(map) = node {
        for (key, child) in map.iter_mut() {
            overlay(
                child,
                &format!("{name}_{}", key.to_ascii_uppercase()),
                env,
                changed,
            )?;
        }
        return Ok(());
    }
    // An empty variable is the same as an unset one (`CONFAB_PUBLIC_URL=` must not make every
    // URL relative).
    let Some(raw) = env(name).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let bad = |what: &str| ServerError::Config(format!("{name}={raw:?} is not {what}"));
    *node = match node {
        Value::Bool(_) => Value::Bool(raw.parse().map_err(|_| bad("true or false"))?),
        Value::Number(_) => Value::Number(
            raw.trim()
                .parse::<u64>()
                .map_err(|_| bad("a non-negative integer"))?
                .into(),
        ),
        // A list is comma-separated: `CONFAB_MEDIA_ALLOWED_TYPES=image/*,application/pdf`.
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw.clone()),
    };
    *changed = true;
    Ok(())
}

/// `url` with its password (and user) replaced by `***`, for logs and error messages: a Redis
/// URL may carry the password (`redis://:secret@host:6379`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let url = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    };
    // `redis+unix:///run/redis.sock?pass=...`
    match url.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _))
                        if key.eq_ignore_ascii_case("pass")
                            || key.eq_ignore_ascii_case("password") =>
                    {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => url,
    }
}

/// Creates the data directory readable by this user only (it holds every message and the
/// account's credentials). An existing directory of this user's is narrowed to that too; one
/// that belongs to someone else (a volume mounted by the platform, writable through its group)
/// is left as it is, with a warning.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "cannot make the data directory private (mode 0700); its files are 0600"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_reaches_nested_options_with_their_types() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("CONFAB_LISTEN", "127.0.0.1:1"),
            ("CONFAB_LIMITS_MESSAGE_BODY_BYTES", "100"),
            ("CONFAB_PUBLIC_URL", "http://example"),
            ("CONFAB_SQLITE_SYNCHRONOUS", "full"),
        ]))
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        assert_eq!(c.limits.message_body_bytes, 100);
        assert_eq!(c.public_url.as_deref(), Some("http://example"));
        assert_eq!(c.sqlite.synchronous, confab_store::Synchronous::Full);
        let mut c = Config::default();
        c.apply_env(env(&[
            ("CONFAB_REDIS_URL", "redis://127.0.0.1:1"),
            ("CONFAB_NODE_ID", "a"),
            ("CONFAB_CLUSTER_LEASE_MS", "2500"),
        ]))
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:1"));
        assert_eq!(c.node_id.as_deref(), Some("a"));
        assert_eq!(c.cluster.lease_ms, 2500);
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let mut c = Config::default();
        c.apply_env(env(&[("CONFAB_PUBLIC_URL", ""), ("CONFAB_LISTEN", "")]))
            .unwrap();
        assert_eq!(c.public_url, None);
        assert_eq!(c.listen, "127.0.0.1:8080");
    }

    #[test]
    fn bad_environment_values_are_refused() {
        let mut c = Config::default();
        assert!(c
            .apply_env(env(&[("CONFAB_LIMITS_NAME_CHARS", "many")]))
            .is_err());
        assert!(c
            .apply_env(env(&[("CONFAB_SQLITE_SYNCHRONOUS", "sometimes")]))
            .is_err());
    }

    #[test]
    fn toml_file_sets_options_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\n[limits]\nname_chars = 10\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[("CONFAB_LISTEN", "127.0.0.1:7001")])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7001");
        assert_eq!(c.limits.name_chars, 10);
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confab.toml");
        std::fs::write(&path, "lissen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err());
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("redis://:s3cret@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:pw@redis.example.com"),
            "rediss://***@redis.example.com"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
    }

    #[test]
    fn a_webhook_claim_hold_shorter_than_five_calls_is_refused() {
        let mut settings = WebhookSettings::default();
        assert!(settings.to_config("AC".into(), "t".into(), None).is_ok());
        settings.claim_hold_ms = 5 * settings.timeout_ms;
        assert!(settings.to_config("AC".into(), "t".into(), None).is_err());
        settings.timeout_ms = 300;
        let config = settings
            .to_config("AC".into(), "t".into(), Some(5000))
            .unwrap();
        assert_eq!(
            config.pre_budget,
            Some(std::time::Duration::from_millis(4750))
        );
    }

    #[test]
    fn lists_and_media_settings_come_from_the_environment() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("CONFAB_MEDIA_ALLOWED_TYPES", "image/*, application/pdf,"),
            ("CONFAB_MEDIA_BACKEND", "s3"),
            ("CONFAB_MEDIA_S3_BUCKET", "chat"),
            ("CONFAB_MEDIA_S3_PATH_STYLE", "true"),
            ("CONFAB_WEBHOOKS_ALLOWED_HOSTS", "hooks.example.com"),
        ]))
        .unwrap();
        assert_eq!(c.media.allowed_types, ["image/*", "application/pdf"]);
        assert_eq!(c.media.backend, MediaBackend::S3);
        assert_eq!(c.media.s3.bucket, "chat");
        assert!(c.media.s3.path_style);
        assert_eq!(c.webhooks.allowed_hosts, ["hooks.example.com"]);
    }

    #[test]
    fn the_documented_configuration_is_the_default() {
        let doc = include_str!("../../../docs/configuration.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has a toml block");
        let documented = Config::parse(block).expect("the documented configuration parses");
        assert_eq!(documented, Config::default());
    }
}
