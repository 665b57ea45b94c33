//! Placement: which live node owns a channel, by rendezvous (highest random weight) hashing.
//!
//! Every node computes the same owner from the same live set, without talking to the others;
//! when a node joins or leaves, only the channels it gains or held move. The hash is FNV-1a,
//! spelled out here so that nodes built by different compilers agree.

use confab_domain::ChannelSid;

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short inputs; a final avalanche spreads them.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

/// The owner of `channel` among `nodes`: the node with the highest weight for it. `None` when
/// no node is live.
pub fn owner(channel: ChannelSid, nodes: &[String]) -> Option<&String> {
    let channel = channel.to_string();
    nodes
        .iter()
        .max_by_key(|node| (fnv1a(&[node.as_bytes(), channel.as_bytes()]), node.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn channels() -> Vec<ChannelSid> {
        (1..=3000).map(ChannelSid::from_bits).collect()
    }

    #[test]
    fn every_node_computes_the_same_owner_whatever_the_order() {
        let a = nodes(&["n1", "n2", "n3"]);
        let b = nodes(&["n3", "n1", "n2"]);
        for ch in channels() {
            assert_eq!(owner(ch, &a), owner(ch, &b));
        }
    }

    #[test]
    fn channels_spread_over_the_nodes() {
        let live = nodes(&["n1", "n2", "n3"]);
        let mut counts = [0usize; 3];
        for ch in channels() {
            let o = owner(ch, &live).unwrap();
            counts[live.iter().position(|n| n == o).unwrap()] += 1;
        }
        for c in counts {
            assert!((800..=1200).contains(&c), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_channels() {
        let before = nodes(&["n1", "n2", "n3"]);
        let after = nodes(&["n1", "n3"]);
        for ch in channels() {
            let was = owner(ch, &before).unwrap();
            if was != "n2" {
                assert_eq!(owner(ch, &after).unwrap(), was);
            }
        }
    }

    #[test]
    fn no_live_node_means_no_owner() {
        assert_eq!(owner(ChannelSid::from_bits(1), &[]), None);
    }
}
