//! Recorded-shape transcripts for the format tests: the `anthropic` mode (`POST /v1/messages`)
//! and the OpenAI chat answers that conversions need (tool calls with streamed argument
//! fragments, cached and reasoning tokens). Written with serde_json: these answers are for
//! correctness tests, not the benchmark's hot path.
//!
//! One answer is a list of blocks, rendered as Anthropic's message / event sequence or as
//! OpenAI's completion / chunks. Markers in the model name (they combine):
//! - `mock-tools`: a short text, then a call to each of the request's first two tools (by the
//!   names the request gives them), arguments `{"city":"Paris","n":1}` sent in fragments;
//!   stop reason `tool_use` / `tool_calls`;
//! - `mock-think`: a thinking block first (`"Let me think."`, signature `sig-<words>`) —
//!   OpenAI: `reasoning_content`;
//! - `mock-cache-<r>-<w>`: Anthropic: `cache_read_input_tokens` r and
//!   `cache_creation_input_tokens` w (5-minute), on top of the uncached input; OpenAI: r cached
//!   of the prompt (`prompt_tokens` includes them; w is ignored);
//! - `mock-reasoning-<n>`: OpenAI: n of the completion tokens are reasoning tokens;
//! - `mock-529`: Anthropic's 529 `overloaded_error` (before any byte);
//! - `mock-midfail`: stream: the first text event, then an error event (Anthropic
//!   `event: error` `overloaded_error`; OpenAI an `error` object) and the end.
//!
//! Otherwise a text of N words ("hello hello …", N = `max_tokens` clamped to 1..=4096), as the
//! OpenAI mode. Usage: input = the words of the messages' text (and the system's) + 3 per message
//! + 3; output = N.

use super::body::MockBody;
use super::{State, render};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Whether a chat request is one this module answers (else the fast renderer does).
pub(crate) fn wants(model: &str) -> bool {
    [
        "mock-tools",
        "mock-think",
        "mock-cache-",
        "mock-reasoning-",
        "mock-midfail",
    ]
    .iter()
    .any(|m| model.contains(m))
}

pub(super) enum Block {
    Thinking {
        text: String,
        signature: String,
    },
    Text(String),
    Tool {
        id: String,
        name: String,
        args: Vec<String>,
    },
}

pub(super) struct Script {
    pub(super) blocks: Vec<Block>,
    pub(super) tool_stop: bool,
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) cache_read: u64,
    pub(super) cache_write: u64,
    pub(super) reasoning: u64,
    pub(super) midfail: bool,
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.get("text").map_or(0, words),
        _ => 0,
    }
}

fn number_after(model: &str, marker: &str) -> Option<u64> {
    let rest = &model[model.find(marker)? + marker.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

pub(super) fn script(req: &Value, id: u64) -> Script {
    let model = req["model"].as_str().unwrap_or("");
    let n = req["max_tokens"]
        .as_u64()
        .or_else(|| req["max_completion_tokens"].as_u64())
        .unwrap_or(16)
        .clamp(1, render::MAX_WORDS);
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let input = messages.iter().map(|m| words(&m["content"])).sum::<u64>()
        + words(&req["system"])
        + 3 * messages.len() as u64
        + 3;
    let mut blocks = Vec::new();
    if model.contains("mock-think") {
        blocks.push(Block::Thinking {
            text: "Let me think.".into(),
            signature: format!("sig-{id}"),
        });
    }
    let tools: Vec<String> = req["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    t.pointer("/function/name")
                        .or_else(|| t.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .take(2)
                .collect()
        })
        .unwrap_or_default();
    let tool_stop = model.contains("mock-tools") && !tools.is_empty();
    if tool_stop {
        blocks.push(Block::Text("Let me check.".into()));
        for (i, name) in tools.into_iter().enumerate() {
            blocks.push(Block::Tool {
                id: format!("toolu_{id}_{i}"),
                name,
                args: vec![
                    "{\"city\": ".into(),
                    "\"Paris\"".into(),
                    ", \"n\": 1}".into(),
                ],
            });
        }
    } else {
        let text = std::iter::repeat_n("hello", n as usize)
            .collect::<Vec<_>>()
            .join(" ");
        blocks.push(Block::Text(text));
    }
    let cache_read = number_after(model, "mock-cache-").unwrap_or(0);
    let cache_write = model
        .find("mock-cache-")
        .and_then(|i| {
            let rest = &model[i + "mock-cache-".len()..];
            let dash = rest.find('-')?;
            number_after(&rest[dash..], "-")
        })
        .unwrap_or(0);
    Script {
        blocks,
        tool_stop,
        input,
        output: n,
        cache_read,
        cache_write,
        reasoning: number_after(model, "mock-reasoning-").unwrap_or(0).min(n),
        midfail: model.contains("mock-midfail"),
    }
}

pub(super) fn json_response(status: StatusCode, v: &Value) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(Bytes::from(v.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

pub(super) fn sse(chunks: Vec<Bytes>, state: &Arc<State>) -> Response<MockBody> {
    let mut res = Response::new(MockBody::stream(chunks, state.clone()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    res
}

/// A chat/completions answer for the markers above (OpenAI's shape).
pub(crate) fn chat(state: &Arc<State>, req: &Value) -> Response<MockBody> {
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let s = script(req, id);
    let model = req["model"].as_str().unwrap_or("");
    let usage = json!({
        "prompt_tokens": s.input + s.cache_read,
        "completion_tokens": s.output,
        "total_tokens": s.input + s.cache_read + s.output,
        "prompt_tokens_details": {"cached_tokens": s.cache_read},
        "completion_tokens_details": {"reasoning_tokens": s.reasoning},
    });
    let finish = if s.tool_stop { "tool_calls" } else { "stop" };
    let head = |v: Value| {
        json!({"id": format!("chatcmpl-mock{id}"), "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": v, "finish_reason": null}]})
    };
    if !req["stream"].as_bool().unwrap_or(false) {
        let mut msg = json!({"role": "assistant", "content": null});
        let mut calls = Vec::new();
        for b in &s.blocks {
            match b {
                Block::Thinking { text, .. } => msg["reasoning_content"] = json!(text),
                Block::Text(t) => msg["content"] = json!(t),
                Block::Tool { id, name, args } => calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args.concat()}})),
            }
        }
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        return json_response(
            StatusCode::OK,
            &json!({"id": format!("chatcmpl-mock{id}"), "object": "chat.completion",
                "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                "usage": usage}),
        );
    }
    let data = |v: Value| Bytes::from(format!("data: {v}\n\n"));
    let mut chunks = vec![data(head(json!({"role": "assistant", "content": ""})))];
    let mut tool_index = 0;
    for b in &s.blocks {
        match b {
            Block::Thinking { text, .. } => {
                chunks.push(data(head(json!({"reasoning_content": text}))))
            }
            Block::Text(t) => {
                let mut first = true;
                for w in t.split(' ') {
                    let piece = if first {
                        w.to_string()
                    } else {
                        format!(" {w}")
                    };
                    first = false;
                    chunks.push(data(head(json!({"content": piece}))));
                    if s.midfail {
                        chunks.push(data(json!({"error": {"message": "mock-midfail",
                            "type": "server_error", "code": null}})));
                        return sse(chunks, state);
                    }
                }
            }
            Block::Tool { id, name, args } => {
                chunks.push(data(head(
                    json!({"tool_calls": [{"index": tool_index, "id": id,
                    "type": "function", "function": {"name": name, "arguments": ""}}]}),
                )));
                for a in args {
                    chunks.push(data(head(json!({"tool_calls": [{"index": tool_index,
                        "function": {"arguments": a}}]}))));
                }
                tool_index += 1;
            }
        }
    }
    let mut last = head(json!({}));
    last["choices"][0]["finish_reason"] = json!(finish);
    chunks.push(data(last));
    let wants_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if wants_usage {
        chunks.push(data(json!({"id": format!("chatcmpl-mock{id}"),
            "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [], "usage": usage})));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    sse(chunks, state)
}
