//! Restore: install a copy as the database, with the server stopped.
//!
//! The file is copied beside the database first and every check runs on that copy — the bytes
//! that will be installed: `PRAGMA integrity_check`, a sluice schema history, a schema version
//! this binary knows (older is fine: migrations run at the next start). Only then is the current
//! database moved aside — with its `-wal` and `-shm`, which must never stay next to a different
//! database file — and the copy renamed into place. Any refusal leaves the current database as
//! it was.

use crate::store::online_copy::{self as copy, TMP_PREFIX};
use crate::store::{StoreError, migrate};
use chrono::{DateTime, Utc};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} does not exist or is not a file")]
    Missing(String),
    #[error("{0} is the live database itself; restore a backup copy")]
    SameFile(String),
    #[error("{file} is not a readable SQLite database: {detail}")]
    Unreadable { file: String, detail: String },
    #[error("{file} failed its integrity check: {detail}")]
    Corrupt { file: String, detail: String },
    #[error("{0} is a SQLite database but not a sluice one (no schema history)")]
    NotSluice(String),
    #[error(
        "{file} has schema version {found}, newer than this sluice knows ({supported}); restore it with the newer sluice that made it"
    )]
    Newer {
        file: String,
        found: i32,
        supported: i32,
    },
    #[error("writing the compacted copy failed: {0}; the database is unchanged")]
    Compact(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub database: PathBuf,
    pub bytes: u64,
    pub schema_version: i32,
    /// The files the old database was moved to (the main file first), empty when there was none.
    pub moved_aside: Vec<PathBuf>,
}

/// Companion files SQLite keeps beside a database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

pub(super) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A checked copy of the file beside the database, ready to install. Dropping it removes it.
pub struct Prepared {
    tmp: Temp,
    database: PathBuf,
    pub bytes: u64,
    pub schema_version: i32,
    /// Names the moved-aside database: `<db>.before-<purpose>-<time>`.
    purpose: String,
}

/// Copies `file` beside `database` and checks the copy. Changes nothing else.
pub fn prepare(file: &Path, database: &Path) -> Result<Prepared, RestoreError> {
    let shown = file.display().to_string();
    if !file.is_file() {
        return Err(RestoreError::Missing(shown));
    }
    if let (Ok(a), Ok(b)) = (file.canonicalize(), database.canonicalize())
        && a == b
    {
        return Err(RestoreError::SameFile(shown));
    }
    prepare_with(database, &shown, "restore", |tmp| {
        std::fs::copy(file, tmp)?;
        Ok(())
    })
}

/// A copy `fill` writes into a temporary file beside `database` (named for `purpose`), checked
/// as [`prepare`] checks one; `shown` names its source in errors. Changes nothing else.
pub fn prepare_with(
    database: &Path,
    shown: &str,
    purpose: &str,
    fill: impl FnOnce(&Path) -> Result<(), RestoreError>,
) -> Result<Prepared, RestoreError> {
    let shown = shown.to_string();
    let dir = parent(database);
    std::fs::create_dir_all(dir)?;
    let tmp = Temp(dir.join(format!(
        "{TMP_PREFIX}{purpose}-{}.db",
        ulid::Ulid::generate()
    )));
    fill(&tmp.0)?;
    let check = copy::check_file(&tmp.0).map_err(|e| match e {
        StoreError::Sqlite(e) => RestoreError::Unreadable {
            file: shown.clone(),
            detail: e.to_string(),
        },
        StoreError::Io(e) => RestoreError::Io(e),
        other => RestoreError::Io(io::Error::other(other.to_string())),
    })?;
    if check.integrity != "ok" {
        return Err(RestoreError::Corrupt {
            file: shown,
            detail: check.integrity,
        });
    }
    if check.schema_version == 0 {
        return Err(RestoreError::NotSluice(shown));
    }
    let supported = migrate::latest_version();
    if check.schema_version > supported {
        return Err(RestoreError::Newer {
            file: shown,
            found: check.schema_version,
            supported,
        });
    }
    let f = std::fs::File::open(&tmp.0)?;
    f.sync_all()?;
    let bytes = f.metadata()?.len();
    Ok(Prepared {
        tmp,
        database: database.to_path_buf(),
        bytes,
        schema_version: check.schema_version,
        purpose: purpose.to_string(),
    })
}

impl Prepared {
    /// Moves the current database aside and renames the checked copy into its place. The
    /// caller holds the data directory lock.
    pub fn install(self, now: DateTime<Utc>) -> Result<Restored, RestoreError> {
        let database = &self.database;
        let moved_aside = move_aside(database, &self.purpose, now)?;
        if let Err(e) = std::fs::rename(&self.tmp.0, database) {
            put_back(database, &moved_aside);
            return Err(e.into());
        }
        // `self.tmp` now names nothing; dropping it removes nothing.
        copy::fsync_dir(parent(database))?;
        Ok(Restored {
            database: database.clone(),
            bytes: self.bytes,
            schema_version: self.schema_version,
            moved_aside,
        })
    }
}

fn parent(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Renames the database and its companions to `<db>.before-<purpose>-YYYYMMDD-HHMMSS[-N]` (the
/// companions keep their suffix after that, so the old pair still opens as one database).
fn move_aside(
    database: &Path,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, RestoreError> {
    if !database.exists() {
        return Ok(Vec::new());
    }
    let stamp = now.format("%Y%m%d-%H%M%S");
    let aside = (0..1000)
        .map(|n| match n {
            0 => with_suffix(database, &format!(".before-{purpose}-{stamp}")),
            n => with_suffix(database, &format!(".before-{purpose}-{stamp}-{n}")),
        })
        .find(|p| !p.exists() && COMPANIONS.iter().all(|s| !with_suffix(p, s).exists()))
        .ok_or_else(|| io::Error::other("no free name to move the current database aside"))?;
    let mut moved = Vec::new();
    let pairs = std::iter::once((database.to_path_buf(), aside.clone())).chain(
        COMPANIONS
            .iter()
            .map(|s| (with_suffix(database, s), with_suffix(&aside, s))),
    );
    for (from, to) in pairs {
        if !from.exists() {
            continue;
        }
        if let Err(e) = std::fs::rename(&from, &to) {
            put_back(database, &moved);
            return Err(e.into());
        }
        moved.push(to);
    }
    Ok(moved)
}

/// Undoes [`move_aside`] after a failure (best effort; each step is logged).
fn put_back(database: &Path, moved: &[PathBuf]) {
    let Some(main) = moved.first() else { return };
    for (i, to) in moved.iter().enumerate() {
        let original = if i == 0 {
            database.to_path_buf()
        } else {
            let name = to.to_string_lossy();
            let main_name = main.to_string_lossy();
            let suffix = name.strip_prefix(main_name.as_ref()).unwrap_or("");
            with_suffix(database, suffix)
        };
        if let Err(e) = std::fs::rename(to, &original) {
            log::error!(
                "restore: could not move {} back to {}: {e}",
                to.display(),
                original.display()
            );
        }
    }
}

/// A temporary file deleted on drop (on every refusal path).
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        for s in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&self.0, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000, 0).unwrap()
    }

    #[test]
    fn move_aside_takes_companions_and_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sluice.db");
        for (f, body) in [("sluice.db", "main"), ("sluice.db-wal", "wal")] {
            std::fs::write(dir.path().join(f), body).unwrap();
        }
        let moved = move_aside(&db, "restore", at()).unwrap();
        let base = dir.path().join("sluice.db.before-restore-20261118-110640");
        assert_eq!(moved, [base.clone(), with_suffix(&base, "-wal")]);
        assert_eq!(
            std::fs::read_to_string(with_suffix(&base, "-wal")).unwrap(),
            "wal"
        );
        assert!(!db.exists() && !with_suffix(&db, "-wal").exists());
        // the same second again: a new name
        std::fs::write(&db, "second").unwrap();
        let moved = move_aside(&db, "restore", at()).unwrap();
        assert_eq!(
            moved,
            [dir.path()
                .join("sluice.db.before-restore-20261118-110640-1")]
        );
        put_back(&db, &moved);
        assert_eq!(std::fs::read_to_string(&db).unwrap(), "second");
        assert!(
            move_aside(&dir.path().join("none.db"), "restore", at())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn refusals_leave_the_database_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sluice.db");
        std::fs::write(&db, "current").unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![1u8; 4096]).unwrap();
        let restore = |f: &Path, d: &Path| prepare(f, d).and_then(|p| p.install(at()));
        let e = restore(&junk, &db).unwrap_err();
        assert!(matches!(e, RestoreError::Unreadable { .. }), "{e}");
        let e = restore(&dir.path().join("none.db"), &db).unwrap_err();
        assert!(matches!(e, RestoreError::Missing(_)), "{e}");
        let e = restore(&db, &db).unwrap_err();
        assert!(matches!(e, RestoreError::SameFile(_)), "{e}");
        let plain = dir.path().join("plain.db");
        rusqlite::Connection::open(&plain)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = restore(&plain, &db).unwrap_err();
        assert!(matches!(e, RestoreError::NotSluice(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&db).unwrap(), "current");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["junk.db", "plain.db", "sluice.db"]);
    }
}
