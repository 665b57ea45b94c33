//! The writer thread: every write of the embedded store, in batches, one transaction each,
//! each write in its own savepoint; answers after the commit.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::changes::{Changed, Counts};
use crate::error::StoreError;

/// A write for the writer thread. `run` executes inside its own savepoint of the batch's
/// transaction; `reply` gets its result only after that transaction has committed.
pub(super) struct WriteJob {
    pub(super) run: Box<dyn FnOnce(&Connection) -> WriteResult + Send>,
    pub(super) reply: oneshot::Sender<WriteResult>,
    /// The cached records it writes, counted before `reply` is sent.
    pub(super) changes: Changed,
}

/// A write's result with its type erased (the writer thread runs writes of every type).
pub(super) type WriteResult = Result<Box<dyn Any + Send>, StoreError>;

/// The writer thread: batches queued writes into transactions until every sender is gone.
pub(super) fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<WriteJob>,
    max_batch: usize,
    metrics: Option<crate::StoreMetrics>,
    catch_up: Arc<AtomicBool>,
    changes: &Counts,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        run_batch(&conn, batch.drain(..), changes);
        if let Some(m) = &metrics {
            m.write_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_size.observe(size as f64);
        }
        if catch_up.swap(false, Ordering::AcqRel) {
            // The checkpoint thread copied the log up to where it began; what was committed
            // since is a few batches. Copied now, with no transaction open, the whole log is in
            // the database and the next commit writes the log from its start again.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "sqlite: cannot finish a checkpoint");
            }
        }
    }
    tracing::debug!("sqlite writer stopped: every store handle is gone");
}

/// Runs one batch in one transaction and answers every job after the commit, counting the
/// writes of cached records before any answer.
fn run_batch(conn: &Connection, batch: impl Iterator<Item = WriteJob>, changes: &Counts) {
    let backend = |e: &rusqlite::Error| StoreError::Backend(e.to_string());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "sqlite: cannot begin a write transaction");
        for job in batch {
            let _ = job.reply.send(Err(backend(&e)));
        }
        return;
    }
    let mut answers = Vec::new();
    let mut changed = Changed::NOTHING;
    // Set when a failed write could not be rolled back to its savepoint: the transaction then
    // may hold part of it, so the whole batch is abandoned rather than committed.
    let mut poisoned = None;
    for job in batch {
        changed = changed.with(job.changes);
        if poisoned.is_some() {
            answers.push((
                job.reply,
                Err(StoreError::Backend("batch abandoned".into())),
            ));
            continue;
        }
        // From the connection's statement cache: `execute_batch` parsed these three statements
        // for every write.
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        let result = match run("SAVEPOINT w") {
            Err(e) => Err(backend(&e)),
            Ok(_) => {
                let result = (job.run)(conn);
                let ended = if result.is_ok() {
                    run("RELEASE w")
                } else {
                    run("ROLLBACK TO w").and_then(|_| run("RELEASE w"))
                };
                if let Err(e) = ended {
                    poisoned = Some(e.to_string());
                }
                result
            }
        };
        answers.push((job.reply, result));
    }
    let committed = match poisoned {
        Some(reason) => Err(reason),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    changes.record(changed);
    match committed {
        Ok(()) => {
            for (reply, result) in answers {
                // The caller may have gone away; then nobody needs the outcome.
                let _ = reply.send(result);
            }
        }
        Err(reason) => {
            tracing::error!(error = %reason, "sqlite: batch not committed");
            for (reply, _) in answers {
                let _ = reply.send(Err(StoreError::Backend(reason.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(
        run: impl FnOnce(&Connection) -> WriteResult + Send + 'static,
    ) -> (WriteJob, oneshot::Receiver<WriteResult>) {
        let (reply, rx) = oneshot::channel();
        (
            WriteJob {
                run: Box::new(run),
                reply,
                changes: Changed::NOTHING,
            },
            rx,
        )
    }

    fn insert(conn: &Connection, name: &str) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (name) VALUES (?1)", [name])?;
        Ok(())
    }

    #[test]
    fn a_failed_write_in_a_batch_is_undone_and_the_others_commit() {
        let conn = names_table();
        let (first, first_rx) = job(|c| insert(c, "a").map(|()| Box::new(()) as _));
        // Writes a row, then fails: the row must not survive.
        let (failing, failing_rx) = job(|c| {
            insert(c, "half")?;
            insert(c, "a")?;
            Ok(Box::new(()) as _)
        });
        let (last, last_rx) = job(|c| insert(c, "c").map(|()| Box::new(()) as _));
        run_batch(
            &conn,
            [first, failing, last].into_iter(),
            &Counts::default(),
        );
        assert!(first_rx.blocking_recv().unwrap().is_ok());
        assert!(failing_rx.blocking_recv().unwrap().is_err());
        assert!(last_rx.blocking_recv().unwrap().is_ok());
        assert_eq!(names_in(&conn), ["a", "c"]);
        // No transaction is left open: a second batch begins and commits as well.
        assert!(conn.is_autocommit());
        let (again, again_rx) = job(|c| insert(c, "d").map(|()| Box::new(()) as _));
        run_batch(&conn, [again].into_iter(), &Counts::default());
        assert!(again_rx.blocking_recv().unwrap().is_ok());
        assert_eq!(names_in(&conn), ["a", "c", "d"]);
    }

    fn names_table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT UNIQUE)")
            .unwrap();
        conn
    }

    fn names_in(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM t ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_write_that_ends_the_transaction_abandons_the_whole_batch() {
        let conn = names_table();
        let (first, first_rx) = job(|c| insert(c, "a").map(|()| Box::new(()) as _));
        // As SQLite does on an I/O error or a full disk: the whole transaction is rolled back,
        // so its savepoint is gone and the write before it is undone too.
        let (ending, ending_rx) = job(|c| {
            c.execute_batch("ROLLBACK")?;
            Err(StoreError::Backend("disk full".into()))
        });
        let (last, last_rx) = job(|c| insert(c, "c").map(|()| Box::new(()) as _));
        run_batch(&conn, [first, ending, last].into_iter(), &Counts::default());
        // Nothing is acknowledged, not even the write that ran before the failure.
        assert!(first_rx.blocking_recv().unwrap().is_err());
        assert!(ending_rx.blocking_recv().unwrap().is_err());
        assert!(last_rx.blocking_recv().unwrap().is_err());
        assert!(names_in(&conn).is_empty());
        assert!(conn.is_autocommit());
    }
}
