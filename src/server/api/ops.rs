//! Health, readiness, stats and metrics.

use super::super::http::{Resp, full, json, with_type};
use super::super::state::AppState;
use http::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;

/// Liveness: the process answers.
pub fn healthz() -> Resp {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Readiness: migrations ran (they do before the listener opens), the database answers, and
/// the server is not draining. Load balancers and `sluice healthcheck` use it.
pub fn readyz(state: &AppState) -> Resp {
    let db = state.db_healthy.load(Ordering::Relaxed);
    let draining = state.draining.load(Ordering::Relaxed);
    let ready = db && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &json!({"ready": ready, "database": if db { "ok" } else { "failing" }, "draining": draining}),
    )
}

/// The full stats for admins, as JSON.
pub fn stats(state: &AppState) -> Resp {
    json(StatusCode::OK, &state.metrics.snapshot(&state.gauges()))
}

/// Prometheus text format.
pub fn metrics(state: &AppState) -> Resp {
    with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        full(state.metrics.prometheus(&state.gauges())),
    )
}
