//! The format axis over real HTTP: Anthropic Messages clients and upstreams, conversions both
//! ways (streamed and not), errors in each client's shape, cache-aware billing, and the
//! official Anthropic Python SDK as a client.

mod billing;
mod conversions;
mod errors;
mod lifecycle;
pub mod race;
mod sdk;
mod streams;

use crate::common::{Resp, TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

/// An anthropic channel to the mock serving `models` (extra fields merged in).
pub async fn anthropic_channel(t: &TestServer, models: &[&str], extra: Value) -> i64 {
    let mut body = json!({"kind": "anthropic", "base_url": format!("http://{}", t.mock.addr())});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.channel(models, body).await
}

/// `POST /v1/messages` with the key in `x-api-key`, as curl examples and older SDKs send it.
pub async fn messages(t: &TestServer, key: &str, body: Value) -> Resp {
    messages_with(t, key, body, &[]).await
}

pub async fn messages_with(t: &TestServer, key: &str, body: Value, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("x-api-key", key), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    send(
        "POST",
        &t.url("/v1/messages"),
        &headers,
        Some(Bytes::from(body.to_string())),
    )
    .await
}

/// The (event name, data) pairs of an SSE body, in order.
pub fn sse(r: &Resp) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in r.text().lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            let v = serde_json::from_str(d).unwrap_or(Value::String(d.to_string()));
            out.push((std::mem::take(&mut name), v));
        }
    }
    out
}

/// The event names of an Anthropic stream, in order.
pub fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// A funded server with an unlimited key.
pub async fn server() -> (TestServer, String) {
    let t = TestServer::start().await;
    t.fund(10_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    (t, key)
}

/// A server with prices that make every usage field count, funded, with an unlimited key.
pub async fn priced() -> (TestServer, String) {
    let t = TestServer::start_with_options(json!({
        "pricing.model_ratio": {"claude-x": 1.5, "gpt-x": 1.0, "gpt-chat": 1.0},
        "pricing.completion_ratio": {"claude-x": 5.0, "gpt-x": 4.0, "gpt-chat": 4.0},
        "pricing.cache_read_ratio": {"claude-x": 0.1, "gpt-x": 0.5, "gpt-chat": 0.5},
        "pricing.cache_write_ratio": {"claude-x": 1.25},
    }))
    .await;
    t.fund(10_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    (t, key)
}

/// A funded server whose openai channel answers `gpt-x` in the mock's tool mode (a short
/// text, then a call to each of the first two tools offered; `src/mock/scripted.rs`).
pub async fn server_with_openai_tools() -> (TestServer, String) {
    let (t, key) = server().await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "gpt-x-mock-tools"}}),
    )
    .await;
    (t, key)
}

/// A funded server whose anthropic channel answers `claude-x` in the mock's thinking and tool
/// modes.
pub async fn server_with_anthropic_tools() -> (TestServer, String) {
    let (t, key) = server().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-think-mock-tools"}}),
    )
    .await;
    (t, key)
}

/// The OpenAI chat answer the mock gives, through any channel kind, to `max_tokens: 4` with
/// the system prompt "be brief" and the user's "hello there": four words and `stop`; 10 prompt
/// tokens (the mock's rule: 2 message words + 2 system words + 3 per message + 3) and 4
/// completion, billed as one consume row of 14.
pub fn assert_brief_chat_answer(t: &TestServer, r: &Resp) {
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "hello hello hello hello"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 10);
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 14, 200, 10, 4, Some("upstream".into()))]
    );
}

/// The consume row's token columns: (prompt, completion, cache read, cache write 5m,
/// cache write 1h, reasoning, quota).
pub fn usage_row(t: &TestServer, rid: &str) -> (i64, i64, i64, i64, i64, i64, i64) {
    t.db()
        .query_row(
            "SELECT prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
                    cache_write_1h_tokens, reasoning_tokens, quota
             FROM logs WHERE request_id = ?1 AND type = 2",
            [rid],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap()
}
