//! The Lua scripts `RedisStore` runs, each atomic on the server: the channel commit, service and
//! user creation, record updates, and taking and keeping channel leases.

/// Applies one channel commit. ARGV: prefix, channel SID, service SID, fence epoch ('' for
/// none), then quadruples of (operation, a, b, c). Returns "OK", "CONFLICT" or "FENCED".
pub(super) const COMMIT: &str = r#"
local p, ch, svc, fence = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tag = p .. ':{' .. ch .. '}:'
local function seq() return redis.call('INCR', p .. ':seq') end
-- A fenced commit goes through only while the writer's lease epoch is the current one.
if fence ~= '' and redis.call('HGET', tag .. 'lease', 'epoch') ~= fence then return 'FENCED' end
local i = 5
-- The unique name check comes first, so that a conflict writes nothing.
while i <= #ARGV do
  if ARGV[i] == 'CHANNEL' or ARGV[i] == 'CHANNEL_ROW' then
    local name = ARGV[i + 2]
    if name ~= '' then
      local owner = redis.call('HGET', p .. ':uniq:' .. svc, name)
      if owner and owner ~= ch then return 'CONFLICT' end
    end
  end
  i = i + 4
end
-- a: kind, b: unique name ('' for none), c: channel JSON
local function put_channel(a, b, c)
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
end
i = 5
while i <= #ARGV do
  local op, a, b, c = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if op == 'CHANNEL' then
    put_channel(a, b, c)
  elseif op == 'CHANNEL_ROW' then
    -- The channel's kind and unique name are unchanged (a message, a member): only its record
    -- is replaced, unless it is not stored yet.
    if not redis.call('SET', tag .. 'ch', c, 'XX') then put_channel(a, b, c) end
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
  elseif op == 'JOB' then
    -- a: webhook job SID, b: 'due:created' (ms), c: JSON
    local due, born = string.match(b, '^(%d+):(%d+)$')
    redis.call('HSET', p .. ':hook-jobs', a, c)
    redis.call('ZADD', p .. ':hook-due', tonumber(due), a)
    redis.call('ZADD', p .. ':hook-born', tonumber(born), a)
  end
  i = i + 4
end
return 'OK'
"#;

/// Claims due webhook jobs. ARGV: jobs hash, due zset, now, hold until, limit, creation zset.
/// Returns the claimed jobs' JSON, each now due at the hold's end.
pub(super) const CLAIM_JOBS: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', ARGV[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, id in ipairs(ids) do
  local job = redis.call('HGET', ARGV[1], id)
  if job then
    redis.call('ZADD', ARGV[2], tonumber(ARGV[4]), id)
    out[#out + 1] = job
  else
    redis.call('ZREM', ARGV[2], id)
    redis.call('ZREM', ARGV[6], id)
  end
end
return out
"#;

/// Reschedules a webhook job that still exists. ARGV: jobs hash, due zset, SID, JSON, due.
pub(super) const RETRY_JOB: &str = r#"
if redis.call('HEXISTS', ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('HSET', ARGV[1], ARGV[3], ARGV[4])
redis.call('ZADD', ARGV[2], tonumber(ARGV[5]), ARGV[3])
return 1
"#;

/// Creates a service with its roles. ARGV: service key, services index, sequence key, SID,
/// JSON, roles hash, roles index, then (role SID, role JSON) pairs.
pub(super) const CREATE_SERVICE: &str = r#"
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
pub(super) const CREATE_UNIQUE: &str = r#"
if redis.call('HSETNX', ARGV[1], ARGV[5], ARGV[6]) == 0 then return 'CONFLICT' end
redis.call('HSET', ARGV[2], ARGV[6], ARGV[7])
redis.call('ZADD', ARGV[3], redis.call('INCR', ARGV[4]), ARGV[6])
return 'OK'
"#;

/// Replaces a record only if it exists. ARGV: records hash, SID, JSON. Returns 1 or 0.
pub(super) const UPDATE_EXISTING: &str = r#"
if redis.call('HEXISTS', ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', ARGV[1], ARGV[2], ARGV[3])
return 1
"#;

/// Deletes a user and frees its identity. ARGV: records hash, identities hash, index, SID.
pub(super) const DELETE_USER: &str = r#"
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
pub(super) const ACQUIRE_LEASE: &str = r#"
local holder = redis.call('HGET', ARGV[1], 'node')
if holder and holder ~= ARGV[3] then return false end
local epoch = redis.call('INCR', ARGV[2])
redis.call('HSET', ARGV[1], 'node', ARGV[3], 'epoch', epoch)
redis.call('PEXPIRE', ARGV[1], ARGV[4])
return tostring(epoch)
"#;

/// Renews (ttl > 0) or releases (ttl = 0) a lease held by node at epoch. ARGV: lease key,
/// node, epoch, ttl ms. Returns 1 when it was held, else 0.
pub(super) const KEEP_LEASE: &str = r#"
if redis.call('HGET', ARGV[1], 'node') ~= ARGV[2] or redis.call('HGET', ARGV[1], 'epoch') ~= ARGV[3] then
  return 0
end
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', ARGV[1], ARGV[4]) else redis.call('DEL', ARGV[1]) end
return 1
"#;

/// Attaches a media once. ARGV: media record key, attachment key, channel media set,
/// `CH…:IM…:ms`, media SID, unattached media zset. Returns `MISSING`, or the attachment now
/// stored (this one, or the earlier one it lost to).
pub(super) const ATTACH_MEDIA: &str = r#"
if redis.call('EXISTS', ARGV[1]) == 0 then return 'MISSING' end
local current = redis.call('GET', ARGV[2])
if current then return current end
redis.call('SET', ARGV[2], ARGV[4])
redis.call('SADD', ARGV[3], ARGV[5])
redis.call('ZREM', ARGV[6], ARGV[5])
return ARGV[4]
"#;

/// Deletes a media record unless it is attached. ARGV: media record key, attachment key,
/// unattached media zset, service media set, media SID. Returns the record deleted, or false.
pub(super) const DELETE_UNATTACHED_MEDIA: &str = r#"
if redis.call('EXISTS', ARGV[2]) == 1 then return false end
local record = redis.call('GET', ARGV[1])
if not record then return false end
redis.call('DEL', ARGV[1])
redis.call('ZREM', ARGV[3], ARGV[5])
redis.call('SREM', ARGV[4], ARGV[5])
return record
"#;

/// Detaches a media from one message. ARGV: attachment key, channel media set, `CH…:IM…`, media
/// SID.
pub(super) const DETACH_MEDIA: &str = r#"
local current = redis.call('GET', ARGV[1])
if current and string.sub(current, 1, string.len(ARGV[3])) == ARGV[3] then
  redis.call('DEL', ARGV[1])
  redis.call('SREM', ARGV[2], ARGV[4])
end
return 0
"#;
