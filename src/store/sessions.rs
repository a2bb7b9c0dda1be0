//! The `sessions` table: login sessions, stored as digests of the cookie value.

use super::StoreError;
use super::users::{self, UserRow};
use rusqlite::{Connection, OptionalExtension, params};

pub fn create(
    conn: &Connection,
    digest: &[u8; 32],
    user_id: i64,
    csrf_token: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (digest, user_id, csrf_token, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![&digest[..], user_id, csrf_token, expires_at],
    )?;
    Ok(())
}

/// The session's user and CSRF token, when the session exists and has not expired.
pub fn lookup(
    conn: &Connection,
    digest: &[u8; 32],
    now: i64,
) -> Result<Option<(UserRow, String)>, StoreError> {
    let found: Option<(i64, String)> = conn
        .query_row(
            "SELECT user_id, csrf_token FROM sessions WHERE digest = ?1 AND expires_at > ?2",
            params![&digest[..], now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match found {
        Some((uid, csrf)) => Ok(Some((users::get(conn, uid)?, csrf))),
        None => Ok(None),
    }
}

pub fn delete(conn: &Connection, digest: &[u8; 32]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE digest = ?1", [&digest[..]])?;
    Ok(())
}

pub fn purge_expired(conn: &Connection, now: i64) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
}
