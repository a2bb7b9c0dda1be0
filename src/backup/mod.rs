//! Backups: scheduled and on-demand copies of the live database into `<data>/backups`, hot
//! copies streamed to an admin, and restore.
//!
//! - [`files`]: names, sidecars, listing, keep-N pruning.
//! - [`scheduler`]: the background task that makes a backup every `every_secs`.
//! - [`restore`]: `sluice restore FILE` — check a copy and install it with the server stopped.
//! - [`compact`]: `sluice compact` — rewrite the database in sluice's page size, server stopped.
//! - [`cli`]: the `sluice backup`, `sluice restore` and `sluice compact` commands.
//!
//! The copying itself is [`crate::store::online_copy`]. One backup at a time per server: the
//! scheduler, "backup now" and hot copies share one flag, and a second caller gets
//! [`BackupError::Busy`] instead of doubling the disk traffic.

pub mod cli;
pub mod compact;
pub mod files;
pub mod restore;
pub mod scheduler;

use crate::store::online_copy::{self as copy, BackupInfo};
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

pub use scheduler::spawn_scheduler;

/// When to back up and how many backups to keep. The option registry supplies it at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupPolicy {
    /// Seconds between scheduled backups; 0 turns the schedule off.
    pub every_secs: u64,
    /// Newest backups kept after each successful one (0 keeps all).
    pub keep: usize,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        BackupPolicy {
            every_secs: 24 * 3600,
            keep: 7,
        }
    }
}

/// Read on every scheduler tick and after every backup, so a changed option applies live.
pub type PolicyFn = Arc<dyn Fn() -> BackupPolicy + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup is already running; try again when it ends")]
    Busy,
    #[error("no such backup")]
    NotFound,
    #[error("the copy failed its integrity check: {0}")]
    Integrity(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Counters for the metrics endpoint.
#[derive(Default)]
pub struct BackupStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Unix seconds of the last backup that passed its check (0 = none since start).
    pub last_ok_at: AtomicI64,
    pub last_duration_ms: AtomicU64,
}

/// The server's backups: where they go, the one-at-a-time flag, the counters.
pub struct Backups {
    store: Store,
    dir: PathBuf,
    policy: PolicyFn,
    running: AtomicBool,
    pub stats: BackupStats,
}

/// Holds the one-at-a-time flag until dropped.
pub struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A checked copy, unlinked from the directory, ready to stream.
pub struct HotCopy {
    /// Open on a file that no longer has a name: closing it frees the space, however the
    /// download ends (finished, client gone, server stopped).
    pub file: std::fs::File,
    pub bytes: u64,
    /// The name to offer the client.
    pub name: String,
}

/// The backups directory under a data directory.
pub fn backups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

impl Backups {
    pub fn new(store: Store, data_dir: &Path, policy: PolicyFn) -> Backups {
        Backups {
            store,
            dir: backups_dir(data_dir),
            policy,
            running: AtomicBool::new(false),
            stats: BackupStats::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn policy(&self) -> BackupPolicy {
        (self.policy)()
    }

    /// Takes the one-at-a-time flag (`Busy` when taken) until the guard drops.
    pub fn try_begin(&self) -> Result<Running<'_>, BackupError> {
        self.running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| Running(&self.running))
            .map_err(|_| BackupError::Busy)
    }

    /// Makes a backup now into the backups directory and, when it passed its check, prunes
    /// to the policy's `keep`. Blocking: run it on a blocking thread.
    pub fn run(&self) -> Result<BackupInfo, BackupError> {
        let _running = self.try_begin()?;
        let started = Instant::now();
        let result = self.copy_into_dir();
        self.count(&result, started);
        let info = result?;
        if info.integrity == "ok" {
            let keep = self.policy().keep;
            if keep > 0
                && let Err(e) = files::prune(&self.dir, keep)
            {
                log::error!("backups: pruning {} failed: {e}", self.dir.display());
            }
        }
        Ok(info)
    }

    fn copy_into_dir(&self) -> Result<BackupInfo, BackupError> {
        let at = chrono::Utc::now();
        let conn = self.store.pool.get().map_err(StoreError::from)?;
        let snap = copy::snapshot(&conn, &self.dir)?;
        drop(conn);
        Ok(files::install(snap, &self.dir, at)?)
    }

    fn count(&self, result: &Result<BackupInfo, BackupError>, started: Instant) {
        let ms = started.elapsed().as_millis() as u64;
        self.stats.last_duration_ms.store(ms, Ordering::Relaxed);
        match result {
            Ok(info) if info.integrity == "ok" => {
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .last_ok_at
                    .store(info.created_at, Ordering::Relaxed);
                log::info!(
                    "backup {} written: {} bytes in {ms} ms, integrity ok",
                    info.name,
                    info.bytes
                );
            }
            Ok(info) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "backup {} FAILED its integrity check (kept for inspection; the live database may be damaged): {}",
                    info.name,
                    info.integrity
                );
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                log::error!("backup failed after {ms} ms: {e}");
            }
        }
    }

    /// Makes a checked copy for download (not kept as a backup). Blocking.
    pub fn hot_copy(&self) -> Result<HotCopy, BackupError> {
        let _running = self.try_begin()?;
        let at = chrono::Utc::now();
        let started = Instant::now();
        let conn = self.store.pool.get().map_err(StoreError::from)?;
        let snap = copy::snapshot(&conn, &self.dir)?;
        drop(conn);
        if !snap.is_ok() {
            log::error!("hot copy FAILED its integrity check: {}", snap.integrity);
            return Err(BackupError::Integrity(snap.integrity.clone()));
        }
        let file = std::fs::File::open(snap.path())?;
        // `snap` deletes its file when dropped; the open handle keeps the data readable.
        let bytes = snap.bytes;
        drop(snap);
        log::info!(
            "hot copy ready: {bytes} bytes in {} ms, integrity ok",
            started.elapsed().as_millis()
        );
        Ok(HotCopy {
            file,
            bytes,
            name: files::file_name(at, 0),
        })
    }

    /// Backups, newest first. Blocking.
    pub fn list(&self) -> Result<Vec<BackupInfo>, BackupError> {
        Ok(files::list(&self.dir)?)
    }

    /// The path of the backup `name`, which must be a name the list produces and exist.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, BackupError> {
        if files::parse_name(name).is_none() {
            return Err(BackupError::NotFound);
        }
        let path = self.dir.join(name);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            _ => Err(BackupError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backups(dir: &Path, keep: usize) -> Backups {
        let store = Store::open(&dir.join("sluice.db")).unwrap();
        Backups::new(
            store,
            dir,
            Arc::new(move || BackupPolicy {
                every_secs: 0,
                keep,
            }),
        )
    }

    #[test]
    fn run_names_lists_and_prunes_and_one_runs_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let b = backups(dir.path(), 2);
        let made: Vec<BackupInfo> = (0..4).map(|_| b.run().unwrap()).collect();
        for m in &made {
            assert_eq!(m.integrity, "ok");
            assert!(m.bytes > 0);
        }
        let listed: Vec<String> = b.list().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(listed, [made[3].name.clone(), made[2].name.clone()]);
        assert_eq!(b.stats.ok.load(Ordering::Relaxed), 4);
        assert!(b.path_of(&made[3].name).is_ok());
        assert!(matches!(
            b.path_of(&made[0].name),
            Err(BackupError::NotFound)
        ));
        assert!(matches!(
            b.path_of("../sluice.db"),
            Err(BackupError::NotFound)
        ));

        let held = b.try_begin().unwrap();
        assert!(matches!(b.run(), Err(BackupError::Busy)));
        assert!(matches!(b.hot_copy(), Err(BackupError::Busy)));
        drop(held);
        assert!(b.run().is_ok());
    }

    #[test]
    fn hot_copy_leaves_no_file_behind_and_reads_back_whole() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let b = backups(dir.path(), 2);
        let mut hc = b.hot_copy().unwrap();
        assert_eq!(std::fs::read_dir(b.dir()).unwrap().count(), 0);
        let mut bytes = Vec::new();
        hc.file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, hc.bytes);
        assert!(bytes.starts_with(b"SQLite format 3\0"));
        assert!(files::parse_name(&hc.name).is_some());
        assert!(b.list().unwrap().is_empty(), "a hot copy is not a backup");
    }
}
