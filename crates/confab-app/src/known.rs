//! The channels this node has seen exist, with their service: a write names a channel by SID,
//! and checking it against the store first (so that no actor or lease starts for a channel
//! that does not exist) cost a read per message (a thread hop and a SQLite read transaction,
//! the largest share of the node's reads under load, docs/benchmarks.md).
//!
//! A channel's service never changes and SIDs are never reused, so an entry stays true until
//! the channel is deleted. A deletion through this node forgets it; one through another node
//! leaves it until dropped for room, and meanwhile a write goes to the channel's actor, which
//! loads what the store holds and answers 50300 as the read would have.

use std::collections::HashMap;
use std::sync::Mutex;

use confab_domain::{ChannelSid, ServiceSid};

/// Channels remembered before the whole set is dropped: a bound on memory (about 64 bytes
/// each), not on correctness (a channel not remembered is read from the store).
const MAX_KNOWN: usize = 100_000;

/// Channels known to exist, each with its service.
#[derive(Debug, Default)]
pub(crate) struct KnownChannels {
    channels: Mutex<HashMap<ChannelSid, ServiceSid>>,
}

impl KnownChannels {
    /// Whether `channel` is known to exist in `service`.
    pub(crate) fn contains(&self, service: ServiceSid, channel: ChannelSid) -> bool {
        self.channels
            .lock()
            .is_ok_and(|known| known.get(&channel) == Some(&service))
    }

    /// `channel` exists in `service`.
    pub(crate) fn insert(&self, service: ServiceSid, channel: ChannelSid) {
        if let Ok(mut known) = self.channels.lock() {
            if known.len() >= MAX_KNOWN {
                known.clear();
            }
            known.insert(channel, service);
        }
    }

    /// `channel` was deleted.
    pub(crate) fn forget(&self, channel: ChannelSid) {
        if let Ok(mut known) = self.channels.lock() {
            known.remove(&channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_known_in_its_own_service_until_forgotten() {
        let known = KnownChannels::default();
        let (a, b) = (ServiceSid::from_bits(1), ServiceSid::from_bits(2));
        let channel = ChannelSid::from_bits(7);
        assert!(!known.contains(a, channel));
        known.insert(a, channel);
        assert!(known.contains(a, channel));
        assert!(
            !known.contains(b, channel),
            "another service's caller reads the store"
        );
        known.forget(channel);
        assert!(!known.contains(a, channel));
    }

    #[test]
    fn the_set_is_bounded() {
        let known = KnownChannels::default();
        let service = ServiceSid::from_bits(1);
        for n in 0..=MAX_KNOWN as u128 {
            known.insert(service, ChannelSid::from_bits(n));
        }
        assert!(known.channels.lock().unwrap().len() <= MAX_KNOWN);
        assert!(known.contains(service, ChannelSid::from_bits(MAX_KNOWN as u128)));
    }
}
