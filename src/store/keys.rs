//! The `api_keys` table. Keys are stored as SHA-256 digests; the secret itself is never kept.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A setting of a key that an admin can lock against its owner (see `admin_locked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    Enabled,
    /// The remaining quota and the `unlimited` switch.
    Quota,
    Models,
    ExpiresAt,
    RpmLimit,
    TpmLimit,
}

impl KeyField {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyField::Enabled => "enabled",
            KeyField::Quota => "quota",
            KeyField::Models => "models",
            KeyField::ExpiresAt => "expires_at",
            KeyField::RpmLimit => "rpm_limit",
            KeyField::TpmLimit => "tpm_limit",
        }
    }
}

/// Fields an admin set on another account's key.
pub type Locks = BTreeSet<KeyField>;

fn locks_json(l: &Locks) -> String {
    serde_json::to_string(l).unwrap_or_else(|_| "[]".into())
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the key, for telling keys apart in lists.
    pub prefix: String,
    pub unlimited: bool,
    pub remain_quota: i64,
    pub used_quota: i64,
    pub expires_at: Option<i64>,
    pub models: Option<Vec<String>>,
    pub enabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Requests per minute; `None` = the `ratelimit.key_rpm` default, 0 = unlimited.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute; `None` = the `ratelimit.key_tpm` default, 0 = unlimited.
    pub tpm_limit: Option<i64>,
    /// Settings an admin set on this key when it belonged to someone else; its owner cannot
    /// change them (only make the key stricter by disabling it, or delete it).
    pub admin_locked: Locks,
    /// The owner's user name, so a list of everyone's keys names each owner without the
    /// console loading every account. A user sees only their own keys, so only their own name.
    pub username: String,
    #[serde(skip)]
    pub digest: [u8; 32],
}

const COLUMNS: &str = "id, user_id, name, prefix, unlimited, remain_quota, used_quota, expires_at, \
                       models, enabled, created_at, last_used_at, digest, rpm_limit, tpm_limit, \
                       admin_locked, \
                       (SELECT username FROM users WHERE users.id = api_keys.user_id)";

fn from_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    let models: Option<String> = r.get(8)?;
    let locked: String = r.get(15)?;
    let digest: Vec<u8> = r.get(12)?;
    let mut d = [0u8; 32];
    if digest.len() == 32 {
        d.copy_from_slice(&digest);
    }
    Ok(KeyRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        unlimited: r.get(4)?,
        remain_quota: r.get(5)?,
        used_quota: r.get(6)?,
        expires_at: r.get(7)?,
        models: models.and_then(|m| serde_json::from_str(&m).ok()),
        enabled: r.get(9)?,
        created_at: r.get(10)?,
        last_used_at: r.get(11)?,
        rpm_limit: r.get(13)?,
        tpm_limit: r.get(14)?,
        // Unknown names (a newer version's) are dropped rather than failing the read.
        admin_locked: serde_json::from_str::<Vec<serde_json::Value>>(&locked)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        // A key outlives no account (deleting a user deletes its keys), so the name is there.
        username: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
        digest: d,
    })
}

pub struct NewKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub digest: [u8; 32],
    pub prefix: &'a str,
    pub unlimited: bool,
    pub remain_quota: i64,
    pub expires_at: Option<i64>,
    pub models: Option<&'a [String]>,
    pub created_at: i64,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub admin_locked: &'a Locks,
}

fn models_json(m: Option<&[String]>) -> Option<String> {
    m.map(|m| serde_json::to_string(m).unwrap_or_else(|_| "[]".into()))
}

pub fn insert(conn: &Connection, k: &NewKey<'_>) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO api_keys (user_id, name, digest, prefix, unlimited, remain_quota, expires_at, models, created_at, rpm_limit, tpm_limit, admin_locked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            k.user_id,
            k.name,
            &k.digest[..],
            k.prefix,
            k.unlimited,
            k.remain_quota,
            k.expires_at,
            models_json(k.models),
            k.created_at,
            k.rpm_limit,
            k.tpm_limit,
            locks_json(k.admin_locked)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn get(conn: &Connection, id: i64) -> Result<KeyRow, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

/// How many keys a user has (for the per-account cap).
pub fn count_of_user(conn: &Connection, user_id: i64) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM api_keys WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?)
}

/// Every key, or one user's keys.
pub fn list(conn: &Connection, user_id: Option<i64>) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE ?1 IS NULL OR user_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Fields a key's owner or an admin may change. `expires_at: Some(None)` clears the expiry.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct KeyPatch {
    #[serde(default, deserialize_with = "crate::util::not_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::util::not_null")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::util::not_null")]
    pub unlimited: Option<bool>,
    #[serde(default, with = "double_option")]
    pub expires_at: Option<Option<i64>>,
    #[serde(default, with = "double_option")]
    pub models: Option<Option<Vec<String>>>,
    /// `Some(None)` goes back to the option's default.
    #[serde(default, with = "double_option")]
    pub rpm_limit: Option<Option<i64>>,
    #[serde(default, with = "double_option")]
    pub tpm_limit: Option<Option<i64>>,
    /// The new set of admin locks, when it changes (decided by the API, never read from a body).
    #[serde(skip)]
    pub admin_locked: Option<Locks>,
}

impl KeyPatch {
    /// The lockable settings this patch changes (`quota` is a separate field of the body).
    pub fn touched(&self) -> Locks {
        let mut t = Locks::new();
        if self.enabled.is_some() {
            t.insert(KeyField::Enabled);
        }
        if self.unlimited.is_some() {
            t.insert(KeyField::Quota);
        }
        if self.models.is_some() {
            t.insert(KeyField::Models);
        }
        if self.expires_at.is_some() {
            t.insert(KeyField::ExpiresAt);
        }
        if self.rpm_limit.is_some() {
            t.insert(KeyField::RpmLimit);
        }
        if self.tpm_limit.is_some() {
            t.insert(KeyField::TpmLimit);
        }
        t
    }
}

/// Tells "field absent" (leave it) from "field null" (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub fn update(conn: &Connection, id: i64, p: &KeyPatch) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE api_keys SET
            name = COALESCE(?2, name),
            enabled = COALESCE(?3, enabled),
            unlimited = COALESCE(?4, unlimited),
            expires_at = CASE WHEN ?5 THEN ?6 ELSE expires_at END,
            models = CASE WHEN ?7 THEN ?8 ELSE models END,
            rpm_limit = CASE WHEN ?9 THEN ?10 ELSE rpm_limit END,
            tpm_limit = CASE WHEN ?11 THEN ?12 ELSE tpm_limit END,
            admin_locked = COALESCE(?13, admin_locked)
         WHERE id = ?1",
        params![
            id,
            p.name,
            p.enabled,
            p.unlimited,
            p.expires_at.is_some(),
            p.expires_at.flatten(),
            p.models.is_some(),
            models_json(p.models.as_ref().and_then(|m| m.as_deref())),
            p.rpm_limit.is_some(),
            p.rpm_limit.flatten(),
            p.tpm_limit.is_some(),
            p.tpm_limit.flatten(),
            p.admin_locked.as_ref().map(locks_json),
        ],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// Sets the key's remaining quota and returns the previous value.
pub fn set_quota(conn: &Connection, id: i64, quota: i64) -> Result<i64, StoreError> {
    let old: i64 = conn.query_row(
        "SELECT remain_quota FROM api_keys WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE api_keys SET remain_quota = ?2 WHERE id = ?1",
        params![id, quota],
    )?;
    Ok(old)
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    let n = conn.execute("DELETE FROM api_keys WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// How `GET /api/keys` searches and sorts.
pub const LISTING: super::listing::Table = super::listing::Table {
    name: "api_keys",
    columns: COLUMNS,
    searched: &["name", "prefix"],
    sorts: &[
        ("id", "id"),
        ("name", "name COLLATE NOCASE"),
        ("remain_quota", "remain_quota"),
        ("used_quota", "used_quota"),
        ("created_at", "created_at"),
        ("last_used_at", "COALESCE(last_used_at, 0)"),
        ("expires_at", "COALESCE(expires_at, 9223372036854775807)"),
    ],
};

/// One page of keys matching the search, optionally only one user's.
pub fn search(
    conn: &Connection,
    q: &super::listing::ListQuery,
    user_id: Option<i64>,
) -> Result<super::listing::Page<KeyRow>, StoreError> {
    let extra: Vec<(&str, Option<rusqlite::types::Value>)> = user_id
        .map(|id| ("user_id = ?", Some(id.into())))
        .into_iter()
        .collect();
    super::listing::page(conn, &LISTING, q, &extra, from_row)
}

/// Names of the given keys (absent ids were deleted).
pub fn names(
    conn: &Connection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let mut out = std::collections::HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT name FROM api_keys WHERE id = ?1")?;
    for id in ids {
        if let Some(n) = stmt.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.insert(*id, n);
        }
    }
    Ok(out)
}
