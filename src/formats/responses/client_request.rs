//! Decoding an OpenAI Responses request (from a client) into the model, for a channel that
//! has no Responses API. Two modes:
//! - [`decode`] (conversion): everything the model cannot carry is refused with the field
//!   named: built-in tools (`web_search`, `file_search`…) a chat upstream cannot run,
//!   `previous_response_id` / `conversation` (sluice stores no conversations), remote images
//!   and files (the gateway fetches nothing a client names), structured output formats;
//! - [`decode_for_count`] (passthrough): the same reading, skipping what it does not know, only
//!   to estimate the prompt for the reservation; it never refuses what the upstream may take.

use crate::formats::FormatError;
use crate::formats::model::{Message, Part, Request, Role, Tool, ToolChoice};
use serde_json::{Map, Value};

/// `reasoning.effort` as a thinking budget (the same steps as chat's `reasoning_effort`).
fn budget(effort: Option<&str>) -> Option<u64> {
    match effort {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(1024),
        Some("medium") => Some(4096),
        Some(_) => Some(16384),
    }
}

struct Reader {
    strict: bool,
    system: Vec<String>,
    messages: Vec<Message>,
}

impl Reader {
    /// A refusal in strict mode; in counting mode the item is skipped.
    fn refuse(&self, field: &str, why: &str) -> Result<(), FormatError> {
        if self.strict {
            Err(FormatError::field(field, why))
        } else {
            Ok(())
        }
    }

    /// Appends parts to the conversation, merging into the last message of the same role
    /// (a function call after an assistant message is the same turn).
    fn push(&mut self, role: Role, parts: Vec<Part>) {
        if parts.is_empty() {
            return;
        }
        match self.messages.last_mut() {
            Some(m) if m.role == role => m.parts.extend(parts),
            _ => self.messages.push(Message { role, parts }),
        }
    }

    fn image(&self, url: &str, at: &str) -> Result<Option<Part>, FormatError> {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((media_type, data)) = rest.split_once(";base64,")
        {
            return Ok(Some(Part::Image {
                media_type: media_type.to_string(),
                data: data.to_string(),
            }));
        }
        self.refuse(
            at,
            "is a remote image URL or file id; this gateway does not fetch images for a provider of another format: send a data: URL (base64)",
        )?;
        Ok(None)
    }

    /// A message's `content`: a string, or a list of input/output parts.
    fn content(&self, c: &Value, at: &str) -> Result<Vec<Part>, FormatError> {
        let items = match c {
            Value::String(s) => return Ok(vec![Part::Text(s.clone())]),
            Value::Array(a) => a,
            Value::Null => return Ok(Vec::new()),
            _ => {
                self.refuse(at, "must be a string or a list of content parts")?;
                return Ok(Vec::new());
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, p) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "input_text" | "output_text" | "text" | "summary_text" => {
                    let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                    out.push(Part::Text(t.to_string()));
                }
                "refusal" => {
                    let t = p.get("refusal").and_then(Value::as_str).unwrap_or("");
                    out.push(Part::Text(t.to_string()));
                }
                "input_image" => {
                    let url = p.get("image_url").and_then(Value::as_str).unwrap_or("");
                    if let Some(img) = self.image(url, &format!("{at}.image_url"))? {
                        out.push(img);
                    }
                }
                other => self.refuse(
                    &format!("{at}.type"),
                    &format!(
                        "is {other:?}; a chat-only provider takes input_text, output_text and input_image (as a data: URL) parts"
                    ),
                )?,
            }
        }
        Ok(out)
    }

    fn item(&mut self, item: &Value, at: &str) -> Result<(), FormatError> {
        let kind = item.get("type").and_then(Value::as_str);
        let role = item.get("role").and_then(Value::as_str);
        match (kind, role) {
            (None | Some("message"), Some(role)) => {
                let parts = self.content(
                    item.get("content").unwrap_or(&Value::Null),
                    &format!("{at}.content"),
                )?;
                match role {
                    "user" => self.push(Role::User, parts),
                    "assistant" => self.push(Role::Assistant, parts),
                    "system" | "developer" => {
                        let text: Vec<String> = parts
                            .into_iter()
                            .filter_map(|p| match p {
                                Part::Text(t) => Some(t),
                                _ => None,
                            })
                            .collect();
                        self.system.push(text.join("\n"));
                    }
                    other => self.refuse(
                        &format!("{at}.role"),
                        &format!("is {other:?}; use user, assistant, system or developer"),
                    )?,
                }
            }
            (Some("function_call"), _) => {
                let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let arguments = s("arguments");
                self.push(
                    Role::Assistant,
                    vec![Part::ToolUse {
                        id: s("call_id"),
                        name: s("name"),
                        arguments: if arguments.is_empty() {
                            "{}".into()
                        } else {
                            arguments
                        },
                    }],
                );
            }
            (Some("function_call_output"), _) => {
                let id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                let content = match item.get("output") {
                    Some(Value::String(s)) => vec![Part::Text(s.clone())],
                    Some(v @ Value::Array(_)) => self.content(v, &format!("{at}.output"))?,
                    _ => Vec::new(),
                };
                self.push(
                    Role::User,
                    vec![Part::ToolResult {
                        tool_use_id: id.to_string(),
                        content,
                        is_error: false,
                    }],
                );
            }
            (Some("reasoning"), _) => {
                // A summary comes back as thinking; `encrypted_content` carries the signature
                // (or a redacted block's data) that sluice put there when it answered.
                let summary: Vec<&str> = item
                    .get("summary")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.get("text").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                let sealed = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let part = match (summary.is_empty(), sealed) {
                    (true, Some(data)) => Part::RedactedThinking(data),
                    (true, None) => return Ok(()),
                    (false, signature) => Part::Thinking {
                        text: summary.join("\n\n"),
                        signature,
                    },
                };
                self.push(Role::Assistant, vec![part]);
            }
            (Some(other), _) => self.refuse(
                &format!("{at}.type"),
                &format!(
                    "is {other:?}; a chat-only provider takes messages, function_call, function_call_output and reasoning items"
                ),
            )?,
            (None, None) => self.refuse(at, "is neither a message (role) nor a typed item")?,
        }
        Ok(())
    }
}

fn tools(doc: &Map<String, Value>, strict: bool) -> Result<Vec<Tool>, FormatError> {
    let Some(list) = doc.get("tools").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "function" {
            if strict {
                return Err(FormatError::field(
                    &format!("tools[{i}].type"),
                    &format!(
                        "is {kind:?}, a built-in tool only OpenAI's Responses API runs; this model's provider has no Responses API, so only function tools can be used"
                    ),
                ));
            }
            continue;
        }
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            if strict {
                return Err(FormatError::field(
                    &format!("tools[{i}].name"),
                    "is required",
                ));
            }
            continue;
        };
        out.push(Tool {
            name: name.to_string(),
            description: t
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            schema: t
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(out)
}

fn tool_choice(v: Option<&Value>, strict: bool) -> Result<Option<ToolChoice>, FormatError> {
    let bad = || {
        if strict {
            Err(FormatError::field(
                "tool_choice",
                "must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":…} for a provider without the Responses API",
            ))
        } else {
            Ok(None)
        }
    };
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Any),
            _ => return bad(),
        },
        Some(o) => match (
            o.get("type").and_then(Value::as_str),
            o.get("name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(n)) => Some(ToolChoice::Tool(n.to_string())),
            _ => return bad(),
        },
    })
}

fn read(body: &Value, strict: bool) -> Result<Request, FormatError> {
    let Value::Object(doc) = body else {
        return Err(FormatError("the request body must be a JSON object".into()));
    };
    let model = match doc.get("model") {
        Some(Value::String(m)) => m.clone(),
        _ => {
            return Err(FormatError::field(
                "model",
                "is required and must be a string",
            ));
        }
    };
    if strict {
        for field in ["previous_response_id", "conversation"] {
            if doc.get(field).is_some_and(|v| !v.is_null()) {
                return Err(FormatError::field(
                    field,
                    "cannot be used with this model: its provider has no Responses API and sluice stores no conversations; send the whole conversation in 'input'",
                ));
            }
        }
        if let Some(f) = body.pointer("/text/format/type").and_then(Value::as_str)
            && f != "text"
        {
            return Err(FormatError::field(
                "text.format.type",
                &format!(
                    "is {f:?}; this model's provider has no Responses API and only plain text output is converted"
                ),
            ));
        }
    }
    let mut r = Reader {
        strict,
        system: Vec::new(),
        messages: Vec::new(),
    };
    if let Some(i) = doc.get("instructions").and_then(Value::as_str) {
        r.system.push(i.to_string());
    }
    match doc.get("input") {
        Some(Value::String(s)) => r.push(Role::User, vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                r.item(item, &format!("input[{i}]"))?;
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => r.refuse("input", "must be a string or a list of items")?,
    }
    let num = |k: &str| doc.get(k).and_then(Value::as_f64);
    let u64_of = |k: &str| doc.get(k).and_then(Value::as_u64);
    let effort = body.pointer("/reasoning/effort").and_then(Value::as_str);
    Ok(Request {
        model,
        system: r.system,
        messages: r.messages,
        tools: tools(doc, strict)?,
        tool_choice: tool_choice(doc.get("tool_choice"), strict)?,
        max_tokens: u64_of("max_output_tokens"),
        temperature: num("temperature"),
        top_p: num("top_p"),
        top_k: None,
        stop: Vec::new(),
        stream: doc.get("stream").and_then(Value::as_bool).unwrap_or(false),
        thinking_budget: budget(effort),
        user: doc
            .get("safety_identifier")
            .or_else(|| doc.get("user"))
            .and_then(Value::as_str)
            .map(str::to_string),
        parallel_tool_calls: doc.get("parallel_tool_calls").and_then(Value::as_bool),
    })
}

/// The request for a conversion: what the model cannot carry is refused (see the module).
pub fn decode(body: &Value) -> Result<Request, FormatError> {
    read(body, true)
}

/// The request as far as it can be read, for the prompt estimate of a passthrough call.
pub fn decode_for_count(body: &Value) -> Result<Request, FormatError> {
    read(body, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_become_turns() {
        let r = decode(&json!({
            "model": "m", "instructions": "be brief", "max_output_tokens": 50,
            "reasoning": {"effort": "medium"},
            "input": [
                {"role": "developer", "content": "use tools"},
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
                    "encrypted_content": "sig"},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"a\":1}"},
                {"type": "function_call", "call_id": "c2", "name": "t", "arguments": ""},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "c2", "output": "noon"}
            ],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": "required"
        }))
        .unwrap();
        assert_eq!(r.system, vec!["be brief", "use tools"]);
        assert_eq!(r.max_tokens, Some(50));
        assert_eq!(r.thinking_budget, Some(4096));
        assert_eq!(r.tool_choice, Some(ToolChoice::Any));
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[0].parts.len(), 2);
        assert_eq!(r.messages[1].role, Role::Assistant);
        assert_eq!(
            r.messages[1].parts[0],
            Part::Thinking {
                text: "think".into(),
                signature: Some("sig".into())
            }
        );
        assert_eq!(r.messages[1].parts.len(), 3);
        assert_eq!(r.messages[2].parts.len(), 2);
    }

    #[test]
    fn conversion_refuses_what_a_chat_upstream_cannot_do_and_counting_skips_it() {
        let web = json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]});
        let e = decode(&web).unwrap_err();
        assert!(
            e.0.contains("tools[0].type") && e.0.contains("built-in"),
            "{e}"
        );
        assert!(decode_for_count(&web).unwrap().tools.is_empty());
        let prev = json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"});
        assert!(
            decode(&prev)
                .unwrap_err()
                .0
                .contains("previous_response_id")
        );
        assert!(decode_for_count(&prev).is_ok());
        let url = json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "https://example.com/x.png"}]}]});
        assert!(decode(&url).unwrap_err().0.contains("image_url"));
        assert!(
            decode(&json!({"input": "x"}))
                .unwrap_err()
                .0
                .contains("model")
        );
    }
}
