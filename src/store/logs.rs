//! The `logs` table, and the settle write that puts a charge and its log row in one transaction.

use super::StoreError;
use rusqlite::{Connection, params};
use serde::Serialize;

/// Log kinds. The numbers are stored and served as they are, and scripts filter by them: never
/// renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogType {
    Topup = 1,
    Consume = 2,
    Manage = 3,
    System = 4,
    Error = 5,
    Refund = 6,
}

/// One row, as the domain code made it; the store writes it as given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogEntry {
    pub created_at: i64,
    pub log_type: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    pub channel_id: Option<i64>,
    pub group: Option<String>,
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub quota: i64,
    /// What the charge took from the key's own limit (0 for an unlimited key).
    pub key_charge: i64,
    pub latency_ms: Option<i64>,
    pub ttfb_ms: Option<i64>,
    pub is_stream: bool,
    pub status: Option<i64>,
    /// `upstream` when the usage came from upstream, `local` when counted here.
    pub usage_source: Option<String>,
    pub content: Option<String>,
    /// Parts of `prompt_tokens` read from / written to the prompt cache (5 min, 1 h), and of
    /// `completion_tokens` spent reasoning.
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub reasoning_tokens: i64,
}

/// The columns a log row has in `logs` and in `log_journal` (which adds who it charges), in the
/// order of [`LogEntry::values`]. A macro so the SQL that names them is built at compile time.
macro_rules! log_row_columns {
    () => {
        "created_at, type, request_id, user_id, username, key_id, key_name, channel_id, \
         user_group, model, upstream_model, prompt_tokens, completion_tokens, quota, latency_ms, \
         ttfb_ms, is_stream, status, usage_source, content, key_charge, cache_read_tokens, \
         cache_write_tokens, cache_write_1h_tokens, reasoning_tokens"
    };
}
pub(super) use log_row_columns;

impl LogEntry {
    /// The values of [`log_row_columns!`], in its order.
    pub(super) fn values(&self) -> [&dyn rusqlite::ToSql; 25] {
        [
            &self.created_at,
            &self.log_type,
            &self.request_id,
            &self.user_id,
            &self.username,
            &self.key_id,
            &self.key_name,
            &self.channel_id,
            &self.group,
            &self.model,
            &self.upstream_model,
            &self.prompt_tokens,
            &self.completion_tokens,
            &self.quota,
            &self.latency_ms,
            &self.ttfb_ms,
            &self.is_stream,
            &self.status,
            &self.usage_source,
            &self.content,
            &self.key_charge,
            &self.cache_read_tokens,
            &self.cache_write_tokens,
            &self.cache_write_1h_tokens,
            &self.reasoning_tokens,
        ]
    }
}

pub fn insert(conn: &Connection, e: &LogEntry) -> Result<i64, StoreError> {
    conn.prepare_cached(concat!(
        "INSERT INTO logs (",
        log_row_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
    ))?
    .execute(e.values().as_slice())?;
    let id = conn.last_insert_rowid();
    if e.log_type == LogType::Consume as i64 || e.log_type == LogType::Error as i64 {
        roll_up(conn, e)?;
    }
    Ok(id)
}

/// Adds a consume or error row to its hourly and daily rollups, inside the transaction that
/// wrote it.
fn roll_up(conn: &Connection, e: &LogEntry) -> Result<(), StoreError> {
    for (sql, period) in [(ROLL_HOURLY, 3600), (ROLL_DAILY, 86_400)] {
        conn.prepare_cached(sql)?.execute(params![
            e.created_at - e.created_at.rem_euclid(period),
            e.log_type,
            e.user_id.unwrap_or(0),
            e.key_id.unwrap_or(0),
            e.model.as_deref().unwrap_or(""),
            e.channel_id.unwrap_or(0),
            e.group.as_deref().unwrap_or(""),
            e.status.unwrap_or(0),
            e.prompt_tokens,
            e.completion_tokens,
            e.quota,
            e.latency_ms.unwrap_or(0)
        ])?;
    }
    Ok(())
}

const ROLL_HOURLY: &str =
    "INSERT INTO usage_hourly (hour, type, user_id, key_id, model, channel_id, user_group, status,
        requests, prompt_tokens, completion_tokens, quota, latency_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?10, ?11, ?12)
     ON CONFLICT DO UPDATE SET requests = requests + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        quota = quota + excluded.quota,
        latency_ms = latency_ms + excluded.latency_ms";

const ROLL_DAILY: &str =
    "INSERT INTO usage_daily (day, type, user_id, key_id, model, channel_id, user_group, status,
        requests, prompt_tokens, completion_tokens, quota, latency_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?10, ?11, ?12)
     ON CONFLICT DO UPDATE SET requests = requests + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens,
        quota = quota + excluded.quota,
        latency_ms = latency_ms + excluded.latency_ms";

/// Applies a settled charge to the user and the key and writes its log row. Runs inside one
/// writer transaction, so the charge and the row exist together or not at all.
pub fn record_charge(
    conn: &Connection,
    user_id: i64,
    key_id: i64,
    key_limited: bool,
    quota: i64,
    mut entry: LogEntry,
) -> Result<i64, StoreError> {
    entry.key_charge = if key_limited { quota } else { 0 };
    conn.prepare_cached(
        "UPDATE users SET quota = quota - ?2, used_quota = used_quota + ?2, request_count = request_count + 1
         WHERE id = ?1",
    )?
    .execute(params![user_id, quota])?;
    conn.prepare_cached(
        "UPDATE api_keys SET remain_quota = remain_quota - CASE WHEN ?3 THEN ?2 ELSE 0 END,
            used_quota = used_quota + ?2, last_used_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![key_id, quota, key_limited, entry.created_at])?;
    insert(conn, &entry)
}

/// Records a balance change as a top-up row (type 1) holding the difference, in the
/// transaction that made the change, so every balance stays explained by rows: a user's row
/// has `key_id` NULL, a key's limit change has it set. `by` is the admin's manage row.
pub fn record_topup(
    conn: &Connection,
    by: &LogEntry,
    user_id: i64,
    key_id: Option<i64>,
    delta: i64,
) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    let username: Option<String> = conn
        .prepare_cached("SELECT username FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .ok();
    let key_name: Option<String> = match key_id {
        Some(k) => conn
            .prepare_cached("SELECT name FROM api_keys WHERE id = ?1")?
            .query_row([k], |r| r.get(0))
            .ok(),
        None => None,
    };
    let what = if key_id.is_some() {
        "key limit"
    } else {
        "balance"
    };
    let actor = by.username.as_deref().unwrap_or("system");
    insert(
        conn,
        &LogEntry {
            created_at: by.created_at,
            log_type: LogType::Topup as i64,
            request_id: by.request_id.clone(),
            user_id: Some(user_id),
            username,
            key_id,
            key_name,
            quota: delta,
            content: Some(format!("{what} {delta:+} by {actor}")),
            ..Default::default()
        },
    )?;
    Ok(())
}
