//! Smaller console routes: models and prices, own notification deliveries.

use crate::common::{TestServer, send};
use serde_json::{Value, json};
use sluice::store::deliveries::{self, DeliveryRow};

const PASSWORD: &str = "correct horse battery staple";

async fn get_as(t: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let r = send("GET", &t.url(path), &[("authorization", &auth)], None).await;
    let v = if r.status == 200 {
        r.json()
    } else {
        Value::Null
    };
    (r.status, v)
}

#[tokio::test]
async fn models_are_those_of_the_callers_group_priced_per_million() {
    let t = TestServer::start_with_options(json!({
        "pricing.allow_unpriced_models": false,
        "pricing.model_ratio": {"gpt-4o": 1.25, "gpt-4o-mini": 0.075, "vip-only": 2.0},
        "pricing.completion_ratio": {"gpt-4o": 4.0},
        "pricing.group_ratio": {"default": 1.0, "vip": 0.5},
        "pricing.model_price": {"dall-e": 0.04},
    }))
    .await;
    t.channel(&["gpt-4o", "gpt-4o-mini", "dall-e", "unpriced"], json!({}))
        .await;
    t.channel(&["vip-only"], json!({"groups": ["vip"]})).await;
    t.channel(&["switched-off"], json!({"enabled": false}))
        .await;
    t.post(
        "/api/users",
        json!({"username": "fran", "password": PASSWORD, "group": "vip"}),
    )
    .await;
    t.post(
        "/api/users",
        json!({"username": "gil", "password": PASSWORD}),
    )
    .await;

    // A plain user in `default`: the default channel's priced models, no ratios.
    let tok = t.login_token("gil", PASSWORD).await;
    let (status, v) = get_as(&t, &tok, "/api/models").await;
    assert_eq!(status, 200);
    assert_eq!(v["group"], "default");
    let items = v["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["dall-e", "gpt-4o", "gpt-4o-mini"], "{v}");
    // gpt-4o: ratio 1.25 = $2.50 per 1M prompt tokens, ×4 for completion = $10.
    let g = &items[1];
    assert_eq!(g["billing"], "tokens");
    assert_eq!(g["input_per_1m"]["amount"], 2.5);
    assert_eq!(g["output_per_1m"]["amount"], 10.0);
    assert!(g.get("model_ratio").is_none(), "ratios are for admins");
    assert_eq!(items[0]["billing"], "per_call");
    assert_eq!(items[0]["per_call"]["amount"], 0.04);

    // The vip group sees its own channel, at its ratio.
    let tok = t.login_token("fran", PASSWORD).await;
    let (_, v) = get_as(&t, &tok, "/api/models").await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["model"], "vip-only");
    assert_eq!(items[0]["input_per_1m"]["amount"], 2.0);

    // Admins get the ratios.
    let v = t.get("/api/models").await;
    let g = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "gpt-4o")
        .unwrap()
        .clone();
    assert_eq!(
        (g["model_ratio"].as_f64(), g["completion_ratio"].as_f64()),
        (Some(1.25), Some(4.0))
    );
    assert_eq!(g["unpriced"], false);
}

#[tokio::test]
async fn own_deliveries_show_only_the_callers() {
    let t = TestServer::start().await;
    let h = t
        .post(
            "/api/users",
            json!({"username": "hal", "password": PASSWORD}),
        )
        .await;
    let hal = h["id"].as_i64().unwrap();
    for (user, event) in [
        (Some(hal), "test"),
        (Some(1), "quota_warning"),
        (Some(hal), "quota_warning"),
    ] {
        let row = DeliveryRow {
            id: 0,
            created_at: sluice::util::now_secs(),
            user_id: user,
            kind: "webhook".into(),
            event: event.into(),
            target_host: Some("127.0.0.1:9".into()),
            attempt: 1,
            outcome: "sent".into(),
            status: Some(200),
            reason: None,
            request_id: None,
        };
        t.state
            .store
            .writer
            .exec(move |c| deliveries::insert(c, &row).map(|_| ()))
            .await
            .unwrap();
    }
    let tok = t.login_token("hal", PASSWORD).await;
    let (status, v) = get_as(&t, &tok, "/api/me/notify/deliveries?limit=1").await;
    assert_eq!(status, 200);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user_id"], hal);
    assert_eq!(items[0]["event"], "quota_warning", "newest first");
    let next = v["next_cursor"].as_i64().unwrap();
    let (_, v) = get_as(
        &t,
        &tok,
        &format!("/api/me/notify/deliveries?cursor={next}"),
    )
    .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["event"], "test");
    // Someone else's deliveries cannot be asked for.
    let (status, _) = get_as(&t, &tok, "/api/me/notify/deliveries?user_id=1").await;
    assert_eq!(status, 400);
    let (status, _) = get_as(&t, &tok, "/api/me/notify/deliveries?limit=501").await;
    assert_eq!(status, 400);
}
