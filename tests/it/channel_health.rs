//! Channel health end to end: tests through the admin API and the schedule's `run_once`,
//! automatic disable from real relayed answers of the mock upstream (a bad key via
//! `mock-key-401`, errors via `mock-500`), re-enable after a passing test, manage rows, and
//! root's webhook receiver on loopback.

use crate::common::{TestServer, send};
use crate::receivers::{Receiver, Reply};
use serde_json::{Value, json};
use sluice::notify::{NotifyConfig, NotifyPolicy};

/// Lets the notifier reach loopback receivers.
fn allow_loopback(t: &TestServer) {
    t.state.notifier.configure(NotifyConfig {
        policy: NotifyPolicy {
            ssrf_allow_hosts: vec!["127.0.0.1".into()],
            timeout_secs: 5,
            ..NotifyPolicy::default()
        },
        smtp: None,
    });
}

/// Root's notifications go to a webhook receiver on loopback.
async fn root_webhook(t: &TestServer) -> Receiver {
    allow_loopback(t);
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    t.put(
        "/api/me/notify",
        json!({"kind": "webhook", "webhook_url": rx.url("/hook")}),
    )
    .await;
    rx
}

async fn channel(t: &TestServer, id: i64) -> Value {
    t.get(&format!("/api/channels/{id}")).await
}

async fn test(t: &TestServer, id: i64, body: Option<Value>) -> Value {
    let r = t
        .api("POST", &format!("/api/channels/{id}/test"), body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// (content, status) of the channel's manage rows, oldest first.
fn manage_rows(t: &TestServer, id: i64) -> Vec<(String, Option<i64>)> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT content, status FROM logs WHERE type = 3 AND channel_id = ?1 ORDER BY id")
        .unwrap();
    st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Calls that reached the mock with `key` as their bearer.
fn calls_with_key(t: &TestServer, key: &str) -> usize {
    t.mock
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() == Some(&format!("Bearer {key}")))
        .count()
}

fn assert_400(r: &crate::common::Resp, words: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains(words), "message {m:?} lacks {words:?}");
}

#[tokio::test]
async fn a_manual_test_records_status_and_latency_without_billing() {
    let t = TestServer::start().await;
    let id = t
        .channel(
            &["gpt-4o-mini", "mock-500"],
            json!({"model_mapping": {"alias": "mock-slow-30", "alias-slow": "mock-slow-2500"}}),
        )
        .await;
    let before = channel(&t, id).await;
    assert_eq!(before["status"], "enabled");
    assert_eq!(before["tested_at"], Value::Null);

    let v = test(&t, id, None).await;
    assert_eq!(
        (&v["ok"], &v["status"], &v["channel_status"], &v["model"]),
        (
            &json!(true),
            &json!(200),
            &json!("enabled"),
            &json!("gpt-4o-mini")
        ),
        "{v}"
    );
    let sent = t.mock.last_request().unwrap();
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["max_tokens"], 1);
    assert_eq!(sent.body["stream"], false);
    let c = channel(&t, id).await;
    assert_eq!(c["test_status"], "ok");
    assert_eq!(c["test_http_status"], 200);
    assert!(c["tested_at"].as_i64().unwrap() > 0, "{c}");
    assert!(c["test_latency_ms"].as_i64().unwrap() >= 0, "{c}");

    // A chosen model goes through the channel's mapping; the latency is the answer's.
    let v = test(&t, id, Some(json!({"model": "alias"}))).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["latency_ms"].as_i64().unwrap() >= 30, "{v}");
    assert_eq!(t.mock.last_request().unwrap().body["model"], "mock-slow-30");

    // A failure is recorded with upstream's status and message; one 500 disables nothing.
    let v = test(&t, id, Some(json!({"model": "mock-500"}))).await;
    assert_eq!(
        (&v["ok"], &v["status"], &v["channel_status"]),
        (&json!(false), &json!(500), &json!("enabled")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("500"), "{v}");
    let c = channel(&t, id).await;
    assert_eq!(
        (&c["test_status"], &c["test_http_status"]),
        (&json!("error"), &json!(500))
    );
    assert!(
        c["test_error"].as_str().unwrap().contains("mock-500"),
        "{c}"
    );

    // No answer in time: no status; two errors in four tests are below the 10-request minimum.
    let v = test(&t, id, Some(json!({"model": "alias-slow"}))).await;
    assert_eq!(
        (&v["ok"], &v["status"], &v["channel_status"]),
        (&json!(false), &Value::Null, &json!("enabled")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("timeout"), "{v}");

    // The channel's own test model is the default.
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"test_model": "alias"}),
    )
    .await;
    assert_eq!(test(&t, id, None).await["model"], "alias");

    // Tests are not charged and leave no consume or error rows.
    let rows: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type IN (2, 5)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 0);
    assert!(manage_rows(&t, id).is_empty());

    // Bad ids and bodies get JSON errors.
    let r = t.api("POST", "/api/channels/999/test", None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("999")
    );
    assert_400(
        &t.api("POST", "/api/channels/abc/test", None).await,
        "positive",
    );
    assert_400(
        &t.api(
            "POST",
            &format!("/api/channels/{id}/test"),
            Some(json!({"model": ""})),
        )
        .await,
        "model",
    );
    assert_400(
        &t.api(
            "POST",
            &format!("/api/channels/{id}/test"),
            Some(json!({"modle": "x"})),
        )
        .await,
        "unknown field",
    );
    assert_400(
        &t.api(
            "PATCH",
            &format!("/api/channels/{id}"),
            Some(json!({"test_model": ""})),
        )
        .await,
        "test_model",
    );
    t.stop().await;
}

#[tokio::test]
async fn an_upstream_401_turns_the_channel_off_tells_root_and_a_passing_test_brings_it_back() {
    let t = TestServer::start().await;
    let rx = root_webhook(&t).await;
    let bad = t
        .channel(
            &["gpt-4o-mini"],
            json!({"priority": 10, "api_key": "sk-mock-key-401"}),
        )
        .await;
    let good = t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;

    // The client is served by the next channel; the 401 turns the first one off.
    let r = t.chat(&key, "gpt-4o-mini", 3, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    t.relays_idle().await;
    let c = channel(&t, bad).await;
    assert_eq!(c["status"], "auto_disabled", "{c}");
    assert_eq!(c["enabled"], true, "the admin's switch is untouched");
    assert!(
        c["auto_disabled_reason"].as_str().unwrap().contains("401"),
        "{c}"
    );
    assert!(c["auto_disabled_at"].as_i64().unwrap() > 0);
    assert_eq!(channel(&t, good).await["status"], "enabled");
    let rows = manage_rows(&t, bad);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].0.contains("auto-disabled"), "{rows:?}");
    assert_eq!(rows[0].1, Some(401));

    let hits = rx.wait_for(1).await;
    let m = hits[0].json();
    assert_eq!(m["type"], "channel_status", "{m}");
    assert_eq!(m["values"]["channel_id"], bad);
    assert_eq!(m["values"]["status"], "auto_disabled");
    assert!(m["content"].as_str().unwrap().contains("401"), "{m}");

    // No longer routed: later calls go straight to the good channel.
    for _ in 0..3 {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 3, false).await.status, 200);
    }
    assert_eq!(calls_with_key(&t, "sk-mock-key-401"), 1);

    // Fixing the key alone does not route it again; a passing test does.
    t.patch(
        &format!("/api/channels/{bad}"),
        json!({"api_key": "sk-fixed-key"}),
    )
    .await;
    assert_eq!(channel(&t, bad).await["status"], "auto_disabled");
    let v = test(&t, bad, None).await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(true), &json!("enabled")),
        "{v}"
    );
    let c = channel(&t, bad).await;
    assert_eq!(
        (&c["status"], &c["auto_disabled_reason"]),
        (&json!("enabled"), &Value::Null)
    );
    let rows = manage_rows(&t, bad);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].0.contains("re-enabled"), "{rows:?}");
    let hits = rx.wait_for(2).await;
    assert_eq!(hits[1].json()["values"]["status"], "enabled");

    // Routed again, first by priority.
    assert_eq!(t.chat(&key, "gpt-4o-mini", 3, false).await.status, 200);
    assert_eq!(
        calls_with_key(&t, "sk-fixed-key"),
        2,
        "the test and the chat"
    );
}

#[tokio::test]
async fn one_500_does_not_disable_but_an_error_rate_over_the_window_does() {
    let t = TestServer::start_with_options(json!({
        "relay.retries": 0,
        "channel.error_rate_min_requests": 4,
        "channel.error_rate_threshold": 0.5,
    }))
    .await;
    let id = t.channel(&["gpt-4o-mini", "mock-500"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;

    assert_eq!(t.chat(&key, "mock-500", 3, false).await.status, 502);
    // A disable would run in a task counted with the relays: once they are idle, it is done.
    t.relays_idle().await;
    assert_eq!(channel(&t, id).await["status"], "enabled");
    assert_eq!(t.chat(&key, "gpt-4o-mini", 3, false).await.status, 200);
    assert_eq!(t.chat(&key, "mock-500", 3, false).await.status, 502);
    t.relays_idle().await;
    assert_eq!(
        channel(&t, id).await["status"],
        "enabled",
        "2 of 3 is below the minimum"
    );

    // 3 errors of 4 requests: over half, with enough requests.
    assert_eq!(t.chat(&key, "mock-500", 3, false).await.status, 502);
    t.relays_idle().await;
    let c = channel(&t, id).await;
    assert_eq!(c["status"], "auto_disabled", "{c}");
    let reason = c["auto_disabled_reason"].as_str().unwrap();
    assert!(reason.contains("3 of the last 4"), "{reason}");
    let rows = manage_rows(&t, id);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, None);

    // Its models are no longer served.
    let r = t.chat(&key, "gpt-4o-mini", 3, false).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let auth = format!("Bearer {key}");
    let models = send(
        "GET",
        &t.url("/v1/models"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(models.status, 200);
    assert_eq!(models.json()["data"], json!([]), "{}", models.text());
}

#[tokio::test]
async fn a_passing_test_re_enables_only_what_the_health_checks_turned_off() {
    let t = TestServer::start().await;
    let id = t
        .channel(&["gpt-4o-mini"], json!({"api_key": "sk-mock-key-401"}))
        .await;

    // A failing test with a 401 turns it off at once, and says so.
    let v = test(&t, id, None).await;
    assert_eq!(
        (&v["ok"], &v["status"], &v["channel_status"]),
        (&json!(false), &json!(401), &json!("auto_disabled")),
        "{v}"
    );
    assert!(
        !v["error"].as_str().unwrap().contains("sk-mock-key-401"),
        "{v}"
    );

    // The admin turns it off too, then fixes the key: a pass leaves the admin's choice alone.
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"enabled": false, "api_key": "sk-fixed"}),
    )
    .await;
    assert_eq!(channel(&t, id).await["status"], "disabled");
    let v = test(&t, id, None).await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(true), &json!("disabled")),
        "{v}"
    );
    let rows = manage_rows(&t, id);
    assert_eq!(rows.len(), 1, "only the disable: {rows:?}");

    // The admin's own switch turns it on, clearing the automatic disable with it.
    t.patch(&format!("/api/channels/{id}"), json!({"enabled": true}))
        .await;
    assert_eq!(channel(&t, id).await["status"], "enabled");

    // With auto_enable off, a pass records the result but leaves the channel off.
    t.put("/api/option", json!({"channel.auto_enable": false}))
        .await;
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"api_key": "sk-mock-key-403"}),
    )
    .await;
    assert_eq!(test(&t, id, None).await["channel_status"], "auto_disabled");
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"api_key": "sk-fixed"}),
    )
    .await;
    let v = test(&t, id, None).await;
    assert_eq!(
        (&v["ok"], &v["channel_status"]),
        (&json!(true), &json!("auto_disabled")),
        "{v}"
    );

    // With auto_disable off, a 401 is recorded and nothing more.
    t.put(
        "/api/option",
        json!({"channel.auto_disable": false, "channel.auto_enable": true}),
    )
    .await;
    assert_eq!(test(&t, id, None).await["channel_status"], "enabled");
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"api_key": "sk-mock-key-401"}),
    )
    .await;
    let v = test(&t, id, None).await;
    assert_eq!(
        (&v["status"], &v["channel_status"]),
        (&json!(401), &json!("enabled")),
        "{v}"
    );
}

#[tokio::test]
async fn a_scheduled_run_tests_every_channel_an_admin_has_not_turned_off() {
    let t = TestServer::start().await;
    let good = t.channel(&["gpt-4o-mini"], json!({})).await;
    let bad = t
        .channel(&["gpt-4o-mini"], json!({"api_key": "sk-mock-key-401"}))
        .await;
    let off = t.channel(&["gpt-4o-mini"], json!({"enabled": false})).await;

    let r = sluice::channel_health::scheduler::run_once(&t.state).await;
    assert_eq!(
        (r.tested, r.passed, r.failed, r.disabled, r.enabled),
        (2, 1, 1, 1, 0),
        "{r:?}"
    );
    assert_eq!(channel(&t, good).await["test_status"], "ok");
    assert_eq!(channel(&t, bad).await["status"], "auto_disabled");
    assert_eq!(channel(&t, off).await["tested_at"], Value::Null);
    let h = &t.get("/api/stats").await["channel_health"];
    assert_eq!(
        (
            &h["enabled"],
            &h["disabled"],
            &h["auto_disabled"],
            &h["tests_failed"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{h}"
    );

    // The admin trigger runs the same pass; the fixed channel comes back.
    t.patch(
        &format!("/api/channels/{bad}"),
        json!({"api_key": "sk-fixed"}),
    )
    .await;
    let v = t.post("/api/channels/test", json!({})).await;
    assert_eq!(
        (&v["tested"], &v["passed"], &v["enabled"]),
        (&json!(2), &json!(2), &json!(1)),
        "{v}"
    );
    let ids: Vec<i64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["channel_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [good, bad]);
    assert_eq!(channel(&t, bad).await["status"], "enabled");

    // The listing shows every channel's health.
    let list = t.get("/api/channels").await;
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["enabled", "enabled", "disabled"]);
    // Stopping the server stops the schedule too (app::run awaits it).
    t.stop().await;
}

#[tokio::test]
async fn channel_options_are_validated_with_a_message() {
    let t = TestServer::start().await;
    for (body, words) in [
        (
            json!({"channel.disable_statuses": [500]}),
            "channel.disable_statuses",
        ),
        (json!({"channel.disable_statuses": [429]}), "transient"),
        (
            json!({"channel.error_rate_min_requests": 1}),
            "channel.error_rate_min_requests",
        ),
        (
            json!({"channel.error_rate_threshold": 1.5}),
            "channel.error_rate_threshold",
        ),
        (
            json!({"channel.error_window_secs": 5}),
            "channel.error_window_secs",
        ),
        (
            json!({"channel.test_interval_minutes": 20000}),
            "channel.test_interval_minutes",
        ),
        (
            json!({"channel.test_interval_minutes": -1}),
            "channel.test_interval_minutes",
        ),
        (
            json!({"channel.auto_disable": "yes"}),
            "channel.auto_disable",
        ),
    ] {
        assert_400(&t.api("PUT", "/api/option", Some(body)).await, words);
    }
    let v = t
        .put(
            "/api/option",
            json!({"channel.test_interval_minutes": 30, "channel.disable_statuses": [401, 402, 403]}),
        )
        .await;
    assert_eq!(v["options"]["channel.test_interval_minutes"], 30);
    assert_eq!(
        t.state.catalog.options().channel.disable_statuses,
        [401, 402, 403]
    );
    let described = t.get("/api/option").await;
    let names: Vec<&str> = described
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .filter(|n| n.starts_with("channel."))
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
}
