//! `SqliteStore`'s checkpoints: the checkpoint thread copies the log into the database every
//! `checkpoint_ms` (commits do not wait for it; left alone, the writer never copies), and the
//! log starts over even while writes never pause.

// Test code fails by panicking; that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use confab_domain::{DefaultRoles, Service, ServiceLimits, ServiceSid, Timestamp};
use confab_store::{ServiceStore, SqliteOptions, SqliteStore, StoreMetrics};

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Creates service number `n` (a commit of a few pages).
async fn create_service(store: &SqliteStore, n: u128) {
    let mut sids = confab_domain::CountingSids(n * 10 + 1_000_000);
    let sid = ServiceSid::from_bits(n + 1);
    let roles = DefaultRoles::new(sid, &mut sids, Timestamp(0));
    let service = Service::new(
        sid,
        "x".repeat(2000),
        &roles,
        ServiceLimits {
            channel_members: 10,
            user_channels: 10,
        },
        Timestamp(0),
    );
    store
        .create_service(&service, &roles.into_vec())
        .await
        .unwrap();
}

/// Writes `count` services, one after another.
async fn write(store: &SqliteStore, count: u128) {
    for i in 0..count {
        create_service(store, i).await;
    }
}

/// A store in a fresh directory checkpointing every `checkpoint_ms`; its database file's path
/// and its metrics.
fn open(dir: &Path, checkpoint_ms: u64) -> (SqliteStore, std::path::PathBuf, StoreMetrics) {
    let db = dir.join("confab.db");
    let options = SqliteOptions {
        checkpoint_ms,
        ..SqliteOptions::default()
    };
    let metrics = StoreMetrics::register(&prometheus::Registry::new()).unwrap();
    let store = SqliteStore::open_with_metrics(&db, options, Some(metrics.clone())).unwrap();
    (store, db, metrics)
}

#[tokio::test]
async fn the_writer_leaves_checkpoints_to_the_checkpoint_thread() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("confab.db-wal");
    // No checkpoint for an hour: whatever reaches the database file, the writer copied.
    let (store, db, _) = open(dir.path(), 3_600_000);
    let before = size(&db);
    // Well past SQLite's automatic checkpoint (1,000 pages of log).
    write(&store, 3000).await;
    assert!(size(&wal) > 1000 * 4096, "the log holds every commit");
    assert_eq!(
        size(&db),
        before,
        "the writer copied the log into the database"
    );
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let (store, db, metrics) = open(dir.path(), 50);
    let before = size(&db);
    write(&store, 300).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The database file grows with the first checkpoint, which then reports the log's frames.
    while size(&db) <= before || metrics.wal_frames.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "the checkpoint thread never copied the log (or never reported it)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_while_writes_never_pause() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _db, metrics) = open(dir.path(), 20);
    // Sixteen writers keep the writer's queue full: a passive checkpoint on its own connection
    // never finds the whole log copied, and the log would grow for as long as they write.
    let writers: Vec<_> = (0..16u128)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..400u128 {
                    create_service(&store, (w + 1) * 1_000_000 + i).await;
                }
            })
        })
        .collect();
    // The log's length as each checkpoint reports it: once it is shorter than before, the log
    // started over while the writers were still writing.
    let mut longest = 0;
    let mut started_over = false;
    while !writers.iter().all(|w| w.is_finished()) {
        let frames = metrics.wal_frames.get();
        if frames < longest {
            started_over = true;
        }
        longest = longest.max(frames);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        started_over,
        "the log never started over under continuous writes (it reached {longest} frames)"
    );
}
