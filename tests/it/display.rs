//! The billing display option over real HTTP: every place money is shown follows
//! `display.currency` as soon as it changes, and the raw units stay beside it.

use crate::common::{TestServer, send};
use serde_json::{Value, json};

async fn dashboard(t: &TestServer, key: &str, what: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = send(
        "GET",
        &t.url(&format!("/v1/dashboard/billing/{what}")),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The texts shown by every endpoint, in one list, so each switch is checked everywhere.
async fn texts(t: &TestServer, key: &str, key_id: i64) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let sub = dashboard(t, key, "subscription").await;
    out.push((
        "subscription".into(),
        sub["hard_limit_display"]["text"].clone(),
    ));
    let usage = dashboard(t, key, "usage").await;
    out.push(("usage".into(), usage["used_display"]["text"].clone()));
    let me = t.get("/api/me").await;
    out.push(("me".into(), me["quota_display"]["text"].clone()));
    let users = t.get("/api/users").await;
    out.push((
        "users".into(),
        users[0]["used_quota_display"]["text"].clone(),
    ));
    let keys = t.get("/api/keys").await;
    let k = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id)
        .unwrap();
    out.push(("keys".into(), k["remain_quota_display"]["text"].clone()));
    let logs = t.get("/api/log?type=2").await;
    out.push((
        "log".into(),
        logs["items"][0]["quota_display"]["text"].clone(),
    ));
    let stat = t.get("/api/log/stat").await;
    out.push(("stat".into(), stat["quota_display"]["text"].clone()));
    let points = t.get("/api/usage").await;
    out.push((
        "usage points".into(),
        points["points"][0]["quota_display"]["text"].clone(),
    ));
    out
}

fn expect(list: &[(&str, &str)]) -> Vec<(String, Value)> {
    list.iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect()
}

#[tokio::test]
async fn every_money_field_follows_the_display_option() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1_000_000).await;
    let (kid, key) = t.key(json!({"quota": 500_000})).await;
    // Unpriced model at ratio 1: 7 prompt + 5 completion = 12 units.
    assert_eq!(t.chat(&key, "gpt-x", 5, false).await.status, 200);
    t.relays_idle().await;

    // USD (the default): 500,000 units are $1.
    assert_eq!(
        texts(&t, &key, kid).await,
        expect(&[
            ("subscription", "$1.00"),
            ("usage", "$0.000024"),
            ("me", "$1.999976"),
            ("users", "$0.000024"),
            ("keys", "$0.999976"),
            ("log", "$0.000024"),
            ("stat", "$0.000024"),
            ("usage points", "$0.000024"),
        ])
    );
    let sub = dashboard(&t, &key, "subscription").await;
    assert_eq!(
        (sub["hard_limit_usd"].as_f64(), sub["currency"].as_str()),
        (Some(1.0), Some("USD"))
    );
    assert_eq!(sub["hard_limit_quota"], 500_000);

    t.put("/api/option", json!({"display.currency": "CNY"}))
        .await;
    assert_eq!(
        texts(&t, &key, kid).await,
        expect(&[
            ("subscription", "¥7.30"),
            ("usage", "¥0.000175"),
            ("me", "¥14.599825"),
            ("users", "¥0.000175"),
            ("keys", "¥7.299825"),
            ("log", "¥0.000175"),
            ("stat", "¥0.000175"),
            ("usage points", "¥0.000175"),
        ])
    );
    let sub = dashboard(&t, &key, "subscription").await;
    assert_eq!(
        (sub["hard_limit_usd"].as_f64(), sub["currency"].as_str()),
        (Some(7.3), Some("CNY"))
    );

    t.put("/api/option", json!({"display.currency": "TOKENS"}))
        .await;
    assert_eq!(
        texts(&t, &key, kid).await,
        expect(&[
            ("subscription", "500000 tokens"),
            ("usage", "12 tokens"),
            ("me", "999988 tokens"),
            ("users", "12 tokens"),
            ("keys", "499988 tokens"),
            ("log", "12 tokens"),
            ("stat", "12 tokens"),
            ("usage points", "12 tokens"),
        ])
    );
    // The dashboard fields carry raw units (total_usage in hundredths, like cents).
    assert_eq!(
        dashboard(&t, &key, "subscription").await["hard_limit_usd"],
        500_000.0
    );
    assert_eq!(dashboard(&t, &key, "usage").await["total_usage"], 1200.0);

    t.put(
        "/api/option",
        json!({"display.currency": "CUSTOM", "display.symbol": "€", "display.exchange_rate": 0.5}),
    )
    .await;
    let shown = texts(&t, &key, kid).await;
    assert_eq!(shown[0].1, "€0.50");
    assert_eq!(shown[2].1, "€0.999988");
    let usage = dashboard(&t, &key, "usage").await;
    assert_eq!(usage["currency"], "CUSTOM");
    assert_eq!(usage["used_display"]["symbol"], "€");
    // Raw units are always there, unchanged.
    assert_eq!(usage["used_quota"], 12);
    assert_eq!(t.get("/api/me").await["quota"], 999_988);
}
