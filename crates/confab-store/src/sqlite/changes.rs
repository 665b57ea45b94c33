//! Counts of the writes of cached records ([`ChangeCounts`]). The embedded store is the only
//! writer of its database, so a cache can tell that a copy it holds is still current without
//! reading it again: under a steady load of messages, re-reading each sender's role and each
//! channel's webhooks when a short TTL expired was a read hop for one message in two.

use std::sync::atomic::{AtomicU64, Ordering};

use super::SqliteStore;
use crate::traits::{CachedRecords, ChangeCounts};

/// The kinds of records a write changes, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changed(u8);

impl Changed {
    /// A write of no cached record.
    pub(crate) const NOTHING: Changed = Changed(0);

    /// A write of these kinds of records.
    pub(crate) fn of(records: &[CachedRecords]) -> Self {
        Changed(records.iter().fold(0, |set, r| set | 1 << slot(*r)))
    }

    /// Both sets.
    pub(crate) fn with(self, other: Changed) -> Self {
        Changed(self.0 | other.0)
    }
}

fn slot(records: CachedRecords) -> usize {
    match records {
        CachedRecords::Services => 0,
        CachedRecords::Users => 1,
        CachedRecords::Webhooks => 2,
    }
}

/// One count per kind, shared by the store and its writer thread.
#[derive(Debug, Default)]
pub(crate) struct Counts([AtomicU64; 3]);

impl Counts {
    /// Counts the writes of `changed`. The writer calls it once their transaction has ended
    /// (committed or not: a count too many only costs a cache a read) and before their callers
    /// hear of it, as [`ChangeCounts`] promises.
    pub(crate) fn record(&self, changed: Changed) {
        for (i, count) in self.0.iter().enumerate() {
            if changed.0 & 1 << i != 0 {
                count.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn get(&self, records: CachedRecords) -> u64 {
        self.0[slot(records)].load(Ordering::Acquire)
    }
}

impl ChangeCounts for SqliteStore {
    fn changes(&self, records: CachedRecords) -> Option<u64> {
        Some(self.inner.changes.get(records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_counts_for_each_kind_it_changes_and_no_other() {
        let counts = Counts::default();
        counts.record(Changed::of(&[CachedRecords::Users]));
        counts.record(Changed::NOTHING);
        counts.record(
            Changed::of(&[CachedRecords::Webhooks]).with(Changed::of(&[CachedRecords::Users])),
        );
        assert_eq!(counts.get(CachedRecords::Services), 0);
        assert_eq!(counts.get(CachedRecords::Users), 2);
        assert_eq!(counts.get(CachedRecords::Webhooks), 1);
        counts.record(Changed::of(&CachedRecords::ALL));
        assert_eq!(CachedRecords::ALL.map(|r| counts.get(r)), [1, 3, 2]);
    }
}
