//! Encoding the model as an OpenAI Responses answer (to a client): the whole `response`
//! object, and the pieces of it the stream encoder ([`super::client_stream`]) writes too.

use crate::billing::Usage;
use crate::formats::model::{Finish, Part, Response};
use serde_json::{Value, json};

/// The Responses usage object for the normalised usage: `input_tokens` includes the cached
/// ones (read and written, as OpenAI's prompt does), `output_tokens` the reasoning ones.
pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// A `resp_` id from the upstream's (a chat completion's or a message's).
pub fn response_id(upstream: &str) -> String {
    let bare = upstream
        .trim_start_matches("chatcmpl-")
        .trim_start_matches("msg_");
    if bare.is_empty() {
        format!("resp_{:016x}", rand::random::<u64>())
    } else if bare.starts_with("resp_") {
        bare.to_string()
    } else {
        format!("resp_{bare}")
    }
}

/// `status` and `incomplete_details` for how generation ended.
pub(super) fn status(finish: Option<Finish>) -> (&'static str, Value) {
    match finish {
        Some(Finish::Length) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(Finish::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
        Some(Finish::Stop | Finish::StopSequence | Finish::ToolCalls) | None => {
            ("completed", Value::Null)
        }
    }
}

/// The `response` object around `output`.
pub(super) fn envelope(
    id: &str,
    model: &str,
    created: u64,
    status: &str,
    output: Vec<Value>,
    usage_v: Value,
) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage_v,
        "user": null,
        "metadata": {},
    })
}

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub(super) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
        "name": name, "arguments": arguments})
}

/// A reasoning item: the summary, and in `encrypted_content` the provider's signature (or a
/// redacted block's data), which a client sends back to keep the thinking across tool turns.
pub(super) fn reasoning_item(id: &str, text: Option<&str>, sealed: Option<&str>) -> Value {
    let summary = match text {
        Some(t) => json!([{"type": "summary_text", "text": t}]),
        None => json!([]),
    };
    let mut v = json!({"id": id, "type": "reasoning", "summary": summary});
    if let Some(s) = sealed.filter(|s| !s.is_empty()) {
        v["encrypted_content"] = Value::String(s.to_string());
    }
    v
}

pub fn encode(r: &Response, model: &str, usage_now: &Usage, created: u64) -> Value {
    let id = response_id(&r.id);
    let tail = id.trim_start_matches("resp_");
    let output: Vec<Value> = r
        .parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Part::Text(t) => Some(message_item(&format!("msg_{tail}_{i}"), t, "completed")),
            Part::ToolUse {
                id: call_id,
                name,
                arguments,
            } => Some(call_item(
                &format!("fc_{tail}_{i}"),
                call_id,
                name,
                arguments,
                "completed",
            )),
            Part::Thinking { text, signature } => Some(reasoning_item(
                &format!("rs_{tail}_{i}"),
                Some(text),
                signature.as_deref(),
            )),
            Part::RedactedThinking(d) => {
                Some(reasoning_item(&format!("rs_{tail}_{i}"), None, Some(d)))
            }
            Part::Image { .. } | Part::ToolResult { .. } => None,
        })
        .collect();
    let (st, incomplete) = status(r.finish);
    let mut v = envelope(&id, model, created, st, output, usage(usage_now));
    v["incomplete_details"] = incomplete;
    v
}
