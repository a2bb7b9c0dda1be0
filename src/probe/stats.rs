//! Pure statistics over latencies in milliseconds: mean, sample standard deviation and
//! nearest-rank percentiles.

use serde::Serialize;

/// The summary of one set of latencies (all in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// How many values were summarised.
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (divides by n − 1; 0 for a single value).
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty set. Non-finite values are ignored.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            count: sorted.len(),
            mean: mean(&sorted)?,
            stddev: stddev(&sorted)?,
            min: *sorted.first()?,
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }

    /// Every value rounded to `decimals` places (for printing as JSON).
    pub fn rounded(self, decimals: i32) -> Summary {
        let r = |v: f64| round(v, decimals);
        Summary {
            count: self.count,
            mean: r(self.mean),
            stddev: r(self.stddev),
            min: r(self.min),
            p50: r(self.p50),
            p90: r(self.p90),
            p99: r(self.p99),
            max: r(self.max),
        }
    }
}

/// The arithmetic mean; `None` for an empty set.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// The sample standard deviation (Bessel's correction, n − 1); 0 for one value, `None` for none.
pub fn stddev(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    if values.len() < 2 {
        return Some(0.0);
    }
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((squares / (values.len() - 1) as f64).sqrt())
}

/// The nearest-rank percentile `p` (0–100) of `sorted` (ascending): the value at rank
/// ⌈p/100 · n⌉ (at least 1). `None` for an empty set. p = 0 gives the minimum, p = 100 the maximum.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    // p·n first, then / 100: exact for integral p and n (0.9 · 10 is not exactly 9).
    let rank = (p * n as f64 / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// `v` rounded to `decimals` places.
pub fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn empty_set_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(mean(&[]), None);
        assert_eq!(stddev(&[]), None);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn one_value() {
        let s = Summary::of(&[7.5]).unwrap();
        assert_eq!(s.count, 1);
        assert_eq!(s.mean, 7.5);
        assert_eq!(s.stddev, 0.0);
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.max),
            (7.5, 7.5, 7.5, 7.5, 7.5)
        );
    }

    #[test]
    fn mean_and_sample_stddev() {
        // mean 3, squares 4+1+0+1+4 = 10, / (5−1) = 2.5
        let xs = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert!(close(mean(&xs).unwrap(), 3.0));
        assert!(close(stddev(&xs).unwrap(), 2.5f64.sqrt()));
        // the classic population-σ-is-2 set: sample σ = sqrt(32/7)
        let ys = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&ys).unwrap(), 5.0));
        assert!(close(stddev(&ys).unwrap(), (32.0f64 / 7.0).sqrt()));
    }

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=10: p50 → rank 5, p90 → rank 9, p99 → rank ⌈9.9⌉ = 10
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(5.0));
        assert_eq!(percentile(&xs, 90.0), Some(9.0));
        assert_eq!(percentile(&xs, 99.0), Some(10.0));
        assert_eq!(percentile(&xs, 0.0), Some(1.0));
        assert_eq!(percentile(&xs, 100.0), Some(10.0));
        assert_eq!(percentile(&xs, 10.0), Some(1.0));
        assert_eq!(percentile(&xs, 11.0), Some(2.0));
        // 1..=100: p99 is exactly rank 99
        let hs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hs, 99.0), Some(99.0));
        assert_eq!(percentile(&hs, 90.0), Some(90.0));
        assert_eq!(percentile(&hs, 50.0), Some(50.0));
        // the textbook example: 15 20 35 40 50 → p30 = 20, p40 = 20, p50 = 35, p100 = 50
        let t = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&t, 30.0), Some(20.0));
        assert_eq!(percentile(&t, 40.0), Some(20.0));
        assert_eq!(percentile(&t, 50.0), Some(35.0));
        assert_eq!(percentile(&t, 100.0), Some(50.0));
    }

    #[test]
    fn summary_sorts_its_input() {
        let s = Summary::of(&[30.0, 10.0, 20.0, 40.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.min, 10.0);
        assert_eq!(s.max, 40.0);
        assert_eq!(s.p50, 20.0);
        assert_eq!(s.p90, 40.0);
        assert!(close(s.mean, 25.0));
        let r = Summary::of(&[1.23456, 2.0]).unwrap().rounded(2);
        assert_eq!(r.min, 1.23);
    }
}
