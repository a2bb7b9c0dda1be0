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

/// Ends every session of a user but `keep` (the caller's own, on a change of their own password);
/// returns how many ended.
pub fn delete_for_user(
    conn: &Connection,
    user_id: i64,
    keep: Option<&[u8; 32]>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR digest != ?2)",
        params![user_id, keep.map(|d| &d[..])],
    )?)
}

/// What [`end_sign_ins`] ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    pub sessions: usize,
    pub access_token: bool,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ended {} session(s){}",
            self.sessions,
            if self.access_token {
                " and the access token"
            } else {
                ""
            }
        )
    }
}

/// Ends a user's sign-ins after a password change or a disable: every session but `keep`, and
/// the personal access token. Call it in the transaction that made the change, so no request
/// after the commit is let in by the old credentials.
pub fn end_sign_ins(
    conn: &Connection,
    user_id: i64,
    keep: Option<&[u8; 32]>,
) -> Result<Ended, StoreError> {
    Ok(Ended {
        sessions: delete_for_user(conn, user_id, keep)?,
        access_token: users::clear_access_token(conn, user_id)?,
    })
}
