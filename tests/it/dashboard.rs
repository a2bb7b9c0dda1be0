//! `GET /api/dashboard` and `GET /api/channels/stats`: one request per view, figures that
//! agree with the logs page.

use crate::common::{TestServer, send};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn dashboard_agrees_with_the_logs_and_scopes_plain_users_to_their_own() {
    let t = TestServer::start().await;
    let ch = t
        .channel(&["m1", "m2", "mock-500"], json!({"name": "up"}))
        .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"name": "rootkey", "unlimited": true})).await;
    for (m, n) in [("m1", 3), ("m2", 1)] {
        for _ in 0..n {
            assert_eq!(t.chat(&key, m, 5, false).await.status, 200);
        }
    }
    assert_eq!(t.chat(&key, "mock-500", 5, false).await.status, 502);
    t.post(
        "/api/users",
        json!({"username": "ivy", "password": PASSWORD, "quota": 1_000_000}),
    )
    .await;
    let tok = t.login_token("ivy", PASSWORD).await;
    let auth = format!("Bearer {tok}");
    let r = send(
        "POST",
        &t.url("/api/keys"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"name": "ivykey", "unlimited": true})
                .to_string()
                .into(),
        ),
    )
    .await;
    let ivy_key = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(t.chat(&ivy_key, "m2", 5, false).await.status, 200);
    t.relays_idle().await;

    let d = t.get("/api/dashboard").await;
    assert_eq!(
        (d["range"].as_str(), d["scope"].as_str()),
        (Some("24h"), Some("all"))
    );
    let stat = t
        .get(&format!("/api/log/stat?start_timestamp={}", d["start"]))
        .await;
    assert_eq!(d["totals"]["quota"], stat["quota"]);
    assert_eq!(d["totals"]["requests"], stat["requests"]);
    assert_eq!(d["totals"]["requests"], 5);
    assert_eq!(d["totals"]["errors"], 1);
    assert_eq!(d["now"]["rpm"], 5, "all within the last minute");
    let top: Vec<&str> = d["top_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["of"].as_str().unwrap())
        .collect();
    assert_eq!(&top[..2], ["m1", "m2"], "by spend");
    let keys: Vec<&Value> = d["top_keys"].as_array().unwrap().iter().collect();
    assert_eq!(keys[0]["name"], "rootkey");
    assert!(keys.iter().any(|k| k["name"] == "ivykey"));
    let series_quota: i64 = d["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["quota"].as_i64().unwrap())
        .sum();
    assert_eq!(series_quota, stat["quota"].as_i64().unwrap());
    let a = &d["admin"];
    assert_eq!(a["channels"]["enabled"], 1);
    let cs = &a["channel_stats"][0];
    assert_eq!(
        (cs["channel_id"].as_i64(), cs["name"].as_str()),
        (Some(ch), Some("up"))
    );
    assert_eq!(
        (cs["requests"].as_i64(), cs["errors"].as_i64()),
        (Some(6), Some(1))
    );
    assert!(cs["ttfb_p50_ms"].is_number() && cs["ttfb_p99_ms"].is_number());
    assert_eq!(a["database"]["healthy"], true);
    assert!(a["version"].is_string());

    // A plain user: their own figures, no admin part.
    let r = send(
        "GET",
        &t.url("/api/dashboard?range=30d&tz=Asia/Shanghai"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["scope"], "self");
    assert_eq!(d["bucket"], "day");
    assert_eq!(d["tz"], "Asia/Shanghai");
    assert_eq!(d["totals"]["requests"], 1);
    assert!(d.get("admin").is_none());
    assert_eq!(d["top_keys"].as_array().unwrap().len(), 1);
    assert_eq!(d["balance"]["quota"].as_i64().unwrap(), t.user_balance(2).0);

    // Channel stats over a range; plain users may not.
    let s = t.get("/api/channels/stats").await;
    assert_eq!(s["items"][0]["requests"], 6);
    let r = send(
        "GET",
        &t.url("/api/channels/stats"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let s = t.get("/api/channels/stats?start=0").await;
    assert_eq!(s["items"][0]["errors"], 1);
    let r = t.api("GET", "/api/dashboard?range=7d", None).await;
    assert_eq!(r.status, 400);
}
