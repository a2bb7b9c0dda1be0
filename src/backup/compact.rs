//! `sluice compact`: rewrites the database, with the server stopped, in sluice's page size and
//! without the free pages that purged logs left behind.
//!
//! SQLite fixes a database's page size when it creates the file, so a database made before
//! sluice asked for 1 KiB pages ([`pragmas::PAGE_SIZE`]) keeps 4 KiB pages and writes about
//! twice the bytes per call (docs/performance.md). `VACUUM INTO` writes a fresh, defragmented
//! copy in the page size asked for, whatever the source's (a plain `VACUUM` cannot change it
//! in WAL mode). The copy goes beside the database, is checked and installed exactly as a
//! restored backup is (`restore`): the old file is moved aside, not deleted, and any failure
//! before that leaves the database as it was.

use super::restore::{self, RestoreError};
use crate::store::pragmas;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// What a compaction did.
#[derive(Debug)]
pub struct Compacted {
    pub page_size_before: i64,
    pub page_size_after: i64,
    /// The database file and its WAL before; the new file after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Where the previous database went (the main file first).
    pub moved_aside: Vec<PathBuf>,
}

/// Rewrites `database`. The caller holds the data directory lock (no server is running).
pub fn compact(database: &Path, now: DateTime<Utc>) -> Result<Compacted, RestoreError> {
    let shown = database.display().to_string();
    if !database.is_file() {
        return Err(RestoreError::Missing(shown));
    }
    let unreadable = |e: rusqlite::Error| RestoreError::Unreadable {
        file: shown.clone(),
        detail: e.to_string(),
    };
    let conn = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unreadable)?;
    pragmas::apply(&conn).map_err(unreadable)?;
    let page_size_before = pragmas::page_size(&conn).map_err(unreadable)?;
    let bytes_before = file_len(database) + file_len(&restore::with_suffix(database, "-wal"));
    let prepared = restore::prepare_with(database, &shown, "compact", |tmp| {
        let into = tmp.to_str().ok_or_else(|| {
            RestoreError::Compact("the data directory's path is not UTF-8".into())
        })?;
        pragmas::set_page_size(&conn)
            .and_then(|()| conn.execute("VACUUM INTO ?1", [into]).map(drop))
            .map_err(|e| RestoreError::Compact(e.to_string()))
    })?;
    // Closed before the file is moved: the last connection folds the WAL into the file.
    conn.close().map_err(|(_, e)| unreadable(e))?;
    let bytes_after = prepared.bytes;
    let done = prepared.install(now)?;
    let page_size_after = Connection::open_with_flags(
        &done.database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| pragmas::page_size(&c))
    .map_err(unreadable)?;
    Ok(Compacted {
        page_size_before,
        page_size_after,
        bytes_before,
        bytes_after,
        moved_aside: done.moved_aside,
    })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}
