//! The Redis key layout of `RedisStore`: every key it reads or writes, and the functions that
//! build their names.
//!
//! `{…}` is a placeholder: `{p}` the prefix (`RedisOptions::prefix`, `confab` by default),
//! `{IS…}` a service SID, `{node}` a node id, `{identity}` a user identity. In a channel's keys
//! the braces of `{CH…}` are literal: the channel SID in braces is the Redis hash tag, as in
//! `confab:{CH…}:msgs`, so that a Redis Cluster can keep a channel on one slot. Ordering sorted
//! sets are scored by the global counter `{p}:seq` (creation order) unless said otherwise; a page
//! cursor is a score.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:seq` | string | the global counter (`INCR`) that scores the ordering sets |
//! | `{p}:svc:{IS…}` | string | the service, JSON |
//! | `{p}:svcs` | zset | service SIDs, in creation order |
//! | `{p}:roles:{IS…}` | hash | role SID → role JSON |
//! | `{p}:roles-order:{IS…}` | zset | role SIDs, in creation order |
//! | `{p}:users:{IS…}` | hash | user SID → user JSON |
//! | `{p}:user-ids:{IS…}` | hash | identity → user SID (the unique identity) |
//! | `{p}:users-order:{IS…}` | zset | user SIDs, in creation order |
//! | `{p}:channels:{IS…}` | zset | channel SIDs of the service, in creation order |
//! | `{p}:channels:{IS…}:public` | zset | the same, public channels only |
//! | `{p}:channels:{IS…}:private` | zset | the same, private channels only |
//! | `{p}:uniq:{IS…}` | hash | channel unique name → channel SID |
//! | `{p}:memberships:{IS…}:{identity}` | zset | `CH…:MB…` of the user's memberships |
//! | `{p}:user-invites:{IS…}:{identity}` | zset | `CH…:IN…` of the user's invites |
//! | `{p}:creds` | hash | credential SID → credential JSON |
//! | `{p}:creds-order` | zset | credential SIDs, in creation order |
//! | `{p}:hook-jobs` | hash | webhook job SID → job JSON (jobs waiting for delivery) |
//! | `{p}:hook-due` | zset | webhook job SIDs, scored by when they are next due (ms) |
//! | `{p}:hook-born` | zset | webhook job SIDs, scored by their creation time (ms) |
//! | `{p}:media:{ME…}` | string | an uploaded media's record as created, JSON |
//! | `{p}:media-at:{ME…}` | string | `CH…:IM…:ms`: the message it is attached to (set once) |
//! | `{p}:media-of:{IS…}` | set | SIDs of the service's media records |
//! | `{p}:media-loose` | zset | SIDs of unattached media, scored by upload time (ms) |
//! | `{p}:node:{node}` | string | `1` while the node's heartbeat lasts (`PX` ttl) |
//! | `{p}:nodes` | set | node ids that sent a heartbeat; `live_nodes` drops the expired |
//! | `{p}:{CH…}:ch` | string | the channel, JSON |
//! | `{p}:{CH…}:meta` | hash | `unique` (unique name, `''` for none) and `kind` |
//! | `{p}:{CH…}:members` | hash | member SID → member JSON |
//! | `{p}:{CH…}:member-ids` | hash | identity → member SID |
//! | `{p}:{CH…}:member-order` | zset | member SIDs, in creation order |
//! | `{p}:{CH…}:msgs` | hash | message index → message JSON |
//! | `{p}:{CH…}:msg-order` | zset | message indexes, scored by the index |
//! | `{p}:{CH…}:msg-sids` | hash | message SID → message index |
//! | `{p}:{CH…}:invites` | hash | invite SID → invite JSON |
//! | `{p}:{CH…}:invite-ids` | hash | identity → invite SID |
//! | `{p}:{CH…}:invite-order` | zset | invite SIDs, in creation order |
//! | `{p}:{CH…}:events` | zset | event JSON scored by event seq, the last `event_retention` |
//! | `{p}:{CH…}:webhooks` | hash | webhook SID → webhook JSON |
//! | `{p}:{CH…}:webhook-order` | zset | webhook SIDs, in creation order |
//! | `{p}:{CH…}:media` | set | SIDs of the media attached to the channel's messages |
//! | `{p}:{CH…}:lease` | hash | `node` and `epoch` of the lease holder (`PEXPIRE` ttl) |
//! | `{p}:{CH…}:epoch` | string | the channel's lease epoch counter (`INCR`) |
//!
//! Deleting a channel removes its keys above except `lease` and `epoch`, and its entries in the
//! service's indexes. Most names are built at their call site as `key("…")` or
//! `channel_key(sid, "…")`; the commit script (`scripts::COMMIT`) builds the channel's keys and
//! the service's channel, unique-name, membership and user-invite indexes and the webhook job
//! keys itself from the prefix
//! and the SIDs, so it must change together with this table.

use confab_domain::ChannelSid;

use super::RedisStore;

impl RedisStore {
    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.options.prefix)
    }

    pub(super) fn channel_key(&self, channel: ChannelSid, rest: &str) -> String {
        format!("{}:{{{channel}}}:{rest}", self.options.prefix)
    }
}
