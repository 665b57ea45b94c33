//! Where the harness runs against: nodes, credentials, REST setup, tokens, client sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use confab_web::Credentials;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::BenchError;

/// A WebSocket to a node.
pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The nodes and the credentials to use them.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URLs (`http://host:port`), one per node.
    pub urls: Vec<String>,
    /// The account's credentials (REST) and API key (tokens).
    pub credentials: Credentials,
    http: reqwest::Client,
    next_node: Arc<AtomicUsize>,
    next_socket: Arc<AtomicUsize>,
    source_addrs: usize,
}

impl Target {
    /// A target from base URLs and credentials. `source_addrs` is how many loopback source
    /// addresses (127.0.0.2, 127.0.0.3, ...) client sockets are spread over (0: one per 20,000
    /// connections).
    pub fn new(urls: Vec<String>, credentials: Credentials, source_addrs: usize) -> Self {
        Self {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            credentials,
            http: reqwest::Client::new(),
            next_node: Arc::new(AtomicUsize::new(0)),
            next_socket: Arc::new(AtomicUsize::new(0)),
            source_addrs,
        }
    }

    /// The credentials from `CONFAB_ACCOUNT_SID`, `CONFAB_AUTH_TOKEN`, `CONFAB_API_KEY_SID`,
    /// `CONFAB_API_KEY_SECRET`, or else from a node's `credentials.json` in `data_dir`.
    pub fn credentials_from_env(data_dir: Option<&str>) -> Result<Credentials, BenchError> {
        let env = |k: &str| std::env::var(k).ok();
        let file: Option<Value> = data_dir
            .map(|d| std::path::Path::new(d).join("credentials.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        let get = |var: &str, key: &str| -> Result<String, BenchError> {
            env(var)
                .or_else(|| {
                    file.as_ref()
                        .and_then(|f| f[key].as_str().map(str::to_owned))
                })
                .ok_or_else(|| {
                    BenchError::Setup(format!("set {var} (or pass --data-dir of the node)"))
                })
        };
        let account = get("CONFAB_ACCOUNT_SID", "account_sid")?;
        let key = get("CONFAB_API_KEY_SID", "api_key_sid")?;
        Ok(Credentials {
            account_sid: account
                .parse()
                .map_err(|_| BenchError::Setup("CONFAB_ACCOUNT_SID is not an AC SID".into()))?,
            auth_token: get("CONFAB_AUTH_TOKEN", "auth_token")?,
            api_key_sid: key
                .parse()
                .map_err(|_| BenchError::Setup("CONFAB_API_KEY_SID is not an SK SID".into()))?,
            api_key_secret: get("CONFAB_API_KEY_SECRET", "api_key_secret")?,
        })
    }

    /// The node for the next connection (round robin over `--url`).
    pub fn next_url(&self) -> &str {
        let i = self.next_node.fetch_add(1, Ordering::Relaxed) % self.urls.len().max(1);
        &self.urls[i]
    }

    /// `POST` a form to the first node; the JSON answer, or the error body as an error.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, BenchError> {
        let response = self
            .http
            .post(format!("{}{path}", self.urls[0]))
            .basic_auth(
                self.credentials.account_sid.to_string(),
                Some(&self.credentials.auth_token),
            )
            .form(form)
            .send()
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(BenchError::Setup(format!("POST {path}: {status} {body}")))
        }
    }

    /// The HTTP client (for the `rest` scenario).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Creates a service for this run; returns its SID.
    pub async fn create_service(&self, name: &str) -> Result<String, BenchError> {
        let service = self.post("/v2/Services", &[("FriendlyName", name)]).await?;
        Ok(service["sid"].as_str().unwrap_or_default().to_owned())
    }

    /// Creates a channel; returns its SID.
    pub async fn create_channel(&self, service: &str, name: &str) -> Result<String, BenchError> {
        let channel = self
            .post(
                &format!("/v2/Services/{service}/Channels"),
                &[("UniqueName", name)],
            )
            .await?;
        Ok(channel["sid"].as_str().unwrap_or_default().to_owned())
    }

    /// Adds members to a channel, 32 at a time.
    pub async fn add_members(
        &self,
        service: &str,
        channel: &str,
        identities: &[String],
    ) -> Result<(), BenchError> {
        use futures::StreamExt;
        let path = format!("/v2/Services/{service}/Channels/{channel}/Members");
        let results: Vec<Result<Value, BenchError>> = futures::stream::iter(identities)
            .map(|identity| {
                let path = path.clone();
                async move { self.post(&path, &[("Identity", identity.as_str())]).await }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(|_| ()))
    }

    /// An access token for `identity` in `service`.
    pub fn token(&self, identity: &str, service: &str) -> Result<String, BenchError> {
        let service = service
            .parse()
            .map_err(|_| BenchError::Setup(format!("bad service SID {service}")))?;
        confab_web::token::mint(&self.credentials, identity, service, 24 * 3600)
            .map_err(|e| BenchError::Setup(e.to_string()))
    }

    /// The loopback source address for the next socket, when the node is on loopback.
    fn source_for(&self, node: SocketAddr) -> Option<SocketAddr> {
        if !node.ip().is_loopback() || !node.is_ipv4() {
            return None;
        }
        let n = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let spread = if self.source_addrs == 0 {
            n / 20_000
        } else {
            n % self.source_addrs
        };
        // 127.0.0.2 .. 127.0.0.254: every one is on the loopback interface on Linux.
        let last = 2 + (spread % 253) as u8;
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        ))
    }

    /// Opens a WebSocket to the next node's realtime endpoint.
    pub async fn connect(&self) -> Result<Socket, BenchError> {
        let base = self.next_url().to_owned();
        let host = base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let addr: SocketAddr = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?
            .next()
            .ok_or_else(|| BenchError::Connect(format!("cannot resolve {host}")))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| BenchError::Connect(e.to_string()))?;
        if let Some(source) = self.source_for(addr) {
            socket
                .bind(source)
                .map_err(|e| BenchError::Connect(format!("bind {source}: {e}")))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        let url = format!("ws://{host}/v2/realtime");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .map_err(|e| BenchError::Connect(e.to_string()))?;
        Ok(ws)
    }
}
