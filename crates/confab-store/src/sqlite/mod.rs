//! `SqliteStore`: the embedded store, one SQLite database in WAL mode.
//!
//! Writes go to one writer thread that owns the only writing connection. It takes every write
//! waiting in its queue, runs them in one transaction (each inside its own savepoint, so one
//! failing write does not undo the others) and commits once: group commit. A write's future
//! resolves only after the commit that holds it, so an acknowledged write is in the WAL and
//! survives a crash of the process. A checkpoint thread copies the WAL into the database every
//! `checkpoint_ms` (passive: it blocks neither the writer nor readers). The log starts over only
//! when a write transaction begins with all of it copied, which a passive checkpoint racing a
//! busy writer never sees: so once the checkpoint thread's passes over a long log leave little
//! uncopied, the writer copies the few frames committed meanwhile, between two batches, and the
//! log starts over with its next commit.
//! Reads run on tokio's blocking pool over a small pool of read connections, which WAL lets
//! proceed while the writer works. No SQLite call ever runs on an async worker thread.

mod changes;
mod channels;
mod jobs;
mod media;
mod queries;
mod rows;
mod schema;
mod user_channels;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

use self::changes::{Changed, Counts};
use crate::error::StoreError;

/// How hard SQLite pushes each commit to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Commits survive a crash of the process; the newest commits may be lost if the machine
    /// loses power. SQLite's recommended setting for WAL.
    #[default]
    Normal,
    /// Every commit is fsynced: survives power loss, costs a disk flush per batch.
    Full,
}

/// Settings of a `SqliteStore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteOptions {
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Writes that may wait for the writer before callers are made to wait (backpressure).
    pub write_queue: usize,
    /// Read connections (and so concurrent reads).
    pub readers: usize,
    /// Channel events kept per channel for resume; older ones are pruned.
    pub event_retention: u64,
    /// Page cache per read connection, in KiB.
    pub cache_kib: u64,
    /// Page cache of the writer's connection, in KiB. Small on purpose: SQLite walks the
    /// writer's cache at the end of every commit (`pcache1TruncateUnsafe`, 5 % of a busy node's
    /// CPU with 64 MiB), and the writer only needs the pages it changes.
    pub writer_cache_kib: u64,
    /// How large, in KiB, the writer's cache may grow with the changed pages of one write
    /// transaction before SQLite spills them to the log in the middle of it (the larger of this
    /// and `writer_cache_kib` applies). A batch over 1,000 channels changes a few pages per
    /// write, far more than the 4 MiB cache holds: spilled pages were written, read back and
    /// written again at the commit (durable sends into 1,000 channels: 7,144 and 7,405 → 9,636
    /// and 9,522 per second with the other changes of that day, docs/benchmarks.md). The cache
    /// shrinks back to `writer_cache_kib` as its pages are clean again after the commit.
    pub writer_spill_kib: u64,
    /// How often a background thread copies the write-ahead log into the database (a passive
    /// checkpoint), in milliseconds. Commits do not wait for it; once its passes over a long log
    /// leave little uncopied, the writer copies, between two batches, the few frames committed
    /// meanwhile.
    pub checkpoint_ms: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            max_batch: 512,
            write_queue: 4096,
            readers: 4,
            event_retention: 10_000,
            cache_kib: 65_536,
            writer_cache_kib: 4096,
            writer_spill_kib: 65_536,
            checkpoint_ms: 1000,
        }
    }
}

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

/// A write for the writer thread. `run` executes inside its own savepoint of the batch's
/// transaction; `reply` gets its result only after that transaction has committed.
struct WriteJob {
    run: Box<dyn FnOnce(&Connection) -> WriteResult + Send>,
    reply: oneshot::Sender<WriteResult>,
    /// The cached records it writes, counted before `reply` is sent.
    changes: Changed,
}

/// A write's result with its type erased (the writer thread runs writes of every type).
type WriteResult = Result<Box<dyn Any + Send>, StoreError>;

/// The embedded store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    writes: mpsc::Sender<WriteJob>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
    /// Writes of cached records, counted by the writer thread.
    changes: Arc<Counts>,
    /// Dropped with the store: the checkpoint thread sees it gone and ends.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Creates the database file readable by this user only, if it does not exist: SQLite gives
/// the `-wal` and `-shm` files it creates beside it the same permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => {}
            // An existing database (of an older version) is narrowed too, where this user may.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                use std::os::unix::fs::PermissionsExt;
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.as_os_str().to_owned();
                    name.push(suffix);
                    let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
                }
            }
            Err(e) => return Err(StoreError::Backend(format!("cannot create {path:?}: {e}"))),
        }
    }
    Ok(())
}

fn open_connection(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The writer may hold the write lock for a whole batch; readers never need it in WAL mode,
    // but a checkpoint can briefly make them wait.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Every query is a fixed text (pages add a few variants): kept prepared, none is parsed
    // twice (rusqlite keeps 16 by default, fewer than the store's queries).
    conn.set_prepared_statement_cache_capacity(128);
    let sync = match options.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    // Savepoints spill to a sub-journal: keep it in memory rather than in a temporary file.
    // A larger page cache keeps the hot pages of indexes and the newest messages resident.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{cache_kib};",
        cache_kib = options.cache_kib
    ))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it, and starts the writer.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        Self::open_with_metrics(path, options, None)
    }

    /// Like [`SqliteStore::open`], recording write metrics.
    pub fn open_with_metrics(
        path: impl AsRef<Path>,
        options: SqliteOptions,
        metrics: Option<crate::StoreMetrics>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private_file(&path)?;
        let mut conn = open_connection(&path, &options)?;
        schema::migrate(&mut conn)?;
        // Negative sizes are in KiB, whatever the database's page size.
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{}; PRAGMA cache_spill = -{};",
            options.writer_cache_kib.max(64),
            options.writer_spill_kib.max(64)
        ))?;
        // Checkpoints are the checkpoint thread's: a commit never copies the log into the
        // database (10 % of a busy node's time when the writer did, in the commit path). The
        // log file is cut back to 64 MiB when a checkpoint lets it start over.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")?;
        let catch_up = Arc::new(AtomicBool::new(false));
        let checkpointer = start_checkpointer(&path, &options, metrics.clone(), catch_up.clone())?;
        let (tx, rx) = mpsc::channel(options.write_queue.max(1));
        let max_batch = options.max_batch.max(1);
        let changes = Arc::new(Counts::default());
        let counts = changes.clone();
        std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, metrics, catch_up, &counts))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                readers: Mutex::new(Vec::new()),
                read_permits: Semaphore::new(options.readers.max(1)),
                options,
                writes: tx,
                changes,
                _checkpointer: checkpointer,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer thread in the next batch; resolves after that batch commits.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.write_changing(Changed::NOTHING, f).await
    }

    /// Like [`SqliteStore::write`], for a write of cached records: every write of them must
    /// come through here with their kinds (the [`crate::ChangeCounts`] contract).
    pub(crate) async fn write_changing<R: Send + 'static>(
        &self,
        changes: Changed,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            run: Box::new(move |conn| f(conn).map(|r| Box::new(r) as Box<dyn Any + Send>)),
            reply,
            changes,
        };
        self.inner
            .writes
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        let boxed = rx.await.map_err(|_| StoreError::Closed)??;
        boxed
            .downcast::<R>()
            .map(|r| *r)
            // `run` above boxed exactly an `R`, so the downcast cannot fail.
            .map_err(|_| StoreError::Backend("write result of unexpected type".into()))
    }

    /// Runs `f` with a read connection on the blocking pool.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path, &inner.options)?,
            };
            let result = f(&conn);
            // A connection left inside a transaction (one that could not be ended) would read
            // its old snapshot for ever: it is closed rather than pooled.
            if conn.is_autocommit() {
                if let Ok(mut pool) = inner.readers.lock() {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    pub(crate) fn retention(&self) -> u64 {
        self.inner.options.event_retention
    }
}

/// The writer thread: batches queued writes into transactions until every sender is gone.
fn writer_loop(
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

/// Starts the thread that checkpoints the database every `checkpoint_ms` on its own connection,
/// until the returned sender (held by the store) is dropped. A passive checkpoint copies what
/// the log holds into the database without blocking the writer or readers; what a reader still
/// needs is copied by a later one. Over a long log it makes up to [`MAX_PASSES`] passes in a
/// row, each copying what was committed during the one before, until one copies fewer than
/// [`SHORT_PASS`] frames; then it asks the writer to catch up.
fn start_checkpointer(
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
