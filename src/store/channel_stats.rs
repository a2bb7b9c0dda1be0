//! Per-channel requests, errors and time-to-first-byte / latency percentiles over a range, from
//! the log rows (consume and error rows that reached a channel).

use super::StoreError;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelStat {
    pub channel_id: i64,
    /// Filled in by the caller from the channel list; `None` for a deleted channel.
    pub name: Option<String>,
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub ttfb_p50_ms: Option<i64>,
    pub ttfb_p99_ms: Option<i64>,
    pub latency_p50_ms: Option<i64>,
    pub latency_p99_ms: Option<i64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[derive(Default)]
struct Acc {
    requests: i64,
    errors: i64,
    ttfb: Vec<i64>,
    latency: Vec<i64>,
}

/// Every channel with calls in [start, end), by id.
pub fn over(conn: &Connection, start: i64, end: i64) -> Result<Vec<ChannelStat>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel_id, type, ttfb_ms, latency_ms FROM logs
          WHERE type IN (2, 5) AND created_at >= ?1 AND created_at < ?2 AND channel_id IS NOT NULL",
    )?;
    let mut by: BTreeMap<i64, Acc> = BTreeMap::new();
    let mut rows = stmt.query([start, end])?;
    while let Some(r) = rows.next()? {
        let a = by.entry(r.get(0)?).or_default();
        a.requests += 1;
        if r.get::<_, i64>(1)? == super::logs::LogType::Error as i64 {
            a.errors += 1;
        }
        if let Some(t) = r.get::<_, Option<i64>>(2)? {
            a.ttfb.push(t);
        }
        if let Some(l) = r.get::<_, Option<i64>>(3)? {
            a.latency.push(l);
        }
    }
    Ok(by
        .into_iter()
        .map(|(id, mut a)| {
            a.ttfb.sort_unstable();
            a.latency.sort_unstable();
            ChannelStat {
                channel_id: id,
                name: None,
                requests: a.requests,
                errors: a.errors,
                error_rate: if a.requests == 0 {
                    0.0
                } else {
                    a.errors as f64 / a.requests as f64
                },
                ttfb_p50_ms: percentile(&a.ttfb, 50.0),
                ttfb_p99_ms: percentile(&a.ttfb, 99.0),
                latency_p50_ms: percentile(&a.latency, 50.0),
                latency_p99_ms: percentile(&a.latency, 99.0),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
