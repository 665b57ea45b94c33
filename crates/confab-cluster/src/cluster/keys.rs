//! The Redis names this crate uses: pub/sub topics and the presence sets. (The store's keys,
//! leases and node heartbeats included, are laid out in `confab_store::redis::keys`.)
//!
//! | name | kind | what |
//! |---|---|---|
//! | `{prefix}:inbox:{node}` | topic | commands forwarded to a node, and replies to it |
//! | `{prefix}:ch:{CH…}` | topic | a channel's event batches, sync marks and typing |
//! | `{prefix}:user:{IS…}:{identity}` | topic | batches that add, remove or invite the user |
//! | `{prefix}:users` | topic | user signals (online status, profile); every node follows it |
//! | `{prefix}:online:{node}` | set | `{IS…}/{identity}` of the users with a session on the node |

use confab_domain::ServiceSid;

use crate::broker::Topic;

/// A node's inbox.
pub(crate) fn inbox_topic(prefix: &str, node: &str) -> String {
    format!("{prefix}:inbox:{node}")
}

/// Where user signals go: every node follows it.
pub(crate) fn users_topic(prefix: &str) -> String {
    format!("{prefix}:users")
}

/// The topic of something a node follows.
pub(crate) fn topic_name(prefix: &str, topic: &Topic) -> String {
    match topic {
        Topic::Channel(sid) => format!("{prefix}:ch:{sid}"),
        Topic::User(service, identity) => user_topic(prefix, *service, identity),
    }
}

/// A user's topic.
pub(crate) fn user_topic(prefix: &str, service: ServiceSid, identity: &str) -> String {
    format!("{prefix}:user:{service}:{identity}")
}

/// The set of users with a session on `node`.
pub(crate) fn presence_set(prefix: &str, node: &str) -> String {
    format!("{prefix}:online:{node}")
}
