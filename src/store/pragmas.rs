//! The PRAGMAs of the server's connections (the writer and the read pool): WAL once, and the
//! settings every connection gets. Two other places set their own, on connections that are not
//! the server's: `store::online_copy` (`query_only` on the source of a copy, `journal_mode = DELETE`
//! on the finished copy, so it is one self-contained file) and `cli` (a read-only connection
//! for offline commands with a 5 s busy timeout: an operator's command should fail quickly
//! rather than wait behind a running server's checkpoint).

use rusqlite::Connection;

/// How long a connection waits on another's lock before SQLITE_BUSY. The writer is the only
/// writer, so this only covers checkpoints and backups holding a lock for a moment.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// The page size of a database sluice creates. A commit writes every page it changed, whole,
/// into the WAL, and the checkpoint writes it again into the file; a relayed call's commit
/// changes one page (the journal's last), so at one connection the page size is most of what
/// a call writes. With 4 KiB pages a call wrote 5.9 KiB at one connection and 2.5 KiB at 32
/// (non-stream); with 1 KiB pages 2.5 and 1.5 KiB, at the same throughput; a journal fold
/// costs ~15 % more (the same rows are four times the WAL frames; docs/performance.md).
/// SQLite fixes the size when the file is created; an older database keeps its own until
/// `sluice compact` rewrites it.
pub const PAGE_SIZE: i64 = 1024;

/// Asks for [`PAGE_SIZE`]; it takes effect only on a file that has no pages yet (before WAL
/// is switched on, which writes the header), and changes nothing on any other.
pub fn set_page_size(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))
}

/// The database's page size, in bytes.
pub fn page_size(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
}

/// How many WAL frames (one page each) hold `bytes` in this database. WAL sizes are set in
/// bytes and converted here: a size set in frames changes four-fold with the page size (the
/// writer's backstop did, and came to equal the turn's size).
pub fn wal_frames(conn: &Connection, bytes: i64) -> rusqlite::Result<i64> {
    Ok(bytes / page_size(conn)?.max(512))
}

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

/// The writer connection: the common settings, and temporary files kept in memory. Every job
/// runs in a SAVEPOINT, so each multi-row statement (the rollup upserts) needs a statement
/// journal; on disk that is an open, unlink and close of a temp file per statement, which cost
/// a third of the writer's time under load. The journals are small: one statement's pages.
/// Checkpoints are made by their own thread (see `checkpoint`), and the writer takes its turn
/// to let the WAL start over; its automatic one stays only as a backstop, at
/// [`WAL_BACKSTOP_BYTES`] of WAL in this database's pages.
pub fn apply_writer(conn: &Connection) -> rusqlite::Result<()> {
    apply(conn)?;
    let frames = wal_frames(conn, WAL_BACKSTOP_BYTES)?;
    conn.execute_batch(&format!(
        "PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = {frames};"
    ))
}

/// The WAL's size at which the writer's automatic checkpoint fires, four times the size at which
/// the checkpoint thread asks for the writer's turn (`checkpoint::TURN_AT_BYTES`), so the turn
/// comes first. Counted in bytes: as 16,384 pages it was 64 MiB with 4 KiB pages but 16 MiB
/// with 1 KiB ones, the turn's own size, and the automatic checkpoint fired first every time,
/// syncing in the commit of a waiting call a WAL the checkpoint thread had not synced for up
/// to half a second: 3.5–5.7 ms every ~2.5 s at one connection, the slowest calls of
/// `make bench`'s tail run (docs/performance.md).
pub const WAL_BACKSTOP_BYTES: i64 = 4 * super::checkpoint::TURN_AT_BYTES;

/// Reader connections: the common settings, and refusing writes so nothing bypasses the writer.
pub fn apply_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    apply(conn)?;
    conn.execute_batch("PRAGMA query_only = ON;")
}

/// Copies what it can of the WAL into the main file without waiting on any lock; returns the
/// frames in the WAL and how many of them are now in the main file.
pub fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<WalFrames> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(WalFrames {
            logged: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}

/// A WAL's size in frames (pages) after a checkpoint, and how many of them it copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalFrames {
    pub logged: i64,
    pub copied: i64,
}

/// Moves the whole WAL into the main file and truncates it, so the .db file alone is a complete copy.
pub fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}
