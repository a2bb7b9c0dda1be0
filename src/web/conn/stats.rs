//! What the connections report: `/api/stats` JSON and Prometheus text.

use super::Connections;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was refused or closed by sluice, for the metrics.
#[derive(Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub refused_per_address: AtomicU64,
    pub refused_full: AtomicU64,
    pub evicted: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
}

impl Connections {
    /// The connection metrics as JSON, for `/api/stats`.
    pub fn snapshot(&self) -> serde_json::Value {
        let s = &self.stats;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "open": self.open(),
            "max": self.limits.max,
            "max_per_address": self.limits.per_address,
            "accepted": n(&s.accepted),
            "refused": {"per_address": n(&s.refused_per_address), "full": n(&s.refused_full)},
            "closed": {
                "header_timeout": n(&s.header_timeouts),
                "idle_timeout": n(&s.idle_timeouts),
                "evicted": n(&s.evicted),
            },
            "accept_errors": n(&s.accept_errors),
        })
    }

    /// The connection metrics in Prometheus text format.
    pub fn write_prometheus(&self, o: &mut String) {
        use std::fmt::Write as _;
        let s = &self.stats;
        let _ = writeln!(
            o,
            "# HELP sluice_connections_open Client connections open.\n# TYPE sluice_connections_open gauge\nsluice_connections_open {}",
            self.open()
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_max The connection cap in force (max_connections, lowered to fit the open-file limit).\n# TYPE sluice_connections_max gauge\nsluice_connections_max {}",
            self.limits.max
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_accepted_total Client connections accepted.\n# TYPE sluice_connections_accepted_total counter\nsluice_connections_accepted_total {}",
            s.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_refused_total Connections refused at once, by reason.\n# TYPE sluice_connections_refused_total counter\nsluice_connections_refused_total{{reason=\"per_address\"}} {}\nsluice_connections_refused_total{{reason=\"full\"}} {}",
            s.refused_per_address.load(Ordering::Relaxed),
            s.refused_full.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_connections_closed_total Connections sluice closed, by reason.\n# TYPE sluice_connections_closed_total counter\nsluice_connections_closed_total{{reason=\"header_timeout\"}} {}\nsluice_connections_closed_total{{reason=\"idle_timeout\"}} {}\nsluice_connections_closed_total{{reason=\"evicted\"}} {}",
            s.header_timeouts.load(Ordering::Relaxed),
            s.idle_timeouts.load(Ordering::Relaxed),
            s.evicted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_accept_errors_total Failed accepts (EMFILE and friends).\n# TYPE sluice_accept_errors_total counter\nsluice_accept_errors_total {}",
            s.accept_errors.load(Ordering::Relaxed)
        );
    }
}
