//! The checkpoint thread: copies the write-ahead log into the database off the commit path.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{open_connection, SqliteOptions};
use crate::error::StoreError;

/// Frames of log past which the writer finishes a checkpoint so that the log starts over (below
/// it, a quiet moment lets the checkpoint thread's own checkpoint do it).
const RESTART_FRAMES: i64 = 1024;

/// Most passes the checkpoint thread makes in a row before the writer catches up: it bounds the
/// thread's copying and syncing per tick, on a log that grows faster than a pass copies it.
const MAX_PASSES: u32 = 4;

/// Frames a pass copies beyond the previous pass's end below which it was short (so little was
/// committed during it, which the writer's catch-up copies while commits wait). Counted in
/// frames, not timed, so that a disk whose syncs are slow does not make every pass look long;
/// 1,024 frames are 4 MiB with 4 KiB pages, about what the development machine's checkpoint
/// copied in the 5 ms that first marked a short pass (a pass of 25,000 frames took 80 ms).
const SHORT_PASS: i64 = 1024;

/// Starts the thread that checkpoints the database every `checkpoint_ms` on its own connection,
/// until the returned sender (held by the store) is dropped. A passive checkpoint copies what
/// the log holds into the database without blocking the writer or readers; what a reader still
/// needs is copied by a later one. Over a long log it makes up to [`MAX_PASSES`] passes in a
/// row, each copying what was committed during the one before, until one copies fewer than
/// [`SHORT_PASS`] frames; then it asks the writer to catch up.
pub(super) fn start_checkpointer(
    path: &Path,
    options: &SqliteOptions,
    metrics: Option<crate::StoreMetrics>,
    catch_up: Arc<AtomicBool>,
) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = open_connection(path, options)?;
    let every = std::time::Duration::from_millis(options.checkpoint_ms.max(10));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("confab-sqlite-checkpoint".into())
        .spawn(move || {
            let stopped = || !matches!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                // Over a long log, passes follow each other while each finds much committed
                // during the one before: the writer's catch-up, which holds up commits while it
                // copies and syncs, then has only what the last, short, pass missed. Measured
                // at 4,000 messages/s: a pass took 80 ms, and the catch-up after a single one
                // 20 ms, once a second, the p99 of the deliveries.
                let mut previous_copied = None;
                for pass in 1..=MAX_PASSES {
                    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    });
                    let (log, copied) = match result {
                        // Another checkpoint (the writer's catch-up) holds the checkpoint lock:
                        // the counts are -1, not the log's; the next tick tries again.
                        Ok((busy, _, _)) if busy != 0 => break,
                        Ok((_, log, copied)) => (log, copied),
                        Err(e) => {
                            tracing::warn!(error = %e, "sqlite: checkpoint failed");
                            break;
                        }
                    };
                    tracing::trace!(log, copied, pass, "sqlite: passive checkpoint");
                    if let Some(m) = &metrics {
                        m.wal_frames.set(log.max(0));
                        m.wal_behind.set((log - copied).max(0));
                    }
                    if log < RESTART_FRAMES {
                        break;
                    }
                    // `copied` counts from the log's start: this pass copied what it adds to the
                    // previous pass's count (all of it when the log started over in between).
                    // What a pass copies was committed during the one before, or held back by a
                    // reader then.
                    let short = previous_copied.is_some_and(|before: i64| {
                        let this_pass = if copied >= before {
                            copied - before
                        } else {
                            copied
                        };
                        this_pass < SHORT_PASS
                    });
                    previous_copied = Some(copied);
                    if pass == MAX_PASSES || short {
                        catch_up.store(true, Ordering::Release);
                        break;
                    }
                    if stopped() {
                        break;
                    }
                }
            }
            // The store is gone: a last checkpoint copies what the log holds, so that the next
            // start has little to recover.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        })
        .map_err(|e| StoreError::Backend(format!("cannot start checkpoint thread: {e}")))?;
    Ok(tx)
}
