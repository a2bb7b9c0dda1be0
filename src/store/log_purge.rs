//! Deleting old request rows in small batches, keeping what they charged.
//!
//! Only consume, error and system rows are deleted; top-up, manage and refund rows are the
//! money and audit trail and stay. The hourly rollups are written with each row (same
//! transaction), so an hour is always rolled up before any of its rows can go, and usage
//! charts keep their history. What the deleted consume rows charged is added to `log_purged`
//! in the same transaction as the delete, so reconciliation still adds up afterwards.

use super::StoreError;
use super::logs::LogType;
use rusqlite::Connection;

/// Row types retention and manual clean-up may delete.
pub const PURGEABLE: [i64; 3] = [
    LogType::Consume as i64,
    LogType::Error as i64,
    LogType::System as i64,
];

/// Deletes up to `limit` purgeable rows created before `before`, oldest first. Returns how
/// many went; fewer than `limit` means none are left. Runs inside one writer job, so a batch
/// holds the write lock only briefly.
pub fn purge_batch(conn: &Connection, before: i64, limit: usize) -> Result<usize, StoreError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id INTEGER PRIMARY KEY);
         DELETE FROM temp.purge_ids;",
    )?;
    let mut picked = 0;
    for t in PURGEABLE {
        if picked >= limit {
            break;
        }
        // Other types than consume name the partial type index's condition, so it is used
        // (see `log_query::RARE_TYPE`); consume rows are found on the time index.
        let sql = if t == LogType::Consume as i64 {
            "INSERT INTO temp.purge_ids (id)
             SELECT id FROM logs WHERE type = ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3"
                .to_string()
        } else {
            format!(
                "INSERT INTO temp.purge_ids (id)
                 SELECT id FROM logs WHERE type = ?1 AND {} AND created_at < ?2
                 ORDER BY created_at LIMIT ?3",
                super::log_query::RARE_TYPE
            )
        };
        picked += conn.prepare_cached(&sql)?.execute(rusqlite::params![
            t,
            before,
            (limit - picked) as i64
        ])?;
    }
    if picked == 0 {
        return Ok(0);
    }
    conn.prepare_cached(
        "INSERT INTO log_purged (user_id, key_id, rows, quota, key_charge)
         SELECT COALESCE(user_id, 0), COALESCE(key_id, 0), COUNT(*), SUM(quota), SUM(key_charge)
           FROM logs WHERE id IN (SELECT id FROM temp.purge_ids) AND type = ?1
          GROUP BY 1, 2
         ON CONFLICT (user_id, key_id) DO UPDATE SET rows = rows + excluded.rows,
            quota = quota + excluded.quota, key_charge = key_charge + excluded.key_charge",
    )?
    .execute([LogType::Consume as i64])?;
    let deleted = conn
        .prepare_cached("DELETE FROM logs WHERE id IN (SELECT id FROM temp.purge_ids)")?
        .execute([])?;
    Ok(deleted)
}
