//! Encoding the model as a Gemini `GenerateContentRequest` (to a gemini upstream). The model
//! and whether the call streams are in the URL, not the body (see the gemini provider).
//!
//! - `systemInstruction` from the system prompt; `contents` with roles `user` / `model`,
//!   consecutive turns of one role merged;
//! - parts: `text`; `inlineData` (base64 only: a remote image never reaches the model);
//!   `functionCall` with `args` as an object; `functionResponse` named after its call — Gemini
//!   matches results by name, not id, so the name is found from the id among the earlier
//!   assistant turns (the latest call with that id: Gemini's ids, made by the answer decoder,
//!   repeat across turns);
//! - thinking from earlier turns is left out: Gemini takes its thoughts back only as opaque
//!   signatures — a Gemini signature (a thinking part's, marked [`super::SIGNATURE_PREFIX`])
//!   goes back on the `functionCall` it preceded; another provider's mean nothing to it;
//! - `tools.functionDeclarations` with schemas cleaned ([`super::schema`]);
//!   `toolConfig.functionCallingConfig` from the tool choice;
//! - `generationConfig`: `maxOutputTokens` (the reserved limit: Gemini counts thinking in it),
//!   sampling, stop sequences, `thinkingConfig` from a thinking budget.

use super::schema;
use crate::formats::FormatError;
use crate::formats::model::{Message, Part, Request, Role, ToolChoice};
use serde_json::{Map, Value, json};

/// The name of the call `id` refers to: the latest tool call with that id before message
/// `before`.
fn call_name(ms: &[Message], before: usize, id: &str) -> Option<String> {
    ms[..before].iter().rev().find_map(|m| {
        m.parts.iter().rev().find_map(|p| match p {
            Part::ToolUse { id: i, name, .. } if i == id => Some(name.clone()),
            _ => None,
        })
    })
}

/// A tool result as the object `functionResponse.response` must be: the JSON object the tool
/// returned, else its text under `result` (`error` when it failed), as Google's examples do.
fn response_object(content: &[Part], is_error: bool) -> Value {
    let text: Vec<&str> = content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let text = text.join("\n");
    if !is_error && let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
        return v;
    }
    json!({ if is_error { "error" } else { "result" }: text })
}

fn parts(ms: &[Message], at: usize) -> Result<Vec<Value>, FormatError> {
    let mut out = Vec::new();
    // A Gemini signature from a thinking part, for the call that follows it.
    let mut signature: Option<&str> = None;
    for p in &ms[at].parts {
        match p {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(t) => out.push(json!({"text": t})),
            Part::Image { media_type, data } => {
                out.push(json!({"inlineData": {"mimeType": media_type, "data": data}}))
            }
            Part::ToolUse {
                name, arguments, ..
            } => {
                let args = match serde_json::from_str::<Value>(arguments) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(_) | Err(_) if arguments.trim().is_empty() => json!({}),
                    Ok(_) | Err(_) => json!({"_raw_arguments": arguments}),
                };
                let mut part = json!({"functionCall": {"name": name, "args": args}});
                if let Some(sig) = signature.take() {
                    part["thoughtSignature"] = Value::String(sig.to_string());
                }
                out.push(part);
            }
            Part::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let name = call_name(ms, at, tool_use_id).ok_or_else(|| {
                    FormatError(format!(
                        "the tool result for '{tool_use_id}' answers no tool call in the conversation; Gemini needs the call's name"
                    ))
                })?;
                out.push(json!({"functionResponse": {"name": name,
                    "response": response_object(content, *is_error)}}));
                // Images a tool returned follow as parts of the same turn.
                for c in content {
                    if let Part::Image { media_type, data } = c {
                        out.push(json!({"inlineData": {"mimeType": media_type, "data": data}}));
                    }
                }
            }
            Part::Thinking {
                signature: Some(sig),
                ..
            } => signature = sig.strip_prefix(super::SIGNATURE_PREFIX),
            Part::Thinking { .. } | Part::RedactedThinking(_) => {}
        }
    }
    Ok(out)
}

fn contents(ms: &[Message]) -> Result<Vec<Value>, FormatError> {
    let mut merged: Vec<(Role, Vec<Value>)> = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        let ps = parts(ms, i)?;
        if ps.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some((role, have)) if *role == m.role => have.extend(ps),
            _ => merged.push((m.role, ps)),
        }
    }
    Ok(merged
        .into_iter()
        .map(|(role, parts)| {
            json!({"role": match role { Role::User => "user", Role::Assistant => "model" },
                   "parts": parts})
        })
        .collect())
}

pub fn encode(r: &Request) -> Result<Map<String, Value>, FormatError> {
    let mut doc = Map::new();
    if !r.system.is_empty() {
        doc.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": r.system.join("\n\n")}]}),
        );
    }
    doc.insert("contents".into(), Value::Array(contents(&r.messages)?));
    if !r.tools.is_empty() {
        let mut decls = Vec::new();
        for t in &r.tools {
            let mut d = json!({"name": t.name});
            if let Some(desc) = &t.description {
                d["description"] = Value::String(desc.clone());
            }
            if let Some(p) = schema::clean(&t.name, &t.schema)? {
                d["parameters"] = p;
            }
            decls.push(d);
        }
        doc.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(c) = &r.tool_choice {
        let cfg = match c {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Any => json!({"mode": "ANY"}),
            ToolChoice::Tool(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        };
        doc.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
    }
    let mut g = Map::new();
    if let Some(n) = r.max_tokens {
        g.insert("maxOutputTokens".into(), Value::from(n));
    }
    if let Some(t) = r.temperature {
        g.insert("temperature".into(), json!(t));
    }
    if let Some(t) = r.top_p {
        g.insert("topP".into(), json!(t));
    }
    if let Some(k) = r.top_k {
        g.insert("topK".into(), json!(k));
    }
    if !r.stop.is_empty() {
        g.insert("stopSequences".into(), json!(r.stop));
    }
    if let Some(b) = r.thinking_budget {
        // The budget is part of the output limit: never more than it.
        let b = r.max_tokens.map_or(b, |max| b.min(max));
        g.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": b, "includeThoughts": true}),
        );
    }
    if !g.is_empty() {
        doc.insert("generationConfig".into(), Value::Object(g));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::model::Tool;

    fn req(messages: Vec<Message>) -> Request {
        Request {
            model: "gemini-x".into(),
            system: vec!["be brief".into()],
            messages,
            tools: vec![],
            tool_choice: None,
            max_tokens: Some(100),
            temperature: Some(0.5),
            top_p: None,
            top_k: Some(3),
            stop: vec!["END".into()],
            stream: false,
            thinking_budget: Some(2048),
            user: None,
            parallel_tool_calls: None,
        }
    }

    #[test]
    fn results_are_named_after_the_latest_call_with_their_id() {
        let call = |id: &str, name: &str| Part::ToolUse {
            id: id.into(),
            name: name.into(),
            arguments: "{\"a\":1}".into(),
        };
        let result = |id: &str, text: &str| Part::ToolResult {
            tool_use_id: id.into(),
            content: vec![Part::Text(text.into())],
            is_error: false,
        };
        let mut r = req(vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("go".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![call("call_0", "first")],
            },
            Message {
                role: Role::User,
                parts: vec![result("call_0", "{\"ok\":true}")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![call("call_0", "second"), call("call_1", "third")],
            },
            Message {
                role: Role::User,
                parts: vec![result("call_0", "plain"), result("call_1", "x")],
            },
        ]);
        r.tools = vec![Tool {
            name: "first".into(),
            description: None,
            schema: json!({"type": "object", "properties": {}}),
        }];
        r.tool_choice = Some(ToolChoice::Tool("first".into()));
        let d = Value::Object(encode(&r).unwrap());
        assert_eq!(
            d["systemInstruction"],
            json!({"parts": [{"text": "be brief"}]})
        );
        assert_eq!(d["contents"][1]["role"], "model");
        assert_eq!(
            d["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "first", "response": {"ok": true}}})
        );
        assert_eq!(
            d["contents"][4]["parts"],
            json!([{"functionResponse": {"name": "second", "response": {"result": "plain"}}},
                   {"functionResponse": {"name": "third", "response": {"result": "x"}}}])
        );
        assert_eq!(
            d["tools"],
            json!([{"functionDeclarations": [{"name": "first"}]}])
        );
        assert_eq!(
            d["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["first"]}})
        );
        assert_eq!(
            d["generationConfig"],
            json!({"maxOutputTokens": 100, "temperature": 0.5, "topK": 3, "stopSequences": ["END"],
                   "thinkingConfig": {"thinkingBudget": 100, "includeThoughts": true}})
        );
        // A result for a call nobody made is refused, naming it.
        let orphan = req(vec![Message {
            role: Role::User,
            parts: vec![result("call_9", "x")],
        }]);
        assert!(encode(&orphan).unwrap_err().0.contains("call_9"));
    }

    #[test]
    fn a_gemini_signature_goes_back_on_its_call_and_never_to_anthropic() {
        let r = req(vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("go".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking {
                        text: String::new(),
                        signature: Some(super::super::wrap_signature("c2ln")),
                    },
                    Part::ToolUse {
                        id: "call_0".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    },
                    // Another provider's signature: nothing to Gemini.
                    Part::Thinking {
                        text: "t".into(),
                        signature: Some("anthropic-sig".into()),
                    },
                    Part::ToolUse {
                        id: "call_1".into(),
                        name: "g".into(),
                        arguments: "{}".into(),
                    },
                ],
            },
        ]);
        let d = Value::Object(encode(&r).unwrap());
        assert_eq!(
            d["contents"][1]["parts"],
            json!([{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"},
                   {"functionCall": {"name": "g", "args": {}}}])
        );
        let a = Value::Object(crate::formats::anthropic::upstream_request::encode(&r));
        let blocks = a["messages"][1]["content"].as_array().unwrap();
        assert!(
            blocks.iter().all(|b| b["signature"] != "gemini:c2ln"),
            "{blocks:?}"
        );
        assert_eq!(blocks[1]["signature"], "anthropic-sig");
        assert_eq!(blocks.len(), 3, "{blocks:?}");
    }
}
