//! A call that names no output limit, or one past what the balance covers, is bounded by the
//! balance on every upstream kind (issue 11, item 1): the reserved limit goes into the field
//! that provider honours — Anthropic's `max_tokens`, Gemini's
//! `generationConfig.maxOutputTokens`, the Responses API's `max_output_tokens` — whichever
//! format the client spoke. Without it an upstream generates its own default (up to the
//! model's whole output), and the charge, capped at the balance, would no longer pay for the
//! answer delivered.

use crate::common::{Resp, TestServer};
use crate::formats::{anthropic_channel, messages};
use crate::gemini::gemini_channel;
use crate::responses::responses;
use serde_json::{Value, json};

const BALANCE: i64 = 200;

/// The output limit in the one upstream request for `model` (in the body, or in Gemini's path),
/// read at `pointer`.
fn asked(t: &TestServer, model: &str, pointer: &str) -> Option<i64> {
    let reqs: Vec<_> = t
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.body["model"] == model || r.path.contains(&format!("/{model}:")))
        .collect();
    assert_eq!(reqs.len(), 1, "one upstream request for {model}");
    reqs[0].body.pointer(pointer).and_then(Value::as_i64)
}

/// Funds root with [`BALANCE`], makes the call, and checks the upstream was asked for at most
/// what the balance covers, and the charge stayed within the balance.
async fn bounded(
    t: &TestServer,
    what: &str,
    model: &str,
    pointer: &str,
    call: impl AsyncFnOnce() -> Resp,
) {
    t.fund(BALANCE).await;
    let r = call().await;
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    let limit = asked(t, model, pointer).unwrap_or_else(|| panic!("{what}: no {pointer} upstream"));
    // The prompt's estimate is reserved too (a few units for "hello"): the limit is the rest.
    assert!(
        (BALANCE - 64..BALANCE).contains(&limit),
        "{what}: the upstream was asked for {limit} with a balance of {BALANCE}"
    );
    let (left, used) = t.user_balance(1);
    assert!(left >= 0, "{what}: balance {left}");
    let charged: i64 = t
        .db()
        .query_row(
            "SELECT quota FROM logs WHERE type = 2 AND request_id = ?1",
            [r.request_id()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        charged,
        BALANCE - left,
        "{what}: the row's charge is the balance's loss"
    );
    assert!(
        charged <= BALANCE && used >= charged,
        "{what}: charged {charged}"
    );
}

#[tokio::test]
async fn a_call_without_a_limit_is_bounded_by_the_balance_on_every_upstream_kind() {
    let t = TestServer::start().await;
    anthropic_channel(&t, &["claude-lim-a", "claude-lim-b"], json!({})).await;
    gemini_channel(&t, &["gemini-lim-a", "gemini-lim-b"], json!({})).await;
    t.channel(&["gpt-lim-r"], json!({})).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hello"}]});

    bounded(
        &t,
        "chat → anthropic",
        "claude-lim-a",
        "/max_tokens",
        async || {
            t.relay(&key, "/v1/chat/completions", chat("claude-lim-a"))
                .await
        },
    )
    .await;
    bounded(
        &t,
        "chat → gemini",
        "gemini-lim-a",
        "/generationConfig/maxOutputTokens",
        async || {
            t.relay(&key, "/v1/chat/completions", chat("gemini-lim-a"))
                .await
        },
    )
    .await;
    bounded(
        &t,
        "responses → openai (passed through)",
        "gpt-lim-r",
        "/max_output_tokens",
        async || responses(&t, &key, json!({"model": "gpt-lim-r", "input": "hello"})).await,
    )
    .await;
    bounded(
        &t,
        "responses → anthropic",
        "claude-lim-b",
        "/max_tokens",
        async || responses(&t, &key, json!({"model": "claude-lim-b", "input": "hello"})).await,
    )
    .await;
    // Anthropic's clients must send max_tokens: one the balance covers is what the upstream
    // is asked for, in its own field; one past the balance is refused before any upstream call.
    let anthropic = |max: i64| {
        json!({"model": "gemini-lim-b", "max_tokens": max,
               "messages": [{"role": "user", "content": "hello"}]})
    };
    t.fund(BALANCE).await;
    let r = messages(&t, &key, anthropic(100_000)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        !t.mock
            .requests()
            .iter()
            .any(|q| q.path.contains("gemini-lim-b")),
        "a refused call reached the upstream"
    );
    let r = messages(&t, &key, anthropic(150)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        asked(&t, "gemini-lim-b", "/generationConfig/maxOutputTokens"),
        Some(150)
    );
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
}
