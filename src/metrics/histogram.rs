//! A fixed-bucket histogram of durations: lock-free to observe, read as a cumulative snapshot.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf). The four
/// below 5 ms are for the database's own steps (a commit, a journal fold), which take well
/// under a millisecond when all is well.
const BUCKETS_US: [u64; 18] = [
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];

/// A fixed-bucket histogram of durations.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = BUCKETS_US
            .iter()
            .map(|b| (*b as f64 / 1000.0).to_string())
            .chain(std::iter::once("+Inf".to_string()))
            .zip(self.buckets.iter())
            .map(|(le, c)| {
                cumulative += c.load(Relaxed);
                (le, cumulative)
            })
            .collect();
        HistogramSnapshot {
            count: self.count.load(Relaxed),
            sum_ms: self.sum_micros.load(Relaxed) as f64 / 1000.0,
            buckets,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum_ms: f64,
    /// (upper bound in ms, cumulative count), Prometheus-style.
    pub buckets: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(500));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[3], ("2.5".to_string(), 0));
        assert_eq!(s.buckets[4], ("5".to_string(), 1));
        assert_eq!(s.buckets[7], ("50".to_string(), 2));
        assert_eq!(s.buckets.last().map(|b| b.1), Some(3));
    }
}
