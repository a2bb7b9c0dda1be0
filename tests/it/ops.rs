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
    assert!(!sluice::dbhealth::check(&t.state).await);
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

#[tokio::test]
async fn on_demand_profile_can_be_listed_and_downloaded() {
    let t = TestServer::start().await;
    let r = t
        .api("POST", "/api/profiles", Some(json!({"seconds": 1})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let name = r.json()["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("cpu-"));
    let list = t.get("/api/profiles").await;
    assert_eq!(list["profiles"][0]["name"], name.as_str());
    assert_eq!(list["profiles"][0]["trigger"], "manual");
    let pb = t
        .api("GET", &format!("/api/profiles/{name}.pb"), None)
        .await;
    assert_eq!(pb.status, 200);
    assert!(!pb.body.is_empty());
    let svg = t
        .api("GET", &format!("/api/profiles/{name}.svg"), None)
        .await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    assert_eq!(
        svg.headers["content-security-policy"],
        "sandbox allow-scripts"
    );
    for bad in [
        "..%2f..%2fetc%2fpasswd",
        "cpu-20261126-999999.pb",
        "cpu-x.txt",
    ] {
        let r = t.api("GET", &format!("/api/profiles/{bad}"), None).await;
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
    }
    let r = t
        .api("POST", "/api/profiles", Some(json!({"seconds": 0})))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn debug_logging_can_be_switched_at_run_time() {
    let t = TestServer::start().await;
    let v = t.put("/api/logging", json!({"debug": true})).await;
    assert_eq!(v["debug"], true);
    assert_eq!(t.get("/api/logging").await["debug"], true);
    let v = t.put("/api/logging", json!({"debug": false})).await;
    assert_eq!(v["debug"], false);
    let rows: i64 = t
        .db()
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE type = 3 AND content LIKE 'set DEBUG logging%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2);
}
