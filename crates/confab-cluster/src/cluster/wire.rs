//! What nodes send each other over Redis pub/sub: forwarded channel commands, their replies,
//! and published event batches. JSON, so that an operator can read it with `redis-cli monitor`.

use confab_domain::{ChannelEvent, ChannelSid, DomainError};
use confab_store::StoreError;
use serde::{Deserialize, Serialize};

use confab_domain::Caller;

use crate::actor::ChannelOp;
use crate::broker::{EventBatch, TypingSignal};
use crate::error::ChannelError;
use crate::presence::UserSignal;

/// A message in a node's inbox.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum InboxMessage {
    /// Run `op` on `channel` for `caller` if you own it (or can take it). Tagged apart from
    /// the `request` of versions before callers travelled (which authorized before forwarding
    /// and whose owners authorize nothing): a node of such a version drops it as undecodable,
    /// so a user's command never runs unchecked during a rolling upgrade; the sender's retries
    /// then find another owner or time out.
    #[serde(rename = "callerRequest")]
    Request {
        /// Correlation id, unique per sending node.
        id: u64,
        /// The sending node: where the reply goes.
        from: String,
        /// The channel.
        channel: ChannelSid,
        /// The operation (boxed: it is far larger than a reply).
        op: Box<ChannelOp>,
        /// Who asked: the owner authorizes the operation for this caller.
        caller: Caller,
        /// For the account: whether post-event webhooks fire (`ChannelRequest::webhooks`).
        #[serde(default)]
        webhooks: bool,
    },
    /// The outcome of a request this node sent.
    Reply {
        /// The request's correlation id.
        id: u64,
        /// What happened.
        outcome: Outcome,
    },
}

/// Whether `payload` decodes as something a node receives from another: an inbox message or a
/// published batch, typing or user signal. Every message a node reads off Redis goes through
/// these decoders; the fuzz target `cluster_messages` drives them through here.
pub fn decodes(payload: &[u8]) -> bool {
    serde_json::from_slice::<InboxMessage>(payload).is_ok()
        || serde_json::from_slice::<Published<EventBatch>>(payload).is_ok()
}

/// The outcome of a forwarded command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Outcome {
    /// Committed: the events, in `seq` order.
    Ok(Vec<ChannelEvent>),
    /// Refused by the rules; nothing changed.
    Domain(DomainError),
    /// Refused or failed by the store.
    Store(StoreError),
    /// The channel's service does not exist.
    ServiceNotFound,
    /// The node does not own the channel; `holder` does, if known. Nothing ran.
    NotOwner {
        /// The node holding the channel's lease.
        holder: Option<String>,
    },
    /// The node could not take the command; nothing changed.
    Unavailable(String),
    /// The pre-event webhook refused the action; nothing changed.
    Webhook(confab_webhooks::WebhookError),
}

impl From<Result<Vec<ChannelEvent>, ChannelError>> for Outcome {
    fn from(result: Result<Vec<ChannelEvent>, ChannelError>) -> Self {
        match result {
            Ok(events) => Outcome::Ok(events),
            Err(ChannelError::Domain(e)) => Outcome::Domain(e),
            Err(ChannelError::Store(e)) => Outcome::Store(e),
            Err(ChannelError::ServiceNotFound) => Outcome::ServiceNotFound,
            Err(ChannelError::NotOwner { holder }) => Outcome::NotOwner { holder },
            Err(ChannelError::Unavailable(why)) => Outcome::Unavailable(why.to_owned()),
            Err(ChannelError::Unreachable(why)) => Outcome::Unavailable(why),
            Err(ChannelError::Webhook(e)) => Outcome::Webhook(e),
            Err(ChannelError::OwnerGone { .. }) => {
                Outcome::Unavailable("the channel's owner is gone".into())
            }
        }
    }
}

impl From<Outcome> for Result<Vec<ChannelEvent>, ChannelError> {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok(events) => Ok(events),
            Outcome::Domain(e) => Err(ChannelError::Domain(e)),
            Outcome::Store(e) => Err(ChannelError::Store(e)),
            Outcome::ServiceNotFound => Err(ChannelError::ServiceNotFound),
            Outcome::NotOwner { holder } => Err(ChannelError::NotOwner { holder }),
            Outcome::Unavailable(why) => Err(ChannelError::Unreachable(why)),
            Outcome::Webhook(e) => Err(ChannelError::Webhook(e)),
        }
    }
}

/// What is published on a channel or user topic. `origin` is the publishing process (node id
/// and boot tag), which delivered it locally already.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum Published<B> {
    /// A committed event batch.
    Batch {
        /// The publishing process.
        origin: String,
        /// The batch.
        batch: B,
    },
    /// Someone types in the channel.
    Typing {
        /// The publishing process.
        origin: String,
        /// The signal.
        typing: TypingSignal,
    },
    /// A user changed (on the users topic).
    User {
        /// The publishing process.
        origin: String,
        /// The signal.
        user: UserSignal,
    },
}

/// The published form, borrowed for serialization.
pub(crate) type PublishedRef<'a> = Published<&'a EventBatch>;

/// Whether `payload` is a [`Published`] this process sent (`origin_json` is its instance name
/// as a JSON string), told from the first bytes: a node that follows a channel it owns gets
/// its own batches back from Redis, and they were delivered here already, so they are dropped
/// without being decoded. The encoder writes `kind` then `origin`; anything else (a false
/// `false`) is decoded, and dropped then.
pub(crate) fn published_by(payload: &[u8], origin_json: &str) -> bool {
    let Some(rest) = payload.strip_prefix(b"{\"kind\":\"") else {
        return false;
    };
    let Some(end) = rest.iter().position(|&b| b == b'"') else {
        return false;
    };
    rest[end + 1..]
        .strip_prefix(b",\"origin\":")
        .and_then(|r| r.strip_prefix(origin_json.as_bytes()))
        .is_some_and(|r| r.first() == Some(&b','))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use confab_domain::ChannelCommand;
    use serde_json::json;

    #[test]
    fn a_node_knows_its_own_publications_from_their_first_bytes() {
        let typing = TypingSignal {
            service: confab_domain::ServiceSid::from_bits(1),
            channel: ChannelSid::from_bits(2),
            identity: "alice".into(),
            member_sid: "MB1".into(),
            timeout_ms: 5000,
        };
        let published: PublishedRef<'_> = Published::Typing {
            origin: "node-a/7f".into(),
            typing,
        };
        let payload = serde_json::to_vec(&published).unwrap();
        let origin = |name: &str| serde_json::to_string(name).unwrap();
        assert!(published_by(&payload, &origin("node-a/7f")));
        assert!(
            !published_by(&payload, &origin("node-a")),
            "a prefix of the name is another node"
        );
        assert!(!published_by(&payload, &origin("node-b/7f")));
        assert!(!published_by(b"{\"kind\":", &origin("node-a/7f")));
        assert!(!published_by(b"", &origin("node-a/7f")));
    }

    #[test]
    fn a_forwarded_command_carries_its_caller_and_fails_closed_without_one() {
        let request = InboxMessage::Request {
            id: 1,
            from: "a".into(),
            channel: ChannelSid::from_bits(1),
            op: Box::new(ChannelOp::Apply(ChannelCommand::Delete)),
            caller: Caller::user(confab_domain::ServiceSid::from_bits(2), "alice"),
            webhooks: false,
        };
        let mut value = serde_json::to_value(&request).unwrap();
        assert_eq!(value["kind"], "callerRequest");
        match serde_json::from_value::<InboxMessage>(value.clone()).unwrap() {
            InboxMessage::Request { caller, .. } => {
                assert_eq!(caller.identity(), Some("alice"))
            }
            InboxMessage::Reply { .. } => panic!("decoded as a reply"),
        }
        // Without a caller (an older node's shape) it is not run as anyone.
        value.as_object_mut().unwrap().remove("caller");
        assert!(serde_json::from_value::<InboxMessage>(value.clone()).is_err());
        value["kind"] = json!("request");
        assert!(serde_json::from_value::<InboxMessage>(value).is_err());
    }

    #[test]
    fn a_forwarded_media_post_keeps_its_media() {
        // Also the fuzz target's seed: it must decode, or the fuzzer starts from nothing.
        let seed = include_bytes!("../../../../fuzz/corpus/cluster_messages/post-media");
        assert!(decodes(seed));
        match serde_json::from_slice::<InboxMessage>(seed).unwrap() {
            InboxMessage::Request { op, .. } => match *op {
                ChannelOp::Apply(ChannelCommand::PostMessage(post)) => {
                    assert_eq!(
                        post.media.map(|m| m.sid.to_string()).as_deref(),
                        Some("ME00000000000000000000000000000003")
                    );
                }
                other => panic!("decoded as {other:?}"),
            },
            InboxMessage::Reply { .. } => panic!("decoded as a reply"),
        }
    }
}
