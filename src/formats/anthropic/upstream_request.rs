//! Encoding the model as an Anthropic Messages request (to an anthropic upstream), with the
//! rules peers follow: the system prompt at the top level; consecutive messages of one role
//! merged (Anthropic wants them alternating) and the first one the user's; tool results first
//! in their user message; `max_tokens` always set (the relay writes the reserved limit);
//! thinking only with its signature (Anthropic refuses an unsigned one) and, when thinking is
//! on, no sampling parameters Anthropic refuses alongside it.

use crate::formats::model::{Message, Part, Request, Role, ToolChoice};
use serde_json::{Map, Value, json};

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

fn block(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::Image { media_type, data } => json!({"type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}}),
        Part::ToolUse {
            id,
            name,
            arguments,
        } => {
            // Arguments that are not a JSON object (a model's broken output) still go back
            // as an object, so the next turn is not refused for the history.
            let input = match serde_json::from_str::<Value>(arguments) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) | Err(_) if arguments.trim().is_empty() => json!({}),
                Ok(_) | Err(_) => json!({"_raw_arguments": arguments}),
            };
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        Part::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let inner: Vec<Value> = content.iter().filter_map(block).collect();
            let mut v =
                json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": inner});
            if *is_error {
                v["is_error"] = Value::Bool(true);
            }
            v
        }
        // A Gemini thought signature (on a conversation moved from a gemini channel) would
        // fail Anthropic's check: left out like unsigned thinking.
        Part::Thinking {
            signature: Some(sig),
            ..
        } if sig.starts_with(crate::formats::gemini::SIGNATURE_PREFIX) => return None,
        Part::Thinking {
            text,
            signature: Some(sig),
        } => json!({"type": "thinking", "thinking": text, "signature": sig}),
        Part::Thinking {
            signature: None, ..
        } => return None,
        Part::RedactedThinking(d) => json!({"type": "redacted_thinking", "data": d}),
    })
}

/// Messages alternating user/assistant, the user's first, tool results first in theirs.
fn messages(ms: &[Message]) -> Vec<Value> {
    let mut merged: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in ms {
        let mut blocks: Vec<Value> = m.parts.iter().filter_map(block).collect();
        if m.role == Role::User {
            // Tool results before anything else in the turn, as Anthropic requires.
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
        }
        if blocks.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((role, bs)) if *role == m.role => bs.extend(blocks),
            _ => merged.push((m.role, blocks)),
        }
    }
    if merged.first().is_some_and(|(r, _)| *r == Role::Assistant) {
        merged.insert(
            0,
            (
                Role::User,
                vec![json!({"type": "text", "text": "(continue)"})],
            ),
        );
    }
    merged
        .into_iter()
        .map(|(role, content)| {
            json!({"role": match role { Role::User => "user", Role::Assistant => "assistant" },
                   "content": content})
        })
        .collect()
}

pub fn encode(r: &Request) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("model".into(), Value::String(r.model.clone()));
    doc.insert("messages".into(), Value::Array(messages(&r.messages)));
    if !r.system.is_empty() {
        doc.insert("system".into(), Value::String(r.system.join("\n\n")));
    }
    // Required by Anthropic; the relay overwrites it with the reserved limit.
    doc.insert(
        "max_tokens".into(),
        Value::from(r.max_tokens.unwrap_or(4096)),
    );
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|t| {
                let mut v = json!({"name": t.name, "input_schema": t.schema});
                if let Some(d) = &t.description {
                    v["description"] = Value::String(d.clone());
                }
                v
            })
            .collect();
        doc.insert("tools".into(), Value::Array(tools));
    }
    let mut choice = match &r.tool_choice {
        None if r.parallel_tool_calls == Some(false) && !r.tools.is_empty() => {
            Some(json!({"type": "auto"}))
        }
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Any) => Some(json!({"type": "any"})),
        Some(ToolChoice::Tool(n)) => Some(json!({"type": "tool", "name": n})),
    };
    if let (Some(c), Some(false)) = (choice.as_mut(), r.parallel_tool_calls)
        && c["type"] != "none"
    {
        c["disable_parallel_tool_use"] = Value::Bool(true);
    }
    if let Some(c) = choice {
        doc.insert("tool_choice".into(), c);
    }
    if !r.stop.is_empty() {
        doc.insert("stop_sequences".into(), json!(r.stop));
    }
    // The budget must be below max_tokens and at least 1024: a limit too small for both
    // turns thinking off rather than have the request refused.
    let budget = match (r.thinking_budget, r.max_tokens) {
        (Some(_), Some(max)) if max <= MIN_THINKING_BUDGET => None,
        (Some(b), Some(max)) => Some(b.max(MIN_THINKING_BUDGET).min(max - 1)),
        (b, _) => b,
    };
    match budget {
        Some(b) => {
            doc.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": b.max(MIN_THINKING_BUDGET)}),
            );
        }
        None => {
            if let Some(t) = r.temperature {
                doc.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
            }
            if let Some(t) = r.top_p {
                doc.insert("top_p".into(), json!(t));
            }
            if let Some(k) = r.top_k {
                doc.insert("top_k".into(), json!(k));
            }
        }
    }
    if let Some(u) = &r.user {
        doc.insert("metadata".into(), json!({"user_id": u}));
    }
    if r.stream {
        doc.insert("stream".into(), Value::Bool(true));
    }
    doc
}
