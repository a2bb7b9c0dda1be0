//! The health ping's read and write: `SELECT 1` on a pooled reader, and one row rewritten on
//! every ping (see `schema/V8__heartbeat.sql`).

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// The ping's read: a pooled connection answers a query.
pub fn answer(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
}

/// Records a ping at `now` (Unix seconds); returns how many pings have written so far.
pub fn beat(c: &Connection, now: i64) -> Result<i64, StoreError> {
    Ok(c.query_row(
        "INSERT INTO heartbeat (id, beat_at, beats) VALUES (1, ?1, 1)
         ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, beats = beats + 1
         RETURNING beats",
        [now],
        |r| r.get(0),
    )?)
}

/// Bytes an unprivileged writer may still use on the file system holding `path` (`None` when
/// the file system does not say).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    rustix::fs::statvfs(dir)
        .ok()
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_beat_rewrites_the_one_row() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate::run(&mut c).unwrap();
        assert_eq!(beat(&c, 10).unwrap(), 1);
        assert_eq!(beat(&c, 20).unwrap(), 2);
        let (n, at): (i64, i64) = c
            .query_row("SELECT COUNT(*), MAX(beat_at) FROM heartbeat", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, at), (1, 20));
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(&dir.path().join("x.db")).unwrap() > 0);
    }
}
