//! `notify_deliveries`: one row per notification delivery attempt.

use super::StoreError;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub created_at: i64,
    pub user_id: Option<i64>,
    /// email, webhook, bark or gotify.
    pub kind: String,
    /// What was sent: `quota_warning`, `test`, …
    pub event: String,
    /// `host[:port]` of the receiver (the SMTP server for email); never a path or query.
    pub target_host: Option<String>,
    /// 1 for the first try.
    pub attempt: i64,
    /// sent, retry (failed, will be tried again), failed (final) or refused (SSRF guard).
    pub outcome: String,
    /// The receiver's HTTP status (or SMTP reply code) when it answered.
    pub status: Option<i64>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

pub fn insert(conn: &Connection, d: &DeliveryRow) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO notify_deliveries (created_at, user_id, kind, event, target_host, attempt,
                outcome, status, reason, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            d.created_at,
            d.user_id,
            d.kind,
            d.event,
            d.target_host,
            d.attempt,
            d.outcome,
            d.status,
            d.reason,
            d.request_id
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Which rows to list: newest first, ids below `before` (the cursor), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub before: Option<i64>,
    pub user_id: Option<i64>,
    pub kind: Option<String>,
    pub limit: i64,
}

pub fn list(conn: &Connection, f: &Filter) -> Result<Vec<DeliveryRow>, StoreError> {
    // Fixed SQL with optional conditions bound as parameters; nothing from the caller is
    // spliced into the text.
    let sql = "SELECT id, created_at, user_id, kind, event, target_host, attempt, outcome,
                      status, reason, request_id
               FROM notify_deliveries
               WHERE (?1 IS NULL OR id < ?1)
                 AND (?2 IS NULL OR user_id = ?2)
                 AND (?3 IS NULL OR kind = ?3)
               ORDER BY id DESC
               LIMIT ?4";
    let args: [Value; 4] = [
        f.before.map_or(Value::Null, Value::Integer),
        f.user_id.map_or(Value::Null, Value::Integer),
        f.kind.clone().map_or(Value::Null, Value::Text),
        Value::Integer(f.limit),
    ];
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), |r| {
            Ok(DeliveryRow {
                id: r.get(0)?,
                created_at: r.get(1)?,
                user_id: r.get(2)?,
                kind: r.get(3)?,
                event: r.get(4)?,
                target_host: r.get(5)?,
                attempt: r.get(6)?,
                outcome: r.get(7)?,
                status: r.get(8)?,
                reason: r.get(9)?,
                request_id: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
