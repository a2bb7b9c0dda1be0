//! Decoding an OpenAI chat/completions request (from a client) into the model.

use crate::formats::model::{Message, Part, Request, Role, Tool, ToolChoice};
use crate::formats::{FormatError, body_error};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Wire {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    tools: Vec<WireTool>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    /// Anthropic thinking blocks (with their signatures) as peers carry them on an OpenAI
    /// message, so a client can send them back across tool turns.
    #[serde(default)]
    thinking_blocks: Vec<WireThinking>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Deserialize)]
struct ImageUrl {
    url: String,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct WireTool {
    function: WireToolDef,
}

#[derive(Deserialize)]
struct WireToolDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// An image as the model holds it: a `data:` URL's bytes. A remote URL would make the gateway
/// fetch what a client names (an SSRF hole), so it is refused.
pub fn image_from_url(url: &str, field: &str) -> Result<Part, FormatError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(FormatError::field(
            field,
            "is a remote image URL; this gateway does not fetch images for a provider of another format: send it inline as a data: URL (base64)",
        ));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(FormatError::field(field, "is not a valid data: URL"));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(FormatError::field(field, "must be a base64 data: URL"));
    };
    Ok(Part::Image {
        media_type: media_type.to_string(),
        data: data.to_string(),
    })
}

fn content_parts(c: Option<Content>, at: &str) -> Result<Vec<Part>, FormatError> {
    Ok(match c {
        None => Vec::new(),
        Some(Content::Text(t)) => vec![Part::Text(t)],
        Some(Content::Parts(ps)) => {
            let mut out = Vec::with_capacity(ps.len());
            for (i, p) in ps.into_iter().enumerate() {
                out.push(match p {
                    WirePart::Text { text } => Part::Text(text),
                    WirePart::ImageUrl { image_url } => {
                        image_from_url(&image_url.url, &format!("{at}.content[{i}].image_url.url"))?
                    }
                });
            }
            out
        }
    })
}

fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn decode(body: &Value) -> Result<Request, FormatError> {
    let w = Wire::deserialize(body).map_err(body_error)?;
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for (i, m) in w.messages.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.role.as_str() {
            "system" | "developer" => {
                system.push(text_of(&content_parts(m.content, &at)?));
            }
            "user" => messages.push(Message {
                role: Role::User,
                parts: content_parts(m.content, &at)?,
            }),
            "assistant" => {
                let mut parts = Vec::new();
                for t in m.thinking_blocks {
                    match t.kind.as_deref() {
                        Some("redacted_thinking") => {
                            parts.push(Part::RedactedThinking(t.data.unwrap_or_default()))
                        }
                        _ => parts.push(Part::Thinking {
                            text: t.thinking.unwrap_or_default(),
                            signature: t.signature,
                        }),
                    }
                }
                if parts.is_empty()
                    && let Some(r) = m.reasoning_content.filter(|r| !r.is_empty())
                {
                    parts.push(Part::Thinking {
                        text: r,
                        signature: None,
                    });
                }
                parts.extend(
                    content_parts(m.content, &at)?
                        .into_iter()
                        .filter(|p| !matches!(p, Part::Text(t) if t.is_empty())),
                );
                for c in m.tool_calls {
                    parts.push(Part::ToolUse {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                    });
                }
                messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" | "function" => {
                let Some(id) = m.tool_call_id else {
                    return Err(FormatError::field(
                        &format!("{at}.tool_call_id"),
                        "is required on a tool message",
                    ));
                };
                let result = Part::ToolResult {
                    tool_use_id: id,
                    content: content_parts(m.content, &at)?,
                    is_error: false,
                };
                // Consecutive tool results answer one assistant turn: one user message.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .parts
                                .iter()
                                .all(|p| matches!(p, Part::ToolResult { .. })) =>
                    {
                        last.parts.push(result)
                    }
                    _ => messages.push(Message {
                        role: Role::User,
                        parts: vec![result],
                    }),
                }
            }
            other => {
                return Err(FormatError::field(
                    &format!("{at}.role"),
                    &format!("is {other:?}; use system, developer, user, assistant or tool"),
                ));
            }
        }
    }
    let tool_choice = match w.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "none" => ToolChoice::None,
            "required" => ToolChoice::Any,
            _ => ToolChoice::Auto,
        }),
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(n) => Some(ToolChoice::Tool(n.to_string())),
            None => {
                return Err(FormatError::field(
                    "tool_choice",
                    "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}",
                ));
            }
        },
    };
    let thinking_budget = match w.reasoning_effort.as_deref() {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(1024),
        Some("medium") => Some(4096),
        Some(_) => Some(16384),
    };
    Ok(Request {
        model: w.model,
        system,
        messages,
        tools: w
            .tools
            .into_iter()
            .map(|t| Tool {
                name: t.function.name,
                description: t.function.description,
                schema: t
                    .function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
            .collect(),
        tool_choice,
        max_tokens: match (w.max_tokens, w.max_completion_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        temperature: w.temperature,
        top_p: w.top_p,
        top_k: None,
        stop: match w.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        },
        stream: w.stream.unwrap_or(false),
        thinking_budget,
        user: w.user,
        parallel_tool_calls: w.parallel_tool_calls,
    })
}
