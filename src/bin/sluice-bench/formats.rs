//! The format axis under load: "stream, Anthropic in → OpenAI out" — `POST /v1/messages`
//! through sluice to the mock's OpenAI chat stream, converted event by event — beside the native
//! stream row at the same connection counts, so the CPU per request the conversion adds over
//! passthrough (a budget of 20%, docs/performance.md) can be read off the table.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use crate::load::{self, Target};
use crate::report::Scenario;
use crate::runs::{self, Targets};

/// The Messages request the row sends (the native rows' chat request, in Anthropic's shape).
pub fn request_body() -> serde_json::Value {
    json!({
        "model": "gpt-4o-mini",
        "max_tokens": 16,
        "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
}

/// The rows, one per connection count, measured through sluice only (no direct or nginx
/// counterpart speaks Anthropic's format).
pub async fn anthropic_rows(
    t: &Targets,
    authorization: &HeaderValue,
    connections: &[usize],
    warmup: Duration,
    duration: Duration,
) -> Vec<Scenario> {
    let Some((native, pid)) = &t.sluice else {
        return Vec::new();
    };
    let target = Arc::new(Target {
        addr: native.addr,
        path: "/v1/messages".into(),
        authorization: authorization.clone(),
    });
    let body = Bytes::from(request_body().to_string());
    let mut rows = Vec::new();
    for &n in connections {
        eprintln!("stream, Anthropic in → OpenAI out, {n} connections: through sluice…");
        let shape = runs::Shape::Closed(load::Spec {
            connections: n,
            stream: true,
            warmup,
            duration,
            slow: None,
        });
        let run = runs::measure(t, &target, *pid, &body, &shape).await;
        rows.push(Scenario {
            stream: true,
            anthropic_in: true,
            connections: n,
            direct: None,
            nginx: None,
            sluice: Some(run),
            added_p50_ms: None,
            added_p99_ms: None,
            sluice_peak_rss_mib: pid
                .and_then(crate::procs::peak_rss_kib)
                .map(|k| k as f64 / 1024.0),
        });
    }
    rows
}
