//! A Responses client on a chat-only channel (anthropic): converted through the model, the answer a `response`
//! object, the stream Responses events in order, tool turns and reasoning kept across them.

use super::{anthropic_channel, event_types, priced, responses, sse, usage_row};
use serde_json::{Value, json};

fn tools() -> Value {
    json!([
        {"type": "function", "name": "get_weather", "description": "weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    ])
}

#[tokio::test]
async fn a_tool_turn_with_reasoning_converts_for_an_anthropic_channel_and_back() {
    let (t, key) = priced().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-think-mock-tools"}}),
    )
    .await;
    let first = json!({"model": "claude-x", "instructions": "be brief",
        "input": "weather and time in Paris?", "tools": tools(), "tool_choice": "auto",
        "reasoning": {"effort": "low"}, "max_output_tokens": 3000});
    let r = responses(&t, &key, first).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["system"], "be brief");
    assert_eq!(sent.body["thinking"]["budget_tokens"], 1024);
    assert_eq!(sent.body["tools"][1]["name"], "get_time");
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "claude-x", "the client's model name");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    let out = v["output"].as_array().unwrap();
    let types: Vec<&str> = out.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(out[0]["summary"][0]["text"], "Let me think.");
    assert!(
        out[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("sig-")
    );
    assert_eq!(out[1]["content"][0]["text"], "Let me check.");
    let names: Vec<&str> = out[2..]
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    for call in &out[2..] {
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris", "n": 1}));
        assert!(call["call_id"].as_str().unwrap().starts_with("toolu_"));
    }

    // The next turn: the output items sent back as they came, and the tool results.
    let mut input = vec![json!({"role": "user", "content": "weather and time in Paris?"})];
    input.extend(out.iter().cloned());
    for call in &out[2..] {
        input.push(
            json!({"type": "function_call_output", "call_id": call["call_id"],
            "output": format!("{} says fine", call["name"].as_str().unwrap())}),
        );
    }
    let second = json!({"model": "claude-x", "input": input, "tools": tools(),
        "reasoning": {"effort": "low"}, "max_output_tokens": 3000, "stream": true});
    let r = responses(&t, &key, second).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = t.mock.last_request().unwrap().body;
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{sent}");
    let blocks: Vec<&str> = msgs[1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocks,
        ["thinking", "text", "tool_use", "tool_use"],
        "{sent}"
    );
    assert_eq!(
        msgs[1]["content"][0]["signature"],
        out[0]["encrypted_content"]
    );
    assert_eq!(
        msgs[1]["content"][2]["input"],
        json!({"city": "Paris", "n": 1})
    );
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], out[2]["call_id"]);
    assert_eq!(msgs[2]["content"][1]["tool_use_id"], out[3]["call_id"]);

    // The stream: Responses events in order, argument fragments per call.
    let types = event_types(&r);
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(types, expected);
    let events = sse(&r);
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"].as_array().unwrap().len(), 4);
    let args: String = events
        .iter()
        .filter(|(n, d)| n == "response.function_call_arguments.delta" && d["output_index"] == 2)
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(args, "{\"city\": \"Paris\", \"n\": 1}");
    assert_eq!(
        events[0].1["response"]["id"], done["id"],
        "one response id from created to completed"
    );
}

#[tokio::test]
async fn cache_usage_from_an_anthropic_channel_is_billed_once_and_told_in_responses_terms() {
    let (t, key) = priced().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-cache-800-100"}}),
    )
    .await;
    // 7 uncached, 800 read, 100 written, 4 out: (7 + 800×0.1 + 100×1.25 + 4×5) × 1.5 = 348.
    for stream in [false, true] {
        let r = responses(
            &t,
            &key,
            json!({"model": "claude-x", "input": "hi", "max_output_tokens": 4, "stream": stream}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            usage_row(&t, &r.request_id()),
            (907, 4, 800, 100, 0, 0, 348),
            "stream={stream}"
        );
        let u = if stream {
            sse(&r).last().unwrap().1["response"]["usage"].clone()
        } else {
            r.json()["usage"].clone()
        };
        assert_eq!(
            u["input_tokens"], 907,
            "input includes the cache, as OpenAI's does"
        );
        assert_eq!(u["input_tokens_details"]["cached_tokens"], 800);
        assert_eq!(u["output_tokens"], 4);
        assert_eq!(u["total_tokens"], 911);
    }
}

#[tokio::test]
async fn what_a_chat_upstream_cannot_do_is_refused_with_a_clear_400_and_nothing_sent() {
    let (t, key) = priced().await;
    anthropic_channel(&t, &["claude-x"], json!({})).await;
    let calls = t.mock.calls();
    for (body, field) in [
        (
            json!({"model": "claude-x", "input": "hi", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "claude-x", "input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "claude-x", "input": [{"role": "user", "content": [
                {"type": "input_image", "image_url": "http://169.254.169.254/x.png"}]}]}),
            "image_url",
        ),
    ] {
        let r = responses(&t, &key, body).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error", "OpenAI's error shape");
        assert!(e["message"].as_str().unwrap().contains(field), "{e}");
    }
    assert_eq!(t.mock.calls(), calls, "nothing went upstream");
    t.relays_idle().await;
    let (balance, used) = t.user_balance(1);
    assert_eq!((balance, used), (10_000_000, 0), "nothing charged");
}

#[tokio::test]
async fn an_upstream_error_mid_stream_ends_a_converted_stream_with_response_failed() {
    let (t, key) = priced().await;
    anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-midfail"}}),
    )
    .await;
    let r = responses(
        &t,
        &key,
        json!({"model": "claude-x", "input": "hi", "max_output_tokens": 4, "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let types = event_types(&r);
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.failed",
        ],
        "{}",
        r.text()
    );
    let failed = sse(&r).last().unwrap().1["response"].clone();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded"),
        "{failed}"
    );
    t.relays_idle().await;
    let (prompt, completion, ..) = usage_row(&t, &r.request_id());
    assert!(
        prompt > 0 && completion >= 1,
        "billed what was generated: {prompt} {completion}"
    );
}

#[tokio::test]
async fn an_openai_channel_marked_chat_only_gets_the_call_converted_to_chat() {
    let (t, key) = priced().await;
    t.channel(
        &["gpt-chat", "gpt-chat-tools"],
        json!({"settings": {"responses_api": false}, "model_mapping": {
            "gpt-chat": "gpt-chat-mock-cache-800-0-mock-reasoning-2",
            "gpt-chat-tools": "gpt-chat-mock-tools"}}),
    )
    .await;
    // 807 in of which 800 cached, 4 out of which 2 reasoning: 7 + 800×0.5 + 4×4 = 423.
    for stream in [false, true] {
        let r = responses(
            &t,
            &key,
            json!({"model": "gpt-chat", "input": "hi", "max_output_tokens": 4, "stream": stream}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let sent = t.mock.last_request().unwrap();
        assert_eq!(
            sent.path, "/v1/chat/completions",
            "converted, not passed through"
        );
        assert_eq!(sent.body["messages"][0]["content"], "hi");
        assert_eq!(
            usage_row(&t, &r.request_id()),
            (807, 4, 800, 0, 0, 2, 423),
            "stream={stream}"
        );
        let v = if stream {
            assert_eq!(
                event_types(&r).last().map(String::as_str),
                Some("response.completed")
            );
            sse(&r).last().unwrap().1["response"].clone()
        } else {
            r.json()
        };
        assert_eq!(
            v["output"][0]["content"][0]["text"],
            "hello hello hello hello"
        );
        assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 800);
        assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
    }
    // Parallel tool calls with argument fragments, streamed.
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-chat-tools", "input": "weather and time?", "tools": tools(),
            "max_output_tokens": 50, "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = sse(&r);
    let done = &events.last().unwrap().1["response"];
    let calls: Vec<&Value> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "function_call")
        .collect();
    assert_eq!(calls.len(), 2, "{done}");
    for c in &calls {
        let args: Value = serde_json::from_str(c["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris", "n": 1}));
    }
    // What conversion refuses is refused here too, the strict reading and not the count's.
    let calls_before = t.mock.calls();
    let r = responses(
        &t,
        &key,
        json!({"model": "gpt-chat", "input": "hi", "tools": [{"type": "web_search"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("tools[0].type"), "{}", r.text());
    assert_eq!(t.mock.calls(), calls_before);
    // The mark is for OpenAI-shaped kinds only.
    let bad = t
        .api(
            "POST",
            "/api/channels",
            Some(
                json!({"name": "a", "kind": "anthropic", "base_url": "https://api.anthropic.com",
                "api_key": "k", "models": ["x"], "settings": {"responses_api": false}}),
            ),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
}
