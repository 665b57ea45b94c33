//! One connection's protocol state: decoding request frames, rate limits, `init` (token,
//! registration with the hub, resume) and token renewal. The operations themselves are in
//! [`super::ops`]; this file holds no rule about who may do what (the application layer and the
//! channel actors decide, on current state).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use confab_app::channels::UserRef;
use confab_app::{AppError, Caller};
use confab_domain::{Channel, ChannelSid, Member, ServiceSid};
use confab_protocol::realtime::{self as rt, CloseCode, Request, RequestFrame, UserView};
use serde_json::{json, Value};

use super::frames::{
    classify, error_body, now_secs, token_error, Malformed, TokenBucket, Undecodable,
};
use super::hub::{Outbound, Outbox, SessionId};
use crate::token;
use crate::AppState;

/// The close of a session that was kicked with `code`: draining, else too slow.
pub(super) fn kicked_close(code: CloseCode) -> (CloseCode, &'static str) {
    match code {
        CloseCode::Draining => (CloseCode::Draining, "draining: reconnect elsewhere"),
        _ => (CloseCode::TooSlow, "too slow: reconnect and resume"),
    }
}

/// What the reader loop does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep reading.
    Continue,
    /// Close with this code and reason.
    Close(CloseCode, &'static str),
}

/// The authenticated side of a connection: who it acts for, and until when.
pub(super) struct Auth {
    pub(super) caller: Caller,
    pub(super) service: ServiceSid,
    pub(super) identity: String,
    expires_at: u64,
    warned: bool,
}

impl Auth {
    /// The user this connection acts for.
    pub(super) fn user(&self) -> UserRef<'_> {
        UserRef {
            service: self.service,
            identity: &self.identity,
        }
    }
}

/// A connection's state and its operations.
pub(super) struct Connection {
    pub(super) state: Arc<AppState>,
    pub(super) id: SessionId,
    outbox: Outbox,
    pub(super) auth: Option<Auth>,
    bucket: TokenBucket,
    refusals_in_row: u32,
}

impl Connection {
    pub(super) fn new(state: Arc<AppState>, outbox: Outbox) -> Self {
        let cfg = &state.realtime;
        let bucket = TokenBucket::new(cfg.ops_per_sec, cfg.ops_burst);
        Self {
            id: state.hub.next_session_id(),
            state,
            outbox,
            auth: None,
            bucket,
            refusals_in_row: 0,
        }
    }

    pub(super) fn is_initialized(&self) -> bool {
        self.auth.is_some()
    }

    /// Forgets the session in the hub.
    pub(super) fn shutdown(&mut self) {
        if self.auth.is_some() {
            self.state.hub.unregister(self.id);
            if let Some(m) = &self.state.metrics {
                m.sessions.dec();
            }
        }
    }

    /// The authenticated side (51007 before `init`).
    pub(super) fn auth(&self) -> Result<&Auth, AppError> {
        self.auth
            .as_ref()
            .ok_or_else(|| AppError::token_rejected("send init first"))
    }

    /// When the token timer should next fire.
    pub(super) fn next_token_deadline(&self) -> Option<Instant> {
        let auth = self.auth.as_ref()?;
        let now = now_secs();
        let warn_at = auth
            .expires_at
            .saturating_sub(self.state.realtime.token_warning_secs);
        let at = if auth.warned {
            auth.expires_at
        } else {
            warn_at
        };
        // Capped: a token valid for centuries must not overflow the clock.
        let wait = at.saturating_sub(now).min(365 * 24 * 3600);
        Some(Instant::now() + Duration::from_secs(wait))
    }

    /// Sends `tokenAboutToExpire` or, at expiry, `tokenExpired` and closes.
    pub(super) fn token_timer(&mut self) -> Flow {
        let now = now_secs();
        let Some(auth) = self.auth.as_mut() else {
            return Flow::Continue;
        };
        if now >= auth.expires_at {
            self.push(json!({"type": "tokenExpired"}).to_string());
            return Flow::Close(CloseCode::TokenExpired, "token expired");
        }
        if !auth.warned {
            auth.warned = true;
            let ttl = auth.expires_at.saturating_sub(now);
            self.push(json!({"type": "tokenAboutToExpire", "ttl": ttl}).to_string());
        }
        Flow::Continue
    }

    /// Queues a frame for the client; a full outbox (in frames or in bytes) is the
    /// slow-consumer case.
    pub(super) fn push(&self, frame: String) -> bool {
        self.outbox.offer(Outbound::Frame(ByteString::from(frame)))
    }

    fn refuse(&self, id: u64, e: &AppError) -> bool {
        self.push(rt::reply_err(id, &error_body(e)))
    }

    /// Handles one text frame.
    pub(super) async fn handle_text(&mut self, text: &str) -> Flow {
        let (id, decoded) = match serde_json::from_str::<RequestFrame>(text) {
            Ok(frame) => (frame.id, Ok(frame.request)),
            Err(e) => match classify(text, &e) {
                Undecodable::Close(why) => return Flow::Close(CloseCode::Unsupported, why),
                Undecodable::Refuse {
                    id,
                    init,
                    known,
                    error,
                } => (id, Err(Malformed { init, known, error })),
            },
        };
        // Refused frames count against the rate too: a flood of bad frames costs a decode each.
        if !self.bucket.take() {
            self.refusals_in_row += 1;
            if let Some(m) = &self.state.metrics {
                m.rate_limited.inc();
            }
            if self.refusals_in_row >= self.state.realtime.close_after_refusals {
                return Flow::Close(CloseCode::RateLimited, "rate limited");
            }
            self.refuse(id, &AppError::too_many_requests());
            return Flow::Continue;
        }
        self.refusals_in_row = 0;
        let request = match decoded {
            // An unknown operation is refused as such, before or after init.
            Err(Malformed {
                known: false,
                error,
                ..
            }) => Err(error),
            // A malformed first init ends the session: there is no token to go on with.
            Err(Malformed {
                init: true, error, ..
            }) if self.auth.is_none() => {
                self.refuse(id, &error);
                return Flow::Close(CloseCode::BadToken, "bad token");
            }
            Ok(Request::Init { token, resume }) => return self.init(id, &token, resume).await,
            _ if self.auth.is_none() => {
                self.refuse(id, &AppError::token_rejected("send init first"));
                return Flow::Continue;
            }
            Err(Malformed { init: true, .. }) => Err(AppError::invalid("Already initialized")),
            Err(Malformed { error, .. }) => Err(error),
            Ok(Request::UpdateToken { token }) => return self.update_token(id, &token),
            Ok(request) => Ok(request),
        };
        let result = match request {
            Ok(request) => self.dispatch(request).await,
            Err(e) => Err(e),
        };
        let sent = match result {
            Ok(value) => self.push(rt::reply_ok(id, &value)),
            Err(e) => self.refuse(id, &e),
        };
        if sent {
            Flow::Continue
        } else {
            Flow::Close(CloseCode::TooSlow, "too slow: reconnect and resume")
        }
    }

    // === init and tokens ===

    async fn init(&mut self, id: u64, token: &str, resume: HashMap<String, u64>) -> Flow {
        if self.auth.is_some() {
            self.refuse(id, &AppError::invalid("Already initialized"));
            return Flow::Continue;
        }
        match self.authenticate(token, resume).await {
            Ok(started) => {
                self.push(rt::reply_ok(id, &started.reply));
                self.follow(started).await
            }
            Err((e, flow)) => {
                self.refuse(id, &e);
                flow
            }
        }
    }

    /// Checks the token and starts the session (registered with the hub); on refusal, the
    /// error and how the connection goes on. The caller answers, then calls
    /// [`Connection::follow`].
    pub(super) async fn authenticate(
        &mut self,
        token: &str,
        resume: HashMap<String, u64>,
    ) -> Result<Started, (AppError, Flow)> {
        let max = self.state.realtime.max_token_lifetime_secs;
        let grant = match token::verify(&self.state.credentials, token, max) {
            Ok(grant) => grant,
            Err(e) => {
                let (e, close) = token_error(e);
                return Err((e, Flow::Close(close, "bad token")));
            }
        };
        match self.start_session(grant, resume).await {
            Ok((reply, markers, follow)) => Ok(Started {
                reply,
                markers,
                follow,
            }),
            Err(e) => {
                let flow = if e.is_token_rejection() {
                    Flow::Close(CloseCode::BadToken, "bad token")
                } else {
                    Flow::Close(CloseCode::ServerError, "cannot start the session")
                };
                Err((e, flow))
            }
        }
    }

    /// Follows the channels of a started session: its writer's markers, the hub's
    /// subscriptions, the announcement to its peers.
    pub(super) async fn follow(&mut self, started: Started) -> Flow {
        // Awaited, not offered: a user in many channels queues more markers than the outbox
        // holds, and the writer drains them meanwhile.
        // A writer that frees no slot for a whole client timeout is stuck on a client that
        // does not read (each slot frees as the writer hands out an item).
        let wait = std::time::Duration::from_secs(self.state.realtime.client_timeout_secs.max(1));
        for item in started.markers {
            let kicked = match tokio::time::timeout(wait, self.outbox.send(item)).await {
                Ok(Ok(())) => continue,
                // Kicked (draining or too slow) or the writer is gone: close as asked.
                Ok(Err(_)) => self.outbox.kick.code().unwrap_or(CloseCode::TooSlow),
                Err(_) => CloseCode::TooSlow,
            };
            let (code, reason) = kicked_close(kicked);
            return Flow::Close(code, reason);
        }
        for (channel, as_of) in started.follow {
            self.state.hub.subscribe(self.id, channel, as_of);
        }
        self.state.hub.announce(self.id);
        Flow::Continue
    }

    /// Registers the session and works out its channels; returns the reply, the writer markers
    /// (subscriptions, catch-ups) and the channels the hub must subscribe it to.
    async fn start_session(
        &mut self,
        grant: token::Grant,
        resume: HashMap<String, u64>,
    ) -> Result<(Value, Vec<Outbound>, Vec<(ChannelSid, u64)>), AppError> {
        let state = self.state.clone();
        let app = &state.app;
        // From the policy cache (at most `runtime.policy_cache_ms` old; a change through this
        // node applies at once): a burst of reconnections does not read the service each time.
        let service = app
            .cached_service(grant.service_sid)
            .await?
            .ok_or_else(|| AppError::token_rejected("unknown service"))?
            .service
            .clone();
        let caller = Caller::user(service.sid, grant.identity.clone());
        let user = app
            .ensure_user_for(&caller, false, &service, &grant.identity)
            .await?;
        // With reachability off the user's online status is nobody's business (`null`), and
        // the hub announces nothing.
        let reachable = service.reachability_enabled.then_some(true);
        // Registered before the channels are read, so that no membership change in between is
        // missed: the hub subscribes it to channels joined from now on (in cluster mode, once
        // the user's topic is subscribed; the wait is bounded so that a Redis outage delays
        // the init, not blocks it).
        state
            .hub
            .register(
                self.id,
                service.sid,
                grant.identity.clone(),
                UserView::new(&user, reachable),
                self.outbox.clone(),
                Duration::from_secs(5),
            )
            .await;
        if let Some(m) = &state.metrics {
            m.sessions.inc();
        }
        self.auth = Some(Auth {
            caller: Caller::user(service.sid, grant.identity.clone()),
            service: service.sid,
            identity: grant.identity.clone(),
            expires_at: grant.expires_at,
            warned: false,
        });
        let me = self.auth()?.user();
        let max = state.realtime.max_subscribed;
        let user_channels = app.user_channels(me, max).await?;
        let mut channels = Vec::new();
        let mut markers = Vec::new();
        let mut follow = Vec::new();
        let mut resumed = serde_json::Map::new();
        for (channel, member) in &user_channels.memberships {
            channels.push(rt::ChannelView::for_member(channel, member));
            let sid = channel.sid;
            let from = match resume.get(&sid.to_string()) {
                Some(last) if *last <= channel.last_seq => {
                    let whole = self.replay_possible(channel, member, *last).await?;
                    resumed.insert(sid.to_string(), json!(whole));
                    if whole {
                        *last
                    } else {
                        channel.last_seq
                    }
                }
                Some(_) => {
                    resumed.insert(sid.to_string(), json!(false));
                    channel.last_seq
                }
                None => channel.last_seq,
            };
            markers.push(Outbound::Subscribed {
                channel: sid,
                after: from,
            });
            markers.push(Outbound::Catchup {
                channel: sid,
                upto: channel.last_seq,
            });
            follow.push((sid, channel.last_seq));
        }
        for key in resume.keys() {
            if !resumed.contains_key(key) {
                resumed.insert(key.clone(), json!(false));
            }
        }
        for (channel, _) in &user_channels.invitations {
            channels.push(rt::ChannelView::new(channel, "invited", None));
        }
        let reply = json!({
            "identity": grant.identity,
            "user": UserView::new(&user, reachable),
            "reachabilityEnabled": service.reachability_enabled,
            "channels": channels,
            "resumed": resumed,
            "protocolVersion": rt::PROTOCOL_VERSION,
        });
        Ok((reply, markers, follow))
    }

    /// Whether every event after `last` is still retained, and all of them happened while the
    /// user was a member (a client that left and was re-added while offline must reload, not
    /// receive what happened in between).
    async fn replay_possible(
        &self,
        channel: &Channel,
        member: &Member,
        last: u64,
    ) -> Result<bool, AppError> {
        if channel.last_seq == last {
            return Ok(true);
        }
        if channel.last_seq - last > self.state.realtime.max_replay as u64 {
            return Ok(false);
        }
        let first = self
            .state
            .app
            .store()
            .events_after(channel.sid, last, 1)
            .await?;
        Ok(first
            .first()
            .is_some_and(|e| e.seq == last + 1 && e.at >= member.date_created))
    }

    fn update_token(&mut self, id: u64, token: &str) -> Flow {
        match self.renew_token(token) {
            Ok(()) => self.push(rt::reply_ok(id, &json!({}))),
            Err(e) => self.refuse(id, &e),
        };
        Flow::Continue
    }

    /// Takes a new token for the same identity and service: the session lasts until it expires.
    pub(super) fn renew_token(&mut self, token: &str) -> Result<(), AppError> {
        let max = self.state.realtime.max_token_lifetime_secs;
        let grant =
            token::verify(&self.state.credentials, token, max).map_err(|e| token_error(e).0)?;
        match self.auth.as_mut() {
            Some(auth) if grant.identity == auth.identity && grant.service_sid == auth.service => {
                auth.expires_at = grant.expires_at;
                auth.warned = false;
                Ok(())
            }
            _ => Err(AppError::token_rejected(
                "the token is for another identity or service",
            )),
        }
    }
}

/// A session that passed `init`: its reply, and what [`Connection::follow`] sets up.
pub(super) struct Started {
    /// The `init` reply.
    pub(super) reply: Value,
    markers: Vec<Outbound>,
    follow: Vec<(ChannelSid, u64)>,
}
