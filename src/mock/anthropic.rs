//! The mock's `anthropic` mode: `POST /v1/messages`, stream or not, replaying the shapes of
//! Anthropic's answers ([`super::scripted`] has the markers): text, parallel tool use with
//! `input_json_delta` fragments, thinking with its signature, cache usage, 529
//! `overloaded_error` before any byte, an `event: error` mid-stream.

use super::State;
use super::body::MockBody;
use super::handler::Behaviour;
use super::scripted::{Block, json_response, script, sse};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// `POST /v1/messages`.
pub(crate) fn messages(
    state: &Arc<State>,
    body: &[u8],
    key_fail: Option<StatusCode>,
) -> Response<MockBody> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid JSON",
        );
    };
    let model = req["model"].as_str().unwrap_or("").to_string();
    if req["max_tokens"].as_u64().is_none() {
        return anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    }
    if model.contains("mock-529") {
        return anthropic_error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded (mock-529)",
        );
    }
    if let Some(status) = key_fail.or(Behaviour::of(&model).fail_status()) {
        let kind = match status.as_u16() {
            401 => "authentication_error",
            429 => "rate_limit_error",
            _ => "api_error",
        };
        return anthropic_error(status, kind, "mock failure");
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let s = script(&req, id);
    let usage = json!({
        "input_tokens": s.input,
        "cache_creation_input_tokens": s.cache_write,
        "cache_read_input_tokens": s.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": s.cache_write, "ephemeral_1h_input_tokens": 0},
        "output_tokens": s.output,
    });
    let stop = if s.tool_stop { "tool_use" } else { "end_turn" };
    if !req["stream"].as_bool().unwrap_or(false) {
        let content: Vec<Value> = s
            .blocks
            .iter()
            .map(|b| match b {
                Block::Thinking { text, signature } => {
                    json!({"type": "thinking", "thinking": text, "signature": signature})
                }
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::Tool { id, name, args } => {
                    let input: Value =
                        serde_json::from_str(&args.concat()).unwrap_or_else(|_| json!({}));
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"id": format!("msg_mock{id}"), "type": "message", "role": "assistant",
                "model": model, "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": usage}),
        );
    }
    let ev = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
    let mut chunks = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": format!("msg_mock{id}"),
            "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": s.input, "cache_creation_input_tokens": s.cache_write,
                "cache_read_input_tokens": s.cache_read, "output_tokens": 1}}}),
    )];
    chunks.push(ev("ping", json!({"type": "ping"})));
    for (i, b) in s.blocks.iter().enumerate() {
        let delta = |d: Value| {
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i, "delta": d}),
            )
        };
        let start = |c: Value| {
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": i, "content_block": c}),
            )
        };
        match b {
            Block::Thinking { text, signature } => {
                chunks.push(start(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ));
                chunks.push(delta(json!({"type": "thinking_delta", "thinking": text})));
                chunks.push(delta(
                    json!({"type": "signature_delta", "signature": signature}),
                ));
            }
            Block::Text(t) => {
                chunks.push(start(json!({"type": "text", "text": ""})));
                let mut first = true;
                for w in t.split(' ') {
                    let piece = if first {
                        w.to_string()
                    } else {
                        format!(" {w}")
                    };
                    first = false;
                    chunks.push(delta(json!({"type": "text_delta", "text": piece})));
                    if s.midfail {
                        chunks.push(ev(
                            "error",
                            json!({"type": "error", "error": {"type": "overloaded_error",
                                "message": "Overloaded (mock-midfail)"}}),
                        ));
                        return sse(chunks, state);
                    }
                }
            }
            Block::Tool { id, name, args } => {
                chunks.push(start(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                ));
                for a in args {
                    chunks.push(delta(
                        json!({"type": "input_json_delta", "partial_json": a}),
                    ));
                }
            }
        }
        chunks.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    chunks.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": s.output}}),
    ));
    chunks.push(ev("message_stop", json!({"type": "message_stop"})));
    sse(chunks, state)
}
