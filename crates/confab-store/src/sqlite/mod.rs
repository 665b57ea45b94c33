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
mod checkpoint;
mod jobs;
mod media;
mod queries;
mod rows;
mod schema;
mod user_channels;
mod writer;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

use self::changes::{Changed, Counts};
use self::checkpoint::start_checkpointer;
use self::writer::{writer_loop, WriteJob};
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
