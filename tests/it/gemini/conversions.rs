//! Whole (non-stream) answers from a gemini channel: the route and key, system prompts, tool
//! turns with parallel calls named back by their ids, cleaned schemas, images, thinking, finish
//! reasons and safety blocks, for OpenAI chat and Anthropic clients.

use super::{gemini_channel, goog_key};
use crate::formats::{assert_brief_chat_answer, messages, server};
use serde_json::{Value, json};

#[tokio::test]
async fn openai_client_on_a_gemini_channel_with_a_system_prompt() {
    let (t, key) = server().await;
    gemini_channel(&t, &["gem-x"], json!({})).await;
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gem-x", "max_tokens": 4, "temperature": 0.2, "top_p": 0.9,
                   "stop": ["END"], "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gem-x:generateContent");
    assert!(seen.authorization.is_none(), "no bearer to Google");
    assert_eq!(goog_key(&t).as_deref(), Some("goog-upstream-secret-canary"));
    assert_eq!(
        seen.body,
        json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
               "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
               "generationConfig": {"maxOutputTokens": 4, "temperature": 0.2, "topP": 0.9,
                                    "stopSequences": ["END"]}})
    );
    assert_eq!(r.json()["model"], "gem-x");
    assert_brief_chat_answer(&t, &r);
}

fn weather_tools() -> Value {
    json!([
        {"name": "get_weather", "description": "weather",
         "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false,
            "properties": {"city": {"type": "string", "default": "Paris", "format": "uri"},
                           "unit": {"$ref": "#/$defs/Unit"}},
            "required": ["city"],
            "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}}}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}])
}

/// An Anthropic client (Claude Code's shape) on a Gemini model: thinking, two parallel calls,
/// their results sent back and named by the calls' ids, an image in the turn.
#[tokio::test]
async fn tool_turns_with_thinking_and_images_from_an_anthropic_client() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["gem-x"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-think-mock-tools"}}),
    )
    .await;
    let tools = weather_tools();
    let first = json!({"role": "user", "content": [
        {"type": "text", "text": "weather and time here?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]});
    let r = messages(
        &t,
        &key,
        json!({"model": "gem-x", "max_tokens": 3000, "system": "be brief", "tools": tools,
               "tool_choice": {"type": "any"},
               "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [first]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap().body;
    assert_eq!(
        sent["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    // The schema as Gemini takes it: references inlined, refused keywords gone.
    assert_eq!(
        sent["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"]}},
            {"name": "get_time"}]}])
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        sent["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap().clone();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "Let me think.");
    assert_eq!(content[1], json!({"type": "text", "text": "Let me check."}));
    // The first call's thought signature rides ahead of it as a signed, empty thinking block.
    assert_eq!(
        content[2],
        json!({"type": "thinking", "thinking": "", "signature": "gemini:sig00000"})
    );
    assert_eq!(
        content[3],
        json!({"type": "tool_use", "id": "call_0", "name": "get_weather",
               "input": {"city": "Paris", "n": 1}})
    );
    assert_eq!(content[4]["id"], "call_1");
    assert_eq!(content[4]["name"], "get_time");
    // The second turn: the results, named by their calls (Gemini has no ids), the thoughts
    // left out and the signature back on its call (the mock refuses a history without it,
    // as Gemini's newer models do).
    let r = messages(
        &t,
        &key,
        json!({"model": "gem-x", "max_tokens": 5, "tools": tools, "messages": [
            first,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_0", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "{\"time\": \"noon\"}"}]},
                {"type": "text", "text": "thanks"}]}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = t.mock.last_request().unwrap().body["contents"].clone();
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "n": 1}},
             "thoughtSignature": "sig00000"},
            {"functionCall": {"name": "get_time", "args": {"city": "Paris", "n": 1}}}]})
    );
    assert_eq!(
        c[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
            {"functionResponse": {"name": "get_time", "response": {"time": "noon"}}},
            {"text": "thanks"}]})
    );
}

#[tokio::test]
async fn an_openai_client_gets_tool_calls_images_and_reasoning() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["gem-x"],
        json!({"model_mapping": {"gem-x": "gem-x-mock-think-mock-tools"}}),
    )
    .await;
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time"}}]);
    let first = json!({"role": "user", "content": [
        {"type": "text", "text": "weather?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]});
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gem-x", "max_tokens": 3000, "reasoning_effort": "low",
                   "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                   "messages": [first]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap().body;
    assert_eq!(
        sent["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}})
    );
    assert!(sent["generationConfig"]["thinkingConfig"]["thinkingBudget"].is_u64());
    let m = r.json()["choices"][0].clone();
    assert_eq!(m["finish_reason"], "tool_calls");
    assert_eq!(m["message"]["reasoning_content"], "Let me think.");
    assert_eq!(m["message"]["content"], "Let me check.");
    let calls = m["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_0");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris", "n": 1})
    );
    // The results as OpenAI tool messages, named back by their call ids.
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gem-x", "max_tokens": 5, "tools": tools, "messages": [
                first, m["message"].clone(),
                {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
                {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = t.mock.last_request().unwrap().body["contents"].clone();
    assert!(c[1]["parts"][1]["thoughtSignature"].is_string(), "{c}");
    assert_eq!(
        c[2]["parts"],
        json!([{"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
               {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}])
    );
}

#[tokio::test]
async fn finish_reasons_and_safety_blocks_in_each_client_format() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["len", "safe", "blocked"],
        json!({"model_mapping": {"len": "g-mock-maxtokens", "safe": "g-mock-safety",
                                 "blocked": "g-mock-blocked"}}),
    )
    .await;
    for (model, openai, anthropic) in [
        ("len", "length", "max_tokens"),
        ("safe", "content_filter", "refusal"),
        ("blocked", "content_filter", "refusal"),
    ] {
        let body = json!({"model": model, "max_tokens": 3,
                          "messages": [{"role": "user", "content": "hi"}]});
        let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.json()["choices"][0]["finish_reason"], openai, "{model}");
        let r = messages(&t, &key, body).await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.json()["stop_reason"], anthropic, "{model}");
        if model != "len" {
            assert_eq!(
                r.json()["content"],
                json!([]),
                "{model}: nothing withheld shown"
            );
        }
    }
}

/// A Responses client (Codex) on a gemini channel: converted through the same model, whole and
/// streamed, charged as Gemini reported.
#[tokio::test]
async fn responses_client_on_a_gemini_channel_whole_and_streamed() {
    let (t, key) = server().await;
    gemini_channel(&t, &["gem-x"], json!({})).await;
    let r = t
        .relay(
            &key,
            "/v1/responses",
            json!({"model": "gem-x", "max_output_tokens": 4, "instructions": "be brief",
                   "input": "hello there"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gem-x:generateContent");
    assert_eq!(
        seen.body["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );
    assert_eq!(seen.body["generationConfig"]["maxOutputTokens"], 4);
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    let text = v["output"][0]["content"][0]["text"].as_str().unwrap_or("");
    assert_eq!(text, "hello hello hello hello", "{v}");
    assert_eq!(v["usage"]["input_tokens"], 10);
    assert_eq!(v["usage"]["output_tokens"], 4);
    assert_eq!(
        t.log_rows(&r.request_id()),
        vec![(2, 14, 200, 10, 4, Some("upstream".into()))]
    );

    let r = t
        .relay(
            &key,
            "/v1/responses",
            json!({"model": "gem-x", "max_output_tokens": 4, "stream": true,
                   "input": "hello there"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(
        seen.path,
        "/v1beta/models/gem-x:streamGenerateContent?alt=sse"
    );
    let text = r.text();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"response.created"), "{text}");
    assert_eq!(events.last(), Some(&"response.completed"), "{text}");
    let deltas: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "response.output_text.delta")
        .map(|v| v["delta"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(deltas, "hello hello hello hello", "{text}");
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].2, 200);
}
