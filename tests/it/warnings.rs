//! Quota warnings driven by real relayed requests: the settle path reports each balance it
//! leaves, the notifier warns once per crossing through the user's receiver (a webhook or an
//! SMTP server on loopback), the state survives a restart, and keys with their own quota are
//! warned about separately. The notify.* and smtp.* options are set through the option API.

use crate::common::TestServer;
use crate::notify::idle;
use crate::receivers::{Receiver, Reply, SmtpCapture};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4o-mini";

/// Options every test here starts with: loopback receivers allowed, a wide window.
fn options() -> Value {
    json!({
        "notify.ssrf_allow_hosts": ["127.0.0.1"],
        "notify.timeout_secs": 5,
        "notify.window_secs": 3600,
        "notify.max_per_window": 5,
        // Each call costs the same round amount, so balances are easy to place.
        "pricing.model_price": {MODEL: 0.0002},
    })
}

/// What one call costs: $0.0002 at 500,000 quota units per dollar.
const COST: i64 = 100;

async fn call(t: &TestServer, key: &str) {
    let r = t.chat(key, MODEL, 3, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_relayed_charge_below_the_threshold_warns_once_per_crossing_across_a_restart() {
    let t = TestServer::start_with_options(options()).await;
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    t.put(
        "/api/me/notify",
        json!({"kind": "webhook", "webhook_url": rx.url("/hook"), "quota_warning_threshold": 1000}),
    )
    .await;
    let channel = t.channel(&[MODEL], json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;

    t.fund(1150).await;
    call(&t, &key).await; // 1050: above
    assert_eq!(t.user_balance(1).0, 1050, "a call costs {COST}");
    idle(&t).await;
    assert!(rx.hits().is_empty(), "warned above the threshold");
    call(&t, &key).await; // 950: crosses
    let hits = rx.wait_for(1).await;
    let body = hits[0].json();
    assert_eq!(body["type"], "quota_warning");
    assert_eq!(body["values"]["balance"], 950);
    assert_eq!(body["values"]["threshold"], 1000);
    assert!(body["content"].as_str().unwrap().contains("950"), "{body}");
    call(&t, &key).await; // 850: same crossing
    idle(&t).await;
    assert_eq!(rx.hits().len(), 1, "warned twice for one crossing");

    // The de-duplication state is in the database: a restart does not warn again.
    let dir = t.stop().await;
    let t = TestServer::start_in(dir, |_| {}).await;
    // The restarted harness has a new mock upstream (another port: the secret goes along).
    t.patch(
        &format!("/api/channels/{channel}"),
        json!({"base_url": t.mock.base_url(), "api_key": "sk-upstream-secret-canary"}),
    )
    .await;
    call(&t, &key).await; // 750
    idle(&t).await;
    assert_eq!(rx.hits().len(), 1, "warned again after a restart");

    // A top-up above the threshold re-arms; the next crossing warns again.
    t.fund(1080).await;
    // (No charge sees 1080: the top-up itself re-arms.)
    call(&t, &key).await; // 980
    let hits = rx.wait_for(2).await;
    assert_eq!(hits[1].json()["values"]["balance"], 980);
}

#[tokio::test]
async fn a_limited_key_is_warned_about_on_its_own_to_its_owner() {
    let t = TestServer::start_with_options(options()).await;
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    t.put(
        "/api/me/notify",
        json!({"kind": "webhook", "webhook_url": rx.url("/hook"), "quota_warning_threshold": 500}),
    )
    .await;
    t.channel(&[MODEL], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"name": "batch-job", "quota": 650})).await;
    call(&t, &key).await; // key 550
    idle(&t).await;
    assert!(rx.hits().is_empty());
    call(&t, &key).await; // key 450: below 500
    let hits = rx.wait_for(1).await;
    let body = hits[0].json();
    assert_eq!(body["values"]["key_name"], "batch-job", "{body}");
    assert_eq!(body["values"]["balance"], 450);
    assert!(body["content"].as_str().unwrap().contains("batch-job"));
}

#[tokio::test]
async fn email_warnings_use_the_smtp_options_and_the_password_stays_masked() {
    let smtp = SmtpCapture::start().await;
    let mut opts = options();
    for (k, v) in [
        ("smtp.host", json!("127.0.0.1")),
        ("smtp.port", json!(smtp.port)),
        ("smtp.from", json!("sluice <noreply@example.com>")),
        ("smtp.password", json!("smtp-canary-secret")),
        ("smtp.plaintext_loopback", json!(true)),
    ] {
        opts[k] = v;
    }
    let t = TestServer::start_with_options(opts).await;
    let listed = t.api("GET", "/api/option", None).await.text();
    assert!(!listed.contains("smtp-canary-secret"), "password shown");
    t.put(
        "/api/me/notify",
        json!({"kind": "email", "email": "ann@example.com", "quota_warning_threshold": 1000}),
    )
    .await;
    t.channel(&[MODEL], json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    t.fund(1050).await;
    call(&t, &key).await; // 950
    idle(&t).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, ["<ann@example.com>"]);
    assert!(
        mails[0].data.contains("Quota running low"),
        "{}",
        mails[0].data
    );

    // A bad SMTP setting is refused with its name, and nothing changes.
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({"smtp.from": "not an address"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("smtp.from"), "{}", r.text());
    // Sending the mask back keeps the password.
    t.put(
        "/api/option",
        json!({"smtp.password": "********", "smtp.port": smtp.port}),
    )
    .await;
    let cfg = t.state.notifier.config();
    assert_eq!(
        cfg.smtp.as_ref().unwrap().password.expose(),
        "smtp-canary-secret"
    );
}

#[tokio::test]
async fn the_threshold_can_be_given_and_read_in_the_display_currency() {
    let t = TestServer::start_with_options(json!({
        "display.currency": "CNY",
        "display.exchange_rate": 7.3,
    }))
    .await;
    let v = t
        .put(
            "/api/me/notify",
            json!({"kind": "email", "email": "ann@example.com", "quota_warning_threshold_amount": 14.6}),
        )
        .await;
    assert_eq!(v["quota_warning_threshold"], 1_000_000, "{v}");
    assert_eq!(v["quota_warning_threshold_display"]["text"], "¥14.60");
    assert_eq!(v["effective_threshold_display"]["currency"], "CNY");
    let v = t.get("/api/me/notify").await;
    assert_eq!(v["quota_warning_threshold"], 1_000_000);

    for (body, words) in [
        (
            json!({"quota_warning_threshold_amount": 1.0, "quota_warning_threshold": 5}),
            "not both",
        ),
        (json!({"quota_warning_threshold_amount": -1.0}), "0 or more"),
        (
            json!({"quota_warning_threshold_amount": "lots"}),
            "invalid type",
        ),
    ] {
        let r = t.api("PUT", "/api/me/notify", Some(body)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(words), "{} lacks {words}", r.text());
    }
    assert_eq!(
        t.get("/api/me/notify").await["quota_warning_threshold"],
        1_000_000,
        "a refused change changed something"
    );
}
