//! Per-user allowances that refill at a steady rate (invites that create users, media uploads):
//! a token bucket per (service, identity), bounded in how many users it tracks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use confab_domain::ServiceSid;

/// Users tracked before the idle ones are forgotten: a bound on the map.
const MAX_TRACKED: usize = 100_000;

/// Tokens that refill at a steady rate up to a burst.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One allowance per user, `per_minute` actions a minute with a burst of as many.
#[derive(Debug, Default)]
pub(crate) struct Allowances {
    buckets: Mutex<HashMap<(ServiceSid, String), Bucket>>,
}

impl Allowances {
    /// Takes one action from the user's allowance; `false` when it is used up (or is 0).
    pub(crate) fn take(&self, service: ServiceSid, identity: &str, per_minute: u32) -> bool {
        if per_minute == 0 {
            return false;
        }
        let rate = f64::from(per_minute);
        let now = Instant::now();
        // A poisoned lock only means a panic elsewhere mid-update of plain numbers.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            // Idle for a minute: full again, so forgetting it changes nothing.
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < 60.0);
        }
        let bucket = buckets
            .entry((service, identity.to_owned()))
            .or_insert(Bucket {
                tokens: rate,
                at: now,
            });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_per_user() {
        let a = Allowances::default();
        let s = ServiceSid::from_bits(1);
        assert!((0..3).all(|_| a.take(s, "alice", 3)));
        assert!(!a.take(s, "alice", 3));
        assert!(a.take(s, "bob", 3), "another user has its own allowance");
        assert!(!a.take(s, "carol", 0));
    }
}
