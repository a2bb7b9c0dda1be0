//! Notifications end to end: settings over the API, real receivers on loopback (HTTP for
//! webhook, Bark and Gotify; a capturing SMTP server for email), retries, redirects, the SSRF
//! guard at save and send time, quota-warning de-duplication across a restart, and the
//! delivery log. The notifier is driven directly here; tests/it/warnings.rs drives it through
//! real relayed charges.

use crate::common::{TestServer, send};
use crate::receivers::{Receiver, Reply, SmtpCapture};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice::notify::{
    Decision, NotifyConfig, NotifyPolicy, QuotaEvent, SmtpSecurity, SmtpSettings, Subject,
};
use std::time::Duration;

/// Lets the notifier reach loopback receivers, with a short timeout; `tweak` adjusts the rest.
fn allow_loopback(t: &TestServer, tweak: impl FnOnce(&mut NotifyConfig)) {
    let mut c = NotifyConfig {
        policy: NotifyPolicy {
            ssrf_allow_hosts: vec!["127.0.0.1".into()],
            timeout_secs: 5,
            ..NotifyPolicy::default()
        },
        smtp: None,
    };
    tweak(&mut c);
    t.state.notifier.configure(c);
}

/// Root's balance after a charge, as settle will report it.
fn root_balance(balance: i64) -> QuotaEvent {
    QuotaEvent {
        subject: Subject::User(1),
        owner: 1,
        username: "root".into(),
        key_name: None,
        balance,
        request_id: Some("01TESTREQUEST".into()),
    }
}

/// A new crossing for root: a top-up past the threshold, then a charge below it.
fn cross(t: &TestServer) {
    let n = &t.state.notifier;
    assert_eq!(n.notify_quota(root_balance(5000)), Decision::Above);
    let fired = n.notify_quota(root_balance(10));
    assert!(matches!(fired, Decision::Fire { .. }), "{fired:?}");
}

/// Waits (bounded) until every queued delivery and state write is done.
pub async fn idle(t: &TestServer) {
    let n = t.state.notifier.clone();
    let done = tokio::task::spawn_blocking(move || n.wait_idle(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(done, "notifications still pending");
}

async fn put_notify(t: &TestServer, body: Value) -> crate::common::Resp {
    t.api("PUT", "/api/me/notify", Some(body)).await
}

async fn save(t: &TestServer, body: Value) -> Value {
    let r = put_notify(t, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn test_send(t: &TestServer) -> Value {
    let r = t.api("POST", "/api/me/notify/test", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn deliveries(t: &TestServer, query: &str) -> Vec<Value> {
    let v = t.get(&format!("/api/notify/deliveries{query}")).await;
    v["items"].as_array().unwrap().clone()
}

fn assert_400(r: &crate::common::Resp, words: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains(words), "message {m:?} lacks {words:?}");
}

#[tokio::test]
async fn settings_are_validated_masked_and_kept_when_not_sent() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let v = t.get("/api/me/notify").await;
    assert_eq!(v["kind"], Value::Null);
    assert_eq!(v["effective_threshold"], 1000);
    assert_eq!(v["gotify_priority"], 5);

    let v = save(
        &t,
        json!({"kind": "gotify", "gotify_url": "http://127.0.0.1:9/", "gotify_token": "tok-canary-77",
               "gotify_priority": 8, "webhook_secret": "whsec-canary-88", "quota_warning_threshold": 5000}),
    )
    .await;
    assert_eq!(v["gotify_token_set"], true);
    assert_eq!(v["webhook_secret_set"], true);
    assert_eq!(v["effective_threshold"], 5000);
    // Fields not sent stay; null clears.
    let v = save(&t, json!({"gotify_priority": 2})).await;
    assert_eq!(
        (
            &v["kind"],
            &v["gotify_url"],
            &v["gotify_token_set"],
            &v["gotify_priority"]
        ),
        (
            &json!("gotify"),
            &json!("http://127.0.0.1:9/"),
            &json!(true),
            &json!(2)
        )
    );
    let v = save(
        &t,
        json!({"webhook_secret": null, "quota_warning_threshold": null}),
    )
    .await;
    assert_eq!(v["webhook_secret_set"], false);
    assert_eq!(v["effective_threshold"], 1000);
    let shown = t.api("GET", "/api/me/notify", None).await.text();
    assert!(!shown.contains("canary"), "{shown}");

    let cases = [
        (json!({}), "nothing to change"),
        (json!({"gotify_priority": 11}), "0–10"),
        (json!({"quota_warning_threshold": -1}), "0 or more"),
        (json!({"email": "not an email"}), "not a valid address"),
        (json!({"webhook_url": "not a url"}), "not a valid URL"),
        (json!({"webhook_url": "ftp://127.0.0.1/x"}), "scheme"),
        (json!({"kind": "sms"}), "unknown variant"),
        (json!({"colour": "red"}), "unknown field"),
        (json!({"gotify_token": null}), "gotify_token"),
        (json!({"kind": "webhook"}), "webhook_url"),
        (json!({"kind": "email"}), "needs email"),
    ];
    for (body, words) in cases {
        let r = put_notify(&t, body.clone()).await;
        assert_400(&r, words);
    }
    // The failed saves changed nothing.
    assert_eq!(t.get("/api/me/notify").await["gotify_token_set"], true);
}

#[tokio::test]
async fn refused_addresses_are_rejected_at_save_time_naming_the_rule() {
    let t = TestServer::start().await;
    let cases = [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://0x7f.1/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::ffff:192.168.0.1]/", "private"),
        ("http://100.64.1.1/", "carrier-grade NAT"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[64:ff9b::a00:1]/", "NAT64"),
        ("http://user:pw@8.8.8.8/", "user name or password"),
    ];
    for (url, words) in cases {
        let r = put_notify(&t, json!({"kind": "webhook", "webhook_url": url})).await;
        assert_400(&r, words);
        let r = put_notify(
            &t,
            json!({"kind": "gotify", "gotify_url": url, "gotify_token": "x"}),
        )
        .await;
        assert_400(&r, words);
    }
    let r = put_notify(
        &t,
        json!({"kind": "bark", "bark_url": "http://10.0.0.1/KEY/{{title}}/{{content}}"}),
    )
    .await;
    assert_400(&r, "private");
    // The admin allow-list admits a self-hosted receiver, but never a metadata address.
    t.state.notifier.configure(NotifyConfig {
        policy: NotifyPolicy {
            ssrf_allow_hosts: vec!["127.0.0.1".into(), "169.254.0.0/16".into()],
            ..NotifyPolicy::default()
        },
        smtp: None,
    });
    save(
        &t,
        json!({"kind": "webhook", "webhook_url": "http://0x7f.1:9/hook"}),
    )
    .await;
    let r = put_notify(&t, json!({"webhook_url": "http://169.254.169.254/"})).await;
    assert_400(&r, "metadata");
}

fn hmac_hex(secret: &str, signed: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhook_gets_filled_content_and_a_signature_a_receiver_can_verify() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let rx = Receiver::start(vec![Reply::ok("thanks")]).await;
    let secret = "whsec-canary-webhook";
    save(
        &t,
        json!({"kind": "webhook", "webhook_url": rx.url("/hook?src=sluice"), "webhook_secret": secret,
               "quota_warning_threshold": 1000}),
    )
    .await;
    assert!(matches!(
        t.state.notifier.notify_quota(root_balance(250)),
        Decision::Fire { threshold: 1000 }
    ));
    let hit = rx.wait_for(1).await.remove(0);
    assert_eq!(
        (hit.method.as_str(), hit.target.as_str()),
        ("POST", "/hook?src=sluice")
    );
    assert_eq!(hit.headers["content-type"], "application/json");
    let v = hit.json();
    assert_eq!(v["type"], "quota_warning");
    assert_eq!(v["values"]["balance"], 250);
    assert_eq!(v["values"]["threshold"], 1000);
    let content = v["content"].as_str().unwrap();
    assert!(
        content.contains("250") && content.contains("1000"),
        "{content}"
    );
    assert!(!content.contains("{{"), "placeholders left: {content}");
    assert!(v["title"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["timestamp"].as_i64().unwrap() > 1_700_000_000);

    // Verify as a receiver would: t=<unix>,v1=<hex hmac(secret, "<t>.<raw body>")>, fresh.
    let sig = hit.headers["x-sluice-signature"].to_str().unwrap();
    let (t_part, v1) = sig.split_once(',').unwrap();
    let ts: i64 = t_part.strip_prefix("t=").unwrap().parse().unwrap();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&hit.body);
    assert_eq!(v1.strip_prefix("v1=").unwrap(), hmac_hex(secret, &signed));
    assert!(
        (chrono::Utc::now().timestamp() - ts).abs() < 300,
        "stale timestamp"
    );
    assert_ne!(v1.strip_prefix("v1=").unwrap(), hmac_hex("wrong", &signed));

    idle(&t).await;
    let rows = deliveries(&t, "").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["outcome"], "sent");
    assert_eq!(row["status"], 200);
    assert_eq!(row["kind"], "webhook");
    assert_eq!(row["event"], "quota_warning");
    assert_eq!(row["user_id"], 1);
    assert_eq!(row["attempt"], 1);
    assert_eq!(row["request_id"], "01TESTREQUEST");
    assert_eq!(row["target_host"], format!("127.0.0.1:{}", rx.addr.port()));
    let all = t.api("GET", "/api/notify/deliveries", None).await.text();
    assert!(!all.contains("canary") && !all.contains("/hook"), "{all}");
}

#[tokio::test]
async fn bark_gets_the_template_with_escaped_title_and_content() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let rx = Receiver::start(vec![Reply::ok(r#"{"code":200,"message":"success"}"#)]).await;
    save(
        &t,
        json!({"kind": "bark", "bark_url": rx.url("/DEVICEKEY/{{title}}/{{content}}?group=sluice")}),
    )
    .await;
    let report = test_send(&t).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["status"], 200);
    assert_eq!(report["kind"], "bark");
    assert_eq!(report["answer"], r#"{"code":200,"message":"success"}"#);
    let hit = rx.wait_for(1).await.remove(0);
    assert_eq!(hit.method, "GET");
    assert_eq!(
        hit.target,
        "/DEVICEKEY/sluice%20test%20notification/This%20is%20a%20test%20notification%20for%20root%3A%20your%20notification%20settings%20work.?group=sluice"
    );
}

#[tokio::test]
async fn gotify_gets_the_message_with_token_and_priority() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let rx = Receiver::start(vec![Reply::ok(r#"{"id":1}"#)]).await;
    save(
        &t,
        json!({"kind": "gotify", "gotify_url": rx.url("/gotify/"), "gotify_token": "AppTok.canary",
               "gotify_priority": 8}),
    )
    .await;
    let report = test_send(&t).await;
    assert_eq!(report["ok"], true, "{report}");
    let hit = rx.wait_for(1).await.remove(0);
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.target, "/gotify/message?token=AppTok.canary");
    let v = hit.json();
    assert_eq!(v["priority"], 8);
    assert_eq!(v["title"], "sluice test notification");
    assert!(v["message"].as_str().unwrap().contains("for root"));
    idle(&t).await;
    let rows = t.api("GET", "/api/notify/deliveries", None).await.text();
    assert!(
        rows.contains("\"event\":\"test\"") && !rows.contains("canary"),
        "{rows}"
    );
}

#[tokio::test]
async fn email_goes_out_over_smtp_with_plain_and_html_parts_and_never_silently_in_clear() {
    let t = TestServer::start().await;
    let smtp = SmtpCapture::start().await;
    let settings = |plain_loopback: bool| SmtpSettings {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: SmtpSecurity::Starttls,
        username: String::new(),
        password: sluice::secret::Secret::default(),
        from: "sluice <noreply@example.com>".into(),
        allow_plaintext_loopback: plain_loopback,
    };
    // No SMTP server configured: the test says so.
    save(&t, json!({"kind": "email", "email": "ann@example.com"})).await;
    let report = test_send(&t).await;
    assert_eq!(report["ok"], false);
    assert!(
        report["reason"].as_str().unwrap().contains("SMTP"),
        "{report}"
    );

    allow_loopback(&t, |c| c.smtp = Some(settings(true)));
    let report = test_send(&t).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["status"], 250);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, ["<ann@example.com>"]);
    assert_eq!(m.from, "<noreply@example.com>");
    for part in [
        "Subject: sluice test notification",
        "multipart/alternative",
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "To: ann@example.com",
    ] {
        assert!(m.data.contains(part), "no {part:?} in\n{}", m.data);
    }

    // Without the explicit test flag, STARTTLS is required: this server offers none, so
    // nothing is sent in clear text.
    allow_loopback(&t, |c| c.smtp = Some(settings(false)));
    let report = test_send(&t).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(smtp.mails().len(), 1, "a message went out without TLS");
}

#[tokio::test]
async fn transient_failures_are_retried_and_other_4xx_are_final() {
    let t = TestServer::start().await;
    allow_loopback(&t, |c| {
        c.policy.retries = 3;
        c.policy.max_per_window = 100;
    });
    let flaky = Receiver::start(vec![Reply::status(503), Reply::ok("ok")]).await;
    save(
        &t,
        json!({"kind": "webhook", "webhook_url": flaky.url("/h")}),
    )
    .await;
    cross(&t);
    flaky.wait_for(2).await;
    idle(&t).await;
    assert_eq!(flaky.hits().len(), 2);
    let rows = deliveries(&t, "").await;
    let summary: Vec<(i64, &str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["status"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(summary, [(2, "sent", 200), (1, "retry", 503)]);

    // 429 is transient too, and Retry-After is honoured.
    let limited = Receiver::start(vec![
        Reply::status(429).header("retry-after", "0"),
        Reply::ok("ok"),
    ])
    .await;
    save(&t, json!({"webhook_url": limited.url("/h")})).await;
    cross(&t);
    limited.wait_for(2).await;
    // Its row is written after the receiver answered: wait for it, or the 400 below (on
    // another worker) may be written first and not be the newest row.
    idle(&t).await;

    // A 400 is not retried.
    let refusing = Receiver::start(vec![Reply::status(400)]).await;
    save(&t, json!({"webhook_url": refusing.url("/h")})).await;
    cross(&t);
    refusing.wait_for(1).await;
    idle(&t).await;
    assert_eq!(refusing.hits().len(), 1);
    let last = &deliveries(&t, "?limit=1").await[0];
    assert_eq!(
        (&last["attempt"], &last["outcome"], &last["status"]),
        (&json!(1), &json!("failed"), &json!(400))
    );

    // A receiver that never answers in time: every attempt is tried, the last one is final.
    allow_loopback(&t, |c| {
        c.policy.retries = 1;
        c.policy.timeout_secs = 1;
        c.policy.max_per_window = 100;
    });
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    save(
        &t,
        json!({"webhook_url": format!("http://127.0.0.1:{port}/h")}),
    )
    .await;
    cross(&t);
    idle(&t).await;
    let rows = deliveries(&t, "?limit=2").await;
    assert_eq!(rows[0]["outcome"], "failed", "{rows:?}");
    assert_eq!(rows[1]["outcome"], "retry", "{rows:?}");
    assert!(
        rows[0]["reason"].as_str().unwrap().contains("timed out"),
        "{rows:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_redirect_is_reported_and_not_followed() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let inner = Receiver::start(vec![Reply::ok("should never be reached")]).await;
    let redirect = Receiver::start(vec![
        Reply::status(302).header("location", "http://169.254.169.254/latest/meta-data/"),
        Reply::status(307).header("location", inner.url("/stolen")),
    ])
    .await;
    save(
        &t,
        json!({"kind": "webhook", "webhook_url": redirect.url("/h")}),
    )
    .await;
    for target in [
        "169.254.169.254",
        &format!("127.0.0.1:{}", inner.addr.port()),
    ] {
        let report = test_send(&t).await;
        assert_eq!(report["ok"], false, "{report}");
        let reason = report["reason"].as_str().unwrap();
        assert!(
            reason.contains("redirect")
                && reason.contains(target)
                && reason.contains("not followed"),
            "{reason}"
        );
    }
    assert_eq!(redirect.hits().len(), 2);
    assert!(inner.hits().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn the_guard_runs_again_at_send_time() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    save(&t, json!({"kind": "webhook", "webhook_url": rx.url("/h")})).await;
    // The admin withdraws the allow-list after the URL was saved.
    t.state.notifier.configure(NotifyConfig::default());
    t.state.notifier.notify_quota(root_balance(10));
    idle(&t).await;
    assert!(rx.hits().is_empty());
    let rows = deliveries(&t, "").await;
    assert_eq!(rows.len(), 1, "refusals are not retried: {rows:?}");
    assert_eq!(rows[0]["outcome"], "refused");
    assert!(rows[0]["reason"].as_str().unwrap().contains("loopback"));
    let report = test_send(&t).await;
    assert_eq!(report["outcome"], "refused", "{report}");
}

#[tokio::test]
async fn warnings_fire_once_per_crossing_within_the_window_cap_and_survive_a_restart() {
    let t = TestServer::start().await;
    let policy = |c: &mut NotifyConfig| {
        c.policy.max_per_window = 2;
        c.policy.window_secs = 3600;
    };
    allow_loopback(&t, policy);
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    let n = &t.state.notifier;
    // No kind chosen yet: nothing is tracked or sent.
    assert_eq!(n.notify_quota(root_balance(10)), Decision::Off);
    save(
        &t,
        json!({"kind": "webhook", "webhook_url": rx.url("/h"), "quota_warning_threshold": 1000}),
    )
    .await;
    assert_eq!(n.notify_quota(root_balance(5000)), Decision::Above);
    assert!(matches!(
        n.notify_quota(root_balance(900)),
        Decision::Fire { .. }
    ));
    assert_eq!(n.notify_quota(root_balance(800)), Decision::AlreadyWarned);
    assert_eq!(n.notify_quota(root_balance(1),), Decision::AlreadyWarned);
    assert_eq!(
        n.notify_quota(root_balance(1000)),
        Decision::Above,
        "a top-up re-arms"
    );
    assert!(matches!(
        n.notify_quota(root_balance(999)),
        Decision::Fire { .. }
    ));
    rx.wait_for(2).await;
    // A key of root's with a limited quota is tracked on its own.
    let key = QuotaEvent {
        subject: Subject::Key(77),
        key_name: Some("ci".into()),
        ..root_balance(3)
    };
    assert!(matches!(n.notify_quota(key.clone()), Decision::Fire { .. }));
    let hits = rx.wait_for(3).await;
    assert!(hits[2].json()["content"].as_str().unwrap().contains("ci"));
    idle(&t).await;

    let dir = t.stop().await;
    let t = TestServer::start_in(dir, |_| {}).await;
    allow_loopback(&t, policy);
    let n = &t.state.notifier;
    assert_eq!(
        n.notify_quota(root_balance(5)),
        Decision::AlreadyWarned,
        "repeated after restart"
    );
    assert_eq!(n.notify_quota(key.clone()), Decision::AlreadyWarned);
    assert_eq!(n.notify_quota(root_balance(2000)), Decision::Above);
    assert_eq!(
        n.notify_quota(root_balance(5)),
        Decision::Capped,
        "the window's count was forgotten"
    );
    idle(&t).await;
    assert_eq!(rx.hits().len(), 3);
}

#[tokio::test]
async fn the_delivery_log_is_admin_only_paged_and_filtered() {
    let t = TestServer::start().await;
    allow_loopback(&t, |_| {});
    let rx = Receiver::start(vec![Reply::ok("ok")]).await;
    save(&t, json!({"kind": "webhook", "webhook_url": rx.url("/h")})).await;
    for _ in 0..5 {
        test_send(&t).await;
    }
    let page1 = t.get("/api/notify/deliveries?limit=2").await;
    let ids: Vec<i64> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1], "newest first");
    let cursor = page1["next_cursor"].as_i64().unwrap();
    assert_eq!(cursor, ids[1]);
    let page2 = deliveries(&t, &format!("?limit=2&cursor={cursor}")).await;
    assert!(page2.iter().all(|r| r["id"].as_i64().unwrap() < cursor));
    let page3 = t
        .get(&format!(
            "/api/notify/deliveries?limit=2&cursor={}",
            page2[1]["id"].as_i64().unwrap()
        ))
        .await;
    assert_eq!(page3["items"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_cursor"], Value::Null);
    assert_eq!(deliveries(&t, "?kind=webhook&user_id=1").await.len(), 5);
    assert!(deliveries(&t, "?kind=bark").await.is_empty());
    assert!(deliveries(&t, "?user_id=2").await.is_empty());
    for q in [
        "?limit=0",
        "?cursor=x",
        "?kind=sms",
        "?user_id=-1",
        "?sort=id",
    ] {
        let r = t
            .api("GET", &format!("/api/notify/deliveries{q}"), None)
            .await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }

    // A plain user has settings of their own but cannot read the log.
    t.post(
        "/api/users",
        json!({"username": "ann", "password": "ann-password-1", "role": "user"}),
    )
    .await;
    let ann = t.login_token("ann", "ann-password-1").await;
    let auth = format!("Bearer {ann}");
    let r = send(
        "GET",
        &t.url("/api/notify/deliveries"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        "GET",
        &t.url("/api/me/notify"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["webhook_url"],
        Value::Null,
        "another user's settings leaked"
    );
    let r = send(
        "POST",
        &t.url("/api/me/notify/test"),
        &[("authorization", &auth)],
        Some(Bytes::new()),
    )
    .await;
    assert_eq!(r.status, 409, "a state to change first, not a bad request");
    assert!(r.text().contains("no notification kind"));
}
