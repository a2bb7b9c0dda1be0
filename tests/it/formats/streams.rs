//! Streams across formats: each client's event order and final event, blocks per index with
//! parallel tool calls and their argument fragments, usage held for the final event, an
//! upstream error before the first byte (529, retried) and in the middle.

use super::{
    anthropic_channel, messages, names, server, server_with_anthropic_tools,
    server_with_openai_tools, sse,
};
use serde_json::{Value, json};

/// The text and the tool inputs (by block index) an Anthropic stream builds.
fn assemble(events: &[(String, Value)]) -> (String, Vec<(String, Value)>) {
    let mut text = String::new();
    let mut tools: Vec<(usize, String, String)> = Vec::new();
    for (_, e) in events {
        match e["type"].as_str() {
            Some("content_block_start") if e["content_block"]["type"] == "tool_use" => {
                tools.push((
                    e["index"].as_u64().unwrap() as usize,
                    e["content_block"]["name"].as_str().unwrap().to_string(),
                    String::new(),
                ))
            }
            Some("content_block_delta") => {
                let i = e["index"].as_u64().unwrap() as usize;
                match e["delta"]["type"].as_str() {
                    Some("text_delta") => text.push_str(e["delta"]["text"].as_str().unwrap()),
                    Some("input_json_delta") => {
                        let t = tools
                            .iter_mut()
                            .find(|t| t.0 == i)
                            .expect("delta of an open tool block");
                        t.2.push_str(e["delta"]["partial_json"].as_str().unwrap());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let tools = tools
        .into_iter()
        .map(|(_, n, a)| (n, serde_json::from_str(&a).unwrap()))
        .collect();
    (text, tools)
}

/// Anthropic's order: message_start, then blocks each start → deltas → stop (never two open
/// at once), message_delta, message_stop last.
fn check_order(events: &[(String, Value)]) {
    let n = names(events);
    assert_eq!(n.first(), Some(&"message_start"), "{n:?}");
    assert_eq!(n.last(), Some(&"message_stop"), "{n:?}");
    assert_eq!(n[n.len() - 2], "message_delta", "{n:?}");
    let mut open: Option<u64> = None;
    let mut next = 0;
    for (name, e) in events {
        match name.as_str() {
            "content_block_start" => {
                assert!(
                    open.is_none(),
                    "a block opened while another is open: {n:?}"
                );
                assert_eq!(e["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(Some(e["index"].as_u64().unwrap()), open),
            "content_block_stop" => {
                assert_eq!(Some(e["index"].as_u64().unwrap()), open);
                open = None;
            }
            _ => {}
        }
    }
    assert!(open.is_none());
}

#[tokio::test]
async fn an_anthropic_stream_from_an_openai_channel() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({})).await;
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 4, "stream": true,
               "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let ev = sse(&r);
    check_order(&ev);
    let (text, tools) = assemble(&ev);
    assert_eq!(text, "hello hello hello hello");
    assert!(tools.is_empty());
    // The usage the call was charged for is in the final message_delta.
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
    assert_eq!(delta["usage"]["input_tokens"], 7);
    assert!(t.mock.last_request().unwrap().body["stream_options"]["include_usage"] == true);
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 11, 200, 7, 4, Some("upstream".into()))]
    );
}

#[tokio::test]
async fn parallel_tool_calls_stream_into_blocks_of_their_own() {
    let (t, key) = server_with_openai_tools().await;
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 50, "stream": true,
               "tools": [{"name": "get_weather", "input_schema": {"type": "object"}},
                         {"name": "get_time", "input_schema": {"type": "object"}}],
               "messages": [{"role": "user", "content": "weather and time?"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = sse(&r);
    check_order(&ev);
    let (text, tools) = assemble(&ev);
    assert_eq!(text, "Let me check.");
    assert_eq!(
        tools,
        vec![
            ("get_weather".into(), json!({"city": "Paris", "n": 1})),
            ("get_time".into(), json!({"city": "Paris", "n": 1}))
        ]
    );
    let fragments = ev
        .iter()
        .filter(|(_, e)| e["delta"]["type"] == "input_json_delta")
        .count();
    assert_eq!(fragments, 6, "each fragment passed on as it came");
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn an_openai_stream_from_an_anthropic_channel() {
    let (t, key) = server_with_anthropic_tools().await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "claude-x", "max_tokens": 3000, "stream": true,
                   "stream_options": {"include_usage": true},
                   "tools": [{"type": "function", "function": {"name": "a"}},
                             {"type": "function", "function": {"name": "b"}}],
                   "messages": [{"role": "user", "content": "go"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = sse(&r);
    assert_eq!(ev.last().unwrap().1, Value::String("[DONE]".into()));
    let chunks: Vec<&Value> = ev[..ev.len() - 1].iter().map(|(_, v)| v).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think.");
    let mut args = [String::new(), String::new()];
    let mut names = Vec::new();
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(n) = call["function"]["name"].as_str() {
                names.push((i, n.to_string(), call["id"].as_str().unwrap().to_string()));
            }
            args[i].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(
        names
            .iter()
            .map(|n| (n.0, n.1.as_str()))
            .collect::<Vec<_>>(),
        vec![(0, "a"), (1, "b")]
    );
    for a in &args {
        assert_eq!(
            serde_json::from_str::<Value>(a).unwrap(),
            json!({"city": "Paris", "n": 1})
        );
    }
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, vec!["tool_calls"]);
    // The usage chunk, asked for, last before [DONE]: "go" = 1 word + 3 + 3.
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 7);
    assert_eq!(usage["completion_tokens"], 3000);
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 3007, 200, 7, 3000, Some("upstream".into()))]
    );
}

#[tokio::test]
async fn an_anthropic_passthrough_stream_ends_with_message_stop_after_the_charge() {
    let (t, key) = server().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-think"}}),
    )
    .await;
    let r = messages(
        &t,
        &key,
        json!({"model": "claude-x", "max_tokens": 3, "stream": true,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = sse(&r);
    check_order(&ev);
    assert_eq!(
        names(&ev).iter().filter(|n| **n == "message_stop").count(),
        1
    );
    let sig: Vec<&Value> = ev
        .iter()
        .filter(|(_, e)| e["delta"]["type"] == "signature_delta")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(sig.len(), 1, "the signature passes through");
    // Usage from message_start (input 7) and message_delta (output 3), merged.
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 10, 200, 7, 3, Some("upstream".into()))]
    );
}

#[tokio::test]
async fn an_overloaded_529_is_retried_before_the_first_byte() {
    let (t, key) = server().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"priority": 10, "model_mapping": {"claude-x": "mock-529"}}),
    )
    .await;
    anthropic_channel(&t, &["claude-x"], json!({"priority": 1})).await;
    for stream in [false, true] {
        let r = messages(
            &t,
            &key,
            json!({"model": "claude-x", "max_tokens": 2, "stream": stream,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let end = if stream {
            "message_stop"
        } else {
            "hello hello"
        };
        assert!(r.text().contains(end), "{}", r.text());
    }
}

#[tokio::test]
async fn an_error_mid_stream_ends_each_client_with_its_own_error_event() {
    let (t, key) = server().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "mock-midfail"}}),
    )
    .await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "mock-midfail"}}),
    )
    .await;
    let body = |m: &str| json!({"model": m, "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    // Anthropic in, Anthropic out (passthrough) and OpenAI out (converted).
    for model in ["claude-x", "gpt-x"] {
        let r = messages(&t, &key, body(model)).await;
        assert_eq!(r.status, 200);
        let ev = sse(&r);
        let n = names(&ev);
        assert_eq!(n.first(), Some(&"message_start"), "{model}: {n:?}");
        assert_eq!(n.last(), Some(&"error"), "{model}: {n:?}");
        assert_eq!(
            n.iter().filter(|x| **x == "error").count(),
            1,
            "{model}: {n:?}"
        );
        assert!(!n.contains(&"message_stop"), "{model}");
        assert_eq!(ev.last().unwrap().1["type"], "error");
        // Charged for what was generated (counted here: upstream's usage never came complete).
        let rows = t.log_rows(&r.request_id());
        assert_eq!(rows.len(), 1, "{model}: {rows:?}");
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].2, 502);
    }
    // OpenAI in, Anthropic out: OpenAI's error object, no [DONE].
    let r = t
        .relay(&key, "/v1/chat/completions", body("claude-x"))
        .await;
    let ev = sse(&r);
    assert!(
        ev.last().unwrap().1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded"),
        "{ev:?}"
    );
    assert!(!r.text().contains("[DONE]"));
}
