//! Reading the logs: filters, totals over a time range, usage series (the search itself, with
//! stable pagination, is in [`super::log_search`]).
//!
//! Every value reaches SQLite as a bound parameter; column names come only from the fixed
//! allow-lists below, never from the request.
//!
//! Totals and usage read the rollups (`usage_daily`, `usage_hourly`: written in the same
//! transaction as each consume or error row, so always equal to the rows) for whole days and
//! hours, and the rows only for the ragged ends of a range that does not start or end on the
//! hour. That keeps a total over months as cheap as one over a day, and keeps answering after
//! retention deleted rows.

use super::StoreError;
pub use super::log_search::{Cursor, LogRow, PageRequest, SortKey, search};
use rusqlite::Connection;
use rusqlite::types::Value;
use serde::Serialize;

/// The conditions of the three partial log indexes (schema V13), word for word: SQLite uses a
/// partial index only for a query whose WHERE contains its condition, and a bound value
/// (`type = ?1`) cannot show that. The common value of each column (consume rows, status 200,
/// the 'default' group: most rows) is left out of its index, so a fold does not pay for it; a
/// query for that value walks the time index, where most rows match.
pub const RARE_TYPE: &str = "type <> 2";
pub const FAILED_STATUS: &str = "status <> 200";
pub const OTHER_GROUP: &str = "user_group <> 'default'";
/// The values those conditions leave out.
const COMMON_TYPE: i64 = super::logs::LogType::Consume as i64;
const COMMON_STATUS: i64 = 200;
const COMMON_GROUP: &str = "default";

pub(super) const HOUR: i64 = 3600;
pub(super) const DAY: i64 = 86_400;

/// Row filters shared by search and totals. `None` = not filtered.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Log types; empty = every type.
    pub types: Vec<i64>,
    /// Inclusive lower bound, Unix seconds.
    pub start: Option<i64>,
    /// Exclusive upper bound, Unix seconds.
    pub end: Option<i64>,
    pub user_ids: Option<Vec<i64>>,
    /// Matched on the name recorded in the row (for users since deleted).
    pub username: Option<String>,
    pub key_ids: Option<Vec<i64>>,
    /// Matched on the name recorded in the row (for keys since deleted).
    pub key_name: Option<String>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    pub group: Option<String>,
    pub request_id: Option<String>,
    pub status: Option<i64>,
}

/// A WHERE clause under construction: SQL fragments and their bound values.
#[derive(Default)]
pub(super) struct Where {
    pub(super) parts: Vec<String>,
    pub(super) values: Vec<Value>,
}

impl Where {
    pub(super) fn eq(&mut self, column: &str, v: impl Into<Value>) {
        self.values.push(v.into());
        self.parts
            .push(format!("{column} = ?{}", self.values.len()));
    }

    pub(super) fn cmp(&mut self, column: &str, op: &str, v: impl Into<Value>) {
        self.values.push(v.into());
        self.parts
            .push(format!("{column} {op} ?{}", self.values.len()));
    }

    pub(super) fn any_of(&mut self, column: &str, vs: &[i64]) {
        if vs.is_empty() {
            // Filtered to nothing (e.g. a user name that matches no user).
            self.parts.push("0".into());
            return;
        }
        let mut marks = Vec::with_capacity(vs.len());
        for v in vs {
            self.values.push(Value::Integer(*v));
            marks.push(format!("?{}", self.values.len()));
        }
        self.parts
            .push(format!("{column} IN ({})", marks.join(", ")));
    }

    pub(super) fn raw(&mut self, sql: String) {
        self.parts.push(sql);
    }

    pub(super) fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.join(" AND "))
        }
    }
}

/// The filters that apply to the `logs` table, time range included.
pub(super) fn logs_where(f: &LogFilter, start: Option<i64>, end: Option<i64>) -> Where {
    let mut w = Where::default();
    match f.types.as_slice() {
        [] => {}
        [t] => w.eq("type", *t),
        ts => w.any_of("type", ts),
    }
    if !f.types.is_empty() && !f.types.contains(&COMMON_TYPE) {
        w.raw(RARE_TYPE.into());
    }
    if let Some(s) = start {
        w.cmp("created_at", ">=", s);
    }
    if let Some(e) = end {
        w.cmp("created_at", "<", e);
    }
    if let Some(ids) = &f.user_ids {
        match ids.as_slice() {
            [id] => w.eq("user_id", *id),
            ids => w.any_of("user_id", ids),
        }
    }
    if let Some(n) = &f.username {
        w.eq("username", n.clone());
    }
    if let Some(ids) = &f.key_ids {
        match ids.as_slice() {
            [id] => w.eq("key_id", *id),
            ids => w.any_of("key_id", ids),
        }
    }
    if let Some(n) = &f.key_name {
        w.eq("key_name", n.clone());
    }
    if let Some(m) = &f.model {
        w.eq("model", m.clone());
    }
    if let Some(c) = f.channel_id {
        w.eq("channel_id", c);
    }
    if let Some(g) = &f.group {
        w.eq("user_group", g.clone());
        if g != COMMON_GROUP {
            w.raw(OTHER_GROUP.into());
        }
    }
    if let Some(r) = &f.request_id {
        w.eq("request_id", r.clone());
    }
    if let Some(s) = f.status {
        w.eq("status", s);
        if s != COMMON_STATUS {
            w.raw(FAILED_STATUS.into());
        }
    }
    w
}

/// Sums over a filter and time range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub requests: i64,
    pub quota: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl Totals {
    fn add(&mut self, o: Totals) {
        self.requests += o.requests;
        self.quota += o.quota;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }

    pub fn tokens(&self) -> i64 {
        self.prompt_tokens + self.completion_tokens
    }
}

pub(super) const ROLLED_UP: [i64; 2] = [
    super::logs::LogType::Consume as i64,
    super::logs::LogType::Error as i64,
];

/// Totals straight from the rows in [start, end) (the filter's own range is ignored); used for
/// the requests and tokens of the last minute (RPM, TPM).
pub fn totals_from_rows(
    conn: &Connection,
    f: &LogFilter,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Totals, StoreError> {
    let w = logs_where(f, start, end);
    let sql = format!(
        "SELECT COUNT(*), COALESCE(SUM(quota), 0), COALESCE(SUM(prompt_tokens), 0),
                COALESCE(SUM(completion_tokens), 0) FROM logs {}",
        w.sql()
    );
    let t =
        conn.prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(w.values.iter()), |r| {
                Ok(Totals {
                    requests: r.get(0)?,
                    quota: r.get(1)?,
                    prompt_tokens: r.get(2)?,
                    completion_tokens: r.get(3)?,
                })
            })?;
    Ok(t)
}

/// The two rollup tables: the same sums per hour and per UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rollup {
    Hourly,
    Daily,
}

impl Rollup {
    pub(super) fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "usage_hourly",
            Rollup::Daily => "usage_daily",
        }
    }
    pub(super) fn period(self) -> &'static str {
        match self {
            Rollup::Hourly => "hour",
            Rollup::Daily => "day",
        }
    }
}

/// The filters as they apply to a rollup table, periods starting in [from, to).
pub(super) fn rollup_where(
    f: &LogFilter,
    r: Rollup,
    types: &[i64],
    from: Option<i64>,
    to: Option<i64>,
) -> Where {
    let mut w = Where::default();
    w.any_of("type", types);
    if let Some(h) = from {
        w.cmp(r.period(), ">=", h);
    }
    if let Some(h) = to {
        w.cmp(r.period(), "<", h);
    }
    if let Some(ids) = &f.user_ids {
        w.any_of("user_id", ids);
    }
    if let Some(ids) = &f.key_ids {
        w.any_of("key_id", ids);
    }
    if let Some(m) = &f.model {
        w.eq("model", m.clone());
    }
    if let Some(c) = f.channel_id {
        w.eq("channel_id", c);
    }
    if let Some(g) = &f.group {
        w.eq("user_group", g.clone());
    }
    if let Some(s) = f.status {
        w.eq("status", s);
    }
    w
}

fn totals_from_rollups(
    conn: &Connection,
    f: &LogFilter,
    r: Rollup,
    types: &[i64],
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Totals, StoreError> {
    let w = rollup_where(f, r, types, from, to);
    let sql = format!(
        "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(quota), 0), COALESCE(SUM(prompt_tokens), 0),
                COALESCE(SUM(completion_tokens), 0) FROM {} {}",
        r.table(),
        w.sql()
    );
    let t =
        conn.prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(w.values.iter()), |r| {
                Ok(Totals {
                    requests: r.get(0)?,
                    quota: r.get(1)?,
                    prompt_tokens: r.get(2)?,
                    completion_tokens: r.get(3)?,
                })
            })?;
    Ok(t)
}

pub(super) fn ceil_to(t: i64, period: i64) -> i64 {
    let floor = t - t.rem_euclid(period);
    if floor == t { t } else { floor + period }
}

pub(super) fn floor_to(t: i64, period: i64) -> i64 {
    t - t.rem_euclid(period)
}

/// Totals over the filter's types (consume when none are given) and time range.
///
/// A range splits into: whole UTC days (daily rollups), whole hours at either end of those
/// (hourly rollups), and ragged seconds at either end (the rows). An open end needs no rows:
/// the rollups are exact up to the last committed row.
pub fn totals(conn: &Connection, f: &LogFilter) -> Result<Totals, StoreError> {
    let mut f = f.clone();
    if f.types.is_empty() {
        f.types = vec![super::logs::LogType::Consume as i64];
    }
    let (rolled, other): (Vec<i64>, Vec<i64>) = f.types.iter().partition(|t| ROLLED_UP.contains(t));
    // A request id or a deleted account's name is not in the rollups: read the rows (these
    // filters are selective and indexed, or rare).
    if f.request_id.is_some() || f.username.is_some() || f.key_name.is_some() || rolled.is_empty() {
        return totals_from_rows(conn, &f, f.start, f.end);
    }
    let mut out = Totals::default();
    if !other.is_empty() {
        let only_other = LogFilter {
            types: other,
            ..f.clone()
        };
        out.add(totals_from_rows(conn, &only_other, f.start, f.end)?);
    }
    let f = LogFilter {
        types: rolled.clone(),
        ..f
    };
    let hours = (
        f.start.map(|s| ceil_to(s, HOUR)),
        f.end.map(|e| floor_to(e, HOUR)),
    );
    if let (Some(a), Some(b)) = hours
        && a >= b
    {
        out.add(totals_from_rows(conn, &f, f.start, f.end)?);
        return Ok(out);
    }
    if let (Some(s), Some(h)) = (f.start, hours.0)
        && s < h
    {
        out.add(totals_from_rows(conn, &f, Some(s), Some(h))?);
    }
    if let (Some(h), Some(e)) = (hours.1, f.end)
        && h < e
    {
        out.add(totals_from_rows(conn, &f, Some(h), Some(e))?);
    }
    let days = (
        hours.0.map(|h| ceil_to(h, DAY)),
        hours.1.map(|h| floor_to(h, DAY)),
    );
    if let (Some(a), Some(b)) = days
        && a >= b
    {
        out.add(totals_from_rollups(
            conn,
            &f,
            Rollup::Hourly,
            &rolled,
            hours.0,
            hours.1,
        )?);
        return Ok(out);
    }
    out.add(totals_from_rollups(
        conn,
        &f,
        Rollup::Daily,
        &rolled,
        days.0,
        days.1,
    )?);
    if let (Some(h), Some(d)) = (hours.0, days.0)
        && h < d
    {
        out.add(totals_from_rollups(
            conn,
            &f,
            Rollup::Hourly,
            &rolled,
            Some(h),
            Some(d),
        )?);
    }
    if let (Some(d), Some(h)) = (days.1, hours.1)
        && d < h
    {
        out.add(totals_from_rollups(
            conn,
            &f,
            Rollup::Hourly,
            &rolled,
            Some(d),
            Some(h),
        )?);
    }
    Ok(out)
}

/// Granularity of a usage series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

/// What a usage series is split by, besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitBy {
    Nothing,
    Model,
    User,
    Key,
    Channel,
}

impl SplitBy {
    pub const NAMES: &[&str] = &["model", "user", "key", "channel"];

    pub fn parse(s: &str) -> Option<SplitBy> {
        Some(match s {
            "model" => SplitBy::Model,
            "user" => SplitBy::User,
            "key" => SplitBy::Key,
            "channel" => SplitBy::Channel,
            _ => return None,
        })
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            SplitBy::Nothing => "''",
            SplitBy::Model => "model",
            SplitBy::User => "CAST(user_id AS TEXT)",
            SplitBy::Key => "CAST(key_id AS TEXT)",
            SplitBy::Channel => "CAST(channel_id AS TEXT)",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UsagePoint {
    /// Start of the hour or day (UTC), Unix seconds.
    pub time: i64,
    /// The model, user id, key id or channel id this point is for; absent when not split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub quota: i64,
}

/// User ids with this exact name (one at most while the user exists).
pub fn user_ids_named(conn: &Connection, name: &str) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM users WHERE username = ?1")?;
    let ids = stmt
        .query_map([name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Key ids with this exact name, optionally only among one user's keys.
pub fn key_ids_named(
    conn: &Connection,
    name: &str,
    owner: Option<i64>,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM api_keys WHERE name = ?1 AND (?2 IS NULL OR user_id = ?2) ORDER BY id",
    )?;
    let ids = stmt
        .query_map(rusqlite::params![name, owner], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}
