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
//!
//! Here: the store, its connection and the helpers the other files share, and the credential
//! and webhook records. `keys` lays out the keys, `scripts` holds the Lua scripts, `services`
//! stores services, roles and users, `channels` the channel commit and the channel reads, and
//! `cluster` the leases and node heartbeats cluster mode coordinates with.

mod channels;
mod cluster;
mod jobs;
pub mod keys;
mod media;
mod scripts;
mod services;

use async_trait::async_trait;
use confab_domain::{ChannelSid, ChannelWebhook, Credential, CredentialSid, WebhookSid};
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::Serialize;

use self::scripts::{COMMIT, UPDATE_EXISTING};
use crate::error::StoreError;
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
}

/// The other nodes of a cluster write the same records: caches bound their age by time.
impl ChangeCounts for RedisStore {}

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
