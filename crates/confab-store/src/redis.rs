//! `RedisStore`: the cluster store, on one Redis server.
//!
//! Keys of one channel share the hash tag `{CH…}` (`confab:{CH…}:msgs`, ...) so that a Redis
//! Cluster can keep a channel on one slot later. Every channel commit runs as one Lua script:
//! the Rust side turns the commit into a flat list of primitive operations (put a member, delete
//! a message, append an event, ...) with the JSON already encoded, and the script applies them
//! all or, when the unique name is taken, none. Lists page by the score of an ordering sorted set
//! (a global counter for creation order, the index for messages), so a cursor continues exactly
//! after its last item.
//!
//! Today the service-level indexes (channels of a service, unique names, memberships of a user)
//! are written by the same script, which is correct on one Redis server; a Redis Cluster needs
//! them moved to their own writes.

use async_trait::async_trait;
use confab_domain::{
    Channel, ChannelEvent, ChannelEventKind, ChannelSid, ChannelType, ChannelWebhook, Credential,
    CredentialSid, Invite, InviteSid, Member, Message, MessageSid, Role, RoleSid, Service,
    ServiceSid, User, UserSid, WebhookSid,
};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Conflict, StoreError};
use crate::traits::*;

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(data: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(data)?)
}

/// Applies one channel commit. ARGV: prefix, channel SID, service SID, fence epoch ('' for
/// none), then quadruples of (operation, a, b, c). Returns "OK", "CONFLICT" or "FENCED".
const COMMIT: &str = r#"
local p, ch, svc, fence = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tag = p .. ':{' .. ch .. '}:'
local function seq() return redis.call('INCR', p .. ':seq') end
-- A fenced commit goes through only while the writer's lease epoch is the current one.
if fence ~= '' and redis.call('HGET', tag .. 'lease', 'epoch') ~= fence then return 'FENCED' end
local i = 5
-- The unique name check comes first, so that a conflict writes nothing.
while i <= #ARGV do
  if ARGV[i] == 'CHANNEL' then
    local name = ARGV[i + 2]
    if name ~= '' then
      local owner = redis.call('HGET', p .. ':uniq:' .. svc, name)
      if owner and owner ~= ch then return 'CONFLICT' end
    end
  end
  i = i + 4
end
i = 5
while i <= #ARGV do
  local op, a, b, c = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if op == 'CHANNEL' then
    -- a: kind, b: unique name ('' for none), c: channel JSON
    local old = redis.call('HGET', tag .. 'meta', 'unique')
    if old and old ~= '' and old ~= b then redis.call('HDEL', p .. ':uniq:' .. svc, old) end
    if b ~= '' then redis.call('HSET', p .. ':uniq:' .. svc, b, ch) end
    if redis.call('EXISTS', tag .. 'ch') == 0 then
      local s = seq()
      redis.call('ZADD', p .. ':channels:' .. svc, s, ch)
      redis.call('ZADD', p .. ':channels:' .. svc .. ':' .. a, s, ch)
    end
    redis.call('SET', tag .. 'ch', c)
    redis.call('HSET', tag .. 'meta', 'unique', b, 'kind', a)
  elseif op == 'PUT_MEMBER' then
    -- a: member SID, b: identity, c: JSON
    if redis.call('HEXISTS', tag .. 'members', a) == 0 then
      local s = seq()
      redis.call('ZADD', tag .. 'member-order', s, a)
      redis.call('ZADD', p .. ':memberships:' .. svc .. ':' .. b, s, ch .. ':' .. a)
    end
    redis.call('HSET', tag .. 'members', a, c)
    redis.call('HSET', tag .. 'member-ids', b, a)
  elseif op == 'DEL_MEMBER' then
    redis.call('HDEL', tag .. 'members', a)
    redis.call('HDEL', tag .. 'member-ids', b)
    redis.call('ZREM', tag .. 'member-order', a)
    redis.call('ZREM', p .. ':memberships:' .. svc .. ':' .. b, ch .. ':' .. a)
  elseif op == 'PUT_MESSAGE' then
    -- a: index, b: message SID, c: JSON
    redis.call('HSET', tag .. 'msgs', a, c)
    redis.call('ZADD', tag .. 'msg-order', tonumber(a), a)
    redis.call('HSET', tag .. 'msg-sids', b, a)
  elseif op == 'DEL_MESSAGE' then
    redis.call('HDEL', tag .. 'msgs', a)
    redis.call('ZREM', tag .. 'msg-order', a)
    redis.call('HDEL', tag .. 'msg-sids', b)
  elseif op == 'PUT_INVITE' then
    if redis.call('HEXISTS', tag .. 'invites', a) == 0 then
      local s = seq()
      redis.call('ZADD', tag .. 'invite-order', s, a)
      redis.call('ZADD', p .. ':user-invites:' .. svc .. ':' .. b, s, ch .. ':' .. a)
    end
    redis.call('HSET', tag .. 'invites', a, c)
    redis.call('HSET', tag .. 'invite-ids', b, a)
  elseif op == 'DEL_INVITE' then
    redis.call('HDEL', tag .. 'invites', a)
    redis.call('HDEL', tag .. 'invite-ids', b)
    redis.call('ZREM', tag .. 'invite-order', a)
    redis.call('ZREM', p .. ':user-invites:' .. svc .. ':' .. b, ch .. ':' .. a)
  elseif op == 'EVENT' then
    -- a: seq, b: retention, c: JSON
    redis.call('ZADD', tag .. 'events', tonumber(a), c)
    local keep = tonumber(b)
    if tonumber(a) > keep then
      redis.call('ZREMRANGEBYSCORE', tag .. 'events', '-inf', tonumber(a) - keep)
    end
  elseif op == 'DELETE_CHANNEL' then
    local members = redis.call('HGETALL', tag .. 'member-ids')
    for j = 1, #members, 2 do
      redis.call('ZREM', p .. ':memberships:' .. svc .. ':' .. members[j], ch .. ':' .. members[j + 1])
    end
    local invites = redis.call('HGETALL', tag .. 'invite-ids')
    for j = 1, #invites, 2 do
      redis.call('ZREM', p .. ':user-invites:' .. svc .. ':' .. invites[j], ch .. ':' .. invites[j + 1])
    end
    local old = redis.call('HGET', tag .. 'meta', 'unique')
    if old and old ~= '' then redis.call('HDEL', p .. ':uniq:' .. svc, old) end
    redis.call('ZREM', p .. ':channels:' .. svc, ch)
    redis.call('ZREM', p .. ':channels:' .. svc .. ':public', ch)
    redis.call('ZREM', p .. ':channels:' .. svc .. ':private', ch)
    for _, k in ipairs({'ch', 'meta', 'members', 'member-ids', 'member-order', 'msgs', 'msg-order',
        'msg-sids', 'invites', 'invite-ids', 'invite-order', 'events', 'webhooks', 'webhook-order'}) do
      redis.call('DEL', tag .. k)
    end
  end
  i = i + 4
end
return 'OK'
"#;

/// Creates a service with its roles. ARGV: service key, services index, sequence key, SID,
/// JSON, roles hash, roles index, then (role SID, role JSON) pairs.
const CREATE_SERVICE: &str = r#"
if not redis.call('SET', ARGV[1], ARGV[5], 'NX') then return 'CONFLICT' end
redis.call('ZADD', ARGV[2], redis.call('INCR', ARGV[3]), ARGV[4])
for i = 8, #ARGV, 2 do
  redis.call('HSET', ARGV[6], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', ARGV[7], redis.call('INCR', ARGV[3]), ARGV[i])
end
return 'OK'
"#;

/// Creates a record under a unique identity. ARGV: identities hash, records hash, index,
/// sequence key, identity, SID, JSON.
const CREATE_UNIQUE: &str = r#"
if redis.call('HSETNX', ARGV[1], ARGV[5], ARGV[6]) == 0 then return 'CONFLICT' end
redis.call('HSET', ARGV[2], ARGV[6], ARGV[7])
redis.call('ZADD', ARGV[3], redis.call('INCR', ARGV[4]), ARGV[6])
return 'OK'
"#;

/// Replaces a record only if it exists. ARGV: records hash, SID, JSON. Returns 1 or 0.
const UPDATE_EXISTING: &str = r#"
if redis.call('HEXISTS', ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', ARGV[1], ARGV[2], ARGV[3])
return 1
"#;

/// Deletes a user and frees its identity. ARGV: records hash, identities hash, index, SID.
const DELETE_USER: &str = r#"
local record = redis.call('HGET', ARGV[1], ARGV[4])
if not record then return 0 end
redis.call('HDEL', ARGV[2], cjson.decode(record).identity)
redis.call('HDEL', ARGV[1], ARGV[4])
redis.call('ZREM', ARGV[3], ARGV[4])
return 1
"#;

/// Takes a channel lease. ARGV: lease key, epoch counter key, node, ttl ms. Returns the new
/// epoch, or false when another node holds the lease. A node taking a lease it already holds
/// gets a new epoch too: whoever held the old one (an actor that stopped, a second process under
/// the same node id) is fenced off, and its late release no longer matches.
const ACQUIRE_LEASE: &str = r#"
local holder = redis.call('HGET', ARGV[1], 'node')
if holder and holder ~= ARGV[3] then return false end
local epoch = redis.call('INCR', ARGV[2])
redis.call('HSET', ARGV[1], 'node', ARGV[3], 'epoch', epoch)
redis.call('PEXPIRE', ARGV[1], ARGV[4])
return tostring(epoch)
"#;

/// Renews (ttl > 0) or releases (ttl = 0) a lease held by node at epoch. ARGV: lease key,
/// node, epoch, ttl ms. Returns 1 when it was held, else 0.
const KEEP_LEASE: &str = r#"
if redis.call('HGET', ARGV[1], 'node') ~= ARGV[2] or redis.call('HGET', ARGV[1], 'epoch') ~= ARGV[3] then
  return 0
end
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', ARGV[1], ARGV[4]) else redis.call('DEL', ARGV[1]) end
return 1
"#;

/// Settings of a `RedisStore`.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key (several deployments can share a server).
    pub prefix: String,
    /// Channel events kept per channel for resume.
    pub event_retention: u64,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "confab".into(),
            event_retention: 10_000,
        }
    }
}

/// The cluster store. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    options: RedisOptions,
    commit: redis::Script,
    metrics: Option<crate::StoreMetrics>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("options", &self.options)
            .finish()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            options,
            commit: redis::Script::new(COMMIT),
            metrics: None,
        })
    }

    /// Records every channel commit (one script, so one write per batch) in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::StoreMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.options.prefix)
    }

    fn channel_key(&self, channel: ChannelSid, rest: &str) -> String {
        format!("{}:{{{channel}}}:{rest}", self.options.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn next_seq(&self) -> Result<i64, StoreError> {
        Ok(self.conn().incr(self.key("seq"), 1).await?)
    }

    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let data: Option<String> = self.conn().get(key).await?;
        data.as_deref().map(decode).transpose()
    }

    async fn hget_json<T: DeserializeOwned>(
        &self,
        key: &str,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let data: Option<String> = self.conn().hget(key, field).await?;
        data.as_deref().map(decode).transpose()
    }

    /// One page of the members of an ordering sorted set, by score.
    async fn page_ids(
        &self,
        order: &str,
        page: &PageRequest,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let size = page.size.max(1);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(order);
        // Scores are integers (a counter or a message index): a cursor is one, nothing else.
        let (start, offset) = match &page.start {
            PageStart::First => (None, 0),
            PageStart::Offset(n) => (None, (*n).min(i64::MAX as u64)),
            PageStart::After(cursor) => {
                let score: i64 = cursor.parse().map_err(|_| StoreError::InvalidCursor)?;
                (Some(score), 0)
            }
        };
        if page.descending {
            let max = start.map_or("+inf".to_owned(), |s| format!("({s}"));
            cmd.arg(max).arg("-inf").arg("BYSCORE").arg("REV");
        } else {
            let min = start.map_or("-inf".to_owned(), |s| format!("({s}"));
            cmd.arg(min).arg("+inf").arg("BYSCORE");
        }
        cmd.arg("LIMIT").arg(offset).arg(size + 1).arg("WITHSCORES");
        let rows: Vec<(String, f64)> = cmd.query_async(&mut self.conn()).await?;
        let more = rows.len() > size;
        let rows: Vec<(String, f64)> = rows.into_iter().take(size).collect();
        let next = if more {
            rows.last().map(|(_, s)| format!("{}", *s as i64))
        } else {
            None
        };
        Ok((rows.into_iter().map(|(id, _)| id).collect(), next))
    }

    /// One page of JSON records: ids from `order`, records from the hash `records`.
    async fn page_hash<T: DeserializeOwned>(
        &self,
        order: &str,
        records: &str,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let (ids, next) = self.page_ids(order, page).await?;
        let items = self.hmget_json(records, &ids).await?;
        Ok(Page { items, next })
    }

    async fn hmget_json<T: DeserializeOwned>(
        &self,
        records: &str,
        ids: &[String],
    ) -> Result<Vec<T>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let data: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(records)
            .arg(ids)
            .query_async(&mut self.conn())
            .await?;
        data.into_iter().flatten().map(|d| decode(&d)).collect()
    }

    /// Records named by "CH:ID" entries of a per-user index, from each channel's hash `field`.
    async fn cross_channel<T: DeserializeOwned>(
        &self,
        entries: Vec<String>,
        field: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some((ch, id)) = entry.split_once(':') else {
                continue;
            };
            let Ok(ch) = ch.parse::<ChannelSid>() else {
                continue;
            };
            if let Some(record) = self.hget_json(&self.channel_key(ch, field), id).await? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A page of a channel's members or invites (`kind` is `member` or `invite`), all or only
    /// those of `identities`, in creation order.
    async fn channel_records<T: DeserializeOwned>(
        &self,
        channel: ChannelSid,
        kind: &str,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let order = self.channel_key(channel, &format!("{kind}-order"));
        let records = self.channel_key(channel, &format!("{kind}s"));
        if identities.is_empty() {
            return self.page_hash(&order, &records, page).await;
        }
        let ids = self.channel_key(channel, &format!("{kind}-ids"));
        self.by_identities(&ids, &order, &records, identities, page)
            .await
    }

    /// A page of a user's memberships or invites across the service (`index` is `memberships`
    /// or `user-invites`, `field` the per-channel hash holding the records).
    async fn user_records<T: DeserializeOwned>(
        &self,
        service: ServiceSid,
        identity: &str,
        index: &str,
        field: &str,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let (entries, next) = self
            .page_ids(&self.key(&format!("{index}:{service}:{identity}")), page)
            .await?;
        Ok(Page {
            items: self.cross_channel(entries, field).await?,
            next,
        })
    }

    /// A page of a per-channel list filtered by identities: the matching ids, ordered and paged
    /// by their score in `order` like the unfiltered list.
    async fn by_identities<T: DeserializeOwned>(
        &self,
        ids_hash: &str,
        order: &str,
        records: &str,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let ids: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(ids_hash)
            .arg(identities)
            .query_async(&mut self.conn())
            .await?;
        let mut scored = Vec::new();
        for id in ids.into_iter().flatten() {
            let score: Option<i64> = self.conn().zscore(order, &id).await?;
            if let Some(score) = score {
                scored.push((score, id));
            }
        }
        scored.sort();
        scored.dedup();
        if page.descending {
            scored.reverse();
        }
        let skip = match &page.start {
            PageStart::First => 0,
            PageStart::Offset(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            PageStart::After(cursor) => {
                let after: i64 = cursor.parse().map_err(|_| StoreError::InvalidCursor)?;
                scored
                    .iter()
                    .position(|(s, _)| {
                        if page.descending {
                            *s < after
                        } else {
                            *s > after
                        }
                    })
                    .unwrap_or(scored.len())
            }
        };
        let size = page.size.max(1);
        let window: Vec<(i64, String)> = scored.iter().skip(skip).take(size).cloned().collect();
        let next = if skip + size < scored.len() {
            window.last().map(|(s, _)| s.to_string())
        } else {
            None
        };
        let ids: Vec<String> = window.into_iter().map(|(_, id)| id).collect();
        Ok(Page {
            items: self.hmget_json(records, &ids).await?,
            next,
        })
    }
}

// === impl ServiceStore ===

#[async_trait]
impl ServiceStore for RedisStore {
    async fn create_service(&self, service: &Service, roles: &[Role]) -> Result<(), StoreError> {
        let sid = service.sid;
        let script = redis::Script::new(CREATE_SERVICE);
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(self.key(&format!("svc:{sid}")))
            .arg(self.key("svcs"))
            .arg(self.key("seq"))
            .arg(sid.to_string())
            .arg(encode(service)?)
            .arg(self.key(&format!("roles:{sid}")))
            .arg(self.key(&format!("roles-order:{sid}")));
        for role in roles {
            invocation.arg(role.sid.to_string()).arg(encode(role)?);
        }
        let outcome: String = invocation.invoke_async(&mut self.conn()).await?;
        match outcome.as_str() {
            "OK" => Ok(()),
            _ => Err(StoreError::Conflict(Conflict::Sid)),
        }
    }

    async fn get_service(&self, sid: ServiceSid) -> Result<Option<Service>, StoreError> {
        self.get_json(&self.key(&format!("svc:{sid}"))).await
    }

    async fn list_services(&self, page: &PageRequest) -> Result<Page<Service>, StoreError> {
        let (ids, next) = self.page_ids(&self.key("svcs"), page).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.get_json(&self.key(&format!("svc:{id}"))).await? {
                items.push(s);
            }
        }
        Ok(Page { items, next })
    }

    async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
        let key = self.key(&format!("svc:{}", service.sid));
        let updated: bool = redis::cmd("SET")
            .arg(&key)
            .arg(encode(service)?)
            .arg("XX")
            .query_async::<Option<String>>(&mut self.conn())
            .await?
            .is_some();
        if updated {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete_service(&self, sid: ServiceSid) -> Result<bool, StoreError> {
        let existed: bool = self.conn().exists(self.key(&format!("svc:{sid}"))).await?;
        // Channels are deleted through their actors first; what remains here is the indexes.
        let channels: Vec<String> = self
            .conn()
            .zrange(self.key(&format!("channels:{sid}")), 0, -1)
            .await?;
        for ch in channels {
            if let Ok(ch) = ch.parse::<ChannelSid>() {
                self.delete_channel_keys(ch, sid).await?;
            }
        }
        let mut keys = vec![
            self.key(&format!("roles:{sid}")),
            self.key(&format!("roles-order:{sid}")),
            self.key(&format!("users:{sid}")),
            self.key(&format!("user-ids:{sid}")),
            self.key(&format!("users-order:{sid}")),
            self.key(&format!("channels:{sid}")),
            self.key(&format!("channels:{sid}:public")),
            self.key(&format!("channels:{sid}:private")),
            self.key(&format!("uniq:{sid}")),
        ];
        keys.extend(
            self.scan_prefix(&self.key(&format!("memberships:{sid}:")))
                .await?,
        );
        keys.extend(
            self.scan_prefix(&self.key(&format!("user-invites:{sid}:")))
                .await?,
        );
        let _: () = self.conn().del(keys).await?;
        // The record goes last: if anything above failed, the service is still there and the
        // delete can be retried.
        let _: () = self.conn().zrem(self.key("svcs"), sid.to_string()).await?;
        let _: () = self.conn().del(self.key(&format!("svc:{sid}"))).await?;
        Ok(existed)
    }
}

/// Leases and node membership: what cluster mode coordinates with.
///
/// Contract: a channel lease is held by at most one node at a time; every acquisition after an
/// expiry or a release gets a strictly greater epoch; a commit fenced with an epoch succeeds only
/// while that epoch holds the lease. A node is live while its heartbeat has not expired.
impl RedisStore {
    /// Takes the channel's lease for `node` with a new epoch (also when `node` holds it
    /// already: the old epoch is fenced off); `None` when another node holds it.
    pub async fn acquire_lease(
        &self,
        channel: ChannelSid,
        node: &str,
        ttl_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let epoch: Option<String> = redis::Script::new(ACQUIRE_LEASE)
            .arg(self.channel_key(channel, "lease"))
            .arg(self.channel_key(channel, "epoch"))
            .arg(node)
            .arg(ttl_ms.max(1))
            .invoke_async(&mut self.conn())
            .await?;
        epoch
            .map(|e| {
                e.parse()
                    .map_err(|_| StoreError::Corrupt(format!("lease epoch {e:?}")))
            })
            .transpose()
    }

    /// Extends a lease `node` holds at `epoch`; `false` if it lost it.
    pub async fn renew_lease(
        &self,
        channel: ChannelSid,
        node: &str,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        self.keep_lease(channel, node, epoch, ttl_ms.max(1)).await
    }

    /// Gives a lease up (drain); `false` if `node` did not hold it at `epoch`.
    pub async fn release_lease(
        &self,
        channel: ChannelSid,
        node: &str,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        self.keep_lease(channel, node, epoch, 0).await
    }

    async fn keep_lease(
        &self,
        channel: ChannelSid,
        node: &str,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let held: i64 = redis::Script::new(KEEP_LEASE)
            .arg(self.channel_key(channel, "lease"))
            .arg(node)
            .arg(epoch.to_string())
            .arg(ttl_ms)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(held == 1)
    }

    /// Who holds the channel's lease, at which epoch.
    pub async fn lease_of(&self, channel: ChannelSid) -> Result<Option<(String, u64)>, StoreError> {
        let (node, epoch): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.channel_key(channel, "lease"))
            .arg("node")
            .arg("epoch")
            .query_async(&mut self.conn())
            .await?;
        Ok(node.zip(epoch))
    }

    /// Announces that `node` is alive for the next `ttl_ms`.
    pub async fn heartbeat(&self, node: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(self.key(&format!("node:{node}")))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms.max(1))
            .ignore()
            .cmd("SADD")
            .arg(self.key("nodes"))
            .arg(node)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Removes `node` from the live set at once (a draining node), instead of letting its
    /// heartbeat expire.
    pub async fn forget_node(&self, node: &str) -> Result<(), StoreError> {
        let _: () = redis::pipe()
            .cmd("DEL")
            .arg(self.key(&format!("node:{node}")))
            .ignore()
            .cmd("SREM")
            .arg(self.key("nodes"))
            .arg(node)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The channel record alone (no members), whatever its service: what a node needs to know
    /// how far a channel's events go.
    pub async fn channel_record(&self, sid: ChannelSid) -> Result<Option<Channel>, StoreError> {
        self.get_json::<Channel>(&self.channel_key(sid, "ch")).await
    }

    /// The nodes whose heartbeat has not expired, sorted; forgets the others.
    pub async fn live_nodes(&self) -> Result<Vec<String>, StoreError> {
        let known: Vec<String> = self.conn().smembers(self.key("nodes")).await?;
        let mut live = Vec::new();
        for node in known {
            let alive: bool = self
                .conn()
                .exists(self.key(&format!("node:{node}")))
                .await?;
            if alive {
                live.push(node);
            } else {
                let _: () = self.conn().srem(self.key("nodes"), &node).await?;
            }
        }
        live.sort();
        Ok(live)
    }

    /// Replaces a hash record atomically, only if it exists.
    async fn update_existing(
        &self,
        records: &str,
        sid: &str,
        json: String,
    ) -> Result<(), StoreError> {
        let updated: i64 = redis::Script::new(UPDATE_EXISTING)
            .arg(records)
            .arg(sid)
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Keys matching `prefix*`, with glob characters in `prefix` escaped.
    async fn scan_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        self.scan(&pattern).await
    }

    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn())
                .await?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    async fn delete_channel_keys(
        &self,
        ch: ChannelSid,
        service: ServiceSid,
    ) -> Result<(), StoreError> {
        let _: String = self
            .commit
            .arg(&self.options.prefix)
            .arg(ch.to_string())
            .arg(service.to_string())
            .arg("")
            .arg("DELETE_CHANNEL")
            .arg("")
            .arg("")
            .arg("")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

// === impl RoleStore ===

#[async_trait]
impl RoleStore for RedisStore {
    async fn create_role(&self, role: &Role) -> Result<(), StoreError> {
        let records = self.key(&format!("roles:{}", role.service_sid));
        let created: bool = self
            .conn()
            .hset_nx(&records, role.sid.to_string(), encode(role)?)
            .await?;
        if !created {
            return Err(StoreError::Conflict(Conflict::Sid));
        }
        let seq = self.next_seq().await?;
        let _: () = self
            .conn()
            .zadd(
                self.key(&format!("roles-order:{}", role.service_sid)),
                role.sid.to_string(),
                seq,
            )
            .await?;
        Ok(())
    }

    async fn get_role(
        &self,
        service: ServiceSid,
        sid: RoleSid,
    ) -> Result<Option<Role>, StoreError> {
        self.hget_json(&self.key(&format!("roles:{service}")), &sid.to_string())
            .await
    }

    async fn list_roles(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError> {
        self.page_hash(
            &self.key(&format!("roles-order:{service}")),
            &self.key(&format!("roles:{service}")),
            page,
        )
        .await
    }

    async fn update_role(&self, role: &Role) -> Result<(), StoreError> {
        let records = self.key(&format!("roles:{}", role.service_sid));
        self.update_existing(&records, &role.sid.to_string(), encode(role)?)
            .await
    }

    async fn delete_role(&self, service: ServiceSid, sid: RoleSid) -> Result<bool, StoreError> {
        let removed: i64 = self
            .conn()
            .hdel(self.key(&format!("roles:{service}")), sid.to_string())
            .await?;
        let _: () = self
            .conn()
            .zrem(self.key(&format!("roles-order:{service}")), sid.to_string())
            .await?;
        Ok(removed > 0)
    }
}

// === impl UserStore ===

#[async_trait]
impl UserStore for RedisStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let service = user.service_sid;
        let outcome: String = redis::Script::new(CREATE_UNIQUE)
            .arg(self.key(&format!("user-ids:{service}")))
            .arg(self.key(&format!("users:{service}")))
            .arg(self.key(&format!("users-order:{service}")))
            .arg(self.key("seq"))
            .arg(&user.identity)
            .arg(user.sid.to_string())
            .arg(encode(user)?)
            .invoke_async(&mut self.conn())
            .await?;
        match outcome.as_str() {
            "OK" => Ok(()),
            _ => Err(StoreError::Conflict(Conflict::UserIdentity)),
        }
    }

    async fn get_user(
        &self,
        service: ServiceSid,
        sid: UserSid,
    ) -> Result<Option<User>, StoreError> {
        self.hget_json(&self.key(&format!("users:{service}")), &sid.to_string())
            .await
    }

    async fn get_user_by_identity(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<Option<User>, StoreError> {
        let sid: Option<String> = self
            .conn()
            .hget(self.key(&format!("user-ids:{service}")), identity)
            .await?;
        match sid {
            Some(sid) => {
                self.hget_json(&self.key(&format!("users:{service}")), &sid)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn list_users(
        &self,
        service: ServiceSid,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        self.page_hash(
            &self.key(&format!("users-order:{service}")),
            &self.key(&format!("users:{service}")),
            page,
        )
        .await
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let records = self.key(&format!("users:{}", user.service_sid));
        self.update_existing(&records, &user.sid.to_string(), encode(user)?)
            .await
    }

    async fn delete_user(&self, service: ServiceSid, sid: UserSid) -> Result<bool, StoreError> {
        let deleted: i64 = redis::Script::new(DELETE_USER)
            .arg(self.key(&format!("users:{service}")))
            .arg(self.key(&format!("user-ids:{service}")))
            .arg(self.key(&format!("users-order:{service}")))
            .arg(sid.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(deleted == 1)
    }
}

// === impl ChannelStore ===

#[async_trait]
impl ChannelStore for RedisStore {
    async fn commit(&self, commit: &ChannelCommit) -> Result<(), StoreError> {
        let channel = &commit.channel;
        let mut invocation = self.commit.prepare_invoke();
        invocation
            .arg(&self.options.prefix)
            .arg(channel.sid.to_string())
            .arg(channel.service_sid.to_string())
            .arg(commit.fence.map(|f| f.to_string()).unwrap_or_default());
        let mut op = |name: &str, a: String, b: String, c: String| {
            invocation.arg(name).arg(a).arg(b).arg(c);
        };
        let removed = commit
            .events
            .iter()
            .any(|e| matches!(e.kind, ChannelEventKind::ChannelRemoved { .. }));
        if removed {
            op(
                "DELETE_CHANNEL",
                String::new(),
                String::new(),
                String::new(),
            );
        } else {
            op(
                "CHANNEL",
                channel.kind.as_str().to_owned(),
                channel.unique_name.clone().unwrap_or_default(),
                encode(channel)?,
            );
            for event in &commit.events {
                match &event.kind {
                    ChannelEventKind::MemberJoined { member }
                    | ChannelEventKind::MemberUpdated { member, .. } => op(
                        "PUT_MEMBER",
                        member.sid.to_string(),
                        member.identity.clone(),
                        encode(member)?,
                    ),
                    ChannelEventKind::MemberLeft { member } => op(
                        "DEL_MEMBER",
                        member.sid.to_string(),
                        member.identity.clone(),
                        String::new(),
                    ),
                    ChannelEventKind::MessageAdded { message }
                    | ChannelEventKind::MessageUpdated { message, .. } => op(
                        "PUT_MESSAGE",
                        message.index.to_string(),
                        message.sid.to_string(),
                        encode(message)?,
                    ),
                    ChannelEventKind::MessageRemoved { message } => op(
                        "DEL_MESSAGE",
                        message.index.to_string(),
                        message.sid.to_string(),
                        String::new(),
                    ),
                    ChannelEventKind::InviteCreated { invite } => op(
                        "PUT_INVITE",
                        invite.sid.to_string(),
                        invite.identity.clone(),
                        encode(invite)?,
                    ),
                    ChannelEventKind::InviteRemoved { invite, .. } => op(
                        "DEL_INVITE",
                        invite.sid.to_string(),
                        invite.identity.clone(),
                        String::new(),
                    ),
                    ChannelEventKind::ChannelCreated { .. }
                    | ChannelEventKind::ChannelUpdated { .. }
                    | ChannelEventKind::ChannelRemoved { .. } => {}
                }
                op(
                    "EVENT",
                    event.seq.to_string(),
                    self.options.event_retention.to_string(),
                    encode(event)?,
                );
            }
        }
        let started = std::time::Instant::now();
        let outcome: String = invocation.invoke_async(&mut self.conn()).await?;
        if let Some(m) = &self.metrics {
            m.write_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_size.observe(1.0);
        }
        match outcome.as_str() {
            "OK" => Ok(()),
            "CONFLICT" => Err(StoreError::Conflict(Conflict::ChannelUniqueName)),
            "FENCED" => Err(StoreError::Fenced),
            other => Err(StoreError::Backend(format!(
                "commit script answered {other}"
            ))),
        }
    }

    async fn load_channel(&self, sid: ChannelSid) -> Result<Option<ChannelSnapshot>, StoreError> {
        let Some(channel) = self
            .get_json::<Channel>(&self.channel_key(sid, "ch"))
            .await?
        else {
            return Ok(None);
        };
        let member_ids: Vec<String> = self
            .conn()
            .zrange(self.channel_key(sid, "member-order"), 0, -1)
            .await?;
        let members = self
            .hmget_json(&self.channel_key(sid, "members"), &member_ids)
            .await?;
        let invite_ids: Vec<String> = self
            .conn()
            .zrange(self.channel_key(sid, "invite-order"), 0, -1)
            .await?;
        let invites = self
            .hmget_json(&self.channel_key(sid, "invites"), &invite_ids)
            .await?;
        Ok(Some(ChannelSnapshot {
            channel,
            members,
            invites,
        }))
    }

    async fn get_channel(
        &self,
        service: ServiceSid,
        sid: ChannelSid,
    ) -> Result<Option<Channel>, StoreError> {
        Ok(self
            .get_json::<Channel>(&self.channel_key(sid, "ch"))
            .await?
            .filter(|c| c.service_sid == service))
    }

    async fn get_channel_by_unique_name(
        &self,
        service: ServiceSid,
        unique_name: &str,
    ) -> Result<Option<Channel>, StoreError> {
        let sid: Option<String> = self
            .conn()
            .hget(self.key(&format!("uniq:{service}")), unique_name)
            .await?;
        match sid.and_then(|s| s.parse::<ChannelSid>().ok()) {
            Some(sid) => self.get_channel(service, sid).await,
            None => Ok(None),
        }
    }

    async fn list_channels(
        &self,
        service: ServiceSid,
        types: &[ChannelType],
        page: &PageRequest,
    ) -> Result<Page<Channel>, StoreError> {
        let wants_public = types.contains(&ChannelType::Public);
        let wants_private = types.contains(&ChannelType::Private);
        let order = match (wants_public, wants_private) {
            (true, false) => self.key(&format!("channels:{service}:public")),
            (false, true) => self.key(&format!("channels:{service}:private")),
            _ => self.key(&format!("channels:{service}")),
        };
        let (ids, next) = self.page_ids(&order, page).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(sid) = id.parse::<ChannelSid>() {
                if let Some(channel) = self
                    .get_json::<Channel>(&self.channel_key(sid, "ch"))
                    .await?
                {
                    items.push(channel);
                }
            }
        }
        Ok(Page { items, next })
    }

    async fn get_member(
        &self,
        channel: ChannelSid,
        key: &MemberKey,
    ) -> Result<Option<Member>, StoreError> {
        let sid = match key {
            MemberKey::Sid(sid) => sid.to_string(),
            MemberKey::Identity(identity) => {
                let sid: Option<String> = self
                    .conn()
                    .hget(self.channel_key(channel, "member-ids"), identity)
                    .await?;
                match sid {
                    Some(sid) => sid,
                    None => return Ok(None),
                }
            }
        };
        self.hget_json(&self.channel_key(channel, "members"), &sid)
            .await
    }

    async fn list_members(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        self.channel_records(channel, "member", identities, page)
            .await
    }

    async fn list_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        self.user_records(service, identity, "memberships", "members", page)
            .await
    }

    async fn count_memberships(
        &self,
        service: ServiceSid,
        identity: &str,
    ) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .zcard(self.key(&format!("memberships:{service}:{identity}")))
            .await?)
    }

    async fn get_message(
        &self,
        channel: ChannelSid,
        sid: MessageSid,
    ) -> Result<Option<Message>, StoreError> {
        let index: Option<String> = self
            .conn()
            .hget(self.channel_key(channel, "msg-sids"), sid.to_string())
            .await?;
        match index {
            Some(index) => {
                self.hget_json(&self.channel_key(channel, "msgs"), &index)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn list_messages(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        self.page_hash(
            &self.channel_key(channel, "msg-order"),
            &self.channel_key(channel, "msgs"),
            page,
        )
        .await
    }

    async fn count_messages_after(
        &self,
        channel: ChannelSid,
        after: Option<u64>,
    ) -> Result<u64, StoreError> {
        let min = after.map_or("-inf".to_owned(), |a| format!("({a}"));
        Ok(self
            .conn()
            .zcount(self.channel_key(channel, "msg-order"), min, "+inf")
            .await?)
    }

    async fn get_invite(
        &self,
        channel: ChannelSid,
        sid: InviteSid,
    ) -> Result<Option<Invite>, StoreError> {
        self.hget_json(&self.channel_key(channel, "invites"), &sid.to_string())
            .await
    }

    async fn list_invites(
        &self,
        channel: ChannelSid,
        identities: &[String],
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        self.channel_records(channel, "invite", identities, page)
            .await
    }

    async fn list_user_invites(
        &self,
        service: ServiceSid,
        identity: &str,
        page: &PageRequest,
    ) -> Result<Page<Invite>, StoreError> {
        self.user_records(service, identity, "user-invites", "invites", page)
            .await
    }

    async fn events_after(
        &self,
        channel: ChannelSid,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChannelEvent>, StoreError> {
        let rows: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.channel_key(channel, "events"))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        rows.iter().map(|r| decode(r)).collect()
    }
}

// === impl CredentialStore ===

#[async_trait]
impl CredentialStore for RedisStore {
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let created: bool = self
            .conn()
            .hset_nx(
                self.key("creds"),
                credential.sid.to_string(),
                encode(credential)?,
            )
            .await?;
        if created {
            let seq = self.next_seq().await?;
            let _: () = self
                .conn()
                .zadd(self.key("creds-order"), credential.sid.to_string(), seq)
                .await?;
        } else {
            let _: () = self
                .conn()
                .hset(
                    self.key("creds"),
                    credential.sid.to_string(),
                    encode(credential)?,
                )
                .await?;
        }
        Ok(())
    }

    async fn get_credential(&self, sid: CredentialSid) -> Result<Option<Credential>, StoreError> {
        self.hget_json(&self.key("creds"), &sid.to_string()).await
    }

    async fn list_credentials(&self, page: &PageRequest) -> Result<Page<Credential>, StoreError> {
        self.page_hash(&self.key("creds-order"), &self.key("creds"), page)
            .await
    }

    async fn delete_credential(&self, sid: CredentialSid) -> Result<bool, StoreError> {
        let removed: i64 = self.conn().hdel(self.key("creds"), sid.to_string()).await?;
        let _: () = self
            .conn()
            .zrem(self.key("creds-order"), sid.to_string())
            .await?;
        Ok(removed > 0)
    }
}

// === impl WebhookStore ===

#[async_trait]
impl WebhookStore for RedisStore {
    async fn put_webhook(&self, webhook: &ChannelWebhook) -> Result<(), StoreError> {
        let records = self.channel_key(webhook.channel_sid, "webhooks");
        let created: bool = self
            .conn()
            .hset_nx(&records, webhook.sid.to_string(), encode(webhook)?)
            .await?;
        if created {
            let seq = self.next_seq().await?;
            let _: () = self
                .conn()
                .zadd(
                    self.channel_key(webhook.channel_sid, "webhook-order"),
                    webhook.sid.to_string(),
                    seq,
                )
                .await?;
        } else {
            let _: () = self
                .conn()
                .hset(&records, webhook.sid.to_string(), encode(webhook)?)
                .await?;
        }
        Ok(())
    }

    async fn get_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<Option<ChannelWebhook>, StoreError> {
        self.hget_json(&self.channel_key(channel, "webhooks"), &sid.to_string())
            .await
    }

    async fn list_webhooks(
        &self,
        channel: ChannelSid,
        page: &PageRequest,
    ) -> Result<Page<ChannelWebhook>, StoreError> {
        self.page_hash(
            &self.channel_key(channel, "webhook-order"),
            &self.channel_key(channel, "webhooks"),
            page,
        )
        .await
    }

    async fn delete_webhook(
        &self,
        channel: ChannelSid,
        sid: WebhookSid,
    ) -> Result<bool, StoreError> {
        let removed: i64 = self
            .conn()
            .hdel(self.channel_key(channel, "webhooks"), sid.to_string())
            .await?;
        let _: () = self
            .conn()
            .zrem(self.channel_key(channel, "webhook-order"), sid.to_string())
            .await?;
        Ok(removed > 0)
    }
}
