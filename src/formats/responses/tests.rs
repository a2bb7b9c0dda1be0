//! A Responses client on an OpenAI chat upstream, through the relay's converter: chat chunks
//! in (reasoning, text, parallel tool calls whose argument fragments interleave, the usage
//! chunk, `[DONE]`), Responses events out, each call's arguments whole in its own item.

use crate::billing::Usage;
use crate::formats::Format;
use crate::formats::convert::{CallInfo, StreamConverter, decode_answer, encode_answer};
use serde_json::{Value, json};

fn info() -> CallInfo {
    CallInfo {
        model: "gpt-chat".into(),
        tools: vec!["get_weather".into(), "get_time".into()],
        input_estimate: 10,
        client_wants_usage: false,
        created: 1,
    }
}

fn events(out: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(out);
    let mut v = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            v.push((std::mem::take(&mut name), serde_json::from_str(d).unwrap()));
        }
    }
    v
}

#[test]
fn a_chat_stream_with_interleaved_parallel_calls_becomes_responses_events() {
    let mut c = StreamConverter::new(Format::OpenAiChat, Format::Responses, &info());
    let chunk = |delta: Value| {
        json!({"id": "chatcmpl-9", "model": "up", "choices": [{"index": 0, "delta": delta,
            "finish_reason": null}]})
        .to_string()
    };
    let call = |i: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut f = json!({"arguments": args});
        if let Some(n) = name {
            f["name"] = json!(n);
        }
        let mut tc = json!({"index": i, "function": f});
        if let Some(id) = id {
            tc["id"] = json!(id);
        }
        chunk(json!({"tool_calls": [tc]}))
    };
    let mut out = Vec::new();
    for p in [
        chunk(json!({"role": "assistant", "reasoning_content": "Let me think."})),
        chunk(json!({"content": "Let me"})),
        chunk(json!({"content": " check."})),
        call(0, Some("call_a"), Some("get_weather"), ""),
        call(0, None, None, "{\"city\": "),
        call(1, Some("call_b"), Some("get_time"), "{"),
        // A fragment of the first call after the second began.
        call(0, None, None, "\"Paris\"}"),
        call(1, None, None, "}"),
        json!({"id": "chatcmpl-9", "choices": [{"index": 0, "delta": {},
            "finish_reason": "tool_calls"}]})
        .to_string(),
        json!({"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 30,
            "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 20},
            "completion_tokens_details": {"reasoning_tokens": 3}}})
        .to_string(),
        "[DONE]".to_string(),
    ] {
        c.push(p.as_bytes(), &mut out);
    }
    assert!(c.done);
    let usage = c.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.cache_read,
            usage.reasoning_tokens
        ),
        (30, 20, 3)
    );
    out.extend_from_slice(&c.tail(&usage));
    let ev = events(&out);
    for (i, (name, data)) in ev.iter().enumerate() {
        assert_eq!(data["type"].as_str(), Some(name.as_str()));
        assert_eq!(data["sequence_number"], i as u64);
    }
    let last = &ev.last().unwrap().1;
    assert_eq!(last["type"], "response.completed");
    let r = &last["response"];
    assert_eq!(r["id"], "resp_9");
    assert_eq!(r["model"], "gpt-chat");
    let output = r["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(output[1]["content"][0]["text"], "Let me check.");
    assert_eq!(output[2]["call_id"], "call_a");
    assert_eq!(output[2]["arguments"], "{\"city\": \"Paris\"}");
    assert_eq!(output[3]["name"], "get_time");
    assert_eq!(output[3]["arguments"], "{}");
    assert_eq!(r["usage"]["input_tokens"], 30);
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 20);
    assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 3);
    // Each call's fragments went to its own item, in order.
    let frags = |idx: u64| -> String {
        ev.iter()
            .filter(|(n, d)| {
                n == "response.function_call_arguments.delta" && d["output_index"] == idx
            })
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(frags(2), "{\"city\": \"Paris\"}");
    assert_eq!(frags(3), "{}");
    // No item is done twice, and every added item is done before the end.
    let added = ev
        .iter()
        .filter(|(n, _)| n == "response.output_item.added")
        .count();
    let done = ev
        .iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .count();
    assert_eq!((added, done), (4, 4));
}

#[test]
fn a_whole_chat_answer_becomes_a_response_object() {
    let body = json!({"id": "chatcmpl-7", "model": "up", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "call_1",
            "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}});
    let r = decode_answer(Format::OpenAiChat, body.to_string().as_bytes(), &info()).unwrap();
    let v: Value = serde_json::from_slice(&encode_answer(
        Format::Responses,
        &r,
        &info(),
        &Usage::new(5, 2),
    ))
    .unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "hi");
    assert_eq!(v["output"][1]["call_id"], "call_1");
    assert_eq!(v["usage"]["total_tokens"], 7);
    // Cut by the limit: incomplete, with the reason.
    let cut = json!({"id": "chatcmpl-8", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hel"}, "finish_reason": "length"}]});
    let r = decode_answer(Format::OpenAiChat, cut.to_string().as_bytes(), &info()).unwrap();
    let v: Value = serde_json::from_slice(&encode_answer(
        Format::Responses,
        &r,
        &info(),
        &Usage::new(5, 1),
    ))
    .unwrap();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
}
