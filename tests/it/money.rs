//! The reservation bounds the charge: the upstream is never asked for more output than the
//! reservation covers, whatever limit fields the client sends, under concurrency too.
//!
//! Prices here are ratio 1 (unpriced models allowed), so quota = prompt + completion tokens.
//! A chat of one message "hello" is estimated at 8 prompt tokens ("hello" counts 2 in the
//! estimate, which never counts below tiktoken) and reported by the mock as 7.

use crate::common::{Resp, TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

/// Prompt tokens reserved for the one-message "hello" chat, and what the mock reports.
const ESTIMATED_PROMPT: i64 = 8;
const REPORTED_PROMPT: i64 = 7;

/// The words of the answer: the message content, or the streamed deltas.
pub fn words(r: &Resp) -> i64 {
    let text: String = if r.headers["content-type"] == "text/event-stream" {
        r.text()
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|v| {
                let c = &v["choices"][0];
                c["delta"]["content"]
                    .as_str()
                    .or(c["text"].as_str())
                    .map(str::to_string)
            })
            .collect()
    } else {
        let v = r.json();
        let c = &v["choices"][0];
        c["message"]["content"]
            .as_str()
            .or(c["text"].as_str())
            .unwrap_or("")
            .to_string()
    };
    text.split_whitespace().count() as i64
}

/// The output limit fields of the upstream request for `model`: (max_tokens,
/// max_completion_tokens).
fn asked_upstream(t: &TestServer, model: &str) -> (Option<i64>, Option<i64>) {
    let reqs: Vec<_> = t
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.body["model"] == model)
        .collect();
    assert_eq!(reqs.len(), 1, "one upstream request for {model}");
    let b = &reqs[0].body;
    (
        b["max_tokens"].as_i64(),
        b["max_completion_tokens"].as_i64(),
    )
}

/// (quota, completion_tokens, content) of the consume row of a request.
fn consume_row(t: &TestServer, rid: &str) -> (i64, i64, Option<String>) {
    t.db()
        .query_row(
            "SELECT quota, completion_tokens, content FROM logs WHERE type = 2 AND request_id = ?1",
            [rid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn chat_body(model: &str, limits: &Value, stream: bool) -> Value {
    let mut b = json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
                       "stream": stream});
    for (k, v) in limits.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test]
async fn the_upstream_is_asked_for_at_most_the_reserved_output() {
    let t = TestServer::start().await;
    // mock-larger generates the larger of the two limits, and 4096 words when none is set.
    let models: Vec<String> = (0..16).map(|i| format!("mock-larger-c{i}")).collect();
    let names: Vec<&str> = models.iter().map(String::as_str).collect();
    t.channel(&names, json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // (limits sent, the one field expected upstream: ("max_tokens", value))
    let cases = [
        (json!({"max_completion_tokens": 1, "max_tokens": 4096}), 1),
        (json!({"max_completion_tokens": 4096, "max_tokens": 2}), 2),
        (json!({"max_tokens": 5}), 5),
        (json!({"max_completion_tokens": 6}), 6),
    ];
    let mut i = 0;
    for stream in [false, true] {
        for (limits, expect) in &cases {
            let model = &models[i];
            i += 1;
            let r = t
                .relay(
                    &key,
                    "/v1/chat/completions",
                    chat_body(model, limits, stream),
                )
                .await;
            assert_eq!(r.status, 200, "{limits} stream={stream}: {}", r.text());
            // One field only: OpenAI refuses both at once; max_tokens is the one every
            // OpenAI-compatible server honours for a non-reasoning model.
            assert_eq!(
                asked_upstream(&t, model),
                (Some(*expect), None),
                "{limits} stream={stream}"
            );
            assert_eq!(words(&r), *expect, "{limits} stream={stream}");
            let (quota, completion, content) = consume_row(&t, &r.request_id());
            assert_eq!((quota, completion), (REPORTED_PROMPT + expect, *expect));
            assert!(quota <= ESTIMATED_PROMPT + expect, "charge ≤ reservation");
            assert_eq!(content, None, "paid in full, nothing capped");
        }
    }
    // No limit sent: the model's limit (relay.default_max_output_tokens for a model not in
    // relay.max_output_tokens), as the balance allows it.
    let model = &models[i];
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body(model, &json!({}), false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(asked_upstream(&t, model), (Some(4096), None));
    assert_eq!(words(&r), 4096);
    assert_eq!(consume_row(&t, &r.request_id()).0, REPORTED_PROMPT + 4096);
}

#[tokio::test]
async fn with_no_limit_sent_the_balance_sets_it() {
    let t = TestServer::start().await;
    t.channel(
        &["mock-larger-a", "mock-larger-b", "mock-larger-c"],
        json!({}),
    )
    .await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    for (model, stream, before) in [("mock-larger-a", false, 200), ("mock-larger-b", true, 90)] {
        t.fund(before).await;
        let r = t
            .relay(
                &key,
                "/v1/chat/completions",
                chat_body(model, &json!({}), stream),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        // The most output the balance covers: ESTIMATED_PROMPT + limit ≤ balance.
        let limit = before - ESTIMATED_PROMPT;
        assert_eq!(asked_upstream(&t, model), (Some(limit), None));
        assert_eq!(words(&r), limit);
        let (quota, _, content) = consume_row(&t, &r.request_id());
        assert_eq!(quota, REPORTED_PROMPT + limit);
        assert_eq!(content, None);
        assert_eq!(t.user_balance(1).0, before - quota);
    }
    // One unit left: not even one completion token fits.
    assert_eq!(t.user_balance(1).0, 1);
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("mock-larger-c", &json!({}), false),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "insufficient_quota");
    // The key's own limit bounds it the same way.
    t.fund(1_000_000).await;
    let (kid, key) = t.key(json!({"quota": 50})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("mock-larger-c", &json!({}), true),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        asked_upstream(&t, "mock-larger-c"),
        (Some(50 - ESTIMATED_PROMPT), None)
    );
    assert_eq!(
        t.key_balance(kid),
        (50 - REPORTED_PROMPT - 42, REPORTED_PROMPT + 42)
    );
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}

#[tokio::test]
async fn completions_write_max_tokens_and_default_to_sixteen() {
    let t = TestServer::start().await;
    t.channel(
        &["mock-larger-x", "mock-larger-y", "mock-larger-z"],
        json!({}),
    )
    .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // "hello" is 1 word for the mock and estimated at 2.
    for (model, limits, stream, expect) in [
        (
            "mock-larger-x",
            json!({"max_tokens": 3, "max_completion_tokens": 900}),
            false,
            3,
        ),
        // The legacy API's documented default is 16: written, so no upstream goes past it.
        ("mock-larger-y", json!({}), true, 16),
        (
            "mock-larger-z",
            json!({"max_completion_tokens": 4}),
            false,
            4,
        ),
    ] {
        let mut body = json!({"model": model, "prompt": "hello", "stream": stream});
        for (k, v) in limits.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = t.relay(&key, "/v1/completions", body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(asked_upstream(&t, model), (Some(expect), None), "{model}");
        assert_eq!(words(&r), expect, "{model}");
        assert_eq!(consume_row(&t, &r.request_id()).0, 1 + expect, "{model}");
    }
}

#[tokio::test]
async fn reasoning_models_get_max_completion_tokens_and_never_both() {
    let t = TestServer::start().await;
    // Client names mapped to upstream names: the field follows the upstream model.
    t.channel(
        &["o3-mini", "gpt-4o-mini"],
        json!({"model_mapping": {"o3-mini": "o3-mini-mock-strict-mock-larger",
                                 "gpt-4o-mini": "gpt-4o-mini-mock-strict-mock-larger"}}),
    )
    .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Both fields from the client: a strict upstream (like OpenAI) would refuse them.
    let limits = json!({"max_tokens": 4096, "max_completion_tokens": 3});
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("o3-mini", &limits, false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        asked_upstream(&t, "o3-mini-mock-strict-mock-larger"),
        (None, Some(3))
    );
    assert_eq!(words(&r), 3);
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("gpt-4o-mini", &limits, true),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        asked_upstream(&t, "gpt-4o-mini-mock-strict-mock-larger"),
        (Some(3), None)
    );
    assert_eq!(words(&r), 3);
}

#[tokio::test]
async fn every_copy_the_upstream_may_generate_is_reserved() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x", "text-x"], json!({})).await;
    // 8 + 3 × 10 = 38 is reserved for n = 3; 37 is not enough.
    t.fund(37).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("gpt-x", &json!({"max_tokens": 10, "n": 3}), false),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    t.fund(38).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("gpt-x", &json!({"max_tokens": 10, "n": 3}), false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Legacy completions generate best_of copies server-side and bill them all.
    t.fund(2 + 4 * 10 - 1).await;
    let body = json!({"model": "text-x", "prompt": "hello", "max_tokens": 10, "best_of": 4});
    let r = t.relay(&key, "/v1/completions", body.clone()).await;
    assert_eq!(r.status, 429, "{}", r.text());
    t.fund(2 + 4 * 10).await;
    assert_eq!(t.relay(&key, "/v1/completions", body).await.status, 200);
    // Out-of-range limits and copies are the client's error, not a silent clamp.
    for bad in [
        json!({"n": 129}),
        json!({"n": 0}),
        json!({"n": "2"}),
        json!({"max_tokens": -1}),
        json!({"max_tokens": 1.5}),
        json!({"max_completion_tokens": "many"}),
    ] {
        let r = t
            .relay(
                &key,
                "/v1/chat/completions",
                chat_body("gpt-x", &bad, false),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_request", "{bad}");
    }
    let r = t
        .relay(
            &key,
            "/v1/completions",
            json!({"model": "text-x", "prompt": "x", "best_of": 21}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

/// Sends `bodies` at once (behind a barrier); returns the responses in order.
async fn race(t: &TestServer, key: &str, path: &str, bodies: Vec<Value>) -> Vec<Resp> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut tasks = Vec::new();
    for body in bodies {
        let (url, auth, barrier) = (t.url(path), format!("Bearer {key}"), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            send(
                "POST",
                &url,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(Bytes::from(body.to_string())),
            )
            .await
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

fn count(t: &TestServer, sql: &str) -> i64 {
    t.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn sixty_racing_calls_that_ask_for_4096_while_reserving_one_pay_exactly() {
    let t = TestServer::start().await;
    t.channel(&["mock-larger"], json!({})).await;
    t.fund(1_000_000).await;
    // The key's limit binds: 8 calls reserve 9 each (8 prompt + 1 completion) and cost 8.
    // A 9th would need 9 while at most 72 − 8 × 8 = 8 is ever free: exactly 8 pass,
    // however the calls interleave.
    let (kid, key) = t.key(json!({"quota": 72})).await;
    let limits = json!({"max_completion_tokens": 1, "max_tokens": 4096});
    let bodies = (0..60)
        .map(|i| chat_body("mock-larger", &limits, i % 2 == 0))
        .collect();
    let answers = race(&t, &key, "/v1/chat/completions", bodies).await;
    let ok: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    let refused = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!((ok.len(), refused), (8, 52));
    for r in &ok {
        assert_eq!(words(r), 1, "the upstream generated what was reserved");
        assert_eq!(consume_row(&t, &r.request_id()), (8, 1, None));
    }
    t.relays_idle().await;
    assert_eq!(t.key_balance(kid), (72 - 64, 64));
    assert_eq!(t.user_balance(1), (1_000_000 - 64, 64));
    assert_eq!(count(&t, "SELECT COUNT(*) FROM logs WHERE type = 2"), 8);
    assert_eq!(count(&t, "SELECT SUM(quota) FROM logs WHERE type = 2"), 64);
    // The 52 refusals make one error row (one per key per 10 s; the test clock stands still).
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM logs WHERE type = 5 AND status = 429"
        ),
        1
    );
    let key_account = t.state.catalog.key_account(kid).unwrap();
    assert_eq!(key_account.available(), 8, "memory and database agree");
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}

#[tokio::test]
async fn sixty_racing_calls_with_every_limit_shape_never_outrun_their_reservation() {
    let t = TestServer::start().await;
    // A model name per call, so each upstream request and log row is traceable to its call.
    let models: Vec<String> = (0..60).map(|i| format!("mock-larger-r{i}")).collect();
    let names: Vec<&str> = models.iter().map(String::as_str).collect();
    t.channel(&names, json!({})).await;
    t.fund(1_000_000).await;
    let initial = 3_000;
    let (kid, key) = t.key(json!({"quota": initial})).await;
    let shapes = [
        json!({"max_completion_tokens": 1, "max_tokens": 4096}),
        json!({"max_tokens": 40}),
        json!({"max_completion_tokens": 40}),
        json!({}),
    ];
    let bodies = (0..60)
        .map(|i| chat_body(&models[i], &shapes[i % 4], i % 3 == 0))
        .collect();
    let answers = race(&t, &key, "/v1/chat/completions", bodies).await;
    t.relays_idle().await;
    let mut ok = 0;
    let mut charged = 0;
    for (i, r) in answers.iter().enumerate() {
        match r.status {
            200 => {
                ok += 1;
                let (mt, mct) = asked_upstream(&t, &models[i]);
                assert_eq!(mct, None, "call {i}: one field, max_tokens");
                let limit = mt.unwrap();
                match i % 4 {
                    0 => assert_eq!(limit, 1),
                    1 | 2 => assert_eq!(limit, 40),
                    _ => assert!((1..=4096).contains(&limit), "{limit}"),
                }
                // The upstream generated all it was allowed; the row bills every word.
                assert_eq!(words(r), limit, "call {i}");
                let (quota, completion, content) = consume_row(&t, &r.request_id());
                assert_eq!((quota, completion), (REPORTED_PROMPT + limit, limit));
                assert!(quota <= ESTIMATED_PROMPT + limit, "charge ≤ reservation");
                assert_eq!(content, None, "call {i}: paid in full, not capped");
                charged += quota;
            }
            429 => assert_eq!(r.json()["error"]["code"], "insufficient_quota"),
            s => panic!("call {i}: status {s}: {}", r.text()),
        }
    }
    assert!(ok > 0);
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM logs WHERE type = 2"),
        ok,
        "one consume row per delivered answer"
    );
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM logs WHERE type = 5"),
        i64::from(ok < 60),
        "the refusals make one error row"
    );
    // Ledger = logs, exactly: what the rows charged is what the key and the user lost.
    assert_eq!(
        count(&t, "SELECT SUM(quota) FROM logs WHERE type = 2"),
        charged
    );
    assert_eq!(t.key_balance(kid), (initial - charged, charged));
    assert_eq!(t.user_balance(1), (1_000_000 - charged, charged));
    let key_account = t.state.catalog.key_account(kid).unwrap();
    assert_eq!(key_account.available(), initial - charged);
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}

#[tokio::test]
async fn quota_refusals_write_one_error_row_per_subject_per_10_s() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1_000).await;
    let (kid, key) = t.key(json!({"quota": 20})).await;
    let (_, rich_key) = t.key(json!({"unlimited": true})).await;
    let asks = |n: u64| chat_body("gpt-x", &json!({"max_tokens": n}), false);
    // The key cannot cover 8 + 100: five refusals, one row.
    for _ in 0..5 {
        let r = t.relay(&key, "/v1/chat/completions", asks(100)).await;
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(r.json()["error"]["type"], "insufficient_quota");
    }
    let rows = |t: &TestServer| -> Vec<(Option<i64>, Option<i64>, String)> {
        let db = t.db();
        let mut st = db
            .prepare(
                "SELECT key_id, channel_id, content FROM logs WHERE type = 5 AND status = 429 ORDER BY id",
            )
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let found = rows(&t);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (Some(kid), None));
    assert!(
        found[0]
            .2
            .contains("the API key's remaining quota is lower"),
        "{}",
        found[0].2
    );
    // The user is a subject of its own: its first refusal gets a row at once.
    let r = t
        .relay(&rich_key, "/v1/chat/completions", asks(5_000))
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(rows(&t).len(), 2);
    assert!(rows(&t)[1].2.contains("your balance is lower"));
    // Ten seconds on (the limiter's clock), the key's next refusal gets a row that counts
    // the four folded into the first.
    t.clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(
        t.relay(&key, "/v1/chat/completions", asks(100))
            .await
            .status,
        429
    );
    let found = rows(&t);
    assert_eq!(found.len(), 3);
    assert!(
        found[2].2.ends_with("(4 more refusals since the last row)"),
        "{}",
        found[2].2
    );
    // Admins find them as the runbook says; every refusal is counted.
    let listed = t.get("/api/log?type=error&status=429").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    assert_eq!(t.get("/api/stats").await["quota_refused"], 7);
    let metrics = t.api("GET", "/metrics", None).await;
    assert!(
        metrics.text().contains("\nsluice_quota_refused_total 7\n"),
        "{}",
        metrics.text()
    );
    // Nothing was charged, nothing reached upstream.
    assert_eq!(t.mock.calls(), 0);
    assert_eq!(t.user_balance(1), (1_000, 0));
}

#[tokio::test]
async fn an_upstream_billing_a_megabyte_prompt_as_7_tokens_is_an_anomaly_of_its_channel() {
    let t = TestServer::start().await;
    let liar = t.channel(&["mock-prompt-7"], json!({"name": "liar"})).await;
    let honest = t.channel(&["gpt-x"], json!({"name": "honest"})).await;
    t.fund(100_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // 1 MiB of prompt: at least 8192 tokens for any tokenizer whose longest token is 128
    // bytes (tiktoken's longest are runs of 128 spaces).
    let big = "word ".repeat(1024 * 1024 / 5);
    let ask = |model: &str| {
        json!({"model": model, "max_tokens": 2,
               "messages": [{"role": "user", "content": big}]})
    };
    for _ in 0..2 {
        let r = t
            .relay(&key, "/v1/chat/completions", ask("mock-prompt-7"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["usage"]["prompt_tokens"], 7);
    }
    // The honest channel reports its (mock) count, far above the floor: no anomaly.
    let r = t.relay(&key, "/v1/chat/completions", ask("gpt-x")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A small prompt reported as 7 is no anomaly either: "hello" could be 7 tokens.
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("mock-prompt-7", &json!({}), false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    t.relays_idle().await;

    let report = t.get("/api/anomalies").await;
    let found = report["prompt_undercounts"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{report}");
    let a = &found[0];
    assert_eq!(a["channel_id"], liar);
    assert_eq!(a["calls"], 2);
    assert_eq!(a["last"]["model"], "mock-prompt-7");
    assert_eq!(a["last"]["reported_prompt_tokens"], 7);
    assert_eq!(a["last"]["least_prompt_tokens"], 1024 * 1024 / 5 * 5 / 128);
    assert!(a["last"]["request_id"].as_str().unwrap().len() == 26);
    let stats = t.get("/api/stats").await;
    assert_eq!(stats["channels"][liar.to_string()]["prompt_undercounts"], 2);
    assert_eq!(
        stats["channels"][honest.to_string()]["prompt_undercounts"],
        0
    );
    let metrics = t.api("GET", "/metrics", None).await.text();
    assert!(
        metrics.contains(&format!(
            "\nsluice_upstream_prompt_undercounts_total{{channel=\"{liar}\"}} 2\n"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "\nsluice_upstream_prompt_undercounts_total{{channel=\"{honest}\"}} 0\n"
    )));
}

/// Sends `body` to `path` on a raw connection, reads until `until` has arrived, then hangs up
/// (nothing unread is left, so the close is a clean FIN). Returns the request id.
async fn hang_up_after(t: &TestServer, key: &str, path: &str, body: &Value, until: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    let deadline = std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(until) {
        let n = tokio::time::timeout(deadline, s.read(&mut buf))
            .await
            .expect("the answer arrives")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).to_string();
    drop(s);
    text.lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id")
        .trim()
        .to_string()
}

/// The content of a request's log row, as the admin log API shows it.
async fn row_content(t: &TestServer, rid: &str) -> String {
    let v = t.get(&format!("/api/log?request_id={rid}")).await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["type"], 2, "a consume row: {v}");
    items[0]["content"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_client_that_leaves_is_named_in_its_row() {
    let t = TestServer::start().await;
    t.channel(
        &["mock-stall-end-400", "mock-stall-400", "mock-slow-300"],
        json!({}),
    )
    .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Gone after all the content, while upstream still owes the usage chunk and the end.
    let body = chat_body("mock-stall-end-400", &json!({"max_tokens": 3}), true);
    let late = hang_up_after(
        &t,
        &key,
        "/v1/chat/completions",
        &body,
        "\"finish_reason\":\"stop\"",
    )
    .await;
    // Gone mid-stream, during a pause after the first word.
    let body = chat_body("mock-stall-400", &json!({"max_tokens": 5}), true);
    let mid = hang_up_after(
        &t,
        &key,
        "/v1/chat/completions",
        &body,
        "\"content\":\"hello\"",
    )
    .await;
    t.relays_idle().await;
    for (rid, completion) in [(&late, 3), (&mid, 5)] {
        let content = row_content(&t, rid).await;
        assert!(
            content.contains("client disconnected before the end of the stream"),
            "{rid}: {content:?}"
        );
        // Billed in full all the same, by upstream's usage.
        let rows = t.log_rows(rid);
        assert_eq!(rows[0].4, completion);
        assert_eq!(rows[0].5.as_deref(), Some("upstream"));
    }
    // A non-stream client gone before the answer came.
    let body = chat_body("mock-slow-300", &json!({"max_tokens": 4}), false);
    let addr = t.base.trim_start_matches("http://").to_string();
    let rid = {
        use tokio::io::AsyncWriteExt;
        let before = t.mock.calls();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let body = body.to_string();
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            t.mock.wait_for_calls(before + 1),
        )
        .await
        .expect("the call reached the mock");
        drop(s);
        t.relays_idle().await;
        let id: String = t
            .db()
            .query_row(
                "SELECT request_id FROM logs WHERE type = 2 AND model = 'mock-slow-300'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        id
    };
    let content = row_content(&t, &rid).await;
    assert!(
        content.contains("client disconnected before the answer"),
        "{content:?}"
    );
    // A client that stays gets no such note.
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            chat_body("mock-stall-end-400", &json!({"max_tokens": 2}), true),
        )
        .await;
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    assert_eq!(row_content(&t, &r.request_id()).await, "");
}

#[tokio::test]
async fn a_key_sent_twice_reaches_upstream_once_with_the_value_priced() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x", "emb-cheap", "emb-dear"], json!({}))
        .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let raw = |body: &'static str| {
        let auth = format!("Bearer {key}");
        let url = t.url(if body.contains("messages") {
            "/v1/chat/completions"
        } else {
            "/v1/embeddings"
        });
        async move {
            send(
                "POST",
                &url,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(Bytes::from_static(body.as_bytes())),
            )
            .await
        }
    };
    let occurrences = |hay: &[u8], needle: &str| {
        hay.windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count()
    };
    // sluice reads the last of two keys; a parser that takes the first (cJSON) would have
    // generated 4096 on a reservation for 1, or embedded with the dearer model.
    let r = raw(r#"{"model":"gpt-x","messages":[{"role":"user","content":"hello"}],"max_tokens":4096,"max_tokens":1}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(
        occurrences(&seen.raw, "\"max_tokens\""),
        1,
        "{:?}",
        seen.raw
    );
    assert_eq!(seen.body["max_tokens"], 1);
    let r = raw(r#"{"model":"emb-dear","input":"a b","model":"emb-cheap"}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(occurrences(&seen.raw, "\"model\""), 1, "{:?}", seen.raw);
    assert_eq!(seen.body["model"], "emb-cheap");
    let model: String = t
        .db()
        .query_row(
            "SELECT model FROM logs WHERE request_id = ?1",
            [r.request_id()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(model, "emb-cheap", "priced and sent the same");
}
