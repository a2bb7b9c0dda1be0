//! The relay over real HTTP: endpoints, errors, retries, streaming, disconnects, accounting.

use crate::common::{Resp, TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `data:` payloads of an SSE body, in order.
fn events(r: &Resp) -> Vec<String> {
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn non_stream_chat_is_relayed_charged_and_logged() {
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (kid, key) = t.key(json!({"quota": 500_000})).await;
    // gpt-4o-mini: ratio 0.075, completion ratio 4 → (7 + 5*4) * 0.075 = 2.025 → 2
    let r = t.chat(&key, "gpt-4o-mini", 5, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "hello hello hello hello hello"
    );
    assert_eq!(v["usage"]["completion_tokens"], 5);
    // upstream got the channel's key, not the client's, and the body unchanged
    let seen = t.mock.last_request().unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer sk-upstream-secret-canary")
    );
    assert_eq!(seen.body["model"], "gpt-4o-mini");
    assert!(seen.body.get("stream_options").is_none());
    let rid = r.request_id();
    assert_eq!(rid.len(), 26, "a ULID");
    let rows = t.log_rows(&rid);
    assert_eq!(rows, vec![(2, 2, 200, 7, 5, Some("upstream".into()))]);
    assert_eq!(t.user_balance(1), (1_000_000 - 2, 2));
    assert_eq!(t.key_balance(kid), (500_000 - 2, 2));
}

#[tokio::test]
async fn stream_hides_injected_usage_and_ends_after_the_charge() {
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "gpt-4o-mini", 4, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let ev = events(&r);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert!(
        ev.iter().all(|e| !e.contains("\"usage\":{")),
        "usage chunk leaked: {ev:?}"
    );
    let text: String = ev[..ev.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "hello hello hello hello");
    // upstream was asked for usage
    assert_eq!(
        t.mock.last_request().unwrap().body["stream_options"]["include_usage"],
        true
    );
    // charged by upstream's usage (that [DONE] waits for the commit: done_waits_for_the_charge_to_commit)
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0, rows[0].3, rows[0].4), (2, 7, 4));
    assert_eq!(rows[0].5.as_deref(), Some("upstream"));
}

#[tokio::test]
async fn done_waits_for_the_charge_to_commit() {
    use http_body_util::BodyExt;
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // A second connection holds the write lock: the charge cannot commit until it lets go
    // (the writer waits up to 10 s for a lock).
    let lock = t.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}],
                      "max_tokens": 4, "stream": true});
    let req = http::Request::post(t.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = crate::common::client().request(req).await.unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"finish_reason\":\"stop\"") {
        let frame = body.frame().await.unwrap().unwrap();
        seen.extend_from_slice(frame.data_ref().unwrap());
    }
    // Every word is here, and upstream's stream has ended. Nothing more may come while the
    // charge waits for the lock; an absence can only be watched for a while: 500 ms, far
    // longer than [DONE] takes to follow the content when it does not wait.
    let more = tokio::time::timeout(Duration::from_millis(500), body.frame()).await;
    assert!(
        more.is_err(),
        "something arrived before the charge committed: {more:?}"
    );
    assert!(!String::from_utf8_lossy(&seen).contains("[DONE]"));
    assert!(t.log_rows(&rid).is_empty(), "not committed yet");
    lock.execute_batch("COMMIT").unwrap();
    while let Some(frame) = body.frame().await {
        seen.extend_from_slice(frame.unwrap().data_ref().unwrap());
    }
    assert!(String::from_utf8_lossy(&seen).ends_with("data: [DONE]\n\n"));
    // The row was there when [DONE] arrived.
    assert_eq!(t.log_rows(&rid).len(), 1);
}

#[tokio::test]
async fn stream_passes_usage_to_a_client_that_asked() {
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}],
                   "max_tokens": 3, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    let ev = events(&r);
    let usage: Vec<&String> = ev.iter().filter(|e| e.contains("\"usage\":{")).collect();
    assert_eq!(usage.len(), 1, "{ev:?}");
    assert_eq!(ev.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn missing_usage_is_counted_locally() {
    let t = TestServer::start().await;
    t.channel(&["mock-nousage"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    for stream in [false, true] {
        let r = t.chat(&key, "mock-nousage", 9, stream).await;
        assert_eq!(r.status, 200);
        let rows = t.log_rows(&r.request_id());
        // prompt from the request (tiktoken: 7), completion counted from the text (9 words = 9 tokens)
        assert_eq!(rows[0].3, 7);
        assert_eq!(rows[0].4, 9, "stream={stream}");
        assert_eq!(rows[0].5.as_deref(), Some("local"));
        assert_eq!(rows[0].1, 16, "ratio 1: quota = 7 + 9");
    }
}

#[tokio::test]
async fn completions_embeddings_and_models() {
    let t = TestServer::start().await;
    t.channel(
        &["gpt-3.5-turbo-instruct", "text-embedding-3-small"],
        json!({}),
    )
    .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t
        .relay(
            &key,
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "say hi", "max_tokens": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["text"], "hello hello");
    assert_eq!(t.mock.last_request().unwrap().path, "/v1/completions");
    let r = t
        .relay(
            &key,
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": ["a b", "c"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let rows = t.log_rows(&r.request_id());
    assert_eq!((rows[0].0, rows[0].3), (2, 3));
    let auth = format!("Bearer {key}");
    let r = send(
        "GET",
        &t.url("/v1/models"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["gpt-3.5-turbo-instruct", "text-embedding-3-small"]);
    // a key limited to one model sees only that one, and is refused the other
    let (_, narrow) = t
        .key(json!({"unlimited": true, "models": ["text-embedding-3-small"]}))
        .await;
    let auth = format!("Bearer {narrow}");
    let r = send(
        "GET",
        &t.url("/v1/models"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    let r = t
        .relay(
            &narrow,
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "model_not_allowed");
    // x-api-key works too
    let r = send("GET", &t.url("/v1/models"), &[("x-api-key", &narrow)], None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn client_errors_have_openai_shape_and_status() {
    let t = TestServer::start_with_options(json!({"relay.max_body_bytes": 4096})).await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (kid, key) = t.key(json!({"quota": 1000})).await;
    let calls = t.mock.calls();
    let check = |r: &Resp, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 5);
        assert!(v["error"]["type"].is_string());
    };
    // no key, wrong key
    let r = send(
        "POST",
        &t.url("/v1/chat/completions"),
        &[],
        Some(Bytes::from("{}")),
    )
    .await;
    check(&r, 401, "invalid_api_key");
    check(
        &t.chat("sk-nope", "gpt-4o-mini", 1, false).await,
        401,
        "invalid_api_key",
    );
    // malformed JSON, not an object, no model
    let auth = format!("Bearer {key}");
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    check(
        &send(
            "POST",
            &t.url("/v1/chat/completions"),
            &h,
            Some(Bytes::from("{nope")),
        )
        .await,
        400,
        "invalid_request",
    );
    check(
        &send(
            "POST",
            &t.url("/v1/chat/completions"),
            &h,
            Some(Bytes::from("[]")),
        )
        .await,
        400,
        "invalid_request",
    );
    check(
        &t.relay(&key, "/v1/chat/completions", json!({"messages": []}))
            .await,
        400,
        "invalid_request",
    );
    // invalid UTF-8
    check(
        &send(
            "POST",
            &t.url("/v1/chat/completions"),
            &h,
            Some(Bytes::from_static(b"{\"model\":\"\xff\"}")),
        )
        .await,
        400,
        "invalid_request",
    );
    // too large: refused from Content-Length, and when streamed without one
    let big = Bytes::from(vec![b' '; 5000]);
    check(
        &send("POST", &t.url("/v1/chat/completions"), &h, Some(big)).await,
        413,
        "request_too_large",
    );
    // no channel for the model
    check(
        &t.chat(&key, "gpt-4", 1, false).await,
        404,
        "model_not_found",
    );
    // unpriced models are refused when not allowed
    t.put(
        "/api/option",
        json!({"pricing.allow_unpriced_models": false}),
    )
    .await;
    t.channel(&["mystery-model"], json!({})).await;
    check(
        &t.chat(&key, "mystery-model", 1, false).await,
        403,
        "forbidden",
    );
    // the key cannot cover the estimate: (7 + 4000*4) * 0.075 = 1200.5 > 1000
    check(
        &t.chat(&key, "gpt-4o-mini", 4000, false).await,
        429,
        "insufficient_quota",
    );
    // disabled and expired keys
    t.patch(&format!("/api/keys/{kid}"), json!({"enabled": false}))
        .await;
    check(
        &t.chat(&key, "gpt-4o-mini", 1, false).await,
        403,
        "forbidden",
    );
    // The API refuses a past expiry, so age the key in the database, then make any admin
    // change so the catalog reloads it.
    t.db()
        .execute("UPDATE api_keys SET expires_at = 1 WHERE id = ?1", [kid])
        .unwrap();
    t.patch(&format!("/api/keys/{kid}"), json!({"enabled": true}))
        .await;
    check(
        &t.chat(&key, "gpt-4o-mini", 1, false).await,
        403,
        "forbidden",
    );
    // none of these reached upstream or cost anything
    assert_eq!(t.mock.calls(), calls);
    assert_eq!(t.user_balance(1), (1_000_000, 0));
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let t = TestServer::start_with_options(json!({"relay.max_body_bytes": 4096})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Announce 1 GiB and send nothing: the answer must come without the body.
    let addr = t.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[tokio::test]
async fn upstream_failures_release_the_reservation_and_log_one_error() {
    let t = TestServer::start_with_options(json!({
        "relay.retries": 0,
        "relay.first_byte_timeout_ms": 300,
        // The 401 would turn the channel off (channel_health) before the next cases.
        "channel.auto_disable": false,
    }))
    .await;
    t.channel(
        &["mock-500", "mock-429", "mock-slow-2000", "mock-401"],
        json!({}),
    )
    .await;
    t.fund(10_000).await;
    let (kid, key) = t.key(json!({"quota": 5_000})).await;
    for (model, status, code) in [
        ("mock-500", 502, "bad_gateway"),
        ("mock-401", 502, "bad_gateway"),
        ("mock-429", 429, "rate_limit_exceeded"),
        ("mock-slow-2000", 504, "gateway_timeout"),
    ] {
        let r = t.chat(&key, model, 5, false).await;
        assert_eq!(r.status, status, "{model}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], code);
        let rows = t.log_rows(&r.request_id());
        assert_eq!(rows.len(), 1, "{model}");
        assert_eq!(
            (rows[0].0, rows[0].1, rows[0].2),
            (5, 0, i64::from(status)),
            "{model}"
        );
        // nothing in the error row or body names the upstream's secret
        assert!(!r.text().contains("canary"));
    }
    assert_eq!(t.user_balance(1), (10_000, 0));
    assert_eq!(t.key_balance(kid), (5_000, 0));
    // the in-memory ledger released every reservation too: a call costing almost all passes
    assert_eq!(t.state.catalog.user_account(1).unwrap().available(), 10_000);
}

#[tokio::test]
async fn retries_move_to_the_next_channel_before_any_byte() {
    let t = TestServer::start().await;
    // Higher priority channel fails (its mapping sends the model to mock-500); the next serves it.
    t.channel(
        &["gpt-4o-mini"],
        json!({"priority": 10, "model_mapping": {"gpt-4o-mini": "mock-500"}}),
    )
    .await;
    let good = t.channel(&["gpt-4o-mini"], json!({"priority": 0})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let before = t.mock.calls();
    for stream in [false, true] {
        let r = t.chat(&key, "gpt-4o-mini", 3, stream).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = t.log_rows(&r.request_id());
        assert_eq!(rows.len(), 1, "one log row per client request");
        assert_eq!(rows[0].0, 2);
        let ch: i64 = t
            .db()
            .query_row(
                "SELECT channel_id FROM logs WHERE request_id = ?1",
                [r.request_id()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ch, good);
    }
    let models: Vec<String> = t
        .mock
        .requests()
        .iter()
        .skip(before as usize)
        .map(|r| r.body["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        models,
        ["mock-500", "gpt-4o-mini", "mock-500", "gpt-4o-mini"]
    );
}

#[tokio::test]
async fn an_8_mib_sse_line_passes_intact() {
    let t = TestServer::start().await;
    t.channel(&["mock-huge"], json!({})).await;
    t.fund(1_000_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "mock-huge", 1, true).await;
    assert_eq!(r.status, 200);
    let ev = events(&r);
    let longest = ev.iter().map(String::len).max().unwrap();
    assert!(longest >= 8 * 1024 * 1024, "{longest}");
    let v: Value = serde_json::from_str(ev.iter().find(|e| e.len() == longest).unwrap()).unwrap();
    assert!(v["choices"][0]["delta"]["content"].as_str().unwrap().len() >= 8 * 1024 * 1024);
    assert_eq!(ev.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn an_sse_line_over_the_limit_ends_the_stream_cleanly() {
    let t = TestServer::start_with_options(json!({"relay.max_sse_line_bytes": 1024 * 1024})).await;
    t.channel(&["mock-huge"], json!({})).await;
    t.fund(1_000_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "mock-huge", 1, true).await;
    let ev = events(&r);
    let last: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line limit"),
        "{last}"
    );
    assert_eq!(t.log_rows(&r.request_id()).len(), 1);
}

#[tokio::test]
async fn upstream_closing_mid_stream_bills_what_was_streamed() {
    let t = TestServer::start().await;
    t.channel(&["mock-close"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "mock-close", 10, true).await;
    assert_eq!(r.status, 200);
    let ev = events(&r);
    let last: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error");
    let streamed: usize = ev
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|v| v["choices"][0]["delta"]["content"].is_string())
        .count();
    assert!(streamed > 0 && streamed < 10);
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1);
    let (ty, quota, status, prompt, completion, source) = rows[0].clone();
    assert_eq!((ty, status, source.as_deref()), (2, 502, Some("local")));
    assert_eq!(
        completion, streamed as i64,
        "billed exactly the words that were streamed"
    );
    assert_eq!(quota, prompt + completion);
    assert_eq!(t.charged(1), quota);
    assert_eq!(t.user_balance(1).1, quota);
}

/// Reads one HTTP response's head and the first body bytes from a raw socket, then hangs up.
async fn hang_up_after_first_bytes(addr: &str, key: &str, body: &Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_billed_to_upstreams_usage() {
    let t = TestServer::start().await;
    t.channel(&["mock-stall-300"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let addr = t.base.trim_start_matches("http://").to_string();
    let body = json!({"model": "mock-stall-300", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 6, "stream": true});
    hang_up_after_first_bytes(&addr, &key, &body).await;
    t.relays_idle().await;
    let db = t.db();
    let (quota, completion, source, content): (i64, i64, String, String) = db
        .query_row(
            "SELECT quota, completion_tokens, usage_source, content FROM logs WHERE type = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((quota, completion, source.as_str()), (13, 6, "upstream"));
    assert!(content.contains("disconnected"), "{content}");
    assert_eq!(
        t.mock.completed_streams(),
        1,
        "upstream was read to the end"
    );
    assert_eq!(t.user_balance(1), (1_000_000 - 13, 13));
}

#[tokio::test]
async fn a_non_stream_client_that_hangs_up_is_still_charged() {
    let t = TestServer::start().await;
    t.channel(&["mock-slow-300"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let addr = t.base.trim_start_matches("http://").to_string();
    let body = json!({"model": "mock-slow-300", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}).to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Hang up once the request is in flight upstream (the mock has recorded it).
    tokio::time::timeout(Duration::from_secs(10), t.mock.wait_for_calls(1))
        .await
        .expect("the call reached the mock");
    drop(s);
    t.relays_idle().await;
    assert_eq!(t.charged(1), 11);
    assert_eq!(t.user_balance(1), (1_000_000 - 11, 11));
}

#[tokio::test]
async fn concurrent_requests_never_overdraw() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Each call costs 100 (ratio 1): 7 prompt + 93 completion. It reserves 101: the estimate
    // counts "hello" as 2 tokens (it never counts below tiktoken's 1), so the prompt is 8.
    // 9 reservations fit in 1000 at once; a 10th never does: when it arrives, the 9 before it
    // hold 101 each or were charged 100, so at most 1000 − 9 × 100 = 100 < 101 is free.
    // Exactly 9 pass however the calls interleave.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, key, barrier) = (t.url("/v1/chat/completions"), key.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 93});
            let auth = format!("Bearer {key}");
            barrier.wait().await;
            send("POST", &url, &[("authorization", &auth), ("content-type", "application/json")], Some(Bytes::from(body.to_string())))
                .await
                .status
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            429 => refused += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!((ok, refused), (9, 41));
    assert_eq!(t.user_balance(1), (100, 900));
    assert_eq!(
        t.charged(1),
        900,
        "charges in the log sum to what was taken"
    );
    let db = t.db();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM logs WHERE type = 2"), 9);
    // The 41 refusals: one row (one per user per 10 s; the test clock stands still).
    assert_eq!(count("SELECT COUNT(*) FROM logs WHERE type = 5"), 1);
    assert_eq!(t.state.catalog.user_account(1).unwrap().available(), 100);
}

#[tokio::test]
async fn billing_endpoints_report_the_key() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t
        .key(json!({"quota": 500_000, "expires_at": 4_000_000_000i64}))
        .await;
    let r = t.chat(&key, "gpt-x", 3, false).await;
    assert_eq!(r.status, 200);
    let auth = format!("Bearer {key}");
    for prefix in ["", "/v1"] {
        let r = send(
            "GET",
            &t.url(&format!("{prefix}/dashboard/billing/subscription")),
            &[("authorization", &auth)],
            None,
        )
        .await;
        let v = r.json();
        assert_eq!(v["object"], "billing_subscription");
        assert_eq!(v["hard_limit_usd"], 1.0);
        assert_eq!(v["access_until"], 4_000_000_000i64);
        let r = send(
            "GET",
            &t.url(&format!("{prefix}/dashboard/billing/usage")),
            &[("authorization", &auth)],
            None,
        )
        .await;
        let v = r.json();
        assert_eq!(v["object"], "list");
        // 10 units = $0.00002 = 0.002 cents
        assert!(
            (v["total_usage"].as_f64().unwrap() - 0.002).abs() < 1e-9,
            "{v}"
        );
    }
    let (_, unlimited) = t.key(json!({"unlimited": true})).await;
    let auth = format!("Bearer {unlimited}");
    let r = send(
        "GET",
        &t.url("/dashboard/billing/subscription"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.json()["hard_limit_usd"], 100_000_000.0);
}

#[tokio::test]
async fn stream_events_reach_the_client_before_upstream_finishes() {
    use http_body_util::BodyExt;
    let t = TestServer::start_with_options(json!({"relay.idle_timeout_ms": 10_000})).await;
    t.channel(&["mock-stall-1500"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let body = json!({"model": "mock-stall-1500", "messages": [{"role": "user", "content": "hello"}],
                      "max_tokens": 4, "stream": true});
    let req = http::Request::post(t.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = crate::common::client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"content\":\"hello\"") {
        let frame = body.frame().await.unwrap().unwrap();
        seen.extend_from_slice(frame.data_ref().unwrap());
    }
    // The first word is here while upstream is still stalled before the rest.
    assert_eq!(t.mock.completed_streams(), 0);
    while body.frame().await.is_some() {}
    assert_eq!(t.mock.completed_streams(), 1);
}
