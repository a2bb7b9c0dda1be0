//! Health, readiness, stats and metrics over real HTTP.

use crate::common::{TestServer, send};
use serde_json::json;

#[tokio::test]
async fn health_and_readiness() {
    let t = TestServer::start().await;
    let r = send("GET", &t.url("/healthz"), &[], None).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = send("GET", &t.url("/readyz"), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["database"], "ok");
    assert!(
        t.state
            .metrics
            .db_pings_ok
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // A dead writer fails the next ping: readiness and the public status say so.
    t.state.store.writer.shutdown().await.unwrap();
    assert!(!sluice::health::check(&t.state).await);
    let r = send("GET", &t.url("/readyz"), &[], None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["database"], "failing");
    let r = send("GET", &t.url("/api/status"), &[], None).await;
    assert_eq!(r.json()["healthy"], false);
    assert_eq!(
        t.state
            .metrics
            .db_pings_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn stats_and_metrics_count_what_happened() {
    let t = TestServer::start().await;
    let ch = t.channel(&["gpt-x"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    assert_eq!(t.chat(&key, "gpt-x", 3, false).await.status, 200);
    assert_eq!(t.chat(&key, "gpt-x", 3, true).await.status, 200);
    assert_eq!(t.chat("sk-bad", "gpt-x", 3, false).await.status, 401);

    let v = t.get("/api/stats").await;
    assert_eq!(v["requests"]["relay"]["2xx"], 2);
    assert_eq!(v["requests"]["relay"]["4xx"], 1);
    assert_eq!(v["quota_charged"], 20, "7 + 3 twice at ratio 1");
    let c = &v["channels"][ch.to_string()];
    assert_eq!(c["requests"], 2);
    assert_eq!(c["ttfb"]["count"], 2);
    assert_eq!(c["latency"]["count"], 2);
    assert_eq!(v["db"]["healthy"], true);
    assert!(v["db"]["commits"].as_u64().unwrap() >= 2);

    // /metrics needs an admin by default
    let r = send("GET", &t.url("/metrics"), &[], None).await;
    assert_eq!(r.status, 401);
    let r = t.api("GET", "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text();
    assert!(
        text.contains("sluice_requests_total{route=\"relay\",status=\"2xx\"} 2"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "sluice_upstream_ttfb_seconds_count{{channel=\"{ch}\"}} 2"
    )));
    assert!(text.contains("sluice_quota_charged_total 20"));
    // a plain user gets 403
    t.post(
        "/api/users",
        json!({"username": "u", "password": "password-123"}),
    )
    .await;
    let token = t.login_token("u", "password-123").await;
    let auth = format!("Bearer {token}");
    assert_eq!(
        send("GET", &t.url("/metrics"), &[("authorization", &auth)], None)
            .await
            .status,
        403
    );
    assert_eq!(
        send(
            "GET",
            &t.url("/api/stats"),
            &[("authorization", &auth)],
            None
        )
        .await
        .status,
        403
    );
}

#[tokio::test]
async fn metrics_from_loopback_when_allowed_but_not_through_a_proxy() {
    let t = TestServer::start_with(|c| c.metrics_from_loopback = true).await;
    let r = send("GET", &t.url("/metrics"), &[], None).await;
    assert_eq!(r.status, 200);
    let r = send(
        "GET",
        &t.url("/metrics"),
        &[("x-forwarded-for", "203.0.113.9")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
}
