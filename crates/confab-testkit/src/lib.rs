//! `confab-testkit`: real Confab nodes for tests.
//!
//! [`TestNode`] runs a node in this process, on its own thread and actix system, on port 0 with a
//! temporary data directory; [`NodeProcess`] runs the `confab` binary as a child process, for
//! tests that kill it. Both hand out a [`RestClient`] with the node's credentials. Nothing is
//! global and no port is fixed, so many nodes can run in one test process. [`RedisServer`] is a
//! `redis-server` of the test's own on a free port, [`S3Server`] an S3-protocol server
//! (`s3s-fs`).
//!
//! It must not be used by production code.

mod process;
mod redis_server;
mod rest;
mod s3_server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use confab_server::{Config, Node, Stopper};
pub use process::{NodeArgs, NodeProcess};
pub use redis_server::RedisServer;
pub use rest::{RestClient, RestResponse};
pub use s3_server::{S3Server, S3_ACCESS_KEY, S3_SECRET_KEY};

/// Credentials every test node accepts.
#[derive(Debug, Clone)]
pub struct TestCredentials {
    /// `AC…`
    pub account_sid: String,
    /// The auth token.
    pub auth_token: String,
    /// `SK…`
    pub api_key_sid: String,
    /// The API key secret.
    pub api_key_secret: String,
}

impl Default for TestCredentials {
    fn default() -> Self {
        Self {
            account_sid: format!("AC{:032x}", 0x1234_u128),
            auth_token: "test-auth-token".into(),
            api_key_sid: format!("SK{:032x}", 0x5678_u128),
            api_key_secret: "test-api-key-secret".into(),
        }
    }
}

impl TestCredentials {
    /// The same credentials as the node's type. Panics on malformed SIDs (a broken test).
    pub fn credentials(&self) -> confab_web::Credentials {
        confab_web::Credentials {
            account_sid: self
                .account_sid
                .parse()
                .unwrap_or_else(|_| panic!("bad account SID")),
            auth_token: self.auth_token.clone(),
            api_key_sid: self
                .api_key_sid
                .parse()
                .unwrap_or_else(|_| panic!("bad API key SID")),
            api_key_secret: self.api_key_secret.clone(),
        }
    }

    /// An access token for `identity` in `service` (an `IS…` SID), valid for `ttl_secs`.
    /// Panics on a malformed service SID: a test that passes one is wrong.
    pub fn token(&self, identity: &str, service: &str, ttl_secs: u64) -> String {
        let credentials = confab_web::Credentials {
            account_sid: self
                .account_sid
                .parse()
                .unwrap_or_else(|_| panic!("bad account SID")),
            auth_token: self.auth_token.clone(),
            api_key_sid: self
                .api_key_sid
                .parse()
                .unwrap_or_else(|_| panic!("bad API key SID")),
            api_key_secret: self.api_key_secret.clone(),
        };
        let service = service
            .parse()
            .unwrap_or_else(|_| panic!("bad service SID {service}"));
        confab_web::token::mint(&credentials, identity, service, ttl_secs)
            .unwrap_or_else(|e| panic!("cannot mint a token: {e}"))
    }
}

/// Why a test node could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The node failed to start.
    #[error("node failed to start: {0}")]
    Start(String),
    /// An I/O error (temporary directory, process).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds a [`TestNode`].
#[derive(Debug, Clone)]
pub struct TestNodeBuilder {
    config: Config,
    credentials: TestCredentials,
    data_dir: Option<PathBuf>,
}

impl TestNodeBuilder {
    /// Runs the node on this data directory instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Makes the node a cluster node on `redis_url` named `node_id`, with the short timings
    /// tests use (nodes and leases expire after 1 s; a forwarded command waits 2 s).
    pub fn cluster(self, redis_url: &str, node_id: &str) -> Self {
        self.configure(|c| {
            c.redis_url = Some(redis_url.to_owned());
            c.node_id = Some(node_id.to_owned());
            c.cluster.node_ttl_ms = 1000;
            c.cluster.lease_ms = 1000;
            c.cluster.route_timeout_ms = 2000;
        })
    }

    /// Changes any configuration option before start.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Starts the node and waits until it serves.
    pub fn start(self) -> Result<TestNode, TestkitError> {
        let (data_dir, temp) = match self.data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut config = self.config;
        config.data_dir = data_dir.clone();
        config.account_sid = Some(self.credentials.account_sid.clone());
        config.auth_token = Some(self.credentials.auth_token.clone());
        config.api_key_sid = Some(self.credentials.api_key_sid.clone());
        config.api_key_secret = Some(self.credentials.api_key_secret.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("confab-test-node".into())
            // A main thread's stack, as the `confab` binary has: unoptimized builds keep large
            // futures on it (a node that stops with a thousand sessions overflowed 2 MiB).
            .stack_size(8 * 1024 * 1024)
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match Node::start(config).await {
                        Ok(node) => {
                            let _ = tx.send(Ok((
                                node.addr,
                                node.admin_addr,
                                node.node_id.clone(),
                                node.stopper(),
                            )));
                            node.wait().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
            })?;
        let (addr, admin_addr, node_id, stopper) = rx
            .recv()
            .map_err(|_| TestkitError::Start("node thread ended before starting".into()))?
            .map_err(TestkitError::Start)?;
        Ok(TestNode {
            addr,
            admin_addr,
            node_id,
            credentials: self.credentials,
            data_dir,
            stopper,
            thread: Some(thread),
            _temp: temp,
        })
    }
}

/// A node running in this process. Stops when dropped.
#[derive(Debug)]
pub struct TestNode {
    /// REST address.
    pub addr: SocketAddr,
    /// Admin address.
    pub admin_addr: SocketAddr,
    /// The node's id.
    pub node_id: String,
    /// The credentials it accepts.
    pub credentials: TestCredentials,
    /// Its data directory.
    pub data_dir: PathBuf,
    stopper: Stopper,
    thread: Option<std::thread::JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl TestNode {
    /// A builder with test defaults: loopback, port 0, temporary data directory.
    pub fn builder() -> TestNodeBuilder {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            shutdown_timeout_secs: 5,
            ..Config::default()
        };
        config.http.workers = 2;
        TestNodeBuilder {
            config,
            credentials: TestCredentials::default(),
            data_dir: None,
        }
    }

    /// Starts a node with the test defaults.
    pub fn start() -> Result<TestNode, TestkitError> {
        Self::builder().start()
    }

    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://addr/v2/realtime`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v2/realtime", self.addr)
    }

    /// An access token for `identity` in `service`, signed with the node's API key.
    pub fn token(&self, identity: &str, service: &str, ttl_secs: u64) -> String {
        self.credentials.token(identity, service, ttl_secs)
    }

    /// A REST client authenticated with the account SID and auth token.
    pub fn rest(&self) -> RestClient {
        RestClient::new(
            self.base_url(),
            &self.credentials.account_sid,
            &self.credentials.auth_token,
        )
    }

    /// Stops the node gracefully and waits for its thread.
    pub async fn stop(mut self) {
        self.stopper.stop().await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let stopper = self.stopper.clone();
            // Dropped without `stop()`: stop from a helper thread with its own small runtime,
            // since the dropping thread may be inside an async runtime that must not block.
            let _ = std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(stopper.stop());
                let _ = thread.join();
            })
            .join();
        }
    }
}
