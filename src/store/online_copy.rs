//! Online copies of the database: SQLite's backup API in one pass, checked, made durable.
//!
//! `step(-1)` copies every page inside one read transaction. In WAL mode the writer keeps
//! committing meanwhile (no pause in serving), and because the copy is a single step no
//! concurrent write can restart it — a backup stepped a few pages at a time starts over each
//! time another connection writes, so under steady load it may never finish.
//!
//! The copy goes to a hidden temporary file beside its final place, is switched to
//! `journal_mode = DELETE` (one self-contained file, no `-wal` needed next to it), checked with
//! `PRAGMA integrity_check` (the full check: `quick_check` skips index/table consistency), fsynced,
//! and only then linked under its name; the directory is fsynced after.

use super::{StoreError, migrate};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Temporary copies start with this; listings ignore them and pruning removes stale ones.
pub const TMP_PREFIX: &str = ".sluice-tmp-";

/// Most integrity problems reported (the first ones say enough).
const MAX_ERRORS: u32 = 20;

/// A finished backup as the API and the CLI report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// File name, e.g. `sluice-20261126-143318.db`.
    pub name: String,
    pub bytes: u64,
    /// Unix seconds when the copy began: it holds every commit made before this time.
    pub created_at: i64,
    /// `ok`, or what `PRAGMA integrity_check` found.
    pub integrity: String,
    /// The schema version recorded in the copy (refinery's history); 0 when unknown.
    pub schema_version: i32,
}

/// A checked copy in a temporary file. Dropping it deletes the file unless it was installed.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    installed: bool,
    pub bytes: u64,
    pub integrity: String,
    pub schema_version: i32,
}

impl Snapshot {
    pub fn is_ok(&self) -> bool {
        self.integrity == "ok"
    }

    /// Where the copy is while unnamed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the copy its name `dest` without ever replacing a file: `AlreadyExists` if `dest`
    /// is taken (the caller picks another name). fsyncs the directory afterwards.
    pub fn install(&mut self, dest: &Path) -> Result<(), io::Error> {
        // A hard link fails instead of replacing, which a rename cannot promise; it also keeps
        // two processes (the server and `sluice backup`) from taking the same name.
        match std::fs::hard_link(&self.path, dest) {
            Ok(()) => std::fs::remove_file(&self.path)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
            // A file system without hard links: check, then rename.
            Err(_) if !dest.exists() => std::fs::rename(&self.path, dest)?,
            Err(_) => return Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        }
        self.installed = true;
        fsync_dir(dest.parent().unwrap_or(Path::new(".")))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if !self.installed {
            remove_temp(&self.path);
        }
    }
}

/// Removes a temporary copy and any journal SQLite left beside it.
fn remove_temp(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Opens the live database for a copy from another process (`sluice backup`): never creates a
/// file, and refuses writes.
pub fn open_source(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    super::pragmas::apply(&conn)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// Copies the database behind `src` into a temporary file in `dir` and checks the copy.
/// A copy that fails its check is still returned (`integrity` says why); I/O and SQLite errors
/// are errors.
pub fn snapshot(src: &Connection, dir: &Path) -> Result<Snapshot, StoreError> {
    create_private_dir(dir)?;
    let path = dir.join(format!("{TMP_PREFIX}{}.db", ulid::Ulid::generate()));
    let mut snap = Snapshot {
        path,
        installed: false,
        bytes: 0,
        integrity: String::new(),
        schema_version: 0,
    };
    // A copy holds every secret the server keeps: owner-only from the first byte. SQLite opens
    // the empty file as an empty database and gives its journal the same mode.
    create_private_file(&snap.path)?;
    let mut dst = Connection::open(&snap.path)?;
    {
        let backup = Backup::new(src, &mut dst)?;
        one_pass(&backup)?;
    }
    // The pages carry the source's WAL flag in the header; DELETE mode clears it, so the copy
    // opens anywhere without a -wal file.
    let _mode: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    fold_copy(&dst);
    snap.integrity = integrity_check(&dst)?;
    snap.schema_version = match migrate::current_version(&mut dst) {
        Ok(v) => v,
        Err(e) if !snap.is_ok() => {
            log::warn!("cannot read the schema version of a damaged copy: {e}");
            0
        }
        Err(e) => return Err(e),
    };
    dst.close().map_err(|(_, e)| e)?;
    let f = File::open(&snap.path)?;
    f.sync_all()?;
    snap.bytes = f.metadata()?.len();
    Ok(snap)
}

/// Folds the log journal rows the copy caught (calls not yet folded on the live file), so the
/// copy alone has every call in `logs` and every charge in the balances. A copy that cannot
/// fold keeps its journal rows, which the server folds when it starts on the copy.
fn fold_copy(dst: &Connection) {
    let has_journal = dst
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'log_journal'",
            [],
            |_| Ok(()),
        )
        .is_ok();
    if has_journal && let Err(e) = super::journal::fold_now(dst) {
        log::warn!("the copy keeps its log journal rows (folded when sluice starts on it): {e}");
    }
}

/// Every page in one step. BUSY/LOCKED can only come from a lock held for a moment (a
/// checkpoint), so a few bounded retries are enough.
fn one_pass(backup: &Backup<'_, '_>) -> Result<(), StoreError> {
    for _ in 0..50 {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            // `More` cannot follow step(-1); BUSY/LOCKED (and any future kind) are retried.
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the database stayed locked for 5 s during the backup".into()),
    )))
}

/// `ok`, or the problems found, joined.
pub fn integrity_check(conn: &Connection) -> Result<String, StoreError> {
    let mut st = conn.prepare(&format!("PRAGMA integrity_check({MAX_ERRORS})"))?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if rows.len() == 1 && rows[0] == "ok" {
        "ok".into()
    } else {
        rows.join("; ")
    })
}

/// What [`check_file`] found in a file.
#[derive(Debug)]
pub struct FileCheck {
    pub integrity: String,
    pub schema_version: i32,
}

/// Checks a database file about to be installed (restore). Switches it to DELETE mode first so
/// the installed file is self-contained. Never creates a file.
pub fn check_file(path: &Path) -> Result<FileCheck, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    let integrity = integrity_check(&conn)?;
    let schema_version = if integrity == "ok" {
        migrate::current_version(&mut conn)?
    } else {
        0
    };
    conn.close().map_err(|(_, e)| e)?;
    Ok(FileCheck {
        integrity,
        schema_version,
    })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// Makes a rename or link in `dir` durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store(dir: &Path) -> Store {
        let s = Store::open(&dir.join("sluice.db")).unwrap();
        s.writer
            .exec_blocking(|c| {
                c.execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                     INSERT INTO logs (created_at, type, request_id, content)
                     SELECT 1, 4, 'r' || i, hex(randomblob(64)) FROM n;",
                )?;
                Ok(())
            })
            .unwrap();
        s
    }

    #[test]
    fn snapshot_is_a_checked_single_file_with_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let out = dir.path().join("out");
        let conn = s.pool.get().unwrap();
        let mut snap = snapshot(&conn, &out).unwrap();
        assert!(snap.is_ok(), "{}", snap.integrity);
        assert_eq!(snap.schema_version, migrate::latest_version());
        let dest = out.join("copy.db");
        snap.install(&dest).unwrap();
        assert_eq!(snap.bytes, std::fs::metadata(&dest).unwrap().len());
        // header bytes 18/19 = 1: rollback journal, not WAL
        let head = std::fs::read(&dest).unwrap();
        assert_eq!((head[18], head[19]), (1, 1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "owner-only");
        }
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["copy.db"], "no temp, -wal or -journal left");
        let c = Connection::open(&dest).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM logs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2000);
    }

    #[test]
    fn install_never_replaces_and_a_dropped_snapshot_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("taken.db"), b"keep me").unwrap();
        let conn = s.pool.get().unwrap();
        let mut snap = snapshot(&conn, &out).unwrap();
        let err = snap.install(&out.join("taken.db")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(out.join("taken.db")).unwrap(), b"keep me");
        drop(snap);
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }

    #[test]
    fn check_file_reports_damage_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let conn = s.pool.get().unwrap();
        let mut snap = snapshot(&conn, dir.path()).unwrap();
        let good = dir.path().join("good.db");
        snap.install(&good).unwrap();
        let c = check_file(&good).unwrap();
        assert_eq!(
            (c.integrity.as_str(), c.schema_version),
            ("ok", migrate::latest_version())
        );
        // A plain SQLite file without sluice's history is version 0.
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert_eq!(check_file(&other).unwrap().schema_version, 0);
        // Not a database at all: an error, and no file is created for a missing path.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        assert!(check_file(&junk).is_err());
        assert!(check_file(&dir.path().join("missing.db")).is_err());
        assert!(!dir.path().join("missing.db").exists());
    }
}
