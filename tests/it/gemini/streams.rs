//! Streams from a gemini channel (`streamGenerateContent?alt=sse`, no end event: the chunk with
//! the finish reason is the last): each client's event order and final event, whole function
//! calls as tool blocks, thoughts as reasoning, safety blocks, an error in the middle.

use super::{assembled, chunks, gemini_channel};
use crate::formats::{messages, names, server, sse};
use serde_json::{Value, json};

#[tokio::test]
async fn an_openai_stream_from_gemini_ends_with_done_after_the_charge() {
    let (t, key) = server().await;
    gemini_channel(&t, &["gem-x"], json!({})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gem-x", "max_tokens": 3, "stream": true,
                   "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        t.mock.last_request().unwrap().path,
        "/v1beta/models/gem-x:streamGenerateContent?alt=sse"
    );
    let c = chunks(&r.text());
    assert_eq!(c.last(), Some(&json!("[DONE]")));
    assert_eq!(c[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        assembled(&c),
        ("hello hello hello".into(), Some("stop".into()))
    );
    let usage = &c[c.len() - 2]["usage"];
    // "hi": 1 word + 3 + 3 = 7.
    assert_eq!(usage["prompt_tokens"], 7);
    assert_eq!(usage["completion_tokens"], 3);
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 10, 200, 7, 3, Some("upstream".into()))]
    );
}

#[tokio::test]
async fn an_openai_stream_carries_reasoning_and_whole_tool_calls() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["gem-x"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-think-mock-tools"}}),
    )
    .await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gem-x", "max_tokens": 100, "stream": true,
                   "tools": [{"type": "function", "function": {"name": "get_weather"}},
                             {"type": "function", "function": {"name": "get_time"}}],
                   "messages": [{"role": "user", "content": "weather?"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = chunks(&r.text());
    let reasoning: String = c
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/reasoning_content"))
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(reasoning, "Let me think.");
    let calls: Vec<&Value> = c
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    // Each call whole: its start (id, name), then its arguments in one fragment.
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["id"], "call_0");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris", "n": 1})
    );
    assert_eq!(calls[2]["index"], 1);
    assert_eq!(calls[2]["id"], "call_1");
    assert_eq!(assembled(&c).1.as_deref(), Some("tool_calls"));
    assert_eq!(c.last(), Some(&json!("[DONE]")));
}

#[tokio::test]
async fn an_anthropic_stream_from_gemini_is_well_formed() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["gem-x", "safe"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-think-mock-tools", "safe": "g-mock-safety"}}),
    )
    .await;
    let r = messages(
        &t,
        &key,
        json!({"model": "gem-x", "max_tokens": 3000, "stream": true,
               "thinking": {"type": "enabled", "budget_tokens": 1024},
               "tools": [{"name": "get_weather", "input_schema": {"type": "object"}},
                         {"name": "get_time", "input_schema": {"type": "object"}}],
               "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = sse(&r);
    assert_eq!(
        names(&ev),
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[1].1["content_block"]["type"], "thinking");
    assert_eq!(ev[2].1["delta"]["thinking"], "Let me think.");
    assert_eq!(ev[5].1["delta"]["text"], "Let me check.");
    // The first call's thought signature: a thinking block of its own, ahead of the call.
    assert_eq!(
        ev[8].1["delta"],
        json!({"type": "signature_delta", "signature": "gemini:sig00000"})
    );
    assert_eq!(
        ev[10].1["content_block"],
        json!({"type": "tool_use", "id": "call_0", "name": "get_weather", "input": {}})
    );
    assert_eq!(
        serde_json::from_str::<Value>(ev[11].1["delta"]["partial_json"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris", "n": 1})
    );
    assert_eq!(ev[13].1["content_block"]["id"], "call_1");
    assert_eq!(ev[16].1["delta"]["stop_reason"], "tool_use");
    // A safety stop mid-answer: what came before, then a refusal.
    let r = messages(
        &t,
        &key,
        json!({"model": "safe", "max_tokens": 5, "stream": true,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let ev = sse(&r);
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "refusal");
    assert_eq!(names(&ev).last(), Some(&"message_stop"));
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "safe", "max_tokens": 5, "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let c = chunks(&r.text());
    assert_eq!(
        assembled(&c),
        ("hello".into(), Some("content_filter".into()))
    );
}

#[tokio::test]
async fn an_error_mid_stream_ends_each_client_stream_with_its_error_event() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["gem-x"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-midfail"}}),
    )
    .await;
    let body = json!({"model": "gem-x", "max_tokens": 5, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
    assert_eq!(r.status, 200);
    let c = chunks(&r.text());
    assert_eq!(assembled(&c).0, "hello");
    let last = c.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("overloaded")),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("[DONE]"));
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].2, 502, "charged for what was sent, marked failed");
    let r = messages(&t, &key, body).await;
    let ev = sse(&r);
    assert_eq!(names(&ev).last(), Some(&"error"), "{}", r.text());
    assert_eq!(ev.last().unwrap().1["error"]["type"], "api_error");
    assert!(!names(&ev).contains(&"message_stop"));
}
