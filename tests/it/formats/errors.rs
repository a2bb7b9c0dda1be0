//! Every error on the Messages routes in Anthropic's shape with the right status, whichever
//! code made it (auth, body checks, quota, routing, an upstream of another format); and the
//! local, free token count.

use super::{anthropic_channel, messages, server};
use crate::common::{TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

fn anthropic_error(status: u16, v: &Value, kind: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{status}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v.get("code").is_none());
}

#[tokio::test]
async fn errors_on_the_messages_routes_are_anthropic_shaped() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({})).await;
    let ok_body =
        json!({"model": "gpt-x", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]});
    // No key, a wrong key.
    let r = send(
        "POST",
        &t.url("/v1/messages"),
        &[("content-type", "application/json")],
        Some(Bytes::from(ok_body.to_string())),
    )
    .await;
    assert_eq!(r.status, 401);
    anthropic_error(401, &r.json(), "authentication_error");
    let r = messages(&t, "sk-wrong", ok_body.clone()).await;
    assert_eq!(r.status, 401);
    anthropic_error(401, &r.json(), "authentication_error");
    // A body missing a required field names it.
    let r = messages(&t, &key, json!({"model": "gpt-x", "messages": []})).await;
    assert_eq!(r.status, 400);
    anthropic_error(400, &r.json(), "invalid_request_error");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"),
        "{}",
        r.text()
    );
    let r = send(
        "POST",
        &t.url("/v1/messages"),
        &[("x-api-key", &key), ("content-type", "application/json")],
        Some(Bytes::from_static(b"{not json")),
    )
    .await;
    assert_eq!(r.status, 400);
    anthropic_error(400, &r.json(), "invalid_request_error");
    // A model no channel serves.
    let r = messages(
        &t,
        &key,
        json!({"model": "nope", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    anthropic_error(404, &r.json(), "not_found_error");
    // The wrong method.
    let r = send("GET", &t.url("/v1/messages"), &[("x-api-key", &key)], None).await;
    assert_eq!(r.status, 405);
    anthropic_error(405, &r.json(), "invalid_request_error");
    // A balance too low: the quota refusal.
    let (_, small) = t.key(json!({"quota": 1})).await;
    let r = messages(&t, &small, json!({"model": "gpt-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status, 429, "{}", r.text());
    anthropic_error(429, &r.json(), "rate_limit_error");
    // The same failures on the OpenAI route stay OpenAI-shaped.
    let r = t.relay("sk-wrong", "/v1/chat/completions", ok_body).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["code"].is_string());
}

#[tokio::test]
async fn an_openai_channels_refusal_reaches_an_anthropic_client_in_its_shape() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({"api_key": "sk-mock-key-400"}))
        .await;
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    anthropic_error(400, &r.json(), "invalid_request_error");
    // And an anthropic channel's refusal reaches an OpenAI client in OpenAI's shape.
    let t2 = TestServer::start().await;
    t2.fund(1_000_000).await;
    let (_, key2) = t2.key(json!({"unlimited": true})).await;
    anthropic_channel(&t2, &["claude-x"], json!({})).await;
    let r = t2
        .relay(
            &key2,
            "/v1/chat/completions",
            json!({"model": "claude-x", "max_tokens": 3,
            "tools": [{"type": "function", "function": {"name": "x"}}], "tool_choice": {"bad": 1},
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool_choice")
    );
}

#[tokio::test]
async fn count_tokens_is_local_and_free() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({})).await;
    let before = t.mock.calls();
    let r = send(
        "POST",
        &t.url("/v1/messages/count_tokens"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(Bytes::from(
            json!({"model": "gpt-x", "system": "be brief",
            "messages": [{"role": "user", "content": "hello"}]})
            .to_string(),
        )),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let n = r.json()["input_tokens"].as_u64().unwrap();
    assert!((5..50).contains(&n), "{n}");
    assert_eq!(t.mock.calls(), before, "no upstream call");
    let rows: i64 = t
        .db()
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE request_id = ?1",
            [r.request_id()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "not charged, not logged");
    let r = send(
        "POST",
        &t.url("/v1/messages/count_tokens"),
        &[("x-api-key", "sk-no")],
        Some(Bytes::from_static(b"{}")),
    )
    .await;
    anthropic_error(401, &r.json(), "authentication_error");
}
