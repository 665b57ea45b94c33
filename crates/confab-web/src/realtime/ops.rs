//! The operations of the realtime protocol, for one connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use confab_cluster::{ChannelOp, MessageChange};
use confab_domain::{
    can, Action, AddMember, Attributes, Channel, ChannelCommand, ChannelEvent, ChannelEventKind,
    ChannelSid, ChannelType, ConsumptionUpdate, CreateChannel, InviteMember, Member, MemberRef,
    PostMessage, Role, RoleSid, Service, UpdateChannel, UpdateMember, User,
};
use confab_protocol::realtime::{
    self as rt, ChannelView, ErrorBody, MemberView, MessageView, MessagesPage, PageView, UserView,
};
use confab_store::{MemberKey, PageRequest, PageStart};
use serde::Deserialize;
use serde_json::{json, Value};

use super::hub::{Outbound, Outbox, SessionId};
use crate::error::ApiError;
use crate::token::{self, TokenError};
use crate::AppState;

/// What the reader loop does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Keep reading.
    Continue,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// The authenticated side of a connection.
struct Auth {
    identity: String,
    service: Service,
    user: User,
    expires_at: u64,
    warned: bool,
}

/// A connection's state and its operations.
pub(super) struct Connection {
    state: Arc<AppState>,
    id: SessionId,
    outbox: Outbox,
    auth: Option<Auth>,
    roles: HashMap<RoleSid, (Instant, Role)>,
    bucket: TokenBucket,
    refusals_in_row: u32,
}

/// Ops per second with a burst allowance.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A request frame: `{"type": op, "id": n, ...params}`.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    op: String,
    id: u64,
}

type OpResult = Result<Value, ApiError>;

fn params<T: for<'de> Deserialize<'de>>(frame: &Value) -> Result<T, ApiError> {
    serde_json::from_value(frame.clone())
        .map_err(|e| ApiError::invalid(format!("Invalid parameters: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelParam {
    channel: String,
}

fn error_body(e: &ApiError) -> ErrorBody {
    ErrorBody {
        code: e.code,
        message: e.message.clone(),
        status: e.status,
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn not_authorized(permission: confab_domain::Permission) -> ApiError {
    ApiError::new(
        50107,
        403,
        format!("User not authorized for command: needs {permission}"),
    )
}

fn find<T>(
    events: &[ChannelEvent],
    pick: impl Fn(&ChannelEventKind) -> Option<T>,
) -> Result<T, ApiError> {
    crate::rest::find_event(events, pick)
}

impl Connection {
    pub(super) fn new(state: Arc<AppState>, outbox: Outbox) -> Self {
        let cfg = &state.realtime;
        let bucket = TokenBucket {
            tokens: f64::from(cfg.ops_burst),
            rate: f64::from(cfg.ops_per_sec),
            burst: f64::from(cfg.ops_burst.max(1)),
            last: Instant::now(),
        };
        Self {
            id: state.hub.next_session_id(),
            state,
            outbox,
            auth: None,
            roles: HashMap::new(),
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
            return Flow::Close(4002, "token expired");
        }
        if !auth.warned {
            auth.warned = true;
            let ttl = auth.expires_at.saturating_sub(now);
            self.push(json!({"type": "tokenAboutToExpire", "ttl": ttl}).to_string());
        }
        Flow::Continue
    }

    /// Queues a frame for the client; a full outbox is the slow-consumer case.
    fn push(&self, frame: String) -> bool {
        match self
            .outbox
            .tx
            .try_send(Outbound::Frame(ByteString::from(frame)))
        {
            Ok(()) => true,
            Err(_) => {
                self.outbox.kick.kick(4009);
                false
            }
        }
    }

    /// Handles one text frame.
    pub(super) async fn handle_text(&mut self, text: &str) -> Flow {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return Flow::Close(1003, "frame is not JSON");
        };
        let Ok(request) = serde_json::from_value::<Request>(frame.clone()) else {
            return match frame.get("id").and_then(Value::as_u64) {
                Some(id) => {
                    let e = ApiError::new(50302, 400, "Unknown or malformed operation");
                    self.push(rt::reply_err(id, &error_body(&e)));
                    Flow::Continue
                }
                None => Flow::Close(1003, "frame is not a request"),
            };
        };
        if !self.bucket.take() {
            self.refusals_in_row += 1;
            if let Some(m) = &self.state.metrics {
                m.rate_limited.inc();
            }
            if self.refusals_in_row >= self.state.realtime.close_after_refusals {
                return Flow::Close(4029, "rate limited");
            }
            let e = ApiError::new(20429, 429, "Too many requests");
            self.push(rt::reply_err(request.id, &error_body(&e)));
            return Flow::Continue;
        }
        self.refusals_in_row = 0;
        if request.op == "init" {
            return self.init(request.id, &frame).await;
        }
        if self.auth.is_none() {
            let e = ApiError::new(
                51007,
                401,
                "Token authentication is rejected: send init first",
            );
            self.push(rt::reply_err(request.id, &error_body(&e)));
            return Flow::Continue;
        }
        if request.op == "updateToken" {
            return self.update_token(request.id, &frame);
        }
        let result = self.dispatch(&request.op, &frame).await;
        let sent = match result {
            Ok(value) => self.push(rt::reply_ok(request.id, &value)),
            Err(e) => self.push(rt::reply_err(request.id, &error_body(&e))),
        };
        if sent {
            Flow::Continue
        } else {
            Flow::Close(4009, "too slow: reconnect and resume")
        }
    }

    async fn dispatch(&mut self, op: &str, frame: &Value) -> OpResult {
        match op {
            "getPublicChannelDescriptors" => self.public_descriptors(frame).await,
            "getUserChannelDescriptors" => self.user_descriptors(frame).await,
            "getSubscribedChannels" => Ok(json!({"items": self.subscribed_channels().await?})),
            "getChannel" => {
                let (channel, status, member) = self.visible_channel(frame).await?;
                Ok(json!(self.view(&channel, status, member.as_ref())))
            }
            "createChannel" => self.create_channel(frame).await,
            "join" => self.join(frame).await,
            "leave" => self.leave(frame).await,
            "decline" => self.decline(frame).await,
            "invite" => self.invite_or_add(frame, false).await,
            "add" => self.invite_or_add(frame, true).await,
            "removeMember" => self.remove_member(frame).await,
            "updateChannel" => self.update_channel(frame).await,
            "deleteChannel" => self.delete_channel(frame).await,
            "getMembers" => self.get_members(frame).await,
            "sendMessage" => self.send_message(frame).await,
            "getMessages" => self.get_messages(frame).await,
            "updateMessage" => self.update_message(frame).await,
            "removeMessage" => self.remove_message(frame).await,
            "typing" => self.typing(frame).await,
            "updateLastConsumedMessageIndex" => {
                #[derive(Deserialize)]
                struct P {
                    index: Option<u64>,
                }
                let p: P = params(frame)?;
                self.consume(frame, ConsumptionUpdate::Set(p.index)).await
            }
            "advanceLastConsumedMessageIndex" => {
                #[derive(Deserialize)]
                struct P {
                    index: u64,
                }
                let p: P = params(frame)?;
                self.consume(frame, ConsumptionUpdate::Advance(p.index))
                    .await
            }
            "setAllMessagesConsumed" => self.consume(frame, ConsumptionUpdate::All).await,
            "setNoMessagesConsumed" => self.consume(frame, ConsumptionUpdate::Set(None)).await,
            "getUnconsumedMessagesCount" => {
                let (channel, member) = self.member_channel(frame).await?;
                Ok(json!({"count": self.unread(&channel, &member).await?}))
            }
            "getMessagesCount" => {
                let (channel, _) = self.member_channel(frame).await?;
                Ok(json!({"count": channel.messages_count}))
            }
            "getMembersCount" => {
                let (channel, _, _) = self.visible_channel(frame).await?;
                Ok(json!({"count": channel.members_count}))
            }
            "getUser" => self.get_user(frame).await,
            "updateUser" => self.update_user(frame).await,
            _ => Err(ApiError::new(
                50302,
                400,
                format!("Unknown operation {op:?}"),
            )),
        }
    }

    fn auth(&self) -> Result<&Auth, ApiError> {
        self.auth
            .as_ref()
            .ok_or_else(|| ApiError::new(51007, 401, "Token authentication is rejected"))
    }

    // === init and tokens ===

    async fn init(&mut self, id: u64, frame: &Value) -> Flow {
        #[derive(Deserialize)]
        struct P {
            token: String,
            #[serde(default)]
            resume: HashMap<String, u64>,
        }
        if self.auth.is_some() {
            let e = ApiError::invalid("Already initialized");
            self.push(rt::reply_err(id, &error_body(&e)));
            return Flow::Continue;
        }
        let p: P = match params(frame) {
            Ok(p) => p,
            Err(e) => {
                self.push(rt::reply_err(id, &error_body(&e)));
                return Flow::Close(4001, "bad token");
            }
        };
        let grant = match token::verify(&self.state.credentials, &p.token) {
            Ok(grant) => grant,
            Err(TokenError::Expired) => {
                let e = ApiError::new(
                    20104,
                    401,
                    "Access Token expired or expiration date invalid",
                );
                self.push(rt::reply_err(id, &error_body(&e)));
                return Flow::Close(4002, "token expired");
            }
            Err(TokenError::Invalid(why)) => {
                let e = ApiError::new(
                    51007,
                    401,
                    format!("Token authentication is rejected: {why}"),
                );
                self.push(rt::reply_err(id, &error_body(&e)));
                return Flow::Close(4001, "bad token");
            }
        };
        match self.start_session(grant, p.resume).await {
            Ok((reply, markers, follow)) => {
                self.push(rt::reply_ok(id, &reply));
                // Awaited, not offered: a user in many channels queues more markers than the
                // outbox holds, and the writer drains them meanwhile.
                for item in markers {
                    if self.outbox.tx.send(item).await.is_err() {
                        return Flow::Close(1011, "session ended");
                    }
                }
                for (channel, as_of) in follow {
                    self.state.hub.subscribe(self.id, channel, as_of);
                }
                self.state.hub.announce(self.id);
                Flow::Continue
            }
            Err(e) => {
                self.push(rt::reply_err(id, &error_body(&e)));
                if e.code == 51007 {
                    Flow::Close(4001, "bad token")
                } else {
                    Flow::Close(1011, "cannot start the session")
                }
            }
        }
    }

    /// Registers the session and works out its channels; returns the reply, the writer markers
    /// (subscriptions, catch-ups) and the channels the hub must subscribe it to.
    async fn start_session(
        &mut self,
        grant: token::Grant,
        resume: HashMap<String, u64>,
    ) -> Result<(Value, Vec<Outbound>, Vec<(ChannelSid, u64)>), ApiError> {
        let state = self.state.clone();
        let service = state
            .store
            .get_service(grant.service_sid)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    51007,
                    401,
                    "Token authentication is rejected: unknown service",
                )
            })?;
        let user = crate::rest::ensure_user(&state, &service, &grant.identity).await?;
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
                UserView::new(&user, true),
                self.outbox.clone(),
                std::time::Duration::from_secs(5),
            )
            .await;
        if let Some(m) = &state.metrics {
            m.sessions.inc();
        }
        self.auth = Some(Auth {
            identity: grant.identity.clone(),
            service,
            user: user.clone(),
            expires_at: grant.expires_at,
            warned: false,
        });
        let memberships = self.memberships().await?;
        let mut channels = Vec::new();
        let mut markers = Vec::new();
        let mut follow = Vec::new();
        let mut resumed = serde_json::Map::new();
        for (channel, member) in &memberships {
            channels.push(self.view(channel, "joined", Some(member)));
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
        for (channel, _) in self.invitations().await? {
            channels.push(self.view(&channel, "invited", None));
        }
        let reply = json!({
            "identity": grant.identity,
            "user": UserView::new(&user, true),
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
    ) -> Result<bool, ApiError> {
        if channel.last_seq == last {
            return Ok(true);
        }
        if channel.last_seq - last > self.state.realtime.max_replay as u64 {
            return Ok(false);
        }
        let first = self.state.store.events_after(channel.sid, last, 1).await?;
        Ok(first
            .first()
            .is_some_and(|e| e.seq == last + 1 && e.at >= member.date_created))
    }

    fn update_token(&mut self, id: u64, frame: &Value) -> Flow {
        #[derive(Deserialize)]
        struct P {
            token: String,
        }
        let result = params::<P>(frame).and_then(|p| {
            token::verify(&self.state.credentials, &p.token).map_err(|e| match e {
                TokenError::Expired => ApiError::new(20104, 401, "Access Token expired"),
                TokenError::Invalid(why) => {
                    ApiError::new(51007, 401, format!("Token rejected: {why}"))
                }
            })
        });
        match (result, self.auth.as_mut()) {
            (Ok(grant), Some(auth))
                if grant.identity == auth.identity && grant.service_sid == auth.service.sid =>
            {
                auth.expires_at = grant.expires_at;
                auth.warned = false;
                self.push(rt::reply_ok(id, &json!({})));
            }
            (Ok(_), _) => {
                let e = ApiError::new(51007, 401, "Token is for another identity or service");
                self.push(rt::reply_err(id, &error_body(&e)));
            }
            (Err(e), _) => {
                self.push(rt::reply_err(id, &error_body(&e)));
            }
        }
        Flow::Continue
    }

    // === helpers ===

    /// The caller's memberships with their channels, up to the configured maximum.
    async fn memberships(&self) -> Result<Vec<(Channel, Member)>, ApiError> {
        let auth = self.auth()?;
        let mut page = PageRequest::first(100);
        let mut out = Vec::new();
        loop {
            let got = self
                .state
                .store
                .list_memberships(auth.service.sid, &auth.identity, &page)
                .await?;
            for member in got.items {
                if let Some(channel) = self
                    .state
                    .store
                    .get_channel(auth.service.sid, member.channel_sid)
                    .await?
                {
                    out.push((channel, member));
                }
            }
            match got.next {
                Some(cursor) if out.len() < self.state.realtime.max_subscribed => {
                    page.start = PageStart::After(cursor)
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn invitations(&self) -> Result<Vec<(Channel, confab_domain::Invite)>, ApiError> {
        let auth = self.auth()?;
        let page = PageRequest::first(self.state.realtime.max_subscribed.max(1));
        let invites = self
            .state
            .store
            .list_user_invites(auth.service.sid, &auth.identity, &page)
            .await?;
        let mut out = Vec::new();
        for invite in invites.items {
            if let Some(channel) = self
                .state
                .store
                .get_channel(auth.service.sid, invite.channel_sid)
                .await?
            {
                out.push((channel, invite));
            }
        }
        Ok(out)
    }

    async fn subscribed_channels(&self) -> Result<Vec<ChannelView>, ApiError> {
        let mut views: Vec<ChannelView> = self
            .memberships()
            .await?
            .iter()
            .map(|(c, m)| self.view(c, "joined", Some(m)))
            .collect();
        for (channel, _) in self.invitations().await? {
            views.push(self.view(&channel, "invited", None));
        }
        Ok(views)
    }

    fn view(&self, channel: &Channel, status: &str, member: Option<&Member>) -> ChannelView {
        ChannelView::new(
            channel,
            status,
            member.and_then(|m| m.last_consumed_message_index),
        )
    }

    /// The channel named by the `channel` parameter, if the caller may see it, with the caller's
    /// status and membership. Private channels are invisible to outsiders (50300).
    async fn visible_channel(
        &self,
        frame: &Value,
    ) -> Result<(Channel, &'static str, Option<Member>), ApiError> {
        let p: ChannelParam = params(frame)?;
        let auth = self.auth()?;
        let channel = crate::rest::load_channel(&self.state, auth.service.sid, &p.channel).await?;
        let member = self
            .state
            .store
            .get_member(channel.sid, &MemberKey::Identity(auth.identity.clone()))
            .await?;
        if member.is_some() {
            return Ok((channel, "joined", member));
        }
        let invited = self
            .state
            .store
            .list_invites(
                channel.sid,
                std::slice::from_ref(&auth.identity),
                &PageRequest::first(1),
            )
            .await?;
        if !invited.items.is_empty() {
            return Ok((channel, "invited", None));
        }
        if channel.kind == ChannelType::Private && channel.created_by != auth.identity {
            return Err(crate::rest::channel_not_found());
        }
        Ok((channel, "notParticipating", None))
    }

    /// The channel and the caller's membership of it (50400 when not a member).
    async fn member_channel(&self, frame: &Value) -> Result<(Channel, Member), ApiError> {
        let (channel, _, member) = self.visible_channel(frame).await?;
        let member =
            member.ok_or_else(|| ApiError::new(50400, 403, "User not member of channel"))?;
        Ok((channel, member))
    }

    /// The role, from a per-connection cache refreshed every 30 s.
    async fn role(&mut self, sid: RoleSid) -> Result<Option<Role>, ApiError> {
        if let Some((at, role)) = self.roles.get(&sid) {
            if at.elapsed() < Duration::from_secs(30) {
                return Ok(Some(role.clone()));
            }
        }
        let service = self.auth()?.service.sid;
        let role = self.state.store.get_role(service, sid).await?;
        if let Some(role) = &role {
            self.roles.insert(sid, (Instant::now(), role.clone()));
        }
        Ok(role)
    }

    /// Checks the caller's service role (and channel role, if a member) for `action` on a target
    /// owned by `owner`.
    async fn authorize(
        &mut self,
        member: Option<&Member>,
        action: Action,
        owner: Option<&str>,
    ) -> Result<(), ApiError> {
        let user_role = self.auth()?.user.role_sid;
        let mut roles = Vec::new();
        if let Some(role) = self.role(user_role).await? {
            roles.push(role);
        }
        if let Some(member) = member {
            if let Some(role) = self.role(member.role_sid).await? {
                roles.push(role);
            }
        }
        let refs: Vec<&Role> = roles.iter().collect();
        let identity = self.auth()?.identity.clone();
        can(&refs, action, &identity, owner).map_err(not_authorized)
    }

    async fn execute(
        &self,
        channel: ChannelSid,
        op: ChannelOp,
    ) -> Result<Vec<ChannelEvent>, ApiError> {
        Ok(self.state.runtime.execute(channel, op).await?)
    }

    async fn unread(&self, channel: &Channel, member: &Member) -> Result<u64, ApiError> {
        Ok(self
            .state
            .store
            .count_messages_after(channel.sid, member.last_consumed_message_index)
            .await?)
    }

    // === channels ===

    async fn descriptors(&self, frame: &Value, types: &[ChannelType], mine: bool) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            page_size: Option<usize>,
            page_token: Option<String>,
        }
        let p: P = params(frame)?;
        let size = p
            .page_size
            .unwrap_or(50)
            .clamp(1, self.state.limits.max_page_size);
        let start = p.page_token.map_or(PageStart::First, PageStart::After);
        let page = PageRequest {
            size,
            start,
            descending: false,
        };
        let auth = self.auth()?;
        if mine {
            let got = self
                .state
                .store
                .list_memberships(auth.service.sid, &auth.identity, &page)
                .await?;
            let mut items = Vec::new();
            for member in &got.items {
                if let Some(channel) = self
                    .state
                    .store
                    .get_channel(auth.service.sid, member.channel_sid)
                    .await?
                {
                    items.push(self.view(&channel, "joined", Some(member)));
                }
            }
            return Ok(json!(PageView {
                items,
                next_page_token: got.next
            }));
        }
        let got = self
            .state
            .store
            .list_channels(auth.service.sid, types, &page)
            .await?;
        let items: Vec<ChannelView> = got
            .items
            .iter()
            .map(|c| self.view(c, "notParticipating", None))
            .collect();
        Ok(json!(PageView {
            items,
            next_page_token: got.next
        }))
    }

    async fn public_descriptors(&self, frame: &Value) -> OpResult {
        self.descriptors(frame, &[ChannelType::Public], false).await
    }

    async fn user_descriptors(&self, frame: &Value) -> OpResult {
        self.descriptors(frame, &[], true).await
    }

    async fn create_channel(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            friendly_name: Option<String>,
            unique_name: Option<String>,
            #[serde(default)]
            is_private: bool,
            attributes: Option<Value>,
        }
        let p: P = params(frame)?;
        self.authorize(None, Action::CreateChannel, None).await?;
        let auth = self.auth()?;
        let sid = ChannelSid::generate(&mut confab_cluster::RandomSids);
        let create = CreateChannel {
            sid,
            service_sid: auth.service.sid,
            friendly_name: p.friendly_name,
            unique_name: p.unique_name,
            attributes: p.attributes.map(|a| a.to_string()),
            kind: if p.is_private {
                ChannelType::Private
            } else {
                ChannelType::Public
            },
            created_by: Some(auth.identity.clone()),
            date_created: None,
            date_updated: None,
        };
        let events = self.execute(sid, ChannelOp::Create(create)).await?;
        let channel = find(&events, |k| match k {
            ChannelEventKind::ChannelCreated { channel } => Some(channel.clone()),
            _ => None,
        })?;
        Ok(json!(self.view(&channel, "notParticipating", None)))
    }

    async fn join(&mut self, frame: &Value) -> OpResult {
        let (channel, status, member) = self.visible_channel(frame).await?;
        if member.is_some() {
            return Err(ApiError::new(50404, 409, "Member already exists"));
        }
        self.authorize(None, Action::JoinChannel, None).await?;
        let auth = self.auth()?;
        // A private channel is joined by invitation, or by its creator.
        if channel.kind == ChannelType::Private
            && status != "invited"
            && channel.created_by != auth.identity
        {
            return Err(not_authorized(confab_domain::Permission::JoinChannel));
        }
        // The channel's creator joins with the creator role; an invitee with its invite's role.
        let role = if channel.created_by == auth.identity {
            Some(auth.service.default_channel_creator_role_sid)
        } else {
            None
        };
        let command = ChannelCommand::AddMember(AddMember {
            identity: auth.identity.clone(),
            role_sid: role,
            default_role: auth.service.default_channel_role_sid,
            attributes: None,
            last_consumed_message_index: None,
            last_consumption_timestamp: None,
            date_created: None,
            date_updated: None,
        });
        let events = self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        let member = find(&events, |k| match k {
            ChannelEventKind::MemberJoined { member } => Some(member.clone()),
            _ => None,
        })?;
        let channel = self.fresh(&channel).await?;
        Ok(json!(self.view(&channel, "joined", Some(&member))))
    }

    async fn fresh(&self, channel: &Channel) -> Result<Channel, ApiError> {
        Ok(self
            .state
            .store
            .get_channel(channel.service_sid, channel.sid)
            .await?
            .unwrap_or_else(|| channel.clone()))
    }

    async fn leave(&mut self, frame: &Value) -> OpResult {
        let (channel, member) = self.member_channel(frame).await?;
        self.authorize(Some(&member), Action::LeaveChannel, None)
            .await?;
        let command = ChannelCommand::RemoveMember {
            member: MemberRef::Sid(member.sid),
        };
        self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        let channel = self.fresh(&channel).await?;
        Ok(json!(self.view(&channel, "notParticipating", None)))
    }

    async fn decline(&mut self, frame: &Value) -> OpResult {
        let (channel, status, _) = self.visible_channel(frame).await?;
        if status != "invited" {
            return Err(ApiError::new(50601, 404, "Invite not found"));
        }
        let identity = self.auth()?.identity.clone();
        self.execute(
            channel.sid,
            ChannelOp::Apply(ChannelCommand::Decline { identity }),
        )
        .await?;
        let channel = self.fresh(&channel).await?;
        Ok(json!(self.view(&channel, "notParticipating", None)))
    }

    async fn invite_or_add(&mut self, frame: &Value, add: bool) -> OpResult {
        #[derive(Deserialize)]
        struct P {
            identity: String,
        }
        let p: P = params(frame)?;
        let (channel, _, member) = self.visible_channel(frame).await?;
        let action = if add {
            Action::AddMember
        } else {
            Action::InviteMember
        };
        self.authorize(member.as_ref(), action, None).await?;
        let auth = self.auth()?;
        let service = auth.service.clone();
        let me = auth.identity.clone();
        crate::rest::ensure_user(&self.state, &service, &p.identity).await?;
        let command = if add {
            ChannelCommand::AddMember(AddMember {
                identity: p.identity,
                role_sid: None,
                default_role: service.default_channel_role_sid,
                attributes: None,
                last_consumed_message_index: None,
                last_consumption_timestamp: None,
                date_created: None,
                date_updated: None,
            })
        } else {
            ChannelCommand::Invite(InviteMember {
                identity: p.identity,
                role_sid: service.default_channel_role_sid,
                created_by: Some(me),
            })
        };
        self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        Ok(json!({}))
    }

    async fn remove_member(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        struct P {
            identity: String,
        }
        let p: P = params(frame)?;
        let (channel, _, member) = self.visible_channel(frame).await?;
        let me = self.auth()?.identity.clone();
        let action = if p.identity == me {
            Action::LeaveChannel
        } else {
            Action::RemoveMember
        };
        self.authorize(member.as_ref(), action, None).await?;
        let command = ChannelCommand::RemoveMember {
            member: MemberRef::Identity(p.identity),
        };
        self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        Ok(json!({}))
    }

    async fn update_channel(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            friendly_name: Option<String>,
            unique_name: Option<String>,
            attributes: Option<Value>,
        }
        let p: P = params(frame)?;
        let (channel, status, member) = self.visible_channel(frame).await?;
        if p.friendly_name.is_some() || p.unique_name.is_some() {
            self.authorize(member.as_ref(), Action::EditChannelName, None)
                .await?;
        }
        if p.attributes.is_some() {
            self.authorize(member.as_ref(), Action::EditChannelAttributes, None)
                .await?;
        }
        let command = ChannelCommand::Update(UpdateChannel {
            friendly_name: p.friendly_name,
            unique_name: p.unique_name,
            attributes: p.attributes.map(|a| a.to_string()),
            ..UpdateChannel::default()
        });
        let events = self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        let channel = find(&events, |k| match k {
            ChannelEventKind::ChannelUpdated { channel, .. } => Some(channel.clone()),
            _ => None,
        })?;
        Ok(json!(self.view(&channel, status, member.as_ref())))
    }

    async fn delete_channel(&mut self, frame: &Value) -> OpResult {
        let (channel, _, member) = self.visible_channel(frame).await?;
        self.authorize(member.as_ref(), Action::DestroyChannel, None)
            .await?;
        self.execute(channel.sid, ChannelOp::Apply(ChannelCommand::Delete))
            .await?;
        Ok(json!({}))
    }

    async fn get_members(&self, frame: &Value) -> OpResult {
        let (channel, _, _) = self.visible_channel(frame).await?;
        let mut page = PageRequest::first(200);
        let mut items = Vec::new();
        loop {
            let got = self
                .state
                .store
                .list_members(channel.sid, &[], &page)
                .await?;
            items.extend(got.items.iter().map(MemberView::from));
            match got.next {
                Some(cursor) => page.start = PageStart::After(cursor),
                None => break,
            }
        }
        Ok(json!({"items": items}))
    }

    // === messages ===

    async fn send_message(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            body: String,
            attributes: Option<Value>,
            client_id: Option<String>,
        }
        let p: P = params(frame)?;
        let (channel, member) = self.member_channel(frame).await?;
        self.authorize(Some(&member), Action::SendMessage, None)
            .await?;
        let command = ChannelCommand::PostMessage(PostMessage {
            author: member.identity.clone(),
            require_member: true,
            body: p.body,
            attributes: p.attributes.map(|a| a.to_string()),
            date_created: None,
            date_updated: None,
            last_updated_by: None,
            client_id: p.client_id.filter(|c| !c.is_empty()),
        });
        let events = self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        let message = find(&events, |k| match k {
            ChannelEventKind::MessageAdded { message } => Some(message.clone()),
            _ => None,
        })?;
        Ok(json!({"index": message.index, "sid": message.sid}))
    }

    async fn get_messages(&self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            page_size: Option<usize>,
            anchor: Option<u64>,
            direction: Option<String>,
        }
        let p: P = params(frame)?;
        let (channel, _) = self.member_channel(frame).await?;
        let size = p
            .page_size
            .unwrap_or(30)
            .clamp(1, self.state.limits.max_page_size);
        let forward = match p.direction.as_deref() {
            None | Some("backwards") => false,
            Some("forward") => true,
            Some(_) => return Err(ApiError::invalid("direction must be backwards or forward")),
        };
        let store = &self.state.store;
        let (items, has_prev, has_next) = if forward {
            let start = match p.anchor {
                Some(a) if a > 0 => PageStart::After((a - 1).to_string()),
                _ => PageStart::First,
            };
            let page = store
                .list_messages(
                    channel.sid,
                    &PageRequest {
                        size,
                        start,
                        descending: false,
                    },
                )
                .await?;
            let has_prev = match page.items.first() {
                Some(first) => {
                    let before = PageRequest {
                        size: 1,
                        start: PageStart::After(first.index.to_string()),
                        descending: true,
                    };
                    !store
                        .list_messages(channel.sid, &before)
                        .await?
                        .items
                        .is_empty()
                }
                None => false,
            };
            (page.items, has_prev, page.next.is_some())
        } else {
            let start = match p.anchor {
                Some(a) => PageStart::After(a.saturating_add(1).to_string()),
                None => PageStart::First,
            };
            let page = store
                .list_messages(
                    channel.sid,
                    &PageRequest {
                        size,
                        start,
                        descending: true,
                    },
                )
                .await?;
            let mut items = page.items;
            items.reverse();
            let newest = channel.last_message.map(|m| m.index);
            let has_next = match (items.last(), newest) {
                (Some(last), Some(newest)) => last.index < newest,
                _ => false,
            };
            (items, page.next.is_some(), has_next)
        };
        Ok(json!(MessagesPage {
            items: items.iter().map(MessageView::from).collect(),
            has_prev_page: has_prev,
            has_next_page: has_next,
        }))
    }

    /// The stored message at `index` of the channel.
    async fn message_at(
        &self,
        channel: ChannelSid,
        index: u64,
    ) -> Result<confab_domain::Message, ApiError> {
        let page = PageRequest {
            size: 1,
            start: if index == 0 {
                PageStart::First
            } else {
                PageStart::After((index - 1).to_string())
            },
            descending: false,
        };
        self.state
            .store
            .list_messages(channel, &page)
            .await?
            .items
            .into_iter()
            .find(|m| m.index == index)
            .ok_or_else(|| ApiError::new(50500, 404, "Message not found"))
    }

    async fn update_message(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        struct P {
            index: u64,
            body: Option<String>,
            attributes: Option<Value>,
        }
        let p: P = params(frame)?;
        if p.body.is_none() && p.attributes.is_none() {
            return Err(ApiError::invalid("updateMessage needs body or attributes"));
        }
        let (channel, member) = self.member_channel(frame).await?;
        let message = self.message_at(channel.sid, p.index).await?;
        if p.body.is_some() {
            self.authorize(Some(&member), Action::EditMessage, Some(&message.author))
                .await?;
        }
        if p.attributes.is_some() {
            self.authorize(
                Some(&member),
                Action::EditMessageAttributes,
                Some(&message.author),
            )
            .await?;
        }
        let change = MessageChange {
            body: p.body,
            attributes: p.attributes.map(|a| a.to_string()),
            last_updated_by: Some(member.identity.clone()),
            ..MessageChange::default()
        };
        let events = self
            .execute(
                channel.sid,
                ChannelOp::UpdateMessage {
                    message: message.sid,
                    change,
                },
            )
            .await?;
        let message = find(&events, |k| match k {
            ChannelEventKind::MessageUpdated { message, .. } => Some(message.clone()),
            _ => None,
        })?;
        Ok(json!(MessageView::from(&message)))
    }

    async fn remove_message(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        struct P {
            index: u64,
        }
        let p: P = params(frame)?;
        let (channel, member) = self.member_channel(frame).await?;
        let message = self.message_at(channel.sid, p.index).await?;
        self.authorize(Some(&member), Action::DeleteMessage, Some(&message.author))
            .await?;
        self.execute(
            channel.sid,
            ChannelOp::RemoveMessage {
                message: message.sid,
            },
        )
        .await?;
        Ok(json!({}))
    }

    async fn typing(&self, frame: &Value) -> OpResult {
        let (channel, member) = self.member_channel(frame).await?;
        let auth = self.auth()?;
        let timeout = Duration::from_secs(u64::from(auth.service.typing_indicator_timeout.max(1)));
        self.state.hub.typing(
            auth.service.sid,
            channel.sid,
            auth.identity.clone(),
            member.sid.to_string(),
            timeout,
        );
        Ok(json!({}))
    }

    async fn consume(&self, frame: &Value, update: ConsumptionUpdate) -> OpResult {
        let (channel, member) = self.member_channel(frame).await?;
        let command = ChannelCommand::UpdateMember(UpdateMember {
            member: MemberRef::Sid(member.sid),
            role_sid: None,
            attributes: None,
            consumption: Some(update),
            last_consumption_timestamp: None,
            notification_level: None,
            date_created: None,
            date_updated: None,
        });
        let events = self.execute(channel.sid, ChannelOp::Apply(command)).await?;
        let member = find(&events, |k| match k {
            ChannelEventKind::MemberUpdated { member, .. } => Some(member.clone()),
            _ => None,
        })?;
        Ok(json!({"unreadCount": self.unread(&channel, &member).await?}))
    }

    // === users ===

    async fn get_user(&self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        struct P {
            identity: String,
        }
        let p: P = params(frame)?;
        let auth = self.auth()?;
        let user = self
            .state
            .store
            .get_user_by_identity(auth.service.sid, &p.identity)
            .await?
            .ok_or_else(crate::rest::user_not_found)?;
        // This node's sessions first; in cluster mode the other nodes' too.
        let mut online = self
            .state
            .hub
            .is_online(auth.service.sid, &user.identity)
            .await;
        if !online {
            if let Some(cluster) = self.state.runtime.cluster() {
                online = cluster
                    .online_elsewhere(auth.service.sid, &user.identity)
                    .await;
            }
        }
        Ok(json!(UserView::new(&user, online)))
    }

    async fn update_user(&mut self, frame: &Value) -> OpResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct P {
            friendly_name: Option<String>,
            attributes: Option<Value>,
        }
        let p: P = params(frame)?;
        let identity = self.auth()?.identity.clone();
        self.authorize(None, Action::EditUserInfo, Some(&identity))
            .await?;
        let auth = self.auth()?;
        let limits = self.state.runtime.limits();
        let mut user = self
            .state
            .store
            .get_user_by_identity(auth.service.sid, &identity)
            .await?
            .ok_or_else(crate::rest::user_not_found)?;
        let mut reasons = Vec::new();
        if let Some(name) = p.friendly_name {
            confab_domain::limits::check_name("friendlyName", &name, limits)?;
            user.friendly_name = Some(name);
            reasons.push("friendlyName");
        }
        if let Some(attributes) = p.attributes {
            user.attributes = Attributes::parse(
                "attributes",
                &attributes.to_string(),
                limits.user_attributes_bytes,
            )?;
            reasons.push("attributes");
        }
        user.date_updated = confab_cluster::now();
        self.state.store.update_user(&user).await?;
        let view = UserView::new(&user, true);
        self.state
            .hub
            .user_updated(auth.service.sid, view.clone(), reasons);
        if let Some(auth) = self.auth.as_mut() {
            auth.user = user;
        }
        Ok(json!(view))
    }
}
