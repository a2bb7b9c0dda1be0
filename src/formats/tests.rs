//! The converters alone: the stream state machines, the finish-reason table, usage both ways,
//! and untrusted input that must never panic.

use super::convert::{CallInfo, StreamConverter};
use super::model::{Event, Finish};
use super::{Format, anthropic, openai};
use crate::billing::Usage;
use serde_json::{Value, json};

fn info() -> CallInfo {
    CallInfo {
        model: "m".into(),
        tools: vec!["a".into(), "b".into()],
        input_estimate: 9,
        client_wants_usage: true,
        created: 1,
    }
}

fn chunk(delta: Value, finish: Option<&str>) -> Vec<u8> {
    json!({"id": "c1", "model": "up", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
        .into_bytes()
}

#[test]
fn openai_deltas_become_blocks_one_per_run_and_per_tool_call() {
    let mut d = openai::upstream_answer::StreamDecoder::new(vec!["a".into(), "b".into()]);
    let mut ev = Vec::new();
    for c in [
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "hm"}), None),
        chunk(json!({"content": "Hi"}), None),
        chunk(json!({"content": " there"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "t0", "function": {"name": "a", "arguments": "{\"x\""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "t1", "function": {"name": "b", "arguments": ""}}]}),
            None,
        ),
        // A fragment of the first call after the second began (interleaved parallel calls).
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ] {
        d.push(&c, &mut ev);
    }
    d.push(br#"{"id":"c1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#, &mut ev);
    d.push(b"[DONE]", &mut ev);
    assert_eq!(
        ev,
        vec![
            Event::Start {
                id: "c1".into(),
                model: "up".into()
            },
            Event::ThinkingDelta {
                index: 0,
                text: "hm".into()
            },
            Event::BlockStop { index: 0 },
            Event::TextDelta {
                index: 1,
                text: "Hi".into()
            },
            Event::TextDelta {
                index: 1,
                text: " there".into()
            },
            Event::BlockStop { index: 1 },
            Event::ToolStart {
                index: 2,
                id: "t0".into(),
                name: "a".into()
            },
            Event::ToolArgs {
                index: 2,
                fragment: "{\"x\"".into()
            },
            Event::BlockStop { index: 2 },
            Event::ToolStart {
                index: 3,
                id: "t1".into(),
                name: "b".into()
            },
            Event::ToolArgs {
                index: 2,
                fragment: ":1}".into()
            },
            Event::BlockStop { index: 3 },
            Event::Finish(Finish::ToolCalls),
            Event::Usage(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cache_read: 4,
                ..Usage::default()
            }),
            Event::Done,
        ]
    );
}

/// The event names of an Anthropic stream written by the converter.
fn names(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
        .collect()
}

#[test]
fn an_anthropic_client_gets_the_sdk_order_and_the_usage_last() {
    let mut c = StreamConverter::new(Format::OpenAiChat, Format::Anthropic, &info());
    let mut out = Vec::new();
    for ch in [
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hi"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "t0", "function": {"name": "a", "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ] {
        c.push(&ch, &mut out);
    }
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop"
        ]
    );
    assert!(
        String::from_utf8_lossy(&out).contains("\"input_tokens\":9"),
        "the estimate first"
    );
    let usage = Usage {
        prompt_tokens: 100,
        completion_tokens: 7,
        cache_read: 60,
        ..Usage::default()
    };
    let tail = c.tail(&usage);
    assert_eq!(names(&tail), ["message_delta", "message_stop"]);
    let delta: Value = serde_json::from_str(
        String::from_utf8_lossy(&tail)
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("data: "),
    )
    .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    // The peer trap: input_tokens is the uncached part, not the whole prompt.
    assert_eq!(delta["usage"]["input_tokens"], 40);
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 60);
    assert_eq!(delta["usage"]["output_tokens"], 7);
    let err = c.error_tail("boom", "upstream_error", "upstream_error");
    assert_eq!(names(&err), ["error"]);
}

#[test]
fn finish_reasons_map_both_ways_as_the_table_says() {
    for (anthropic_reason, openai_reason) in [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("stop_sequence", "stop"),
    ] {
        let f = anthropic::parse_stop(anthropic_reason);
        assert_eq!(
            openai::finish_reason(f),
            openai_reason,
            "{anthropic_reason}"
        );
    }
    for (openai_reason, anthropic_reason) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        let f = openai::parse_finish(openai_reason);
        assert_eq!(
            anthropic::stop_reason(f),
            anthropic_reason,
            "{openai_reason}"
        );
    }
}

#[test]
fn anthropic_usage_normalises_to_every_input_token_once() {
    let w: anthropic::upstream_answer::WireUsage = serde_json::from_value(json!({
        "input_tokens": 7, "cache_read_input_tokens": 800, "cache_creation_input_tokens": 150,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 50},
        "output_tokens": 3}))
    .unwrap();
    let u = w.normalise();
    assert_eq!(
        u,
        Usage {
            prompt_tokens: 957,
            completion_tokens: 3,
            cache_read: 800,
            cache_write_5m: 100,
            cache_write_1h: 50,
            reasoning_tokens: 0
        }
    );
    // And back: the same figures Anthropic sent.
    let back = anthropic::client_answer::usage(&u);
    assert_eq!(back["input_tokens"], 7);
    assert_eq!(back["cache_creation_input_tokens"], 150);
    // OpenAI's shape keeps the whole prompt (cached tokens are part of it there).
    let oa = openai::client_answer::usage(&u);
    assert_eq!(oa["prompt_tokens"], 957);
    assert_eq!(oa["prompt_tokens_details"]["cached_tokens"], 800);
}

#[test]
fn bad_client_bodies_name_the_field_and_never_panic() {
    let e = anthropic::client_request::decode(&json!({"model": "m", "messages": []})).unwrap_err();
    assert!(e.0.contains("max_tokens"), "{e}");
    let e = anthropic::client_request::decode(&json!({"model": "m", "max_tokens": 1,
        "messages": [{"role": "system", "content": "x"}]}))
    .unwrap_err();
    assert!(e.0.contains("messages[0].role"), "{e}");
    let e = openai::client_request::decode(
        &json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
    )
    .unwrap_err();
    assert!(e.0.contains("messages[0].tool_call_id"), "{e}");
    for v in [
        json!(null),
        json!([]),
        json!({"model": 1}),
        json!({"model": "m", "messages": "x"}),
    ] {
        assert!(anthropic::client_request::decode(&v).is_err());
        assert!(openai::client_request::decode(&v).is_err());
    }
    // Garbage into the stream decoders and answer decoders: ignored, not a panic.
    let mut c = StreamConverter::new(Format::Anthropic, Format::OpenAiChat, &info());
    let mut out = Vec::new();
    for junk in [&b"{"[..], b"[DONE]", b"\xff\xfe", br#"{"type":"content_block_delta","index":99,"delta":{"type":"input_json_delta","partial_json":"x"}}"#, br#"{"type":"content_block_delta"}"#] {
        c.push(junk, &mut out);
    }
    assert!(super::convert::decode_answer(Format::Anthropic, b"nope", &info()).is_none());
    assert!(
        super::convert::decode_answer(Format::OpenAiChat, b"{\"choices\":7}", &info()).is_none()
    );
}

#[test]
fn an_openai_request_becomes_an_anthropic_one_by_the_rules() {
    let r = openai::client_request::decode(&json!({"model": "m", "max_tokens": 2000,
        "reasoning_effort": "high", "temperature": 0.5,
        "messages": [
            {"role": "system", "content": "s1"},
            {"role": "assistant", "content": "first"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"}]}))
    .unwrap();
    let doc = anthropic::upstream_request::encode(&r);
    assert_eq!(doc["system"], "s1");
    let m = doc["messages"].as_array().unwrap();
    // The first must be the user's; consecutive user turns merge.
    assert_eq!(m[0]["role"], "user");
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[2]["content"].as_array().unwrap().len(), 2);
    // Thinking within the limit, and no temperature beside it.
    assert_eq!(doc["thinking"]["budget_tokens"], 1999);
    assert!(doc.get("temperature").is_none());
}
