//! The `options` table: run-time settings as key → JSON text.

use super::StoreError;
use rusqlite::{Connection, params};

pub fn all(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT key, value FROM options ORDER BY key")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn set(conn: &Connection, key: &str, value: &str, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO options (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, now],
    )?;
    Ok(())
}
