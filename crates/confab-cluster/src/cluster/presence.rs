//! The cluster's side of presence: this node's set of present users in Redis, kept in the
//! order the hub reports arrivals and departures, and the questions asked of the other live
//! nodes' sets. The policy (grace, answers, departed nodes) is the realtime hub's.

use confab_store::StoreError;
use tokio::sync::{mpsc, oneshot};

use super::{keys, Cluster};

/// A presence change of a local user (`service/identity`).
#[derive(Debug)]
pub(crate) enum Presence {
    /// Their first session here began.
    Arrived(String),
    /// Their last session here ended; the answer: whether another live node has one.
    Left(String, oneshot::Sender<bool>),
}

/// Removes a user from this node's presence set and tells whether another node's set has them.
/// ARGV: this node's set, the member, then the other live nodes' sets.
const USER_LEFT: &str = r#"
redis.call('SREM', ARGV[1], ARGV[2])
for i = 3, #ARGV do
  if redis.call('SISMEMBER', ARGV[i], ARGV[2]) == 1 then return 1 end
end
return 0
"#;

impl Cluster {
    pub(super) fn presence_key(&self, node: &str) -> String {
        keys::presence_set(&self.inner.config.prefix, node)
    }

    /// The user's first session on this node began.
    pub(crate) fn user_arrived(&self, service: confab_domain::ServiceSid, identity: &str) {
        let _ = self
            .inner
            .presence
            .send(Presence::Arrived(format!("{service}/{identity}")));
    }

    /// The user's last session on this node ended: resolves whether another live node still
    /// has one, decided in Redis in the same script that removes this node's entry (of two
    /// nodes losing the user at once, the second sees the first's removal).
    pub(crate) fn user_left(
        &self,
        service: confab_domain::ServiceSid,
        identity: &str,
    ) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .inner
            .presence
            .send(Presence::Left(format!("{service}/{identity}"), tx));
        rx
    }

    /// Whether `identity` has a session on another live node (Redis unreachable: no).
    pub async fn online_elsewhere(
        &self,
        service: confab_domain::ServiceSid,
        identity: &str,
    ) -> bool {
        let member = format!("{service}/{identity}");
        let others = self.other_presence_keys();
        if others.is_empty() {
            return false;
        }
        let mut pipe = redis::pipe();
        for key in &others {
            pipe.cmd("SISMEMBER").arg(key).arg(&member);
        }
        let mut conn = self.inner.conn.clone();
        let found = self
            .timed(async {
                pipe.query_async::<Vec<bool>>(&mut conn)
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await;
        found.map(|f| f.into_iter().any(|b| b)).unwrap_or(false)
    }

    fn other_presence_keys(&self) -> Vec<String> {
        self.live_nodes()
            .into_iter()
            .filter(|n| n != self.node_id())
            .map(|n| self.presence_key(&n))
            .collect()
    }

    /// Keeps this node's set of present users in Redis, in the order the hub reported them;
    /// arrivals queued together go in one round trip. The set expires (3 × `node_ttl`) unless
    /// the heartbeat extends it; others only read the sets of live nodes anyway.
    pub(super) async fn presence_loop(self, mut changes: mpsc::UnboundedReceiver<Presence>) {
        let key = self.presence_key(self.node_id());
        let mut conn = self.inner.conn.clone();
        // An earlier process under this node id may have left its users behind.
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
        let ttl = (self.inner.config.node_ttl * 3).as_millis() as u64;
        let leave = redis::Script::new(USER_LEFT);
        let mut shutdown = self.shutdown_signal();
        let mut next: Option<Presence> = None;
        loop {
            let change = match next.take() {
                Some(change) => change,
                None => tokio::select! {
                    _ = shutdown.changed() => return,
                    change = changes.recv() => match change {
                        Some(change) => change,
                        None => return,
                    },
                },
            };
            let result = match change {
                Presence::Arrived(member) => {
                    let mut pipe = redis::pipe();
                    pipe.cmd("SADD").arg(&key).arg(member).ignore();
                    loop {
                        match changes.try_recv() {
                            Ok(Presence::Arrived(member)) => {
                                pipe.cmd("SADD").arg(&key).arg(member).ignore();
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
                    self.timed(async {
                        pipe.query_async::<()>(&mut conn)
                            .await
                            .map_err(|e| StoreError::Backend(e.to_string()))
                    })
                    .await
                }
                Presence::Left(member, answer) => {
                    let mut invocation = leave.prepare_invoke();
                    invocation.arg(&key).arg(&member);
                    for other in self.other_presence_keys() {
                        invocation.arg(other);
                    }
                    let elsewhere = self
                        .timed(async {
                            invocation
                                .invoke_async::<i64>(&mut conn)
                                .await
                                .map_err(|e| StoreError::Backend(e.to_string()))
                        })
                        .await;
                    // Redis unreachable: say "not elsewhere"; a node that still has the user
                    // answers an offline announcement with an online one.
                    let _ = answer.send(matches!(elsewhere, Ok(1)));
                    elsewhere.map(|_| ())
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "presence not recorded");
            }
        }
    }
}
