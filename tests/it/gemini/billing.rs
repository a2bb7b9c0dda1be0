//! Gemini's usage billed exactly: `promptTokenCount` includes the cached tokens and (apart) the
//! tool-use prompt; thoughts are reported apart from the candidates and billed as output. The
//! charge is the price of that usage normalised once, in every client format, streamed or not;
//! and a concurrent race keeps the ledger equal to the logs.

use super::{chunks, gemini_channel};
use crate::common::{TestServer, send};
use crate::formats::{messages, sse, usage_row};
use bytes::Bytes;
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
        t.fund(1000).await;
        let (_, key) = t.key(json!({"unlimited": true})).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(40));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (key, barrier) = (key.clone(), barrier.clone());
            let (url, auth) = if client == "anthropic" {
                (t.url("/v1/messages"), ("x-api-key", key.clone()))
            } else {
                (
                    t.url("/v1/chat/completions"),
                    ("authorization", format!("Bearer {key}")),
                )
            };
            tasks.push(tokio::spawn(async move {
                let body = json!({"model": "m", "max_tokens": 93, "stream": stream,
                                  "messages": [{"role": "user", "content": "hello"}]});
                barrier.wait().await;
                let r = send(
                    "POST",
                    &url,
                    &[(auth.0, &auth.1), ("content-type", "application/json")],
                    Some(Bytes::from(body.to_string())),
                )
                .await;
                (r.status, r.text())
            }));
        }
        let what = format!("{client} stream={stream}");
        let (mut ok, mut refused) = (0, 0);
        for task in tasks {
            let (status, text) = task.await.unwrap();
            match status {
                200 => {
                    ok += 1;
                    let end = match (client, stream) {
                        ("anthropic", true) => "message_stop",
                        (_, true) => "[DONE]",
                        (_, false) => "\"usage\"",
                    };
                    assert!(text.contains(end), "{what}: {text}");
                }
                429 => refused += 1,
                s => panic!("{what}: status {s}: {text}"),
            }
        }
        t.relays_idle().await;
        let (balance, used) = t.user_balance(1);
        assert!(
            ok >= 1 && refused >= 1,
            "{what}: {ok} ok, {refused} refused"
        );
        assert!(balance >= 0, "{what}");
        assert_eq!(balance + used, 1000, "{what}");
        assert_eq!(
            t.charged(1),
            used,
            "{what}: charges in the log sum to what was taken"
        );
        let rows: i64 = t
            .db()
            .query_row("SELECT COUNT(*) FROM logs WHERE type = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, ok, "{what}: one consume row per answered call");
    }
}
