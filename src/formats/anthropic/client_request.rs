//! Decoding an Anthropic Messages request (from a client) into the model.

use crate::formats::model::{Message, Part, Request, Role, Tool, ToolChoice};
use crate::formats::{FormatError, body_error};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Wire {
    model: String,
    messages: Vec<WireMessage>,
    max_tokens: u64,
    #[serde(default)]
    system: Option<System>,
    #[serde(default)]
    tools: Vec<WireTool>,
    #[serde(default)]
    tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    thinking: Option<Thinking>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum System {
    Text(String),
    Blocks(Vec<TextBlock>),
}

#[derive(Deserialize)]
struct TextBlock {
    text: String,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Content,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    Image {
        source: Source,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<Content>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source {
    Base64 {
        media_type: String,
        data: String,
    },
    /// A remote image: refused (the gateway fetches nothing a client names).
    Url {},
}

#[derive(Deserialize)]
struct WireTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
    /// Server tools (`web_search_…`, `bash_…`) have a versioned type; custom ones none.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

fn blocks(c: Content, at: &str) -> Result<Vec<Part>, FormatError> {
    let bs = match c {
        Content::Text(t) => return Ok(vec![Part::Text(t)]),
        Content::Blocks(bs) => bs,
    };
    let mut out = Vec::with_capacity(bs.len());
    for (i, b) in bs.into_iter().enumerate() {
        out.push(match b {
            Block::Text { text } => Part::Text(text),
            Block::Image { source } => match source {
                Source::Base64 { media_type, data } => Part::Image { media_type, data },
                Source::Url { .. } => {
                    return Err(FormatError::field(
                        &format!("{at}.content[{i}].source.url"),
                        "is a remote image URL; this gateway does not fetch images for a provider of another format: send it as a base64 source",
                    ));
                }
            },
            Block::ToolUse { id, name, input } => Part::ToolUse {
                id,
                name,
                arguments: if input.is_null() {
                    "{}".into()
                } else {
                    input.to_string()
                },
            },
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => Part::ToolResult {
                tool_use_id,
                content: match content {
                    None => Vec::new(),
                    Some(c) => blocks(c, &format!("{at}.content[{i}]"))?,
                },
                is_error,
            },
            Block::Thinking {
                thinking,
                signature,
            } => Part::Thinking {
                text: thinking,
                signature,
            },
            Block::RedactedThinking { data } => Part::RedactedThinking(data),
        });
    }
    Ok(out)
}

pub fn decode(body: &Value) -> Result<Request, FormatError> {
    let w = Wire::deserialize(body).map_err(body_error)?;
    let mut messages = Vec::with_capacity(w.messages.len());
    for (i, m) in w.messages.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(FormatError::field(
                    &format!("{at}.role"),
                    &format!("is {other:?}; use user or assistant"),
                ));
            }
        };
        messages.push(Message {
            role,
            parts: blocks(m.content, &at)?,
        });
    }
    let mut tools = Vec::with_capacity(w.tools.len());
    for (i, t) in w.tools.into_iter().enumerate() {
        if let Some(k) = t.kind.filter(|k| k != "custom") {
            return Err(FormatError::field(
                &format!("tools[{i}].type"),
                &format!(
                    "is {k:?}, a server tool only Anthropic runs; it cannot go to this model's provider"
                ),
            ));
        }
        tools.push(Tool {
            name: t.name,
            description: t.description,
            schema: t
                .input_schema
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    let mut parallel_tool_calls = None;
    let tool_choice = match w.tool_choice {
        None => None,
        Some(c) => {
            parallel_tool_calls = c.disable_parallel_tool_use.map(|d| !d);
            Some(match c.kind.as_str() {
                "auto" => ToolChoice::Auto,
                "any" => ToolChoice::Any,
                "none" => ToolChoice::None,
                "tool" => match c.name {
                    Some(n) => ToolChoice::Tool(n),
                    None => {
                        return Err(FormatError::field(
                            "tool_choice.name",
                            "is required when tool_choice.type is \"tool\"",
                        ));
                    }
                },
                other => {
                    return Err(FormatError::field(
                        "tool_choice.type",
                        &format!("is {other:?}; use auto, any, tool or none"),
                    ));
                }
            })
        }
    };
    Ok(Request {
        model: w.model,
        system: match w.system {
            None => Vec::new(),
            Some(System::Text(t)) => vec![t],
            Some(System::Blocks(b)) => b.into_iter().map(|b| b.text).collect(),
        },
        messages,
        tools,
        tool_choice,
        max_tokens: Some(w.max_tokens),
        temperature: w.temperature,
        top_p: w.top_p,
        top_k: w.top_k,
        stop: w.stop_sequences,
        stream: w.stream.unwrap_or(false),
        thinking_budget: w
            .thinking
            .filter(|t| t.kind == "enabled")
            .map(|t| t.budget_tokens.unwrap_or(1024)),
        user: w.metadata.and_then(|m| m.user_id),
        parallel_tool_calls,
    })
}
