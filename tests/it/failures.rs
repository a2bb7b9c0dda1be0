//! The money failure paths, end to end: a charge whose commit fails, a charge capped between
//! the key and the user, a stream whose upstream goes silent, a client that hangs up on an
//! upstream that sends no usage, an over-long SSE line. Each ends with ledger = logs.
//!
//! Prices are ratio 1 (quota = prompt + completion). The one-message "hello" chat is 7 prompt
//! tokens by the mock's rule and by tiktoken, and is estimated at 8.

use crate::common::{Resp, TestServer};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn events(r: &Resp) -> Vec<String> {
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// Content events that reached the client.
fn streamed_words(r: &Resp) -> i64 {
    events(r)
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|v| v["choices"][0]["delta"]["content"].is_string())
        .count() as i64
}

fn chat(model: &str, max_tokens: u64, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
           "max_tokens": max_tokens, "stream": stream})
}

/// Every balance agrees with the rows, in the database and in memory.
async fn ledger_equals_logs(t: &TestServer, initial: i64) {
    t.relays_idle().await;
    let charged = t.charged(1);
    assert_eq!(t.user_balance(1), (initial - charged, charged));
    assert_eq!(
        t.state.catalog.user_account(1).unwrap().available(),
        initial - charged,
        "memory agrees with the database"
    );
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}

/// (type, quota, status, prompt, completion, usage_source, content) of a row.
type Row = (i64, i64, i64, i64, i64, Option<String>, String);

/// The rows of a request.
fn rows(t: &TestServer, rid: &str) -> Vec<Row> {
    let db = t.db();
    let mut st = db
        .prepare(
            "SELECT type, quota, COALESCE(status, 0), prompt_tokens, completion_tokens, usage_source,
                    COALESCE(content, '') FROM logs WHERE request_id = ?1",
        )
        .unwrap();
    st.query_map([rid], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Sets how long the writer waits for another connection's lock before giving up.
async fn writer_busy_timeout(t: &TestServer, wait: Duration) {
    t.state
        .store
        .writer
        .exec(move |c| Ok(c.busy_timeout(wait)?))
        .await
        .unwrap();
}

/// One call whose charge cannot commit: someone holds the database's write lock (an
/// operator's sqlite3 shell, a stuck tool) and the writer gives up after 300 ms (10 s in
/// service). A server of its own per case: a failed commit makes the store unready for the
/// calls after it until a ping passes.
async fn charge_cannot_commit(stream: bool) {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    let initial = 10_000;
    t.fund(initial).await;
    let (kid, key) = t.key(json!({"quota": 5_000})).await;
    writer_busy_timeout(&t, Duration::from_millis(300)).await;
    let lock = t.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = t
        .relay(&key, "/v1/chat/completions", chat("gpt-x", 5, stream))
        .await;
    assert_eq!(t.mock.calls(), 1, "the call reached upstream");
    if stream {
        // The content went out; the end did not: an error event instead of [DONE].
        assert_eq!(r.status, 200);
        assert_eq!(streamed_words(&r), 5);
        let last: Value = serde_json::from_str(events(&r).last().unwrap()).unwrap();
        assert_eq!(last["error"]["type"], "server_error", "{last}");
        assert!(!r.text().contains("[DONE]"));
    } else {
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "database_unavailable");
        assert!(!r.text().contains("hello"), "no answer without its charge");
    }
    // The charge was given back in memory at once: nothing is held or taken.
    assert_eq!(
        t.state.catalog.user_account(1).unwrap().available(),
        initial
    );
    assert_eq!(t.state.catalog.key_account(kid).unwrap().available(), 5_000);
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    // Nothing was written for it; once the store answers a ping again, the next call is
    // charged as usual.
    assert_eq!(t.charged(1), 0);
    assert_eq!(t.key_balance(kid), (5_000, 0));
    writer_busy_timeout(&t, Duration::from_secs(10)).await;
    assert!(sluice::dbhealth::check(&t.state).await);
    let r = t.chat(&key, "gpt-x", 5, stream).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(rows(&t, &r.request_id())[0].1, 12);
    assert_eq!(t.key_balance(kid), (5_000 - 12, 12));
    ledger_equals_logs(&t, initial).await;
}

#[tokio::test]
async fn a_charge_that_cannot_commit_is_refunded_and_the_call_fails_closed() {
    charge_cannot_commit(false).await;
}

#[tokio::test]
async fn a_stream_charge_that_cannot_commit_is_refunded_and_ends_without_done() {
    charge_cannot_commit(true).await;
}

#[tokio::test]
async fn a_cost_above_the_reservation_is_capped_at_the_smaller_of_key_and_user() {
    let t = TestServer::start().await;
    // The upstream reports 100 × the prompt: 700 + 5 = 705, where 8 + 5 = 13 was reserved.
    t.channel(&["mock-inflate-100"], json!({})).await;
    for (key_quota, user_balance) in [(500, 300), (300, 500)] {
        t.fund(user_balance).await;
        let (kid, key) = t.key(json!({"quota": key_quota})).await;
        let r = t.chat(&key, "mock-inflate-100", 5, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let charge = key_quota.min(user_balance);
        let found = rows(&t, &r.request_id());
        assert_eq!(found.len(), 1);
        let (ty, quota, _, prompt, completion, source, content) = found[0].clone();
        assert_eq!((ty, quota, prompt, completion), (2, charge, 700, 5));
        assert_eq!(source.as_deref(), Some("upstream"));
        assert_eq!(content, "cost 705 capped at the balance");
        // Both paid the same; neither went below zero.
        assert_eq!(t.key_balance(kid), (key_quota - charge, charge));
        assert_eq!(t.user_balance(1).0, user_balance - charge);
        assert_eq!(
            t.state.catalog.key_account(kid).unwrap().available(),
            key_quota - charge
        );
        assert_eq!(
            t.state.catalog.user_account(1).unwrap().available(),
            user_balance - charge
        );
    }
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}

#[tokio::test]
async fn a_stream_whose_upstream_goes_silent_is_billed_for_what_came() {
    let t = TestServer::start_with_options(json!({"relay.idle_timeout_ms": 300})).await;
    // One word, then 30 s of silence (the stream is abandoned long before).
    t.channel(&["mock-stall-30000"], json!({})).await;
    let initial = 1_000_000;
    t.fund(initial).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "mock-stall-30000", 6, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(streamed_words(&r), 1);
    let last: Value = serde_json::from_str(events(&r).last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idle timeout")
    );
    let found = rows(&t, &r.request_id());
    assert_eq!(found.len(), 1);
    let (ty, quota, status, prompt, completion, source, content) = found[0].clone();
    // No usage came: counted here, the word that was streamed and the prompt.
    assert_eq!((ty, quota, status, prompt, completion), (2, 8, 502, 7, 1));
    assert_eq!(source.as_deref(), Some("local"));
    assert!(
        content.contains("went silent mid-stream (idle timeout)"),
        "{content}"
    );
    ledger_equals_logs(&t, initial).await;
}

#[tokio::test]
async fn a_client_that_hangs_up_on_an_upstream_without_usage_is_billed_every_word() {
    let t = TestServer::start().await;
    t.channel(&["mock-nousage-mock-stall-300"], json!({})).await;
    let initial = 1_000_000;
    t.fund(initial).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let addr = t.base.trim_start_matches("http://").to_string();
    let body = chat("mock-nousage-mock-stall-300", 6, true).to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"content\":\"hello\"") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    // One word in, the client hangs up during upstream's pause.
    drop(s);
    t.relays_idle().await;
    assert_eq!(
        t.mock.completed_streams(),
        1,
        "upstream was read to its end"
    );
    let (quota, prompt, completion, source, content): (i64, i64, i64, String, String) = t
        .db()
        .query_row(
            "SELECT quota, prompt_tokens, completion_tokens, usage_source, content FROM logs WHERE type = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    // All 6 words upstream generated, counted here (tiktoken), though the client saw one.
    assert_eq!(
        (quota, prompt, completion, source.as_str()),
        (13, 7, 6, "local")
    );
    assert!(content.contains("client disconnected"), "{content}");
    ledger_equals_logs(&t, initial).await;
}

#[tokio::test]
async fn an_over_long_sse_line_ends_the_stream_billed_for_what_reached_the_client() {
    let t = TestServer::start_with_options(json!({"relay.max_sse_line_bytes": 1024 * 1024})).await;
    // Three words, then one 8 MiB line: over the 1 MiB limit.
    t.channel(&["mock-huge"], json!({})).await;
    let initial = 1_000_000_000;
    t.fund(initial).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let r = t.chat(&key, "mock-huge", 4, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(streamed_words(&r), 3);
    let last: Value = serde_json::from_str(events(&r).last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line limit"),
        "{last}"
    );
    let found = rows(&t, &r.request_id());
    assert_eq!(found.len(), 1);
    let (ty, quota, status, prompt, completion, source, content) = found[0].clone();
    // The line never reached the client and is not billed; the three words are.
    assert_eq!((ty, quota, status, prompt, completion), (2, 10, 502, 7, 3));
    assert_eq!(source.as_deref(), Some("local"));
    assert!(content.contains("line limit"), "{content}");
    ledger_equals_logs(&t, initial).await;
}
