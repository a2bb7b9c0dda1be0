//! Rate limits over real HTTP: per-key and per-user requests and tokens per minute, the 429's
//! body and headers, settle corrections, and options and key limits applied live.
//! The limiter runs on the test server's hand-moved clock (`TestServer::clock`): nothing
//! refills unless a test moves it, so every figure below is exact however slow the machine.

use crate::common::{Resp, TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

fn header(r: &Resp, name: &str) -> String {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
        .to_str()
        .unwrap()
        .to_string()
}

fn header_u64(r: &Resp, name: &str) -> u64 {
    header(r, name).parse().unwrap()
}

async fn setup(options: Value) -> TestServer {
    let t = TestServer::start_with_options(options).await;
    t.channel(
        &["gpt-4o-mini", "mock-inflate-100"],
        json!({"groups": ["default", "vip"]}),
    )
    .await;
    t.fund(100_000_000).await;
    t
}

/// A chat asking for `max_tokens` completion tokens and `n` choices (the mock answers one).
async fn chat_n(t: &TestServer, key: &str, model: &str, max_tokens: u64, n: u64) -> Resp {
    t.relay(
        key,
        "/v1/chat/completions",
        json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
               "max_tokens": max_tokens, "n": n}),
    )
    .await
}

fn assert_limited(r: &Resp, kind: &str) -> String {
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    let e = &v["error"];
    assert_eq!(e["type"], kind, "{v}");
    assert_eq!(e["code"], "rate_limit_exceeded", "{v}");
    assert!(e.get("param").is_some_and(Value::is_null), "{v}");
    assert!(header_u64(r, "retry-after") >= 1);
    e["message"].as_str().unwrap().to_string()
}

fn count(t: &TestServer, sql: &str) -> i64 {
    t.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn key_rpm_admits_exactly_the_limit_under_concurrency() {
    let t = setup(json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true, "rpm_limit": 5})).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, key, barrier) = (t.url("/v1/chat/completions"), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 2});
            let auth = format!("Bearer {key}");
            barrier.wait().await;
            send(
                "POST",
                &url,
                &[("authorization", &auth), ("content-type", "application/json")],
                Some(Bytes::from(body.to_string())),
            )
            .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    let limited: Vec<&Resp> = results.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok.len(), limited.len()),
        (5, 15),
        "exactly the limit passes"
    );
    let msg = assert_limited(limited[0], "requests");
    assert!(
        msg.starts_with("Rate limit reached for requests per min (RPM) on this API key: Limit 5, Used 5, Requested 1. Please try again in "),
        "{msg}"
    );
    let r = limited[0];
    assert_eq!(header(r, "x-ratelimit-limit-requests"), "5");
    assert_eq!(header(r, "x-ratelimit-remaining-requests"), "0");
    assert!(header(r, "x-ratelimit-reset-requests").ends_with('s'));
    // One request comes back every 12 s at 5 per minute, and the clock has not moved.
    assert_eq!(header_u64(r, "retry-after"), 12);
    // …and the bucket is full again a whole minute on.
    assert_eq!(header(r, "x-ratelimit-reset-requests"), "1m0s");
    // Successful answers carry the headers too; no tokens limit applies, so no tokens trio.
    assert!(
        ok.iter()
            .all(|r| header(r, "x-ratelimit-limit-requests") == "5")
    );
    assert!(ok[0].headers.get("x-ratelimit-limit-tokens").is_none());
    // Every refusal is counted in the metrics; the burst leaves one 429 error row (at most
    // one per key per 10 s) and no charge.
    t.relays_idle().await;
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM logs WHERE type = 5 AND status = 429"
        ),
        1
    );
    let content: String = t
        .db()
        .query_row(
            "SELECT content FROM logs WHERE type = 5 AND status = 429",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        content.contains("Rate limit reached for requests"),
        "{content}"
    );
    assert_eq!(count(&t, "SELECT COUNT(*) FROM logs WHERE type = 2"), 5);
    assert_eq!(t.get("/api/stats").await["rate_limited"], 15);
}

#[tokio::test]
async fn refills_and_refusal_rows_follow_the_limiters_clock() {
    let t = setup(json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true, "rpm_limit": 3})).await;
    for _ in 0..3 {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    }
    let errors = |t: &TestServer| {
        count(
            t,
            "SELECT COUNT(*) FROM logs WHERE type = 5 AND status = 429",
        )
    };
    // Refused until the clock moves, however long the test takes: one row for the burst.
    for _ in 0..4 {
        assert_limited(&t.chat(&key, "gpt-4o-mini", 1, false).await, "requests");
    }
    assert_eq!(errors(&t), 1);
    // At 3 per minute one request comes back every 20 s: 19.999 s is not enough.
    t.clock.advance(std::time::Duration::from_millis(19_999));
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(header_u64(&r, "retry-after"), 1);
    assert_eq!(
        errors(&t),
        2,
        "10 s after the first row, a refusal gets a row again"
    );
    let folded: String = t
        .db()
        .query_row(
            "SELECT content FROM logs WHERE type = 5 AND status = 429 ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        folded.ends_with("(3 more refusals since the last row)"),
        "{folded}"
    );
    t.clock.advance(std::time::Duration::from_millis(1));
    assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    assert_limited(&t.chat(&key, "gpt-4o-mini", 1, false).await, "requests");
    assert_eq!(errors(&t), 2, "less than 10 s since the last row");
}

#[tokio::test]
async fn the_group_default_limits_the_user_across_keys() {
    let t =
        setup(json!({"ratelimit.group_rpm": {"default": 3, "vip": 100}, "ratelimit.user_rpm": 1}))
            .await;
    let (_, a) = t.key(json!({"unlimited": true})).await;
    let (_, b) = t.key(json!({"unlimited": true})).await;
    assert_eq!(t.chat(&a, "gpt-4o-mini", 1, false).await.status, 200);
    assert_eq!(t.chat(&b, "gpt-4o-mini", 1, false).await.status, 200);
    let r = t.chat(&a, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-requests"), "0");
    let r = t.chat(&b, "gpt-4o-mini", 1, false).await;
    let msg = assert_limited(&r, "requests");
    assert!(msg.contains("on your account: Limit 3, Used 3"), "{msg}");
    // Root moves to the vip group: its entry applies at once; the 3 calls made still count.
    t.patch("/api/users/1", json!({"group": "vip"})).await;
    let r = t.chat(&b, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-limit-requests"), "100");
    assert_eq!(header(&r, "x-ratelimit-remaining-requests"), "96");
}

#[tokio::test]
async fn tpm_reserves_the_estimate_and_settles_to_the_real_count() {
    let t = setup(json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true, "tpm_limit": 1000})).await;
    // Reserved: 7 prompt + 2 × 300 completion; used: 7 + 300 (the mock answers one choice).
    let r = chat_n(&t, &key, "gpt-4o-mini", 300, 2).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-limit-tokens"), "1000");
    // 1000 − (8 + 2 × 300): the estimate counts "hello" as 2 tokens (+ 6 of overhead).
    assert_eq!(
        header_u64(&r, "x-ratelimit-remaining-tokens"),
        1000 - 8 - 600
    );
    // 607 more fit only because the 300 over-reserved came back at settle.
    let r = t.chat(&key, "gpt-4o-mini", 600, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The first call settled at 307 used; this one holds its estimate of 608.
    assert_eq!(
        header_u64(&r, "x-ratelimit-remaining-tokens"),
        1000 - 307 - 608
    );
    // 107 do not fit in what is left.
    let r = t.chat(&key, "gpt-4o-mini", 100, false).await;
    let msg = assert_limited(&r, "tokens");
    assert!(
        msg.starts_with(
            "Rate limit reached for tokens per min (TPM) on this API key: Limit 1000, Used 914, Requested 108."
        ),
        "{msg}"
    );
    assert_eq!(header(&r, "x-ratelimit-limit-tokens"), "1000");
    assert_eq!(header_u64(&r, "x-ratelimit-remaining-tokens"), 1000 - 914);
    // A request larger than the whole limit can never pass, and says so.
    let (_, other) = t.key(json!({"unlimited": true, "tpm_limit": 1000})).await;
    let r = t.chat(&other, "gpt-4o-mini", 5000, false).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "tokens");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Request too large")
    );
    assert_eq!(header(&r, "retry-after"), "60");
}

#[tokio::test]
async fn tokens_used_beyond_the_estimate_become_debt() {
    let t = setup(json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true, "tpm_limit": 1000})).await;
    // Estimated at 12 tokens; upstream reports 700 prompt + 5 completion.
    let r = t.chat(&key, "mock-inflate-100", 5, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header_u64(&r, "x-ratelimit-remaining-tokens"), 1000 - 13);
    // Without the correction 407 would fit in the 988 left after the reservation.
    let r = t.chat(&key, "gpt-4o-mini", 400, false).await;
    let msg = assert_limited(&r, "tokens");
    assert!(msg.contains("Used 705, Requested 408."), "{msg}");
}

#[tokio::test]
async fn key_limits_are_set_listed_and_cleared_through_the_api() {
    let t = setup(json!({"ratelimit.key_rpm": 50})).await;
    let (id, key) = t.key(json!({"unlimited": true})).await;
    let listed = t.get("/api/keys").await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert!(
        row["rpm_limit"].is_null() && row["tpm_limit"].is_null(),
        "{row}"
    );
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(
        header(&r, "x-ratelimit-limit-requests"),
        "50",
        "the option's default"
    );

    let v = t
        .patch(
            &format!("/api/keys/{id}"),
            json!({"rpm_limit": 2, "tpm_limit": 0}),
        )
        .await;
    assert_eq!(
        (v["rpm_limit"].as_i64(), v["tpm_limit"].as_i64()),
        (Some(2), Some(0))
    );
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-limit-requests"), "2");
    assert_eq!(
        header(&r, "x-ratelimit-remaining-requests"),
        "0",
        "2 used of 2"
    );
    assert_limited(&t.chat(&key, "gpt-4o-mini", 1, false).await, "requests");

    // null goes back to the default (50, with the 2 calls already counted).
    let v = t
        .patch(&format!("/api/keys/{id}"), json!({"rpm_limit": null}))
        .await;
    assert!(v["rpm_limit"].is_null());
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining-requests"), "47");

    for bad in [
        json!({"rpm_limit": -1}),
        json!({"tpm_limit": 2_000_000_000_000_i64}),
    ] {
        let r = t.api("PATCH", &format!("/api/keys/{id}"), Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("_limit")
        );
    }
    let r = t
        .api(
            "POST",
            "/api/keys",
            Some(json!({"name": "x", "unlimited": true, "rpm_limit": -5})),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn option_changes_apply_live_and_zero_is_unlimited() {
    let t = setup(json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let (_, exempt) = t.key(json!({"unlimited": true, "rpm_limit": 0})).await;
    // No limits by default: no headers either.
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-ratelimit-limit-requests").is_none());

    t.put("/api/option", json!({"ratelimit.key_rpm": 1})).await;
    assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    assert_limited(&t.chat(&key, "gpt-4o-mini", 1, false).await, "requests");
    // A key whose own limit is 0 is unlimited whatever the default.
    for _ in 0..5 {
        assert_eq!(t.chat(&exempt, "gpt-4o-mini", 1, false).await.status, 200);
    }
    t.put("/api/option", json!({"ratelimit.key_rpm": 0})).await;
    for _ in 0..5 {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 1, false).await.status, 200);
    }
    // Bad values are refused with the option's name.
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({"ratelimit.group_tpm": {"": 5}})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("ratelimit.group_tpm"), "{}", r.text());
}

#[tokio::test]
async fn streams_are_limited_and_settled_too() {
    let t = setup(json!({"ratelimit.user_tpm": 100})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "gpt-4o-mini", 50, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-ratelimit-limit-tokens"), "100");
    assert!(r.text().contains("[DONE]"));
    let r = t.chat(&key, "gpt-4o-mini", 50, true).await;
    let msg = assert_limited(&r, "tokens");
    assert!(msg.contains("on your account: Limit 100, Used 57"), "{msg}");
}
