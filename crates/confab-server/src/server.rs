//! Wiring a node: open the store, start the channel runtime, bind the HTTP and admin servers.
//!
//! [`Node::start`] takes a [`Config`], binds its listeners (port 0 works: the bound addresses are
//! reported back), and returns a handle; [`Node::stop`] stops it cleanly. Several nodes can run
//! in one process: nothing here is global.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use confab_cluster::{
    ChannelRuntime, Cluster, ClusterConfig, LocalBroker, LocalPresence, Presence, RuntimeConfig,
};
use confab_protocol::rest::Urls;
use confab_store::{RedisOptions, RedisStore, SqliteStore, Store};
use confab_web::{AppState, Credentials, WebLimits};

use crate::config::Config;
use crate::credentials;
use crate::error::ServerError;

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// Where the REST API listens.
    pub addr: SocketAddr,
    /// Where the admin endpoints listen.
    pub admin_addr: SocketAddr,
    /// The base URL in `url` and `links`.
    pub public_url: String,
    /// The credentials the REST API accepts.
    pub credentials: Credentials,
    /// Whether the credentials were generated at this start.
    pub credentials_generated: bool,
    /// This node's name (in cluster mode, its name among the nodes).
    pub node_id: String,
    http: ServerHandle,
    admin: ServerHandle,
    runtime: ChannelRuntime,
    hub: confab_web::realtime::Hub,
    sessions: confab_web::realtime::Sessions,
    ready: Arc<AtomicBool>,
    shutdown_timeout: Duration,
    /// Set when a stop has run its steps: the deadline of its drain, past which `wait` stops
    /// waiting for requests still in flight.
    drained_by: Arc<tokio::sync::watch::Sender<Option<tokio::time::Instant>>>,
    servers: Vec<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
    /// The sweep of unsent uploads, stopped with the node.
    sweeper: actix_web::rt::task::JoinHandle<()>,
}

/// The embedded store, or in cluster mode the Redis store and the node's cluster handle.
async fn open_store(
    config: &Config,
    node_id: &str,
    store_metrics: confab_store::StoreMetrics,
    runtime_metrics: &confab_cluster::RuntimeMetrics,
) -> Result<(Arc<dyn Store>, Option<Cluster>), ServerError> {
    let Some(url) = &config.redis_url else {
        let store = SqliteStore::open_with_metrics(
            config.data_dir.join("confab.db"),
            config.sqlite.clone(),
            Some(store_metrics),
        )?;
        return Ok((Arc::new(store), None));
    };
    let settings = &config.cluster;
    let store = RedisStore::connect(
        url,
        RedisOptions {
            prefix: settings.key_prefix.clone(),
            event_retention: settings.event_retention,
        },
    )
    .await
    .map_err(|e| {
        ServerError::Config(format!(
            "cannot reach Redis at {}: {e}",
            crate::config::redact_url(url)
        ))
    })?
    .with_metrics(store_metrics);
    let cluster = Cluster::start(
        url,
        store.clone(),
        ClusterConfig {
            node_id: node_id.to_owned(),
            node_ttl: Duration::from_millis(settings.node_ttl_ms.max(30)),
            lease_ttl: Duration::from_millis(settings.lease_ms.max(30)),
            route_timeout: Duration::from_millis(settings.route_timeout_ms.max(1)),
            route_deadline: Duration::from_millis(settings.route_deadline_ms),
            prefix: settings.key_prefix.clone(),
            bus_capacity: config.runtime.bus_capacity,
        },
        Some(runtime_metrics.clone()),
    )
    .await
    .map_err(|e| {
        ServerError::Config(format!(
            "cannot join the cluster at {}: {e}",
            crate::config::redact_url(url)
        ))
    })?;
    Ok((Arc::new(store), Some(cluster)))
}

/// Whether a public URL names this host (`localhost` or a loopback address).
fn url_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Node {
    /// Starts a node. Must run inside an actix system (`actix_web::rt::System`).
    pub async fn start(config: Config) -> Result<Node, ServerError> {
        let realtime = &config.realtime;
        if realtime.outbox_bytes < 2 * realtime.max_reply_bytes {
            return Err(ServerError::Config(format!(
                "realtime.outbox_bytes ({}) must hold at least two of the largest history \
                 pages (realtime.max_reply_bytes, {}), or a client that asks for one is closed",
                realtime.outbox_bytes, realtime.max_reply_bytes
            )));
        }
        crate::config::create_private_dir(&config.data_dir)?;
        let (credentials, credentials_generated) = credentials::resolve(&config, &config.data_dir)?;
        // One registry per node: several nodes can run in one process.
        let registry = prometheus::Registry::new();
        let metric_error = |e: prometheus::Error| ServerError::Config(format!("metrics: {e}"));
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(metric_error)?;
        let store_metrics =
            confab_store::StoreMetrics::register(&registry).map_err(metric_error)?;
        let runtime_metrics =
            confab_cluster::RuntimeMetrics::register(&registry).map_err(metric_error)?;
        let web_metrics =
            confab_web::metrics::WebMetrics::register(&registry).map_err(metric_error)?;
        let node_id = config
            .node_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()));
        // Checked before the node joins a cluster: a refused setting leaves no trace there.
        let webhook_config = config.webhooks.to_config(
            credentials.account_sid.to_string(),
            credentials.auth_token.clone(),
            config
                .redis_url
                .as_ref()
                .map(|_| config.cluster.route_timeout_ms),
        )?;
        let blobs = config.media.blobs(&config.data_dir)?;
        if config.redis_url.is_some() && config.media.backend == crate::config::MediaBackend::Fs {
            // Not refused: every node may mount one shared media.dir.
            tracing::warn!(
                "media.backend is fs in cluster mode: each node serves only the media uploaded to \
                 it unless every node mounts the same media.dir; use media.backend = \"s3\""
            );
        }
        let (store, cluster) =
            open_store(&config, &node_id, store_metrics, &runtime_metrics).await?;
        let (broker, presence): (Arc<dyn confab_cluster::Broker>, Arc<dyn Presence>) =
            match &cluster {
                Some(cluster) => (Arc::new(cluster.broker()), Arc::new(cluster.presence())),
                None => (
                    Arc::new(LocalBroker::new(config.runtime.bus_capacity)),
                    Arc::new(LocalPresence),
                ),
            };
        let hub = confab_web::realtime::Hub::start(&broker, &presence, Some(web_metrics.clone()));
        let webhook_metrics =
            confab_webhooks::WebhookMetrics::register(&registry).map_err(metric_error)?;
        let webhooks =
            confab_webhooks::Webhooks::start(store.clone(), webhook_config, Some(webhook_metrics))
                .map_err(ServerError::Config)?;
        let drain_hub = hub.clone();
        let runtime = ChannelRuntime::new(
            store.clone(),
            broker,
            RuntimeConfig {
                limits: config.limits.clone(),
                idle_timeout: config.idle_timeout(),
                mailbox_capacity: config.runtime.mailbox_capacity,
                arbiters: config.runtime.arbiters,
                client_id_window: config.runtime.client_id_window,
                metrics: Some(runtime_metrics),
                cluster: cluster.clone(),
                policy_ttl: Duration::from_millis(config.runtime.policy_cache_ms),
                webhooks: Some(webhooks),
                media: blobs.clone(),
            },
        );

        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| ServerError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener.local_addr()?;
        let admin_listener = TcpListener::bind(&config.admin_listen).map_err(|e| {
            ServerError::Config(format!("cannot listen on {}: {e}", config.admin_listen))
        })?;
        let admin_addr = admin_listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();

        let dev_tokens = match config.dev_tokens {
            // Behind a public URL that is not this host, the node is published: no tokens.
            crate::config::DevTokens::Auto => {
                addr.ip().is_loopback() && config.public_url.as_deref().is_none_or(url_is_loopback)
            }
            crate::config::DevTokens::On => true,
            crate::config::DevTokens::Off => false,
        };
        if dev_tokens {
            tracing::warn!(
                "development token endpoint POST /dev/token is ON: anyone who reaches {addr} can sign in as anyone \
                 (dev_tokens = {:?}; it is off by default on non-loopback addresses)",
                config.dev_tokens
            );
        } else {
            tracing::info!(
                "development token endpoint is OFF (dev_tokens = {:?}, listening on {addr}); the chat page asks for a pasted token",
                config.dev_tokens
            );
        }
        let sessions = confab_web::realtime::Sessions::new(config.realtime.max_connections);
        let state = web::Data::new(AppState {
            app: confab_app::App::new(
                runtime.clone(),
                confab_app::AppLimits {
                    max_page_size: config.http.max_page_size,
                    max_reply_bytes: config.realtime.max_reply_bytes,
                },
                confab_app::media::MediaSettings {
                    blobs,
                    // Every node has the account's auth token: a URL one signs, all honour.
                    signer: confab_media::UrlSigner::new(credentials.auth_token.as_bytes()),
                    max_upload_bytes: config.media.max_upload_bytes,
                    allowed_types: config.media.allowed_types.clone(),
                    url_ttl: Duration::from_secs(config.media.url_ttl_secs),
                    uploads_in_flight: config.media.uploads_in_flight,
                    uploads_per_minute: config.media.uploads_per_minute,
                },
            ),
            runtime: runtime.clone(),
            store,
            credentials: credentials.clone(),
            urls: Urls {
                base: public_url.clone(),
                account: credentials.account_sid,
            },
            limits: WebLimits {
                max_body_bytes: config.http.max_body_bytes,
                default_page_size: config.http.default_page_size,
                max_page_size: config.http.max_page_size,
                webhooks_per_channel: config.http.webhooks_per_channel,
                upload_timeout: Duration::from_secs(config.media.upload_timeout_secs),
            },
            realtime: config.realtime.clone(),
            hub,
            sessions: sessions.clone(),
            dev_tokens,
            dev_tokens_loopback_only: config.dev_tokens == crate::config::DevTokens::Auto,
            dev_lock: Arc::new(tokio::sync::Mutex::new(())),
            metrics: Some(web_metrics),
        });
        // Uploads never sent are deleted once they are `media.unattached_ttl_secs` old; every
        // node sweeps (deletions are conditional, so nodes do not collide), a batch a minute.
        let sweeper = {
            let app = state.app.clone();
            let ttl_ms = i64::try_from(config.media.unattached_ttl_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
            actix_web::rt::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let before = confab_domain::Timestamp(
                        confab_cluster::now().millis().saturating_sub(ttl_ms),
                    );
                    match app.sweep_unattached_media(before, 1000).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "expired unsent uploads"),
                        Err(e) => tracing::warn!(error = %e, "cannot sweep unsent uploads"),
                    }
                }
            })
        };

        let workers = match config.http.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shutdown_timeout = Duration::from_secs(config.shutdown_timeout_secs);
        // actix-web's `HttpServer` without its WebSocket limitation: the same HTTP service, plus
        // an upgrade hook through which each WebSocket session takes its connection (and its
        // buffers) from actix-http (`confab_web::realtime::upgrade_service`).
        let local_addr = listener.local_addr()?;
        let builder = actix_server::Server::build();
        // Told when the server stops: keep-alive connections then close after their response.
        let stopping = builder.graceful_shutdown_signal();
        let http = builder
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(config.shutdown_timeout_secs)
            .listen("confab-http", listener, move || {
                let app = App::new()
                    .app_data(state.clone())
                    .wrap(actix_web::middleware::from_fn(
                        confab_web::metrics::record_http,
                    ))
                    .wrap(actix_web::middleware::Compress::default())
                    .wrap(actix_web::middleware::from_fn(confab_web::headers::secure))
                    .configure(confab_web::realtime::configure)
                    .configure(confab_web::assets::configure)
                    .configure(confab_web::dev::configure)
                    .configure(confab_web::rest::configure)
                    .configure(confab_web::media::configure);
                let app = actix_service::IntoServiceFactory::into_factory(app);
                let stopping = stopping.clone();
                actix_http::HttpService::build()
                    // Realtime frames and REST answers are small and latency-bound: Nagle's
                    // algorithm would hold one until the previous is acknowledged.
                    .tcp_nodelay(true)
                    // As actix-web's `HttpServer`: an answer sent before its request was read
                    // whole (a refused upload) lingers a second so the client reads it.
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    .local_addr(local_addr)
                    .upgrade(confab_web::realtime::upgrade_service(
                        state.clone().into_inner(),
                    ))
                    .finish(actix_service::map_config(app, |_| {
                        actix_web::dev::AppConfig::default()
                    }))
                    .tcp()
            })?
            .run();

        let ready = Arc::new(AtomicBool::new(true));
        let admin_ready = ready.clone();
        let admin_cluster = web::Data::new(crate::admin::ClusterView {
            node_id: node_id.clone(),
            runtime: runtime.clone(),
        });
        let admin = HttpServer::new(move || {
            let ready = admin_ready.clone();
            let registry = registry.clone();
            App::new()
                .app_data(admin_cluster.clone())
                .configure(crate::admin::configure)
                .route(
                    "/metrics",
                    web::get().to(move || {
                        let registry = registry.clone();
                        async move {
                            let mut text = String::new();
                            match prometheus::TextEncoder::new()
                                .encode_utf8(&registry.gather(), &mut text)
                            {
                                Ok(()) => HttpResponse::Ok()
                                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                                    .body(text),
                                Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
                            }
                        }
                    }),
                )
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok\n") }),
                )
                .route(
                    "/readyz",
                    web::get().to(move || {
                        let ready = ready.load(Ordering::SeqCst);
                        async move {
                            if ready {
                                HttpResponse::Ok().body("ready\n")
                            } else {
                                HttpResponse::ServiceUnavailable().body("stopping\n")
                            }
                        }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(admin_listener)?
        .run();

        let http_handle = http.handle();
        let admin_handle = admin.handle();
        let servers = vec![actix_web::rt::spawn(http), actix_web::rt::spawn(admin)];
        tracing::info!(%addr, %admin_addr, %public_url, node = %node_id,
            mode = if cluster.is_some() { "cluster" } else { "embedded" }, "confab node started");
        Ok(Node {
            addr,
            admin_addr,
            public_url,
            credentials,
            credentials_generated,
            node_id,
            http: http_handle,
            admin: admin_handle,
            runtime,
            hub: drain_hub,
            sessions,
            ready,
            shutdown_timeout,
            drained_by: Arc::new(tokio::sync::watch::Sender::new(None)),
            servers,
            sweeper,
        })
    }

    /// A handle that stops this node from another task.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            http: self.http.clone(),
            admin: self.admin.clone(),
            ready: self.ready.clone(),
            hub: self.hub.clone(),
            sessions: self.sessions.clone(),
            shutdown_timeout: self.shutdown_timeout,
            drained_by: self.drained_by.clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// Stops accepting, lets requests in flight finish (up to the shutdown timeout), then stops
    /// the channel actors. Acknowledged writes are already committed, so nothing is lost.
    pub async fn stop(self) {
        self.stopper().stop().await;
        self.wait().await;
    }

    /// Waits until the node's servers have stopped (after a stop, no longer than its drain's
    /// deadline), then stops the channel runtime.
    pub async fn wait(self) {
        let mut drained_by = self.drained_by.subscribe();
        let past_deadline = async move {
            match drained_by.wait_for(Option::is_some).await.map(|at| *at) {
                Ok(Some(at)) => tokio::time::sleep_until(at).await,
                _ => std::future::pending().await,
            }
        };
        tokio::pin!(past_deadline);
        for server in self.servers {
            tokio::select! {
                _ = server => {}
                () = &mut past_deadline => {
                    tracing::warn!("requests still in flight at the end of the drain: not waited for");
                    break;
                }
            }
        }
        self.sweeper.abort();
        tracing::info!(timeout = ?self.shutdown_timeout, "confab node stopped");
        if let Some(webhooks) = self.runtime.webhooks() {
            webhooks.shutdown();
        }
        self.runtime.shutdown();
    }
}

/// Stops a node's servers; cheap to clone and to send to a signal handler.
#[derive(Clone)]
pub struct Stopper {
    http: ServerHandle,
    admin: ServerHandle,
    ready: Arc<AtomicBool>,
    hub: confab_web::realtime::Hub,
    sessions: confab_web::realtime::Sessions,
    shutdown_timeout: Duration,
    drained_by: Arc<tokio::sync::watch::Sender<Option<tokio::time::Instant>>>,
    runtime: ChannelRuntime,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    /// Marks the node not ready, tells realtime clients to reconnect elsewhere (close 4010),
    /// waits for its WebSocket sessions to close, then stops both servers gracefully; the two
    /// waits share the shutdown timeout (the stop is forced if the sessions used it all). In
    /// cluster mode the node first leaves the live set (no command is routed here any more),
    /// and after the requests in flight it releases every channel lease, so that other nodes
    /// take its channels at once.
    pub async fn stop(&self) {
        self.ready.store(false, Ordering::SeqCst);
        let cluster = self.runtime.cluster().cloned();
        // Redis may be down: the cluster steps are bounded, so the node still exits in time
        // (its heartbeat and leases then expire by themselves).
        let bounded = cluster
            .as_ref()
            .map(|c| c.config().route_timeout)
            .unwrap_or_default();
        if let Some(cluster) = &cluster {
            let _ = tokio::time::timeout(bounded, cluster.leave()).await;
        }
        self.hub.drain();
        // One deadline for the whole drain. Sessions run on tasks of their own, which the HTTP
        // server neither counts nor waits for: they close (4010) before its workers stop, the
        // tasks with them. Meanwhile the node still answers (a REST request, a 503 to an
        // upgrade), so that a client is refused at once, not left waiting in the backlog.
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let sessions_closed = tokio::time::timeout_at(deadline, self.sessions.close_all())
            .await
            .is_ok();
        // Sessions that outlived the deadline have used the drain's time: the stop is forced.
        // Past the deadline the HTTP workers' own timer may still be running: the leases are
        // released anyway, and `Node::wait` waits no longer.
        let _ = tokio::time::timeout_at(deadline, self.http.stop(sessions_closed)).await;
        if let Some(cluster) = &cluster {
            let _ = tokio::time::timeout(bounded, self.runtime.release_all()).await;
            cluster.shutdown();
        }
        self.admin.stop(true).await;
        self.drained_by.send_replace(Some(deadline));
    }
}
