//! Encoding the model as an OpenAI chat/completions request (to an OpenAI-shaped upstream).
//! The output limit goes in `max_tokens`; the relay moves it to the field the upstream model
//! takes (`relay::limit`). Thinking from earlier turns is dropped: chat/completions cannot take
//! it back (its signature only means something to the provider that made it).

use crate::formats::model::{Part, Request, Role, ToolChoice};
use crate::formats::names;
use serde_json::{Map, Value, json};

fn image_url(media_type: &str, data: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}})
}

/// Text and images as OpenAI content: a plain string when it is all text.
fn content(parts: &[Part]) -> Value {
    let only_text = parts.iter().all(|p| matches!(p, Part::Text(_)));
    if only_text {
        let texts: Vec<&str> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        return Value::String(texts.join("\n"));
    }
    Value::Array(
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(json!({"type": "text", "text": t})),
                Part::Image { media_type, data } => Some(image_url(media_type, data)),
                _ => None,
            })
            .collect(),
    )
}

pub fn encode(r: &Request) -> Map<String, Value> {
    let mut messages = Vec::new();
    if !r.system.is_empty() {
        messages.push(json!({"role": "system", "content": r.system.join("\n\n")}));
    }
    for m in &r.messages {
        match m.role {
            Role::User => {
                // Tool results first (each its own `tool` message), then what the user said.
                let mut rest = Vec::new();
                let mut result_images = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult {
                            tool_use_id,
                            content: c,
                            is_error,
                        } => {
                            let text: Vec<&str> = c
                                .iter()
                                .filter_map(|p| match p {
                                    Part::Text(t) => Some(t.as_str()),
                                    _ => None,
                                })
                                .collect();
                            let mut text = text.join("\n");
                            if *is_error {
                                text = format!("Error: {text}");
                            }
                            result_images
                                .extend(c.iter().filter(|p| matches!(p, Part::Image { .. })));
                            messages.push(
                                json!({"role": "tool", "tool_call_id": tool_use_id, "content": text}),
                            );
                        }
                        Part::Text(_) | Part::Image { .. } => rest.push(p.clone()),
                        Part::ToolUse { .. }
                        | Part::Thinking { .. }
                        | Part::RedactedThinking(_) => {}
                    }
                }
                // A tool message cannot carry an image: it follows as the user's.
                rest.extend(result_images.into_iter().cloned());
                if !rest.is_empty() {
                    messages.push(json!({"role": "user", "content": content(&rest)}));
                }
            }
            Role::Assistant => {
                let text: Vec<&str> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                let calls: Vec<Value> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolUse {
                            id,
                            name,
                            arguments,
                        } => Some(json!({"id": id, "type": "function",
                            "function": {"name": names::shorten(name), "arguments": arguments}})),
                        _ => None,
                    })
                    .collect();
                let mut msg = Map::new();
                msg.insert("role".into(), "assistant".into());
                msg.insert(
                    "content".into(),
                    if text.is_empty() {
                        Value::Null
                    } else {
                        Value::String(text.join(""))
                    },
                );
                if !calls.is_empty() {
                    msg.insert("tool_calls".into(), Value::Array(calls));
                }
                messages.push(Value::Object(msg));
            }
        }
    }
    let mut doc = Map::new();
    doc.insert("model".into(), Value::String(r.model.clone()));
    doc.insert("messages".into(), Value::Array(messages));
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": names::shorten(&t.name), "parameters": t.schema});
                if let Some(d) = &t.description {
                    f["description"] = Value::String(d.clone());
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        doc.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = &r.tool_choice {
        doc.insert(
            "tool_choice".into(),
            match c {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Any => json!("required"),
                ToolChoice::Tool(n) => {
                    json!({"type": "function", "function": {"name": names::shorten(n)}})
                }
            },
        );
    }
    if let Some(p) = r.parallel_tool_calls
        && !r.tools.is_empty()
    {
        doc.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    if let Some(n) = r.max_tokens {
        doc.insert("max_tokens".into(), Value::from(n));
    }
    if let Some(t) = r.temperature {
        doc.insert("temperature".into(), json!(t));
    }
    if let Some(t) = r.top_p {
        doc.insert("top_p".into(), json!(t));
    }
    if !r.stop.is_empty() {
        doc.insert("stop".into(), json!(r.stop));
    }
    if let Some(u) = &r.user {
        doc.insert("user".into(), Value::String(u.clone()));
    }
    if r.stream {
        doc.insert("stream".into(), Value::Bool(true));
        // The usage chunk is how the call is billed.
        doc.insert("stream_options".into(), json!({"include_usage": true}));
    }
    doc
}
