//! `confab-client`: the Rust SDK of Confab's realtime API.
//!
//! Its API mirrors Twilio's `twilio-chat` JavaScript SDK: [`Client::connect`] (like
//! `Client.create`), [`Client::create_channel`], [`Client::get_public_channel_descriptors`],
//! [`Channel::join`], [`Channel::send_message`], [`Channel::get_messages`], [`Channel::typing`],
//! and an [`Events`] stream of `messageAdded`, `memberJoined`, `typingStarted`, ... The client
//! reconnects by itself with backoff and jitter and resumes every channel from the last event
//! it delivered, so an application misses nothing and sees nothing twice; `send_message` carries
//! a client id, so a retry after a reconnect never duplicates a message.
//!
//! It must not depend on any server crate: it speaks the protocol of `docs/protocol.md` only.

mod channel;
mod connection;
mod media;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use channel::{Channel, Direction, MessagesPage};
use confab_protocol::realtime::request::Paging;
pub use confab_protocol::realtime::Request;
pub use confab_protocol::realtime::{
    ChannelView, ErrorBody, MemberView, MessageView, PageView, UserView,
};
pub use media::{MediaFile, MediaLinks, MediaResource};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the operation.
    #[error("{} ({}): {}", .0.code, .0.status, .0.message)]
    Server(ErrorBody),
    /// The connection dropped before the reply; the operation may or may not have happened.
    #[error("disconnected before the reply")]
    Disconnected,
    /// The client was shut down or its token refused for good.
    #[error("client is closed: {0}")]
    Closed(String),
    /// A reply did not have the expected shape.
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The Twilio error code, for server errors.
    pub fn code(&self) -> Option<u32> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Where the connection stands, as `connectionStateChanged` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting or reconnecting.
    Connecting,
    /// Connected and initialized.
    Connected,
    /// Disconnected; will reconnect.
    Disconnected,
    /// The token was refused or expired; will not reconnect until `update_token`.
    Denied,
}

/// Something the server told the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `messageAdded`, `memberJoined`, `typingStarted`, `channelJoined`, `userUpdated`,
    /// `tokenAboutToExpire`, `tokenExpired`, `connectionStateChanged`, ...
    pub name: String,
    /// The channel SID, for channel events.
    pub channel: Option<String>,
    /// The channel's event sequence number, for channel events but typing.
    pub seq: Option<u64>,
    /// The payload.
    pub data: Value,
}

/// The stream of events. Read it: when it is not read the client stops reading the socket,
/// and the server eventually closes the connection as too slow (the client then resumes).
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` after shutdown.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

/// Options of `create_channel`.
#[derive(Debug, Clone, Default)]
pub struct CreateChannelOptions {
    /// Display name.
    pub friendly_name: Option<String>,
    /// Unique name.
    pub unique_name: Option<String>,
    /// Private channels are invisible to non-members.
    pub is_private: bool,
    /// Attributes.
    pub attributes: Option<Value>,
}

/// What a call sends: a typed request, or a raw operation (`Client::request`).
pub(crate) enum CallBody {
    /// One of the protocol's requests.
    Typed(Request),
    /// An operation by name with its parameters, sent as they are.
    Raw { op: String, params: Value },
}

impl CallBody {
    /// The request frame with `id`.
    pub(crate) fn frame(self, id: u64) -> String {
        match self {
            CallBody::Typed(request) => request.frame(id),
            CallBody::Raw { op, params } => {
                let mut frame = match params {
                    Value::Object(map) => Value::Object(map),
                    _ => serde_json::json!({}),
                };
                frame["type"] = serde_json::json!(op);
                frame["id"] = serde_json::json!(id);
                frame.to_string()
            }
        }
    }
}

pub(crate) struct Call {
    pub(crate) body: CallBody,
    pub(crate) reply: oneshot::Sender<Result<Value, ClientError>>,
}

pub(crate) struct Shared {
    pub(crate) token: Mutex<String>,
    /// The newest `seq` delivered to the application, per channel: the resume point.
    pub(crate) last_seq: Mutex<HashMap<String, u64>>,
    pub(crate) online: watch::Sender<bool>,
    pub(crate) closed: watch::Sender<bool>,
}

/// A connection to a Confab node. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    calls: mpsc::Sender<Call>,
    shared: Arc<Shared>,
    identity: String,
    user: UserView,
    state: watch::Receiver<ConnectionState>,
    init: Value,
    /// The first node's HTTP base URL, for the media API.
    http_base: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("identity", &self.identity)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of plain data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connects to `url` (`ws://host:port/v2/realtime`, or the node's `http://` base URL) with
    /// an access token, and waits until the session is initialized.
    pub async fn connect(url: &str, token: &str) -> Result<(Client, Events), ClientError> {
        Self::connect_any(&[url], token).await
    }

    /// Like [`Client::connect`] with several nodes of a cluster: the client connects to the
    /// first, and each time a connection fails or ends (a node dies or drains) it reconnects,
    /// resuming, to the next one in turn.
    pub async fn connect_any(urls: &[&str], token: &str) -> Result<(Client, Events), ClientError> {
        if urls.is_empty() {
            return Err(ClientError::Closed("no URL to connect to".into()));
        }
        let urls: Vec<String> = urls.iter().map(|u| connection::realtime_url(u)).collect();
        let http_base = media::http_base(&urls[0]);
        let (calls_tx, calls_rx) = mpsc::channel(1024);
        let (events_tx, events_rx) = mpsc::channel(10_000);
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let (online, _) = watch::channel(true);
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            token: Mutex::new(token.to_owned()),
            last_seq: Mutex::new(HashMap::new()),
            online,
            closed,
        });
        let (first_tx, first_rx) = oneshot::channel();
        tokio::spawn(connection::run(
            urls,
            shared.clone(),
            calls_rx,
            events_tx,
            state_tx,
            first_tx,
        ));
        let init = first_rx
            .await
            .map_err(|_| ClientError::Closed("connection task ended".into()))??;
        let identity = init["identity"].as_str().unwrap_or_default().to_owned();
        let user: UserView = serde_json::from_value(init["user"].clone())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok((
            Client {
                calls: calls_tx,
                shared,
                identity,
                user,
                state: state_rx,
                init,
                http_base,
                http: reqwest::Client::new(),
            },
            Events { rx: events_rx },
        ))
    }

    /// The identity the token names.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The user as of connecting.
    pub fn user(&self) -> &UserView {
        &self.user
    }

    /// The `init` reply of the first connection (channels, resumed flags).
    pub fn init_reply(&self) -> &Value {
        &self.init
    }

    /// The connection state now.
    pub fn connection_state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Waits until the connection state is `state`.
    pub async fn wait_for_state(&self, state: ConnectionState) {
        let mut rx = self.state.clone();
        let _ = rx.wait_for(|s| *s == state).await;
    }

    /// Sends a raw operation and waits for its reply (for operations this SDK has no method
    /// for, and for tests of malformed requests).
    pub async fn request(&self, op: &str, params: Value) -> Result<Value, ClientError> {
        self.call(CallBody::Raw {
            op: op.to_owned(),
            params,
        })
        .await
    }

    /// Sends a request and waits for its reply.
    pub async fn send(&self, request: Request) -> Result<Value, ClientError> {
        self.call(CallBody::Typed(request)).await
    }

    async fn call(&self, body: CallBody) -> Result<Value, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call { body, reply })
            .await
            .map_err(|_| ClientError::Closed("client shut down".into()))?;
        rx.await
            .map_err(|_| ClientError::Closed("client shut down".into()))?
    }

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ClientError> {
        serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn channel(&self, view: ChannelView) -> Channel {
        Channel::new(self.clone(), view)
    }

    /// One page of public channels (like `getPublicChannelDescriptors`).
    pub async fn get_public_channel_descriptors(
        &self,
        page_size: Option<usize>,
        page_token: Option<String>,
    ) -> Result<PageView<ChannelView>, ClientError> {
        let v = self
            .send(Request::GetPublicChannelDescriptors(Paging {
                page_size,
                page_token,
            }))
            .await?;
        Self::parse(v)
    }

    /// One page of the channels the user belongs to (like `getUserChannelDescriptors`).
    pub async fn get_user_channel_descriptors(
        &self,
        page_size: Option<usize>,
        page_token: Option<String>,
    ) -> Result<PageView<ChannelView>, ClientError> {
        let v = self
            .send(Request::GetUserChannelDescriptors(Paging {
                page_size,
                page_token,
            }))
            .await?;
        Self::parse(v)
    }

    /// The channels the user has joined or is invited to (like `getSubscribedChannels`).
    pub async fn get_subscribed_channels(&self) -> Result<Vec<Channel>, ClientError> {
        let v = self.send(Request::GetSubscribedChannels {}).await?;
        let views: Vec<ChannelView> = Self::parse(v["items"].clone())?;
        Ok(views.into_iter().map(|c| self.channel(c)).collect())
    }

    /// A channel by SID or unique name (like `getChannelBySid` / `getChannelByUniqueName`).
    pub async fn get_channel(&self, sid_or_unique_name: &str) -> Result<Channel, ClientError> {
        let v = self
            .send(Request::GetChannel {
                channel: sid_or_unique_name.to_owned(),
            })
            .await?;
        Ok(self.channel(Self::parse(v)?))
    }

    /// Creates a channel; the creator is not a member until it joins (and then gets the
    /// channel creator role).
    pub async fn create_channel(
        &self,
        options: CreateChannelOptions,
    ) -> Result<Channel, ClientError> {
        let v = self
            .send(Request::CreateChannel {
                friendly_name: options.friendly_name,
                unique_name: options.unique_name,
                is_private: options.is_private,
                attributes: options.attributes,
            })
            .await?;
        Ok(self.channel(Self::parse(v)?))
    }

    /// A user by identity.
    pub async fn get_user(&self, identity: &str) -> Result<UserView, ClientError> {
        let v = self
            .send(Request::GetUser {
                identity: identity.to_owned(),
            })
            .await?;
        Self::parse(v)
    }

    /// Changes the user's friendly name and/or attributes.
    pub async fn update_user(
        &self,
        friendly_name: Option<&str>,
        attributes: Option<Value>,
    ) -> Result<UserView, ClientError> {
        let v = self
            .send(Request::UpdateUser {
                friendly_name: friendly_name.map(str::to_owned),
                attributes,
            })
            .await?;
        Self::parse(v)
    }

    /// Replaces the token (for the same identity and service). Connected, the server checks it
    /// at once; disconnected (for instance after `tokenExpired`), the next reconnect uses it.
    pub async fn update_token(&self, token: &str) -> Result<(), ClientError> {
        if self.connection_state() != ConnectionState::Connected {
            *lock(&self.shared.token) = token.to_owned();
            return Ok(());
        }
        self.send(Request::UpdateToken {
            token: token.to_owned(),
        })
        .await?;
        *lock(&self.shared.token) = token.to_owned();
        Ok(())
    }

    /// Drops the connection and stays offline until [`Client::go_online`] (as a lost network
    /// would); calls made meanwhile wait.
    pub fn go_offline(&self) {
        let _ = self.shared.online.send(false);
    }

    /// Reconnects after [`Client::go_offline`], resuming every channel.
    pub fn go_online(&self) {
        let _ = self.shared.online.send(true);
    }

    /// The newest `seq` delivered per channel (what a reconnect resumes from).
    pub fn last_seqs(&self) -> HashMap<String, u64> {
        lock(&self.shared.last_seq).clone()
    }

    /// Closes the connection for good (every clone of this client stops working).
    pub fn shutdown(&self) {
        let _ = self.shared.closed.send(true);
    }
}
