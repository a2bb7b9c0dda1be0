//! Gemini's usage billed exactly: `promptTokenCount` includes the cached tokens and (apart) the
//! tool-use prompt; thoughts are reported apart from the candidates and billed as output. The
//! charge is the price of that usage normalised once, in every client format, streamed or not;
//! and a concurrent race keeps the ledger equal to the logs.

use super::{chunks, gemini_channel};
use crate::common::TestServer;
use crate::formats::race::{Client, race_keeps_the_ledger_equal_to_the_logs};
use crate::formats::{messages, sse, usage_row};
use serde_json::json;

#[tokio::test]
async fn cached_tool_use_and_thought_tokens_are_billed_once() {
    let t = TestServer::start_with_options(json!({
        "pricing.model_ratio": {"gem-x": 1.0},
        "pricing.completion_ratio": {"gem-x": 4.0},
        "pricing.cache_read_ratio": {"gem-x": 0.25},
    }))
    .await;
    t.fund(10_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    gemini_channel(
        &t,
        &["gem-x"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-cache-800-mock-tooluse-5-mock-think"}}),
    )
    .await;
    // "hi": 7 (the mock's rule) + 800 cached = promptTokenCount 807, + 5 tool-use prompt = 812
    // prompt of which 800 cached; 4 candidates + 3 thoughts = 7 output, 3 of them reasoning.
    // (812 − 800 + 800 × 0.25 + 7 × 4) × 1 = 12 + 200 + 28 = 240.
    let want = (812, 7, 800, 0, 0, 3, 240);
    let body =
        json!({"model": "gem-x", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(usage_row(&t, &r.request_id()), want);
    let u = &r.json()["usage"];
    assert_eq!(u["prompt_tokens"], 812);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 800);
    assert_eq!(u["completion_tokens"], 7);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 3);
    // An Anthropic client: the uncached input apart from the cache reads, never both.
    let r = messages(&t, &key, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = &r.json()["usage"];
    assert_eq!(u["input_tokens"], 12);
    assert_eq!(u["cache_read_input_tokens"], 800);
    assert_eq!(u["output_tokens"], 7);
    assert_eq!(usage_row(&t, &r.request_id()), want);
    // Streamed: the last chunk's usageMetadata is the final one.
    let mut b = body;
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let r = t.relay(&key, "/v1/chat/completions", b.clone()).await;
    let c = chunks(&r.text());
    assert_eq!(c[c.len() - 2]["usage"]["prompt_tokens"], 812);
    assert_eq!(usage_row(&t, &r.request_id()), want);
    b.as_object_mut().unwrap().remove("stream_options");
    let r = messages(&t, &key, b).await;
    let ev = sse(&r);
    assert_eq!(ev[ev.len() - 2].1["usage"]["input_tokens"], 12);
    assert_eq!(usage_row(&t, &r.request_id()), want);
}

/// 40 calls at once against a balance of 1,000, per client format, streamed and not: every
/// charge has its row, the balance never goes negative, and the ledger equals the logs.
#[tokio::test]
async fn concurrent_races_on_a_gemini_channel_keep_the_ledger_equal_to_the_logs() {
    for (client, stream) in [
        ("openai", false),
        ("openai", true),
        ("anthropic", false),
        ("anthropic", true),
    ] {
        let t = TestServer::start().await;
        gemini_channel(&t, &["m"], json!({})).await;
        let call = if client == "anthropic" {
            Client::messages(stream)
        } else {
            Client::chat(stream)
        };
        let what = format!("{client} stream={stream}");
        race_keeps_the_ledger_equal_to_the_logs(&t, call, &what).await;
    }
}
