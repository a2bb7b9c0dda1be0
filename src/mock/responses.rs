//! The Responses mode: `POST /v1/responses` answers [`scripted`](super::scripted)'s scripts as
//! a `response` object or as Responses events (`response.created` … `response.completed`, with
//! `sequence_number`s), and keeps each response (unless `"store": false`) for
//! `GET` / `DELETE /v1/responses/{id}`.
//!
//! The request is read as a chat one for the script: `instructions` is the system prompt,
//! each `input` message (and each `function_call_output`) a message, `max_output_tokens` N.
//! Usage as OpenAI reports it: `input_tokens` includes the cached ones (`mock-cache-<r>`),
//! `output_tokens` the reasoning ones (`mock-reasoning-<n>`). `mock-midfail`: a stream sends
//! the first text delta, then `response.failed`. The failure markers (`mock-500`…) and
//! `mock-key-<status>` answer that status with an OpenAI error body.

use super::body::MockBody;
use super::handler::Behaviour;
use super::scripted::{Block, json_response, script, sse};
use super::{State, render};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn openai_error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": "invalid_request_error", "param": null,
            "code": null}}),
    )
}

/// The Responses request in the chat shape the scripts read.
fn as_chat(req: &Value) -> Value {
    let mut messages = Vec::new();
    match &req["input"] {
        Value::String(s) => messages.push(json!({"role": "user", "content": s})),
        Value::Array(items) => {
            for it in items {
                if it.get("role").is_some() {
                    messages.push(json!({"role": it["role"], "content": it["content"]}));
                } else if it["type"] == "function_call_output" {
                    messages.push(json!({"role": "tool", "content": it["output"]}));
                }
            }
        }
        _ => {}
    }
    json!({
        "model": req["model"],
        "messages": messages,
        "system": req["instructions"],
        "max_tokens": req["max_output_tokens"],
        "tools": req["tools"],
    })
}

/// `POST /v1/responses`.
pub(crate) fn create(
    state: &Arc<State>,
    body: &[u8],
    key_fail: Option<StatusCode>,
) -> Response<MockBody> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let model = req["model"].as_str().unwrap_or("").to_string();
    if let Some(status) = key_fail.or(Behaviour::of(&model).fail_status()) {
        let body = match status {
            StatusCode::TOO_MANY_REQUESTS => render::ERROR_429,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => render::ERROR_401,
            _ => render::ERROR_500,
        };
        let mut res = Response::new(MockBody::full(Bytes::from_static(body.as_bytes())));
        *res.status_mut() = status;
        return res;
    }
    let n = state.next_id.fetch_add(1, Ordering::Relaxed);
    let s = script(&as_chat(&req), n);
    let id = format!("resp_mock{n}");
    let usage = json!({
        "input_tokens": s.input + s.cache_read,
        "input_tokens_details": {"cached_tokens": s.cache_read},
        "output_tokens": s.output,
        "output_tokens_details": {"reasoning_tokens": s.reasoning},
        "total_tokens": s.input + s.cache_read + s.output,
    });
    let items: Vec<Value> = s
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Block::Thinking { text, signature } => json!({"id": format!("rs_mock{n}_{i}"),
                "type": "reasoning", "summary": [{"type": "summary_text", "text": text}],
                "encrypted_content": signature}),
            Block::Text(t) => json!({"id": format!("msg_mock{n}_{i}"), "type": "message",
                "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": t, "annotations": []}]}),
            Block::Tool { id, name, args } => json!({"id": format!("fc_mock{n}_{i}"),
                "type": "function_call", "status": "completed", "call_id": id, "name": name,
                "arguments": args.concat()}),
        })
        .collect();
    let envelope = |status: &str, output: Vec<Value>, usage: Value| {
        json!({"id": id, "object": "response", "created_at": 1_700_000_000, "status": status,
            "error": null, "incomplete_details": null, "instructions": req["instructions"],
            "max_output_tokens": req["max_output_tokens"], "model": model, "output": output,
            "parallel_tool_calls": true, "previous_response_id": req["previous_response_id"],
            "reasoning": {"effort": null, "summary": null}, "store": req["store"] != false,
            "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": req["tools"].as_array().cloned().unwrap_or_default(), "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": null, "metadata": {}})
    };
    let done = envelope("completed", items.clone(), usage.clone());
    if req["store"] != false {
        state.stored.lock().insert(id.clone(), done.clone());
    }
    if !req["stream"].as_bool().unwrap_or(false) {
        return json_response(StatusCode::OK, &done);
    }
    let mut seq = 0u64;
    let mut chunks = Vec::new();
    let mut ev = |name: &str, v: Value| {
        // `type` first, as OpenAI writes it.
        let mut v = match v {
            Value::Object(rest) => {
                let mut o = serde_json::Map::new();
                o.insert("type".into(), json!(name));
                o.extend(rest);
                Value::Object(o)
            }
            other => other,
        };
        v["sequence_number"] = json!(seq);
        seq += 1;
        chunks.push(Bytes::from(format!("event: {name}\ndata: {v}\n\n")));
    };
    let started = envelope("in_progress", Vec::new(), Value::Null);
    ev("response.created", json!({"response": started}));
    ev("response.in_progress", json!({"response": started}));
    for (i, (b, item)) in s.blocks.iter().zip(&items).enumerate() {
        let item_id = item["id"].clone();
        match b {
            Block::Thinking { text, .. } => {
                ev(
                    "response.output_item.added",
                    json!({"output_index": i,
                    "item": {"id": item_id, "type": "reasoning", "summary": []}}),
                );
                ev(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": item_id,
                    "output_index": i, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
                );
                ev(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": item_id,
                    "output_index": i, "summary_index": 0, "delta": text}),
                );
                ev(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": item_id,
                    "output_index": i, "summary_index": 0, "text": text}),
                );
                ev(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": item_id,
                    "output_index": i, "summary_index": 0,
                    "part": {"type": "summary_text", "text": text}}),
                );
            }
            Block::Text(t) => {
                ev(
                    "response.output_item.added",
                    json!({"output_index": i,
                    "item": {"id": item_id, "type": "message", "status": "in_progress",
                        "role": "assistant", "content": []}}),
                );
                ev(
                    "response.content_part.added",
                    json!({"item_id": item_id, "output_index": i,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                );
                for (k, w) in t.split(' ').enumerate() {
                    let piece = if k == 0 {
                        w.to_string()
                    } else {
                        format!(" {w}")
                    };
                    ev(
                        "response.output_text.delta",
                        json!({"item_id": item_id,
                        "output_index": i, "content_index": 0, "delta": piece, "logprobs": []}),
                    );
                    if s.midfail {
                        let mut failed = envelope("failed", Vec::new(), Value::Null);
                        failed["error"] = json!({"code": "server_error",
                            "message": "mock-midfail"});
                        ev("response.failed", json!({"response": failed}));
                        return sse(chunks, state);
                    }
                }
                ev(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": i,
                    "content_index": 0, "text": t, "logprobs": []}),
                );
                ev(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": i,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": t, "annotations": []}}),
                );
            }
            Block::Tool { id, name, args } => {
                ev(
                    "response.output_item.added",
                    json!({"output_index": i,
                    "item": {"id": item_id, "type": "function_call", "status": "in_progress",
                        "call_id": id, "name": name, "arguments": ""}}),
                );
                for a in args {
                    ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id,
                        "output_index": i, "delta": a}),
                    );
                }
                ev(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id,
                    "output_index": i, "name": name, "arguments": args.concat()}),
                );
            }
        }
        ev(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
        );
    }
    ev("response.completed", json!({"response": done}));
    sse(chunks, state)
}

/// `GET` / `DELETE /v1/responses/{id}`.
pub(crate) fn stored(state: &Arc<State>, method: &Method, path: &str) -> Response<MockBody> {
    let id = path.trim_start_matches("/v1/responses/");
    let found = if method == Method::DELETE {
        state.stored.lock().remove(id)
    } else {
        state.stored.lock().get(id).cloned()
    };
    match (found, method == Method::DELETE) {
        (None, _) => openai_error(
            StatusCode::NOT_FOUND,
            &format!("No response found with id '{id}'."),
        ),
        (Some(_), true) => json_response(
            StatusCode::OK,
            &json!({"id": id, "object": "response.deleted", "deleted": true}),
        ),
        (Some(v), false) => json_response(StatusCode::OK, &v),
    }
}
