//! SQLite: one file in WAL mode, one writer thread, a pool of readers.
//!
//! - [`pragmas`]: the PRAGMAs of the server's connections (copies and offline commands set
//!   their own; see there).
//! - [`writer`]: the single writer; batches jobs into `BEGIN IMMEDIATE` transactions (group commit).
//! - [`journal`]: relayed calls' rows, committed in one page each and folded into `logs`, the
//!   rollups and the balances in batches.
//! - [`migrate`]: migrations embedded from `schema/`.
//! - [`online_copy`]: online copies through SQLite's backup API, checked and fsynced.
//! - one file per table group ([`users`], [`keys`], [`channels`], [`logs`], [`options`], [`sessions`],
//!   [`notify`], [`deliveries`], [`heartbeat`]):
//!   plain functions over a `&Connection`, called inside writer jobs or on pooled readers;
//!   the queries of one report or job likewise ([`anomalies`], [`log_purge`] for retention,
//!   [`reconcile`], [`usage`], [`log_query`], [`log_search`]).
//! - [`synthetic`]: synthetic traffic for `sluice gen-logs` and the log-query tests.
//!
//! The store knows nothing of HTTP; ids, timestamps and amounts come in from the domain code.

pub mod anomalies;
pub mod channel_keys;
pub mod channel_settings;
pub mod channel_stats;
pub mod channels;
pub mod checkpoint;
pub mod deliveries;
pub mod heartbeat;
pub mod journal;
pub mod keys;
pub mod listing;
pub mod log_purge;
pub mod log_query;
pub mod log_search;
pub mod logs;
pub mod migrate;
pub mod notify;
pub mod online_copy;
pub mod options;
pub mod pragmas;
pub mod reconcile;
pub mod sessions;
pub mod synthetic;
pub mod usage;
pub mod usage_names;
pub mod users;
pub mod writer;
pub mod zone;

use r2d2_sqlite::SqliteConnectionManager;
use std::path::{Path, PathBuf};

pub use writer::Writer;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("migration: {0}")]
    Migration(String),
    #[error(
        "migration {migration} failed: {detail}. Nothing was applied: the database is still at \
         schema version {at}, unchanged, and the previous sluice release runs on it. Fix the \
         cause, or reinstall the previous release, then start again"
    )]
    MigrationFailed {
        /// The schema version the database stays at.
        at: i32,
        /// The migration that failed (for example `V3__data_ops`).
        migration: String,
        detail: String,
    },
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a blocking task failed: {0}")]
    Join(String),
}

impl StoreError {
    /// True when the error says a row was not there (mapped to 404 by the API).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows)
        )
    }
    /// True when SQLite could not write the file itself: the disk (or the file system's
    /// quota) is full, an I/O error, a read-only file. Such a failure says the store cannot
    /// commit at all, not that one write was wrong.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ffi::ErrorCode;
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DiskFull | ErrorCode::SystemIoFailure | ErrorCode::ReadOnly | ErrorCode::CannotOpen))
    }
    /// True when a UNIQUE constraint refused the write (mapped to 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    }
}

/// The opened database: a writer and a read pool over the same file.
#[derive(Clone)]
pub struct Store {
    pub path: PathBuf,
    pub writer: Writer,
    pub pool: Pool,
    /// The checkpoint thread's descriptor of the file, kept until the pool is dropped (fields
    /// drop in order): closing it drops the process's POSIX locks on the file, SQLite's
    /// included (`checkpoint::Checkpointer::db_file`).
    _db_file: std::sync::Arc<std::fs::File>,
}

impl Store {
    /// Opens (creating if needed) the database, switches it to WAL, runs migrations and starts the writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = rusqlite::Connection::open(path)?;
        // WAL is switched once on a single connection before the pool opens: doing it in the
        // pool's init hook races on a new file ("database is locked").
        pragmas::set_page_size(&conn)?;
        pragmas::enable_wal(&conn)?;
        pragmas::apply_writer(&conn)?;
        let page = pragmas::page_size(&conn)?;
        if page != pragmas::PAGE_SIZE {
            log::info!(
                "{} has {page}-byte pages (made by an older sluice): each call writes about \
                 twice what it would in {}-byte pages; `sluice compact`, with the server \
                 stopped, rewrites it",
                path.display(),
                pragmas::PAGE_SIZE
            );
        }
        migrate::run(&mut conn)?;
        // A crash leaves journal rows: they are charges, to be in the balances before anyone
        // loads them.
        let folded = journal::fold_now(&conn)?;
        if folded > 0 {
            log::info!("folded {folded} log journal rows left by the last run");
        }
        let pool = open_pool(path)?;
        let checkpoints = checkpoint::Checkpointer::start(path)?;
        let db_file = checkpoints.db_file();
        let writer = Writer::start(conn, Some(checkpoints))?;
        Ok(Store {
            path: path.to_path_buf(),
            writer,
            pool,
            _db_file: db_file,
        })
    }

    /// Runs a read on a pooled connection off the async threads, once the journal is
    /// folded: every read sees every call recorded before it (in `logs`, the rollups and the
    /// balances). With nothing waiting that costs one atomic load.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.fold().await?;
        self.read_as_is(f).await
    }

    /// [`Store::read`] without the fold: for a read that needs no call's row or charge (the
    /// health ping asks only whether SQLite answers a read).
    pub async fn read_as_is<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Same as [`Store::read`] for callers already off the async threads (start-up, CLI).
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.writer.fold_blocking()?;
        let conn = self.pool.get()?;
        f(&conn)
    }
}

fn open_pool(path: &Path) -> Result<Pool, StoreError> {
    let manager = SqliteConnectionManager::file(path).with_init(pragmas::apply_reader);
    Ok(r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .build(manager)?)
}
