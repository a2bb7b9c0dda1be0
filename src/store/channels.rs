//! The `channels` table: upstream providers. The upstream secret is kept (it must be sent), but
//! never returned in full by the API nor written to a log.

use super::StoreError;
use crate::secret::Secret;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stored channel: its settable fields plus what the store assigns.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub created_at: i64,
    pub fields: ChannelFields,
}

/// Read access to the fields as if they were the row's own (`row.models`).
impl std::ops::Deref for ChannelRow {
    type Target = ChannelFields;
    fn deref(&self) -> &ChannelFields {
        &self.fields
    }
}

/// What the API shows: the secret masked.
#[derive(Debug, Serialize)]
pub struct ChannelView<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub name: &'a str,
    pub base_url: &'a str,
    pub api_key: String,
    pub models: &'a [String],
    pub model_mapping: &'a BTreeMap<String, String>,
    pub groups: &'a [String],
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    pub created_at: i64,
}

impl ChannelRow {
    pub fn view(&self) -> ChannelView<'_> {
        ChannelView {
            id: self.id,
            kind: &self.kind,
            name: &self.name,
            base_url: &self.base_url,
            api_key: self.api_key.masked(),
            models: &self.models,
            model_mapping: &self.model_mapping,
            groups: &self.groups,
            priority: self.priority,
            weight: self.weight,
            enabled: self.enabled,
            created_at: self.created_at,
        }
    }
}

const COLUMNS: &str = "id, kind, name, base_url, api_key, models, model_mapping, groups, priority, weight, enabled, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(ChannelRow {
        id: r.get(0)?,
        created_at: r.get(11)?,
        fields: ChannelFields {
            kind: r.get(1)?,
            name: r.get(2)?,
            base_url: r.get(3)?,
            api_key: Secret::new(r.get::<_, String>(4)?),
            models: serde_json::from_str(&json(5)?).unwrap_or_default(),
            model_mapping: serde_json::from_str(&json(6)?).unwrap_or_default(),
            groups: serde_json::from_str(&json(7)?).unwrap_or_default(),
            priority: r.get(8)?,
            weight: r.get(9)?,
            enabled: r.get(10)?,
        },
    })
}

/// A new channel, already validated by the domain layer.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelFields {
    pub kind: String,
    pub name: String,
    pub base_url: String,
    pub api_key: Secret,
    pub models: Vec<String>,
    pub model_mapping: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn insert(conn: &Connection, c: &ChannelFields, now: i64) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO channels (kind, name, base_url, api_key, models, model_mapping, groups, priority, weight, enabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            c.kind,
            c.name,
            c.base_url,
            c.api_key.expose(),
            to_json(&c.models),
            to_json(&c.model_mapping),
            to_json(&c.groups),
            c.priority,
            c.weight,
            c.enabled,
            now
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Replaces every field (the API merges a PATCH onto the current row first).
pub fn replace(conn: &Connection, id: i64, c: &ChannelFields) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE channels SET kind = ?2, name = ?3, base_url = ?4, api_key = ?5, models = ?6,
            model_mapping = ?7, groups = ?8, priority = ?9, weight = ?10, enabled = ?11
         WHERE id = ?1",
        params![
            id,
            c.kind,
            c.name,
            c.base_url,
            c.api_key.expose(),
            to_json(&c.models),
            to_json(&c.model_mapping),
            to_json(&c.groups),
            c.priority,
            c.weight,
            c.enabled
        ],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

pub fn get(conn: &Connection, id: i64) -> Result<ChannelRow, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM channels WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

pub fn list(conn: &Connection) -> Result<Vec<ChannelRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM channels ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    let n = conn.execute("DELETE FROM channels WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}
