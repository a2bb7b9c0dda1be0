//! The anomaly report's queries: spend per user or key over the last hour and its baseline,
//! and each channel's calls, errors and latency over the last hour.

use super::StoreError;
use super::logs::LogType;
use rusqlite::Connection;

/// Whose spend [`spend`] sums.
#[derive(Debug, Clone, Copy)]
pub enum SpendBy {
    User,
    Key,
}

/// (id, name, last-hour spend, baseline spend) of one user or key.
pub type SpendRow = (i64, Option<String>, i64, i64);

/// (channel id, calls, errors, latency sum of the successes in ms, successes).
pub type ChannelHour = (i64, i64, i64, i64, i64);

/// Spend since `recent_from` from the rows (exact), and the baseline between `baseline_from`
/// and `base_to` from the hourly rollups, of every user or key that spent since `recent_from`.
pub fn spend(
    conn: &Connection,
    by: SpendBy,
    recent_from: i64,
    baseline_from: i64,
    base_to: i64,
) -> Result<Vec<SpendRow>, StoreError> {
    // Column and name query from this allow-list only.
    let (column, names) = match by {
        SpendBy::User => ("user_id", "SELECT username FROM users WHERE id = recent.id"),
        SpendBy::Key => ("key_id", "SELECT name FROM api_keys WHERE id = recent.id"),
    };
    let consume = LogType::Consume as i64;
    let sql = format!(
        "WITH recent AS (
            SELECT {column} AS id, SUM(quota) AS q FROM logs
             WHERE type = {consume} AND created_at >= ?1 AND {column} IS NOT NULL GROUP BY {column}),
         base AS (
            SELECT {column} AS id, SUM(quota) AS q FROM usage_hourly
             WHERE type = {consume} AND hour >= ?2 AND hour < ?3 GROUP BY {column})
         SELECT recent.id, ({names}), recent.q, COALESCE(base.q, 0)
           FROM recent LEFT JOIN base ON base.id = recent.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(
            rusqlite::params![recent_from, baseline_from, base_to],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Each channel's consume and error rows since `from`.
pub fn channel_hour(conn: &Connection, from: i64) -> Result<Vec<ChannelHour>, StoreError> {
    // The types are constants written into the text (not bound), as literals let the planner
    // use its statistics for them.
    let (consume, error) = (LogType::Consume as i64, LogType::Error as i64);
    let mut stmt = conn.prepare(&format!(
        "SELECT channel_id, COUNT(*), SUM(type = {error}),
                SUM(CASE WHEN type = {consume} THEN COALESCE(latency_ms, 0) ELSE 0 END),
                SUM(type = {consume})
           FROM logs WHERE type IN ({consume}, {error}) AND created_at >= ?1
            AND channel_id IS NOT NULL
          GROUP BY channel_id"
    ))?;
    let rows = stmt
        .query_map([from], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
