//! Usage series: requests, errors, tokens and quota per hour or per day, split by one
//! dimension, over exactly [start, end).
//!
//! A range is read the way totals are (see [`super::log_query::totals`]): whole UTC days from
//! the daily rollups, whole hours from the hourly rollups, the ragged seconds at either end
//! from the rows. So the buckets of a series add up to the totals of the same range.
//!
//! Day buckets start at midnight in a time zone. The rollups hold whole UTC hours, so a zone
//! whose offset is a whole number of hours is exact (daylight saving included); for a zone
//! with a half- or quarter-hour offset each hour goes to the local day in which it ends, so a
//! day starts at the UTC hour holding local midnight (`Zone::exact` says which).

use super::StoreError;
use super::log_query::{
    Bucket, DAY, HOUR, LogFilter, ROLLED_UP, Rollup, SplitBy, UsagePoint, ceil_to, floor_to,
    logs_where, rollup_where,
};
pub use super::zone::Zone;
use super::zone::{Days, constant_hour_offset};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What a series point sums, keyed by (bucket start, split value).
type Sums = BTreeMap<(i64, String), UsagePoint>;

fn add(sums: &mut Sums, time: i64, of: String, p: &UsagePoint) {
    let e = sums
        .entry((time, of.clone()))
        .or_insert_with(|| UsagePoint {
            time,
            of: Some(of),
            requests: 0,
            errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            quota: 0,
        });
    e.requests += p.requests;
    e.errors += p.errors;
    e.prompt_tokens += p.prompt_tokens;
    e.completion_tokens += p.completion_tokens;
    e.quota += p.quota;
}

/// The split column as the rows hold it (NULL where the rollups hold 0 or '').
fn row_column(split: SplitBy) -> &'static str {
    match split {
        SplitBy::Nothing => "''",
        SplitBy::Model => "COALESCE(model, '')",
        SplitBy::User => "CAST(COALESCE(user_id, 0) AS TEXT)",
        SplitBy::Key => "CAST(COALESCE(key_id, 0) AS TEXT)",
        SplitBy::Channel => "CAST(COALESCE(channel_id, 0) AS TEXT)",
    }
}

fn point(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, UsagePoint)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        UsagePoint {
            time: r.get(0)?,
            of: None,
            requests: r.get(2)?,
            errors: r.get(3)?,
            prompt_tokens: r.get(4)?,
            completion_tokens: r.get(5)?,
            quota: r.get(6)?,
        },
    ))
}

/// The split column as the rollups are grouped by it. The model is wrapped in an expression:
/// grouped by the bare column, SQLite walks the whole `(model, hour)` index to group without a
/// sort, reading every hour ever kept instead of the range (88 ms against 4 ms at 300k rows).
fn rollup_column(split: SplitBy) -> &'static str {
    match split {
        SplitBy::Model => "(model || '')",
        other => other.column(),
    }
}

/// Rows in [start, end), summed per UTC hour.
fn from_rows(
    conn: &Connection,
    f: &LogFilter,
    split: SplitBy,
    start: i64,
    end: i64,
) -> Result<Vec<(i64, String, UsagePoint)>, StoreError> {
    let rows_filter = LogFilter {
        types: ROLLED_UP.to_vec(),
        ..f.clone()
    };
    let w = logs_where(&rows_filter, Some(start), Some(end));
    let sql = format!(
        "SELECT created_at - created_at % 3600 AS t, {of} AS o, COUNT(*),
                SUM(CASE WHEN type = {err} THEN 1 ELSE 0 END),
                SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
           FROM logs {} GROUP BY t, o",
        w.sql(),
        of = row_column(split),
        err = super::logs::LogType::Error as i64,
    );
    let out = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(w.values.iter()), point)?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Rollup periods starting in [from, to), summed per period.
fn from_rollup(
    conn: &Connection,
    f: &LogFilter,
    r: Rollup,
    split: SplitBy,
    from: i64,
    to: Option<i64>,
) -> Result<Vec<(i64, String, UsagePoint)>, StoreError> {
    let w = rollup_where(f, r, &ROLLED_UP, Some(from), to);
    let sql = format!(
        "SELECT {t} AS t, {of} AS o, SUM(requests),
                SUM(CASE WHEN type = {err} THEN requests ELSE 0 END),
                SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
           FROM {table} {} GROUP BY t, o",
        w.sql(),
        t = r.period(),
        of = rollup_column(split),
        table = r.table(),
        err = super::logs::LogType::Error as i64,
    );
    let out = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(w.values.iter()), point)?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Hourly rollup periods in [from, to) summed per local day of a zone whose offset is `off`
/// seconds (a whole number of hours) throughout: the day each hour falls in is computed by
/// SQLite, so a month of hours split by key comes back as ~30 × keys rows, not ~720 × keys.
fn from_hourly_by_local_day(
    conn: &Connection,
    f: &LogFilter,
    split: SplitBy,
    from: i64,
    to: Option<i64>,
    off: i64,
) -> Result<Vec<(i64, String, UsagePoint)>, StoreError> {
    let w = rollup_where(f, Rollup::Hourly, &ROLLED_UP, Some(from), to);
    // Bound parameters follow the filter's; the offset is an integer we computed, not input.
    let sql = format!(
        "SELECT (hour + {off}) - (hour + {off}) % {DAY} - {off} AS t, {of} AS o, SUM(requests),
                SUM(CASE WHEN type = {err} THEN requests ELSE 0 END),
                SUM(prompt_tokens), SUM(completion_tokens), SUM(quota)
           FROM usage_hourly {} GROUP BY t, o",
        w.sql(),
        of = rollup_column(split),
        err = super::logs::LogType::Error as i64,
    );
    let out = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(w.values.iter()), point)?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Day buckets over the whole UTC days [ds, de) (`de` None = up to now) for a zone whose offset
/// `off` is a constant whole number of hours: each UTC day from the daily rollups, labelled with
/// the local day most of its hours fall in; then the few hours that belong to the neighbouring
/// local day (at most 12 a day, e.g. 8 for UTC+8) are read from the hourly rollups and moved
/// across. A month split by key reads ~30 × 8 hours of hourly rows instead of 720.
fn local_days_from_daily(
    conn: &Connection,
    f: &LogFilter,
    split: SplitBy,
    ds: i64,
    de: Option<i64>,
    off: i64,
) -> Result<Vec<(i64, String, UsagePoint)>, StoreError> {
    // The local day of the hour starting `i` hours into a UTC day, relative to that day.
    let local = |i: i64| floor_to(i * HOUR + off, DAY) - off;
    let day_label = local(12);
    let mut out: Vec<(i64, String, UsagePoint)> =
        from_rollup(conn, f, Rollup::Daily, split, ds, de)?
            .into_iter()
            .map(|(t, o, p)| (t + day_label, o, p))
            .collect();
    let moved: Vec<i64> = (0..24).filter(|&i| local(i) != day_label).collect();
    let (Some(&first), Some(&last)) = (moved.first(), moved.last()) else {
        return Ok(out);
    };
    let until = de.unwrap_or_else(|| floor_to(crate::util::now_secs(), DAY) + DAY);
    let mut u = ds;
    while u < until {
        // Summed per local day by SQLite: all of a day's moved hours go to one neighbour.
        let moved_hours = from_hourly_by_local_day(
            conn,
            f,
            split,
            u + first * HOUR,
            Some(u + (last + 1) * HOUR),
            off,
        )?;
        for (t, o, p) in moved_hours {
            let negated = UsagePoint {
                time: 0,
                of: None,
                requests: -p.requests,
                errors: -p.errors,
                prompt_tokens: -p.prompt_tokens,
                completion_tokens: -p.completion_tokens,
                quota: -p.quota,
            };
            out.push((u + day_label, o.clone(), negated));
            out.push((t, o, p));
        }
        u += DAY;
    }
    Ok(out)
}

/// The series over [start, end) (end `None` = up to now), bucketed and split.
pub fn series(
    conn: &Connection,
    f: &LogFilter,
    start: i64,
    end: Option<i64>,
    bucket: Bucket,
    split: SplitBy,
    zone: &Zone,
) -> Result<Vec<UsagePoint>, StoreError> {
    let mut parts: Vec<(i64, String, UsagePoint)> = Vec::new();
    // UTC days straight from the daily rollups (already day buckets).
    let mut utc_days: Vec<(i64, String, UsagePoint)> = Vec::new();
    let hs = ceil_to(start, HOUR);
    let he = end.map(|e| floor_to(e, HOUR));
    match he {
        Some(he) if hs >= he => {
            if let Some(e) = end.filter(|e| *e > start) {
                parts.extend(from_rows(conn, f, split, start, e)?);
            }
        }
        _ => {
            if start < hs {
                parts.extend(from_rows(conn, f, split, start, hs)?);
            }
            if let (Some(he), Some(e)) = (he, end)
                && he < e
            {
                parts.extend(from_rows(conn, f, split, he, e)?);
            }
            if bucket == Bucket::Day && *zone == Zone::Utc {
                let ds = ceil_to(hs, DAY);
                let de = he.map(|h| floor_to(h, DAY));
                match de {
                    Some(de) if ds >= de => {
                        parts.extend(from_rollup(conn, f, Rollup::Hourly, split, hs, he)?);
                    }
                    _ => {
                        utc_days.extend(from_rollup(conn, f, Rollup::Daily, split, ds, de)?);
                        if hs < ds {
                            parts.extend(from_rollup(
                                conn,
                                f,
                                Rollup::Hourly,
                                split,
                                hs,
                                Some(ds),
                            )?);
                        }
                        if let (Some(de), Some(he)) = (de, he)
                            && de < he
                        {
                            parts.extend(from_rollup(
                                conn,
                                f,
                                Rollup::Hourly,
                                split,
                                de,
                                Some(he),
                            )?);
                        }
                    }
                }
            } else if let Some(off) = (bucket == Bucket::Day)
                .then(|| constant_hour_offset(zone, hs, he.unwrap_or_else(crate::util::now_secs)))
                .flatten()
            {
                // Whole UTC days through the daily rollups; the hours before the first and
                // after the last whole day are cut into local days by SQLite.
                let ds = ceil_to(hs, DAY);
                let de = he.map(|h| floor_to(h, DAY));
                match de {
                    Some(de) if ds >= de => {
                        utc_days.extend(from_hourly_by_local_day(conn, f, split, hs, he, off)?);
                    }
                    _ => {
                        if hs < ds {
                            utc_days.extend(from_hourly_by_local_day(
                                conn,
                                f,
                                split,
                                hs,
                                Some(ds),
                                off,
                            )?);
                        }
                        utc_days.extend(local_days_from_daily(conn, f, split, ds, de, off)?);
                        if let (Some(de), Some(he)) = (de, he)
                            && de < he
                        {
                            utc_days.extend(from_hourly_by_local_day(
                                conn,
                                f,
                                split,
                                de,
                                Some(he),
                                off,
                            )?);
                        }
                    }
                }
            } else {
                parts.extend(from_rollup(conn, f, Rollup::Hourly, split, hs, he)?);
            }
        }
    }
    let mut sums = Sums::new();
    let mut days = Days::new(zone);
    for (t, of, p) in &parts {
        let b = match bucket {
            Bucket::Hour => *t,
            Bucket::Day => days.of(*t),
        };
        add(&mut sums, b, of.clone(), p);
    }
    for (t, of, p) in &utc_days {
        add(&mut sums, *t, of.clone(), p);
    }
    Ok(sums
        .into_values()
        // Hours moved to a neighbouring local day can leave a day with nothing in it.
        .filter(|p| {
            p.requests != 0
                || p.errors != 0
                || p.prompt_tokens != 0
                || p.completion_tokens != 0
                || p.quota != 0
        })
        .map(|mut p| {
            if split == SplitBy::Nothing {
                p.of = None;
            }
            p
        })
        .collect())
}
