//! Reading the logs: search with stable pagination, totals over a time range, usage series.
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
use rusqlite::types::Value;
use rusqlite::{Connection, Row};
use serde::Serialize;

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

/// Sort columns a caller may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    Quota,
    Latency,
    PromptTokens,
    CompletionTokens,
}

impl SortKey {
    pub const NAMES: &[&str] = &[
        "created_at",
        "quota",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "created_at" => SortKey::CreatedAt,
            "quota" => SortKey::Quota,
            "latency_ms" => SortKey::Latency,
            "prompt_tokens" => SortKey::PromptTokens,
            "completion_tokens" => SortKey::CompletionTokens,
            _ => return None,
        })
    }

    /// The SQL expression sorted on; never NULL, so the cursor comparison is total.
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::Quota => "quota",
            SortKey::Latency => "COALESCE(latency_ms, -1)",
            SortKey::PromptTokens => "prompt_tokens",
            SortKey::CompletionTokens => "completion_tokens",
        }
    }
}

/// Where the previous page ended: the sort value and id of its last row. Rows are ordered by
/// (sort value, id), which is unique, so pages never repeat or skip a row while new rows
/// arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub value: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.value, self.id)
    }

    /// `<value>.<id>`, each 1–18 digits (the value may be negative), as `encode` writes them.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (v, id) = s.split_once('.')?;
        let digits = |d: &str| (1..=18).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(v.strip_prefix('-').unwrap_or(v)) || !digits(id) {
            return None;
        }
        Some(Cursor {
            value: v.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub sort: SortKey,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
    /// Rows skipped (page-number paging, for scripts written against the reference API).
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub created_at: i64,
    #[serde(rename = "type")]
    pub log_type: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<i64>,
    pub group: Option<String>,
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub quota: i64,
    pub latency_ms: Option<i64>,
    pub ttfb_ms: Option<i64>,
    pub is_stream: bool,
    pub status: Option<i64>,
    pub usage_source: Option<String>,
    pub content: Option<String>,
}

const ROW_COLUMNS: &str = "id, created_at, type, request_id, user_id, username, key_id, key_name, channel_id, \
    user_group, model, upstream_model, prompt_tokens, completion_tokens, quota, latency_ms, ttfb_ms, is_stream, \
    status, usage_source, content";

fn log_row(r: &Row) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        log_type: r.get(2)?,
        request_id: r.get(3)?,
        user_id: r.get(4)?,
        username: r.get(5)?,
        key_id: r.get(6)?,
        key_name: r.get(7)?,
        channel_id: r.get(8)?,
        group: r.get(9)?,
        model: r.get(10)?,
        upstream_model: r.get(11)?,
        prompt_tokens: r.get(12)?,
        completion_tokens: r.get(13)?,
        quota: r.get(14)?,
        latency_ms: r.get(15)?,
        ttfb_ms: r.get(16)?,
        is_stream: r.get(17)?,
        status: r.get(18)?,
        usage_source: r.get(19)?,
        content: r.get(20)?,
    })
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
    }
    if let Some(r) = &f.request_id {
        w.eq("request_id", r.clone());
    }
    if let Some(s) = f.status {
        w.eq("status", s);
    }
    w
}

/// One page of rows, plus the cursor of the next page when there may be one.
pub fn search(
    conn: &Connection,
    f: &LogFilter,
    page: &PageRequest,
) -> Result<(Vec<LogRow>, Option<Cursor>), StoreError> {
    let mut w = logs_where(f, f.start, f.end);
    let col = page.sort.column();
    let (cmp, dir) = if page.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = page.after {
        w.values.push(Value::Integer(c.value));
        let v = w.values.len();
        w.values.push(Value::Integer(c.id));
        let i = w.values.len();
        w.raw(format!("({col}, id) {cmp} (?{v}, ?{i})"));
    }
    let limit = page.limit.max(1);
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM logs {} ORDER BY {col} {dir}, id {dir} LIMIT {} OFFSET {}",
        w.sql(),
        limit,
        page.offset
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows: Vec<LogRow> = stmt
        .query_map(rusqlite::params_from_iter(w.values.iter()), log_row)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() == limit {
        rows.last().map(|r| Cursor {
            value: match page.sort {
                SortKey::CreatedAt => r.created_at,
                SortKey::Quota => r.quota,
                SortKey::Latency => r.latency_ms.unwrap_or(-1),
                SortKey::PromptTokens => r.prompt_tokens,
                SortKey::CompletionTokens => r.completion_tokens,
            },
            id: r.id,
        })
    } else {
        None
    };
    Ok((rows, next))
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
