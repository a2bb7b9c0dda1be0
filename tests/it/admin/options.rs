//! Options: listing, validation, live changes, export and import.

use super::*;

/// The rows of the options table.
fn stored_options(t: &TestServer) -> Vec<(String, String)> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT key, value FROM options ORDER BY key")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The flat value of one option, as GET /api/option/export gives it.
async fn option(t: &TestServer, name: &str) -> Value {
    t.get("/api/option/export").await[name].clone()
}

#[tokio::test]
async fn options_are_listed_with_defaults_and_descriptions() {
    let t = TestServer::start().await;
    let list = t.get("/api/option").await;
    let list = list.as_array().unwrap();
    let find = |n: &str| list.iter().find(|o| o["name"] == n).cloned().unwrap();
    let r = find("log.retention_days");
    assert_eq!(
        (r["value"].clone(), r["default"].clone()),
        (json!(90), json!(90))
    );
    assert!(r["description"].as_str().unwrap().len() > 10, "{r}");
    assert_eq!(
        find("pricing.allow_unpriced_models")["value"],
        true,
        "the harness turns it on"
    );
    assert!(find("pricing.model_ratio")["value"]["gpt-4o-mini"].is_number());
    for o in list {
        assert!(o["name"].as_str().unwrap().contains('.'), "{o}");
        assert!(!o["description"].as_str().unwrap().is_empty(), "{o}");
    }
}

#[tokio::test]
async fn options_are_validated() {
    let t = TestServer::start().await;
    let v = t.get("/api/option/export").await;
    let stored = stored_options(&t);
    assert!(v["pricing.model_ratio"]["gpt-4o-mini"].is_number(), "{v}");
    assert_eq!(
        v["pricing.allow_unpriced_models"], true,
        "the harness turns it on"
    );

    for bad in [
        json!({"pricing.model_ratio": {"x": -1}}),
        json!({"pricing.group_ratio": {"default": -0.5}}),
        json!({"pricing.model_ratio": {"": 1}}),
        json!({"pricing.model_ratio": "cheap"}),
        json!({"pricing.allow_unpriced_models": "yes"}),
        json!({"no_such_option": 1}),
        json!({"pricing.no_such_option": 1}),
        json!({"log.retention_days": -1}),
        json!({"relay.retries": 11}),
        json!({"display.currency": "EUR"}),
        json!({"pricing.allow_unpriced_models": false, "no_such_option": 1}),
    ] {
        let r = t.api("PUT", "/api/option", Some(bad.clone())).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = t
        .api("PUT", "/api/option", Some(json!({"relay.retries": 11})))
        .await;
    assert!(
        r.text().contains("relay.retries"),
        "names the option: {}",
        r.text()
    );
    // Nothing of the refused changes stuck, in memory or in the database.
    assert_eq!(t.get("/api/option/export").await, v);
    assert_eq!(stored_options(&t), stored);
}

#[tokio::test]
async fn option_changes_apply_live() {
    let t = TestServer::start().await;
    t.channel(&["unpriced-model"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    assert_eq!(chat_within(&t, &key, "unpriced-model").await.status, 200);

    let v = t
        .put(
            "/api/option",
            json!({"pricing.allow_unpriced_models": false}),
        )
        .await;
    assert_eq!(v["changed"], json!(["pricing.allow_unpriced_models"]));
    assert_eq!(v["options"]["pricing.allow_unpriced_models"], false);
    assert!(
        v["options"]["pricing.model_ratio"]["gpt-4o-mini"].is_number(),
        "other options were dropped: {v}"
    );
    assert_eq!(option(&t, "pricing.allow_unpriced_models").await, false);
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_error(&r, 403, "forbidden");

    t.put(
        "/api/option",
        json!({"pricing.allow_unpriced_models": true}),
    )
    .await;
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A price applies to the next call: 0.001 USD per call = 500 quota units.
    t.put(
        "/api/option",
        json!({"pricing.model_price": {"unpriced-model": 0.001}}),
    )
    .await;
    let r = chat_within(&t, &key, "unpriced-model").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1), (2, 500));

    // A relay limit applies to the next call too.
    t.put("/api/option", json!({"relay.max_body_bytes": 1024}))
        .await;
    let big = "x".repeat(4096);
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "unpriced-model", "messages": [{"role": "user", "content": big}]}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
}

#[tokio::test]
async fn options_export_and_import_round_trip() {
    let t = TestServer::start().await;
    t.put(
        "/api/option",
        json!({"log.retention_days": 30, "display.currency": "CNY", "pricing.group_ratio": {"default": 1, "vip": 0.5}}),
    )
    .await;
    let doc = t.get("/api/option/export").await;
    assert_eq!(doc["log.retention_days"], 30);
    assert_eq!(doc["display.currency"], "CNY");

    // Another instance takes the document whole.
    let u = TestServer::start().await;
    let r = u.api("PUT", "/api/option/import", Some(doc.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let changed = r.json()["changed"].as_array().unwrap().clone();
    assert!(
        changed.contains(&json!("log.retention_days")),
        "{changed:?}"
    );
    assert_eq!(u.get("/api/option/export").await, doc);
    // Importing again changes nothing and writes no manage row.
    let before = manage_rows(&u).len();
    let r = u.api("PUT", "/api/option/import", Some(doc)).await;
    assert_eq!(r.json()["changed"], json!([]));
    assert_eq!(manage_rows(&u).len(), before);
    // Only root may export secrets.
    let (_, bob) = new_user(&u, "bobadmin", "admin").await;
    let r = with_token(&u, &bob, "GET", "/api/option/export?secrets=include", None).await;
    assert_error(&r, 403, "forbidden");
}
