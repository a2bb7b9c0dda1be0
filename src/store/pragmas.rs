//! Every PRAGMA sluice sets, in one place.

use rusqlite::Connection;

/// How long a connection waits on another's lock before SQLITE_BUSY. The writer is the only
/// writer, so this only covers checkpoints and backups holding a lock for a moment.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// Switches the file to WAL; the mode is persistent, so this runs once per open on one connection.
pub fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("SQLite refused WAL mode (journal_mode = {mode}); writes will be slower");
    }
    Ok(())
}

/// Settings for every connection. `synchronous = NORMAL` in WAL keeps every committed
/// transaction across an application crash; only a power loss can drop the last commits.
pub fn apply(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
         PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;"
    ))
}

/// Reader connections: the common settings, and refusing writes so nothing bypasses the writer.
pub fn apply_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    apply(conn)?;
    conn.execute_batch("PRAGMA query_only = ON;")
}

/// Moves the whole WAL into the main file and truncates it, so the .db file alone is a complete copy.
pub fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}
