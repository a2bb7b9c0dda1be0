//! Whole (non-stream) answers across formats: system prompts, tools over several turns with
//! parallel calls and long names, tool results, images, thinking kept across tool turns; and
//! the Anthropic passthrough.

use super::{
    anthropic_channel, assert_brief_chat_answer, messages, messages_with, server,
    server_with_anthropic_tools, server_with_openai_tools,
};
use serde_json::{Value, json};

#[tokio::test]
async fn anthropic_client_on_an_openai_channel_with_a_system_prompt() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({})).await;
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 5, "system": "be brief",
               "messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    );
    assert_eq!(seen.body["max_tokens"], 5);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt-x");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "hello hello hello hello hello"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    // The mock's rule: 2 + 2 words, 3 per message, 3 → 13.
    assert_eq!(v["usage"]["input_tokens"], 13);
    assert_eq!(v["usage"]["output_tokens"], 5);
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows, vec![(2, 18, 200, 13, 5, Some("upstream".into()))]);
}

#[tokio::test]
async fn openai_client_on_an_anthropic_channel_with_a_system_prompt() {
    let (t, key) = server().await;
    anthropic_channel(&t, &["claude-x"], json!({})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "claude-x", "max_tokens": 4, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.body["system"], "be brief");
    assert_eq!(seen.body["max_tokens"], 4);
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hello there"}]}])
    );
    assert!(seen.authorization.is_none(), "no bearer to Anthropic");
    assert!(
        seen.anthropic
            .contains(&("x-api-key".into(), "sk-upstream-secret-canary".into()))
    );
    assert!(
        seen.anthropic
            .contains(&("anthropic-version".into(), "2023-06-01".into()))
    );
    assert_brief_chat_answer(&t, &r);
}

/// Claude Code's MCP tools have names longer than OpenAI's 64 characters.
fn long_name() -> String {
    format!(
        "mcp__weather_server__{}",
        "get_current_conditions_".repeat(3)
    )
}

#[tokio::test]
async fn tool_turns_from_an_anthropic_client_on_an_openai_channel() {
    let (t, key) = server_with_openai_tools().await;
    let long = long_name();
    assert!(long.len() > 64);
    let tools = json!([
        {"name": long, "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]);
    let first = json!({"role": "user", "content": "weather and time in Paris?"});
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 50, "tools": tools, "messages": [first]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    let sent_names: Vec<&str> = seen.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(sent_names[0].len(), 64, "shortened for OpenAI");
    assert_eq!(sent_names[1], "get_time");
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap().clone();
    assert_eq!(content[0], json!({"type": "text", "text": "Let me check."}));
    assert_eq!(content[1]["type"], "tool_use");
    assert_eq!(content[1]["name"], long.as_str(), "restored");
    assert_eq!(content[1]["input"], json!({"city": "Paris", "n": 1}));
    assert_eq!(content[2]["name"], "get_time");
    let (id1, id2) = (content[1]["id"].clone(), content[2]["id"].clone());
    assert_ne!(id1, id2);
    // The second turn: both results in one user message.
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 5, "tools": tools, "messages": [
            first,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id1, "content": "sunny"},
                {"type": "tool_result", "tool_use_id": id2, "content": [{"type": "text", "text": "noon"}]},
                {"type": "text", "text": "thanks"}]}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = t.mock.last_request().unwrap().body["messages"].clone();
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["content"], "Let me check.");
    assert_eq!(m[1]["tool_calls"][0]["id"], id1);
    assert_eq!(m[1]["tool_calls"][0]["function"]["name"], sent_names[0]);
    assert_eq!(
        serde_json::from_str::<Value>(
            m[1]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        json!({"city": "Paris", "n": 1})
    );
    assert_eq!(
        m[2],
        json!({"role": "tool", "tool_call_id": id1, "content": "sunny"})
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": id2, "content": "noon"})
    );
    assert_eq!(m[4], json!({"role": "user", "content": "thanks"}));
}

#[tokio::test]
async fn thinking_and_tools_from_an_openai_client_on_an_anthropic_channel() {
    let (t, key) = server_with_anthropic_tools().await;
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_time"}}]);
    let first = json!({"role": "user", "content": "weather?"});
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "claude-x", "max_tokens": 3000, "reasoning_effort": "low",
                   "tools": tools, "messages": [first]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap().body;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(
        sent["tools"][1]["input_schema"],
        json!({"type": "object", "properties": {}})
    );
    let v = r.json();
    let msg = v["choices"][0]["message"].clone();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(msg["reasoning_content"], "Let me think.");
    let sig = msg["thinking_blocks"][0]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sig.starts_with("sig-"), "{msg}");
    assert_eq!(msg["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(msg["tool_calls"][1]["function"]["name"], "get_time");
    assert_eq!(
        serde_json::from_str::<Value>(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        )
        .unwrap(),
        json!({"city": "Paris", "n": 1})
    );
    // Sent back with the tool results: the signed thinking block goes first in the assistant
    // turn, as Anthropic requires when thinking is on.
    let ids: Vec<Value> = msg["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "claude-x", "max_tokens": 3000, "reasoning_effort": "low",
                   "tools": tools, "messages": [first, msg,
                {"role": "tool", "tool_call_id": ids[0], "content": "sunny"},
                {"role": "tool", "tool_call_id": ids[1], "content": "noon"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = t.mock.last_request().unwrap().body["messages"].clone();
    assert_eq!(m.as_array().unwrap().len(), 3);
    assert_eq!(
        m[1]["content"][0],
        json!({"type": "thinking", "thinking": "Let me think.", "signature": sig})
    );
    assert_eq!(
        m[1]["content"][1],
        json!({"type": "text", "text": "Let me check."})
    );
    assert_eq!(m[1]["content"][2]["type"], "tool_use");
    assert_eq!(
        m[1]["content"][2]["input"],
        json!({"city": "Paris", "n": 1})
    );
    assert_eq!(m[2]["role"], "user");
    assert_eq!(m[2]["content"][0]["type"], "tool_result");
    assert_eq!(m[2]["content"][0]["tool_use_id"], ids[0]);
    assert_eq!(m[2]["content"][1]["tool_use_id"], ids[1]);
}

#[tokio::test]
async fn images_go_inline_and_remote_urls_are_refused() {
    let (t, key) = server().await;
    anthropic_channel(&t, &["claude-x"], json!({})).await;
    t.channel(&["gpt-x"], json!({})).await;
    let part = |url: &str| {
        json!({"model": "claude-x", "max_tokens": 3, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            part("data:image/png;base64,iVBORw0KGgo="),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        t.mock.last_request().unwrap().body["messages"][0]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
    );
    let calls = t.mock.calls();
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            part("http://169.254.169.254/latest/meta-data"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("messages[0].content[1].image_url.url"),
        "{msg}"
    );
    // An Anthropic client's URL image for an OpenAI channel: refused in Anthropic's shape.
    let r = messages(
        &t,
        &key,
        json!({"model": "gpt-x", "max_tokens": 3, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "http://10.0.0.1/x.png"}}]}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].content[0].source.url")
    );
    assert_eq!(t.mock.calls(), calls, "nothing went upstream");
}

#[tokio::test]
async fn anthropic_passthrough_keeps_the_body_and_passes_the_version_headers() {
    let (t, key) = server().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-up"}}),
    )
    .await;
    let body = json!({"model": "claude-x", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}],
                      "some_new_field": {"kept": true}});
    let r = messages_with(
        &t,
        &key,
        body,
        &[
            ("anthropic-version", "2026-10-21"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.body["model"], "claude-up");
    assert_eq!(
        seen.body["some_new_field"],
        json!({"kept": true}),
        "unknown fields pass"
    );
    assert!(
        seen.anthropic
            .contains(&("anthropic-version".into(), "2026-10-21".into()))
    );
    assert!(seen.anthropic.contains(&(
        "anthropic-beta".into(),
        "interleaved-thinking-2025-05-14".into()
    )));
    let v = r.json();
    assert_eq!(v["content"][0]["text"], "hello hello hello");
    assert_eq!(v["usage"]["output_tokens"], 3);
    // hi: 1 word + 3 + 3
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 10, 200, 7, 3, Some("upstream".into()))]
    );
}
