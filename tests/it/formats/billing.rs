//! Cache-aware billing across formats: each provider's usage normalised once (Anthropic's
//! input excludes the cache, OpenAI's includes it), the charge the price of that usage, the
//! client told the usage in its own format without counting a token twice; and for each
//! format pair a concurrent race after which the ledger equals the logs.

use super::race::{Client, race_keeps_the_ledger_equal_to_the_logs};
use super::{anthropic_channel, messages, priced, sse, usage_row};
use crate::common::TestServer;
use serde_json::json;

#[tokio::test]
async fn anthropic_cache_usage_is_billed_once_in_either_client_format() {
    let (t, key) = priced().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-cache-800-100"}}),
    )
    .await;
    // "hi": 7 uncached input (the mock's rule), 800 read, 100 written, 4 out:
    // (7 + 800×0.1 + 100×1.25 + 4×5) × 1.5 = 232 × 1.5 = 348.
    let body = json!({"model": "claude-x", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let r = messages(&t, &key, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["usage"]["input_tokens"],
        7,
        "passed through as upstream said"
    );
    assert_eq!(
        usage_row(&t, &r.request_id()),
        (907, 4, 800, 100, 0, 0, 348)
    );
    // The OpenAI client of the same channel: prompt_tokens includes the cached tokens.
    let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = &r.json()["usage"];
    assert_eq!(u["prompt_tokens"], 907);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 800);
    assert_eq!(
        usage_row(&t, &r.request_id()),
        (907, 4, 800, 100, 0, 0, 348)
    );
    // Streamed: usage from message_start and the cumulative message_delta.
    let mut b = body;
    b["stream"] = json!(true);
    let r = messages(&t, &key, b).await;
    assert_eq!(
        usage_row(&t, &r.request_id()),
        (907, 4, 800, 100, 0, 0, 348)
    );
}

#[tokio::test]
async fn openai_cached_and_reasoning_tokens_are_billed_and_never_counted_twice() {
    let (t, key) = priced().await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "gpt-x-mock-cache-800-0-mock-reasoning-2"}}),
    )
    .await;
    // prompt 807 of which 800 cached; 4 out of which 2 reasoning:
    // (7 + 800×0.5 + 4×4) × 1 = 423.
    let body =
        json!({"model": "gpt-x", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(usage_row(&t, &r.request_id()), (807, 4, 800, 0, 0, 2, 423));
    // An Anthropic client: input_tokens is the uncached part only (807 − 800), the cache
    // reads apart — the peer trap would say 807 and 800, counting the cache twice.
    let r = messages(&t, &key, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = &r.json()["usage"];
    assert_eq!(u["input_tokens"], 7);
    assert_eq!(u["cache_read_input_tokens"], 800);
    assert_eq!(u["output_tokens"], 4);
    assert_eq!(usage_row(&t, &r.request_id()), (807, 4, 800, 0, 0, 2, 423));
    let mut b = body;
    b["stream"] = json!(true);
    let r = messages(&t, &key, b).await;
    let ev = sse(&r);
    let last_delta = &ev[ev.len() - 2].1;
    assert_eq!(last_delta["usage"]["input_tokens"], 7);
    assert_eq!(last_delta["usage"]["cache_read_input_tokens"], 800);
    assert_eq!(usage_row(&t, &r.request_id()), (807, 4, 800, 0, 0, 2, 423));
}

/// 40 calls at once against a balance of 1,000, in each format pair, streamed and not: every
/// charge has its row, the balance never goes negative, and the ledger equals the logs.
#[tokio::test]
async fn concurrent_races_per_format_pair_keep_the_ledger_equal_to_the_logs() {
    for (client, channel_kind, stream) in [
        ("anthropic", "openai", false),
        ("anthropic", "openai", true),
        ("openai", "anthropic", false),
        ("openai", "anthropic", true),
        ("anthropic", "anthropic", true),
    ] {
        let t = TestServer::start().await;
        if channel_kind == "anthropic" {
            anthropic_channel(&t, &["m"], json!({})).await;
        } else {
            t.channel(&["m"], json!({})).await;
        }
        let call = if client == "anthropic" {
            Client::messages(stream)
        } else {
            Client::chat(stream)
        };
        let what = format!("{client}->{channel_kind} stream={stream}");
        race_keeps_the_ledger_equal_to_the_logs(&t, call, &what).await;
    }
}
