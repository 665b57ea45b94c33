//! Forwarding a command to the channel's owner and waiting for its answer, with what tells
//! that the owner is gone (nobody reads its inbox) or stalled (it cannot commit any more).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use confab_domain::{ChannelEvent, ChannelSid};
use confab_store::StoreError;
use tokio::sync::oneshot;

use super::wire::{InboxMessage, Outcome};
use super::{keys, Cluster, Inner};
use crate::actor::ChannelRequest;
use crate::error::ChannelError;

/// How long a node's inbox must stay unread before its leases are broken.
const DEAD_INBOX: Duration = Duration::from_millis(1000);

/// Removes a forwarded command's waiter when the forwarding ends, whichever way.
struct PendingGuard<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.inner.pending.lock() {
            pending.remove(&self.id);
        }
    }
}

impl Cluster {
    /// Sends `request` to `target`'s inbox and waits for the outcome. `OwnerGone` when nobody
    /// has read that inbox for `DEAD_INBOX` (the node died: its lease on the channel is broken,
    /// which fencing makes safe even if it lives), or when, on two checks in a row while the
    /// command waits, the target does not hold the channel's lease although it held it or was
    /// sent the command a check ago (it stalled and cannot commit: the command is better sent
    /// elsewhere than waited for until `route_timeout`). A reply that arrived first always wins.
    pub(crate) async fn forward(
        &self,
        target: &str,
        channel: ChannelSid,
        request: &ChannelRequest,
    ) -> Result<Vec<ChannelEvent>, ChannelError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = serde_json::to_string(&InboxMessage::Request {
            id,
            from: self.node_id().to_owned(),
            channel,
            op: Box::new(request.op.clone()),
            caller: request.caller.clone(),
            webhooks: request.webhooks,
        })
        .map_err(|e| ChannelError::Unreachable(format!("cannot encode the command: {e}")))?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.inner.pending.lock() {
            pending.insert(id, tx);
        }
        // Removes the waiter however this future ends (also when its caller drops it).
        let _pending = PendingGuard {
            inner: &self.inner,
            id,
        };
        let topic = keys::inbox_topic(&self.inner.config.prefix, target);
        let mut conn = self.inner.conn.clone();
        let receivers = self
            .timed(async {
                redis::cmd("PUBLISH")
                    .arg(&topic)
                    .arg(payload)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await;
        match receivers {
            Err(e) => return Err(ChannelError::Unreachable(e.to_string())),
            // Nobody reads that inbox: the command did not run. The node is dead unless its
            // pub/sub connection is only being re-established.
            Ok(0) => {
                if self.inbox_unread_long(target).await {
                    self.break_lease(channel, target).await;
                }
                return Err(ChannelError::OwnerGone { maybe_ran: false });
            }
            Ok(_) => {
                self.inbox_read(target);
            }
        }
        let deadline = tokio::time::Instant::now() + self.inner.config.route_timeout;
        let check = (self.inner.config.lease_ttl / 6).max(Duration::from_millis(50));
        let mut rx = rx;
        let sent = Instant::now();
        // Whether the target was seen holding the lease; consecutive checks that found it
        // unable to commit.
        let mut held = false;
        let mut strikes = 0;
        loop {
            let wake = (tokio::time::Instant::now() + check).min(deadline);
            tokio::select! {
                biased;
                reply = &mut rx => return reply_of(reply),
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChannelError::Unreachable(format!(
                    "no reply from {target} within {:?}",
                    self.inner.config.route_timeout
                )));
            }
            let verdict = tokio::select! {
                biased;
                reply = &mut rx => return reply_of(reply),
                verdict = self.can_commit(channel, target, &mut held, sent) => verdict,
            };
            strikes = if verdict { 0 } else { strikes + 1 };
            if strikes >= 2 {
                if let Ok(outcome) = rx.try_recv() {
                    return outcome.into();
                }
                return Err(ChannelError::OwnerGone { maybe_ran: true });
            }
        }
    }

    /// Whether `target` may still commit a command for `channel` sent to it at `sent`: it holds
    /// the lease, or nobody does and it has neither held it since (it let it expire: a stall) nor
    /// had a whole lease period to take it (a live node takes it as soon as it runs the
    /// command, even behind a backlog). An inbox unread for `DEAD_INBOX` breaks its lease.
    /// When Redis cannot tell, yes.
    async fn can_commit(
        &self,
        channel: ChannelSid,
        target: &str,
        held: &mut bool,
        sent: Instant,
    ) -> bool {
        let readers = self.inbox_readers(target).await;
        if readers == Some(0) && self.inbox_unread_long(target).await {
            self.break_lease(channel, target).await;
            return false;
        }
        if readers.is_some_and(|n| n > 0) {
            self.inbox_read(target);
        }
        match self.lease_of(channel).await {
            Ok(Some((holder, _))) => {
                *held |= holder == target;
                holder == target
            }
            Ok(None) => !*held && sent.elapsed() < self.inner.config.lease_ttl,
            Err(_) => true,
        }
    }

    /// Notes an unread inbox of `node`; true once it has been unread for `DEAD_INBOX` (and
    /// at once when the node's heartbeat is gone).
    async fn inbox_unread_long(&self, node: &str) -> bool {
        if !self.live_nodes().iter().any(|n| n == node) {
            return true;
        }
        let Ok(mut unread) = self.inner.unread_inboxes.lock() else {
            return false;
        };
        if unread.len() > 1000 {
            unread.clear();
        }
        let now = Instant::now();
        let seen = unread.entry(node.to_owned()).or_insert((now, now));
        if now.duration_since(seen.1) > DEAD_INBOX {
            // An old reading (the node was found read again since, or nobody looked): the
            // window starts over.
            *seen = (now, now);
        }
        seen.1 = now;
        now.duration_since(seen.0) >= DEAD_INBOX
    }

    /// Notes that `node`'s inbox is read.
    fn inbox_read(&self, node: &str) {
        if let Ok(mut unread) = self.inner.unread_inboxes.lock() {
            unread.remove(node);
        }
    }

    /// How many subscribers `node`'s inbox has (`None` when Redis cannot tell). On one Redis
    /// server, not a Redis Cluster: there `PUBLISH` and `PUBSUB NUMSUB` count one shard.
    async fn inbox_readers(&self, node: &str) -> Option<i64> {
        let topic = keys::inbox_topic(&self.inner.config.prefix, node);
        let mut conn = self.inner.conn.clone();
        let counts: Vec<(String, i64)> = self
            .timed(async {
                redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&topic)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await
            .ok()?;
        counts.first().map(|(_, n)| *n)
    }

    /// Frees the channel's lease if `node` holds it: `node` has read no inbox for a while, so it
    /// is dead (or cut off from Redis, and then fenced: its commits need the lease's epoch).
    async fn break_lease(&self, channel: ChannelSid, node: &str) {
        if let Ok(Some((holder, epoch))) = self.lease_of(channel).await {
            if holder == node {
                let store = &self.inner.store;
                if let Ok(true) = self.timed(store.release_lease(channel, node, epoch)).await {
                    tracing::info!(%channel, %node, epoch,
                        "broke the lease of a node that reads no inbox");
                }
            }
        }
    }
}

/// The outcome of a forwarded command's reply channel.
fn reply_of(
    reply: Result<Outcome, oneshot::error::RecvError>,
) -> Result<Vec<ChannelEvent>, ChannelError> {
    match reply {
        Ok(outcome) => outcome.into(),
        Err(_) => Err(ChannelError::Unreachable("the reply was dropped".into())),
    }
}
