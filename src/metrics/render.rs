//! The counters read out: JSON for the admin stats endpoint, Prometheus text for `/metrics`.

use super::{Gauges, HealthGauges, HistogramSnapshot, Metrics, ROUTE_CLASSES, STATUS_CLASSES};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

impl Metrics {
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
                "wal_turn_latency": &extra.wal_turn_latency,
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
        write_histogram(
            &mut o,
            "sluice_wal_turn_seconds",
            "How long each of the database writer's own WAL checkpoints (the turn that lets the WAL start over) held it.",
            "",
            &extra.wal_turn_latency,
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

impl HealthGauges {
    /// Prometheus text lines.
    pub fn write_prometheus(&self, o: &mut String) {
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
    use super::super::*;
    use std::time::Duration;

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
            wal_turn_latency: Histogram::default().snapshot(),
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
