//! Counters and histograms, kept lock-free on the request path, rendered as JSON for the admin
//! stats endpoint and as Prometheus text for `/metrics`.
//!
//! - [`histogram`]: the fixed-bucket duration histogram;
//! - `render`: the JSON snapshot and the Prometheus text.

use parking_lot::RwLock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

pub mod histogram;
mod render;

pub use histogram::{Histogram, HistogramSnapshot};

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
}

/// Values read at render time from outside the counters.
pub struct Gauges {
    /// Relay tasks and the tasks they spawn ([`crate::tasks::InFlight`]).
    pub relays_in_flight: u64,
    pub writer_queue: usize,
    pub commits: u64,
    pub commit_latency: HistogramSnapshot,
    pub fold_latency: HistogramSnapshot,
    pub wal_turn_latency: HistogramSnapshot,
    pub db_healthy: bool,
    pub backups_ok: u64,
    pub backups_failed: u64,
    /// Unix seconds of the last backup that passed its check since start (0 = none).
    pub last_backup_at: i64,
    pub uptime_secs: u64,
    pub channel_health: HealthGauges,
}

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
