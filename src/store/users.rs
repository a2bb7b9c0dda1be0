//! The `users` table.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
    Root,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Root => "root",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "root" => Some(Role::Root),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub group: String,
    pub quota: i64,
    pub used_quota: i64,
    pub request_count: i64,
    pub enabled: bool,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, username, role, user_group, quota, used_quota, request_count, enabled, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let role: String = r.get(2)?;
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::User),
        group: r.get(3)?,
        quota: r.get(4)?,
        used_quota: r.get(5)?,
        request_count: r.get(6)?,
        enabled: r.get(7)?,
        created_at: r.get(8)?,
    })
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub group: &'a str,
    pub quota: i64,
    pub created_at: i64,
}

pub fn insert(conn: &Connection, u: &NewUser<'_>) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO users (username, password_hash, role, user_group, quota, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            u.username,
            u.password_hash,
            u.role.as_str(),
            u.group,
            u.quota,
            u.created_at
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn get(conn: &Connection, id: i64) -> Result<UserRow, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

pub fn list(conn: &Connection) -> Result<Vec<UserRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Another account whose name equals `name` but for ASCII letter case ("Root" beside "root"),
/// which a new name or a rename must not imitate.
pub fn name_taken_ignoring_case(
    conn: &Connection,
    name: &str,
    except: Option<i64>,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT username FROM users WHERE username = ?1 COLLATE NOCASE
               AND (?2 IS NULL OR id != ?2) LIMIT 1",
            params![name, except],
            |r| r.get(0),
        )
        .optional()?)
}

/// The user and their password hash, for login.
pub fn credentials(
    conn: &Connection,
    username: &str,
) -> Result<Option<(UserRow, String)>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS}, password_hash FROM users WHERE username = ?1"),
            [username],
            |r| Ok((from_row(r)?, r.get::<_, String>(9)?)),
        )
        .optional()?)
}

pub fn by_access_token(
    conn: &Connection,
    digest: &[u8; 32],
) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE access_token_digest = ?1"),
            [&digest[..]],
            from_row,
        )
        .optional()?)
}

pub fn set_access_token(conn: &Connection, id: i64, digest: &[u8; 32]) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET access_token_digest = ?1 WHERE id = ?2",
        params![&digest[..], id],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// Revokes the personal access token (a password change or a disable ends it); true when
/// there was one.
pub fn clear_access_token(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE users SET access_token_digest = NULL WHERE id = ?1 AND access_token_digest IS NOT NULL",
        [id],
    )? > 0)
}

/// The stored password hash, to check a user's current password.
pub fn password_hash(conn: &Connection, id: i64) -> Result<String, StoreError> {
    Ok(
        conn.query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })?,
    )
}

/// Replaces the password hash only if it is still `expected`, so a change checked against one
/// password cannot overwrite a change made meanwhile; false when it was not.
pub fn replace_password_hash(
    conn: &Connection,
    id: i64,
    expected: &str,
    new: &str,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
        params![id, expected, new],
    )? > 0)
}

/// Fields an admin may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct UserPatch {
    pub username: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub group: Option<String>,
    pub enabled: Option<bool>,
}

pub fn update(conn: &Connection, id: i64, p: &UserPatch) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET
            username = COALESCE(?2, username),
            password_hash = COALESCE(?3, password_hash),
            role = COALESCE(?4, role),
            user_group = COALESCE(?5, user_group),
            enabled = COALESCE(?6, enabled)
         WHERE id = ?1",
        params![
            id,
            p.username,
            p.password_hash,
            p.role.map(Role::as_str),
            p.group,
            p.enabled
        ],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// Sets the balance and returns the previous one, so the ledger can apply the difference.
pub fn set_quota(conn: &Connection, id: i64, quota: i64) -> Result<i64, StoreError> {
    let old: i64 = conn.query_row("SELECT quota FROM users WHERE id = ?1", [id], |r| r.get(0))?;
    conn.execute(
        "UPDATE users SET quota = ?2 WHERE id = ?1",
        params![id, quota],
    )?;
    Ok(old)
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    let n = conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// How `GET /api/users` searches and sorts.
pub const LISTING: super::listing::Table = super::listing::Table {
    name: "users",
    columns: COLUMNS,
    searched: &["username"],
    sorts: &[
        ("id", "id"),
        ("username", "username COLLATE NOCASE"),
        ("quota", "quota"),
        ("used_quota", "used_quota"),
        ("request_count", "request_count"),
        ("created_at", "created_at"),
    ],
};

/// One page of users matching the search.
pub fn search(
    conn: &Connection,
    q: &super::listing::ListQuery,
) -> Result<super::listing::Page<UserRow>, StoreError> {
    super::listing::page(conn, &LISTING, q, &[], from_row)
}
