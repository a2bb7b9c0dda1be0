//! The log journal: a relayed call's row and charge, committed in one page, folded later.
//!
//! A call's commit used to dirty ~19 pages (the log row, ten log indexes, two rollups with
//! their indexes, the user's and the key's rows): ~60 KiB written per call at one connection.
//! Now the call commits one row into `log_journal`, a table without secondary indexes, and
//! the writer folds the journal in one transaction: rows into `logs`, sums into the rollups
//! and into the balances, then deletes them. An index page is written once per fold, not once
//! per call.
//!
//! When it folds (see `writer`): before any other write job (so admin changes, manage rows
//! and reconcile act on folded balances and log ids stay in commit order), before any read
//! through [`super::Store::read`] when rows are waiting, once a second while rows wait, once
//! [`FOLD_ROWS`] rows wait, at shutdown, and at start-up before the balances are loaded.
//!
//! Money: the in-memory ledger is charged before the append is queued, exactly as before;
//! the journal row is the durable record of the charge until the fold moves it, in one
//! transaction, into the log row and the balance columns. A crash between the two leaves the
//! journal row, which start-up folds.

use super::StoreError;
use super::logs::{LogEntry, LogType};
use rusqlite::{Connection, params};

/// Rows waiting that make the writer fold at the end of the batch rather than wait for the
/// timer: bounds the journal (and the fold's transaction) under heavy load.
pub const FOLD_ROWS: u64 = 4096;

/// Who a journal row charges.
#[derive(Debug, Clone, Copy)]
pub struct Charge {
    pub user_id: i64,
    pub key_id: i64,
    /// The key has a limit of its own: the charge comes off its `remain_quota` too.
    pub key_limited: bool,
    pub quota: i64,
}

/// Appends a call's row; with `charge`, the fold applies it to the user's and key's balances
/// (as [`super::logs::record_charge`] does at once).
pub fn append(
    conn: &Connection,
    mut e: LogEntry,
    charge: Option<Charge>,
) -> Result<(), StoreError> {
    if let Some(c) = charge {
        e.quota = c.quota;
        e.key_charge = if c.key_limited { c.quota } else { 0 };
    }
    conn.prepare_cached(
        "INSERT INTO log_journal (created_at, type, request_id, user_id, username, key_id, key_name,
            channel_id, user_group, model, upstream_model, prompt_tokens, completion_tokens, quota,
            latency_ms, ttfb_ms, is_stream, status, usage_source, content, key_charge, charge_user,
            charge_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        e.created_at,
        e.log_type,
        e.request_id,
        e.user_id,
        e.username,
        e.key_id,
        e.key_name,
        e.channel_id,
        e.group,
        e.model,
        e.upstream_model,
        e.prompt_tokens,
        e.completion_tokens,
        e.quota,
        e.latency_ms,
        e.ttfb_ms,
        e.is_stream,
        e.status,
        e.usage_source,
        e.content,
        e.key_charge,
        charge.map(|c| c.user_id),
        charge.map(|c| c.key_id),
    ])?;
    Ok(())
}

/// Rows waiting in the journal.
pub fn waiting(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM log_journal")?
        .query_row([], |r| r.get(0))?)
}

/// Moves every journal row into `logs`, the rollups and the balances, and empties the
/// journal; returns how many rows moved. Runs inside the caller's transaction: all of it
/// happens or none.
pub fn fold(conn: &Connection) -> Result<usize, StoreError> {
    let n = waiting(conn)?;
    if n == 0 {
        return Ok(0);
    }
    // Balances first, summed per user and per key: one row update each, however many calls.
    conn.prepare_cached(
        "UPDATE users SET quota = quota - j.q, used_quota = used_quota + j.q,
            request_count = request_count + j.n
         FROM (SELECT charge_user AS uid, SUM(quota) AS q, COUNT(*) AS n FROM log_journal
               WHERE charge_user IS NOT NULL GROUP BY charge_user) AS j
         WHERE users.id = j.uid",
    )?
    .execute([])?;
    conn.prepare_cached(
        "UPDATE api_keys SET remain_quota = remain_quota - j.kc, used_quota = used_quota + j.q,
            last_used_at = j.at
         FROM (SELECT charge_key AS kid, SUM(key_charge) AS kc, SUM(quota) AS q,
                      MAX(created_at) AS at FROM log_journal
               WHERE charge_key IS NOT NULL GROUP BY charge_key) AS j
         WHERE api_keys.id = j.kid",
    )?
    .execute([])?;
    // The rows, in journal (= commit) order, so log ids keep the order calls were recorded.
    conn.prepare_cached(
        "INSERT INTO logs (created_at, type, request_id, user_id, username, key_id, key_name,
            channel_id, user_group, model, upstream_model, prompt_tokens, completion_tokens, quota,
            latency_ms, ttfb_ms, is_stream, status, usage_source, content, key_charge)
         SELECT created_at, type, request_id, user_id, username, key_id, key_name, channel_id,
            user_group, model, upstream_model, prompt_tokens, completion_tokens, quota, latency_ms,
            ttfb_ms, is_stream, status, usage_source, content, key_charge
         FROM log_journal ORDER BY id",
    )?
    .execute([])?;
    for (table, period) in [("usage_hourly (hour", 3600), ("usage_daily (day", 86_400)] {
        conn.prepare_cached(&roll_up_sql(table))?
            .execute(params![period, LogType::Consume as i64, LogType::Error as i64])?;
    }
    conn.prepare_cached("DELETE FROM log_journal")?.execute([])?;
    Ok(n as usize)
}

/// The rollup upsert of every consume and error row in the journal, grouped as
/// `logs::roll_up` keys them (NULLs as 0 or ''; the period start rounded down as
/// `rem_euclid` does, negative times included).
fn roll_up_sql(table_and_period: &str) -> String {
    format!(
        "INSERT INTO {table_and_period}, type, user_id, key_id, model, channel_id, user_group, status,
            requests, prompt_tokens, completion_tokens, quota, latency_ms)
         SELECT created_at - ((created_at % ?1) + ?1) % ?1, type, IFNULL(user_id, 0),
            IFNULL(key_id, 0), IFNULL(model, ''), IFNULL(channel_id, 0), IFNULL(user_group, ''),
            IFNULL(status, 0), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota),
            SUM(IFNULL(latency_ms, 0))
         FROM log_journal WHERE type IN (?2, ?3)
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
         ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            quota = quota + excluded.quota,
            latency_ms = latency_ms + excluded.latency_ms"
    )
}

/// Folds in a transaction of its own on a connection that is not the writer's (start-up,
/// before the writer and the balances exist).
pub fn fold_now(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match fold(conn) {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
