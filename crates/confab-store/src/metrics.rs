//! The store's metrics, registered into the registry it is handed (never a global one).

use prometheus::{Histogram, HistogramOpts, IntGauge, Registry};

/// Write-path metrics of a store.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    /// `confab_store_write_duration_seconds`: one transaction (a batch of writes), begin to commit;
    /// for `RedisStore`, one channel commit script.
    pub write_seconds: Histogram,
    /// `confab_store_batch_size`: writes per committed transaction.
    pub batch_size: Histogram,
    /// `confab_sqlite_wal_frames`: frames in SQLite's write-ahead log at the last checkpoint.
    pub wal_frames: IntGauge,
    /// `confab_sqlite_wal_frames_behind`: frames the last checkpoint left in the log.
    pub wal_behind: IntGauge,
}

impl StoreMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "confab_store_write_duration_seconds",
                "One store write: a SQLite transaction (a batch of writes) or a Redis commit script.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "confab_store_batch_size",
                "Writes committed together in one transaction.",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
            ]),
        )?;
        let wal_frames = IntGauge::new(
            "confab_sqlite_wal_frames",
            "Frames in SQLite's write-ahead log at the last checkpoint (embedded store).",
        )?;
        let wal_behind = IntGauge::new(
            "confab_sqlite_wal_frames_behind",
            "Frames the last SQLite checkpoint could not copy yet: readers still needed them.",
        )?;
        registry.register(Box::new(write_seconds.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(wal_frames.clone()))?;
        registry.register(Box::new(wal_behind.clone()))?;
        Ok(Self {
            write_seconds,
            batch_size,
            wal_frames,
            wal_behind,
        })
    }
}
