//! Counters and histograms, kept lock-free on the request path, rendered as JSON for the admin
//! stats endpoint and as Prometheus text for `/metrics`.

use parking_lot::RwLock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
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

/// Per upstream channel.
#[derive(Default)]
pub struct ChannelMetrics {
    /// From sending the request to the response headers.
    pub ttfb: Histogram,
    /// The whole call, to the last byte.
    pub latency: Histogram,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    /// Calls whose reported prompt tokens were below what the prompt's length allows.
    pub prompt_undercounts: AtomicU64,
    last_undercount: parking_lot::Mutex<Option<Undercount>>,
}

/// One call whose upstream reported fewer prompt tokens than any tokenizer could count.
#[derive(Debug, Clone, Serialize)]
pub struct Undercount {
    pub at: i64,
    pub model: String,
    pub reported_prompt_tokens: u64,
    /// The prompt's bytes / the longest token's (see `billing::tokens::MAX_TOKEN_BYTES`).
    pub least_prompt_tokens: u64,
    pub request_id: String,
}

impl ChannelMetrics {
    /// Counts an undercount and keeps it as the channel's latest; returns the count.
    pub fn record_undercount(&self, u: Undercount) -> u64 {
        *self.last_undercount.lock() = Some(u);
        self.prompt_undercounts.fetch_add(1, Relaxed) + 1
    }

    pub fn last_undercount(&self) -> Option<Undercount> {
        self.last_undercount.lock().clone()
    }
}

/// Which part of the surface a request hit, for the request counters.
#[derive(Debug, Clone, Copy)]
pub enum RouteClass {
    Relay = 0,
    Api = 1,
    Ui = 2,
    Health = 3,
}

const ROUTE_CLASSES: [&str; 4] = ["relay", "api", "ui", "health"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Holds a gauge up for its lifetime; dropping it (even on a cancelled future) takes it down.
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn new(g: &'a AtomicI64) -> Self {
        g.fetch_add(1, Relaxed);
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; 4],
    pub in_flight: AtomicI64,
    pub streams_in_flight: AtomicI64,
    pub retries: AtomicU64,
    pub quota_charged: AtomicU64,
    /// /v1 calls refused by a key or user rate limit.
    pub rate_limited: AtomicU64,
    /// /v1 calls refused because the key's or user's quota could not cover them.
    pub quota_refused: AtomicU64,
    pub db_pings_ok: AtomicU64,
    pub db_pings_failed: AtomicU64,
    pub db_ping_last_micros: AtomicU64,
    channels: RwLock<BTreeMap<i64, Arc<ChannelMetrics>>>,
}

impl Metrics {
    /// The route class of a path.
    pub fn classify(path: &str) -> RouteClass {
        if path.starts_with("/v1/") || path.starts_with("/dashboard/") {
            RouteClass::Relay
        } else if path.starts_with("/api/") {
            RouteClass::Api
        } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            RouteClass::Health
        } else {
            RouteClass::Ui
        }
    }

    pub fn count_request(&self, class: RouteClass, status: u16) {
        let s = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class as usize][s].fetch_add(1, Relaxed);
    }

    /// Channels with at least one prompt undercount: (id, count, the latest).
    pub fn undercounts(&self) -> Vec<(i64, u64, Option<Undercount>)> {
        self.channels
            .read()
            .iter()
            .map(|(id, m)| (*id, m.prompt_undercounts.load(Relaxed), m.last_undercount()))
            .filter(|(_, n, _)| *n > 0)
            .collect()
    }

    /// The channel's metrics, created on first use (a read lock on every later call).
    pub fn channel(&self, id: i64) -> Arc<ChannelMetrics> {
        if let Some(m) = self.channels.read().get(&id) {
            return m.clone();
        }
        self.channels.write().entry(id).or_default().clone()
    }

    pub fn snapshot(&self, extra: &Gauges) -> serde_json::Value {
        let mut requests = serde_json::Map::new();
        for (ci, class) in ROUTE_CLASSES.iter().enumerate() {
            let mut by_status = serde_json::Map::new();
            for (si, s) in STATUS_CLASSES.iter().enumerate() {
                by_status.insert((*s).into(), self.requests[ci][si].load(Relaxed).into());
            }
            requests.insert((*class).into(), by_status.into());
        }
        let channels: BTreeMap<String, serde_json::Value> = self
            .channels
            .read()
            .iter()
            .map(|(id, m)| {
                (
                    id.to_string(),
                    serde_json::json!({
                        "requests": m.requests.load(Relaxed),
                        "failures": m.failures.load(Relaxed),
                        "prompt_undercounts": m.prompt_undercounts.load(Relaxed),
                        "ttfb": m.ttfb.snapshot(),
                        "latency": m.latency.snapshot(),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "requests": requests,
            "in_flight": self.in_flight.load(Relaxed),
            "relays_in_flight": extra.relays_in_flight,
            "streams_in_flight": self.streams_in_flight.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "quota_charged": self.quota_charged.load(Relaxed),
            "rate_limited": self.rate_limited.load(Relaxed),
            "quota_refused": self.quota_refused.load(Relaxed),
            "db": {
                "pings_ok": self.db_pings_ok.load(Relaxed),
                "pings_failed": self.db_pings_failed.load(Relaxed),
                "last_ping_ms": self.db_ping_last_micros.load(Relaxed) as f64 / 1000.0,
                "healthy": extra.db_healthy,
                "writer_queue": extra.writer_queue,
                "commits": extra.commits,
                "commit_latency": &extra.commit_latency,
                "fold_latency": &extra.fold_latency,
            },
            "backups": {
                "ok": extra.backups_ok,
                "failed": extra.backups_failed,
                "last_ok_at": extra.last_backup_at,
            },
            "channels": channels,
            "channel_health": &extra.channel_health,
            "log_file": crate::logging::FILE_STATS.snapshot(),
            "uptime_secs": extra.uptime_secs,
        })
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self, extra: &Gauges) -> String {
        let mut o = String::with_capacity(4096);
        let _ = writeln!(
            o,
            "# HELP sluice_requests_total HTTP requests by route class and status class."
        );
        let _ = writeln!(o, "# TYPE sluice_requests_total counter");
        for (ci, class) in ROUTE_CLASSES.iter().enumerate() {
            for (si, s) in STATUS_CLASSES.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "sluice_requests_total{{route=\"{class}\",status=\"{s}\"}} {}",
                    self.requests[ci][si].load(Relaxed)
                );
            }
        }
        let gauges: [(&str, &str, i64); 4] = [
            (
                "sluice_in_flight_requests",
                "Requests being served on any route.",
                self.in_flight.load(Relaxed),
            ),
            (
                "sluice_relays_in_flight",
                "Relay tasks in progress: relayed calls (streams being drained included) and the tasks they spawn (an automatic channel disable, a token-audit count).",
                extra.relays_in_flight as i64,
            ),
            (
                "sluice_streams_in_flight",
                "SSE streams in progress.",
                self.streams_in_flight.load(Relaxed),
            ),
            (
                "sluice_writer_queue_depth",
                "Writes waiting for the database writer.",
                extra.writer_queue as i64,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters: [(&str, &str, u64); 7] = [
            (
                "sluice_retries_total",
                "Attempts moved to another channel.",
                self.retries.load(Relaxed),
            ),
            (
                "sluice_quota_charged_total",
                "Quota units charged.",
                self.quota_charged.load(Relaxed),
            ),
            (
                "sluice_rate_limited_total",
                "Calls refused by a key or user rate limit.",
                self.rate_limited.load(Relaxed),
            ),
            (
                "sluice_quota_refused_total",
                "Calls refused because the key's or user's quota could not cover them (429 insufficient_quota).",
                self.quota_refused.load(Relaxed),
            ),
            (
                "sluice_db_pings_ok_total",
                "Successful database health pings.",
                self.db_pings_ok.load(Relaxed),
            ),
            (
                "sluice_db_pings_failed_total",
                "Failed database health pings.",
                self.db_pings_failed.load(Relaxed),
            ),
            (
                "sluice_db_commits_total",
                "Write transactions committed.",
                extra.commits,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP sluice_db_healthy 1 when the last database ping (a read and a committed write) succeeded and no commit failed since.\n# TYPE sluice_db_healthy gauge\nsluice_db_healthy {}",
            u8::from(extra.db_healthy)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_backups_total Backups made (scheduled and on demand; hot copies excluded) by result.\n# TYPE sluice_backups_total counter\nsluice_backups_total{{result=\"ok\"}} {}\nsluice_backups_total{{result=\"failed\"}} {}",
            extra.backups_ok, extra.backups_failed
        );
        let _ = writeln!(
            o,
            "# HELP sluice_backup_last_success_timestamp_seconds Start time of the last good backup since start (0 = none yet).\n# TYPE sluice_backup_last_success_timestamp_seconds gauge\nsluice_backup_last_success_timestamp_seconds {}",
            extra.last_backup_at
        );
        let _ = writeln!(
            o,
            "# HELP sluice_uptime_seconds Seconds since start.\n# TYPE sluice_uptime_seconds gauge\nsluice_uptime_seconds {}",
            extra.uptime_secs
        );
        extra.channel_health.write_prometheus(&mut o);
        crate::logging::FILE_STATS.write_prometheus(&mut o);
        write_histogram(
            &mut o,
            "sluice_db_commit_seconds",
            "Database write transaction latency.",
            "",
            &extra.commit_latency,
        );
        write_histogram(
            &mut o,
            "sluice_journal_fold_seconds",
            "How long each fold of the log journal into the logs and rollups held the database writer.",
            "",
            &extra.fold_latency,
        );
        let channels = self.channels.read();
        let _ = writeln!(
            o,
            "# HELP sluice_upstream_requests_total Upstream attempts per channel.\n# TYPE sluice_upstream_requests_total counter"
        );
        for (id, m) in channels.iter() {
            let _ = writeln!(
                o,
                "sluice_upstream_requests_total{{channel=\"{id}\"}} {}",
                m.requests.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP sluice_upstream_failures_total Failed upstream attempts per channel.\n# TYPE sluice_upstream_failures_total counter"
        );
        for (id, m) in channels.iter() {
            let _ = writeln!(
                o,
                "sluice_upstream_failures_total{{channel=\"{id}\"}} {}",
                m.failures.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP sluice_upstream_prompt_undercounts_total Calls per channel whose upstream reported fewer prompt tokens than the prompt's length allows (see /api/anomalies).\n# TYPE sluice_upstream_prompt_undercounts_total counter"
        );
        for (id, m) in channels.iter() {
            let _ = writeln!(
                o,
                "sluice_upstream_prompt_undercounts_total{{channel=\"{id}\"}} {}",
                m.prompt_undercounts.load(Relaxed)
            );
        }
        let mut first = true;
        for (id, m) in channels.iter() {
            let help = if first {
                "Upstream time to first byte (response headers)."
            } else {
                ""
            };
            write_histogram(
                &mut o,
                "sluice_upstream_ttfb_seconds",
                help,
                &format!("channel=\"{id}\""),
                &m.ttfb.snapshot(),
            );
            first = false;
        }
        let mut first = true;
        for (id, m) in channels.iter() {
            let help = if first {
                "Whole upstream call latency."
            } else {
                ""
            };
            write_histogram(
                &mut o,
                "sluice_upstream_latency_seconds",
                help,
                &format!("channel=\"{id}\""),
                &m.latency.snapshot(),
            );
            first = false;
        }
        o
    }
}

/// Values read at render time from outside the counters.
pub struct Gauges {
    /// Relay tasks and the tasks they spawn ([`crate::tasks::InFlight`]).
    pub relays_in_flight: u64,
    pub writer_queue: usize,
    pub commits: u64,
    pub commit_latency: HistogramSnapshot,
    pub fold_latency: HistogramSnapshot,
    pub db_healthy: bool,
    pub backups_ok: u64,
    pub backups_failed: u64,
    /// Unix seconds of the last backup that passed its check since start (0 = none).
    pub last_backup_at: i64,
    pub uptime_secs: u64,
    pub channel_health: HealthGauges,
}

fn write_histogram(o: &mut String, name: &str, help: &str, labels: &str, h: &HistogramSnapshot) {
    if !help.is_empty() {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
    }
    let sep = if labels.is_empty() { "" } else { "," };
    for (le, c) in &h.buckets {
        let le = if le == "+Inf" {
            le.clone()
        } else {
            format!("{}", le.parse::<f64>().unwrap_or(0.0) / 1000.0)
        };
        let _ = writeln!(o, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {c}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(o, "{name}_sum{braces} {}", h.sum_ms / 1000.0);
    let _ = writeln!(o, "{name}_count{braces} {}", h.count);
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

    #[test]
    fn prometheus_text_has_types_and_labels() {
        let m = Metrics::default();
        m.count_request(RouteClass::Relay, 200);
        m.count_request(RouteClass::Relay, 502);
        m.channel(7).ttfb.observe(Duration::from_millis(12));
        let g = Gauges {
            relays_in_flight: 0,
            writer_queue: 0,
            commits: 4,
            commit_latency: Histogram::default().snapshot(),
            fold_latency: Histogram::default().snapshot(),
            db_healthy: true,
            backups_ok: 2,
            backups_failed: 1,
            last_backup_at: 1_795_000_000,
            uptime_secs: 9,
            channel_health: HealthGauges {
                auto_disabled: 2,
                ..Default::default()
            },
        };
        let text = m.prometheus(&g);
        assert!(text.contains("sluice_requests_total{route=\"relay\",status=\"2xx\"} 1"));
        assert!(text.contains("sluice_requests_total{route=\"relay\",status=\"5xx\"} 1"));
        assert!(text.contains("sluice_upstream_ttfb_seconds_bucket{channel=\"7\",le=\"0.025\"} 1"));
        assert!(text.contains("# TYPE sluice_db_commit_seconds histogram"));
        assert!(text.contains("sluice_db_healthy 1"));
        assert!(text.contains("sluice_backups_total{result=\"failed\"} 1"));
        assert!(text.contains("sluice_backup_last_success_timestamp_seconds 1795000000"));
        assert!(text.contains("sluice_channels{status=\"auto_disabled\"} 2"));
        // every sample line is "name{labels} value" or "name value"
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.rsplit(' ').count(), 2, "{line}");
        }
    }
}

/// Channel health numbers for `/api/stats` and `/metrics` (filled by `channel_health`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct HealthGauges {
    /// Channels by status, from the catalog.
    pub enabled: u64,
    pub disabled: u64,
    pub auto_disabled: u64,
    pub tests_passed: u64,
    pub tests_failed: u64,
    /// Automatic disables and re-enables since start.
    pub auto_disabled_total: u64,
    pub auto_enabled_total: u64,
}

impl HealthGauges {
    /// Prometheus text lines.
    pub fn write_prometheus(&self, o: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            o,
            "# HELP sluice_channels Channels by status (enabled, disabled by an admin, auto_disabled by the health checks).\n# TYPE sluice_channels gauge\nsluice_channels{{status=\"enabled\"}} {}\nsluice_channels{{status=\"disabled\"}} {}\nsluice_channels{{status=\"auto_disabled\"}} {}",
            self.enabled, self.disabled, self.auto_disabled
        );
        let _ = writeln!(
            o,
            "# HELP sluice_channel_tests_total Channel tests (manual and scheduled) by result.\n# TYPE sluice_channel_tests_total counter\nsluice_channel_tests_total{{result=\"ok\"}} {}\nsluice_channel_tests_total{{result=\"error\"}} {}",
            self.tests_passed, self.tests_failed
        );
        let _ = writeln!(
            o,
            "# HELP sluice_channel_status_changes_total Channels turned off or back on by the health checks.\n# TYPE sluice_channel_status_changes_total counter\nsluice_channel_status_changes_total{{to=\"auto_disabled\"}} {}\nsluice_channel_status_changes_total{{to=\"enabled\"}} {}",
            self.auto_disabled_total, self.auto_enabled_total
        );
    }
}
