//! What cluster mode coordinates with (the methods `confab-cluster` calls): channel leases and
//! their fencing epochs, node heartbeats and the live nodes, and a channel's record on its own.

use confab_domain::{Channel, ChannelSid};
use redis::AsyncCommands;

use super::scripts::{ACQUIRE_LEASE, KEEP_LEASE};
use super::RedisStore;
use crate::error::StoreError;

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
}
