//! Encoding the model as an OpenAI chat/completions answer (to a client): whole, or as
//! `chat.completion.chunk` events. The usage chunk (when the client asked for it) and
//! `data: [DONE]` are the tail, written after the charge commits.

use crate::billing::Usage;
use crate::formats::model::{Event, Finish, Part, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// A `chat.completion.chunk`, written straight from borrowed parts (no JSON tree per chunk).
#[derive(Serialize)]
struct Chunk<'a, D: Serialize> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<D>; 1],
}

#[derive(Serialize)]
struct ChunkChoice<D: Serialize> {
    index: u32,
    delta: D,
    finish_reason: Option<&'static str>,
}

/// The deltas of nearly every chunk.
#[derive(Serialize)]
enum TextDelta<'a> {
    #[serde(rename = "content")]
    Content(&'a str),
    #[serde(rename = "reasoning_content")]
    Reasoning(&'a str),
}

/// OpenAI's usage object for the normalised usage (the same meaning: nothing to subtract).
pub fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

fn thinking_block(text: &str, signature: &Option<String>) -> Value {
    json!({"type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default()})
}

pub fn encode(r: &Response, model: &str, usage_now: &Usage, created: u64) -> Value {
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    let text: String = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    msg.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        },
    );
    let reasoning: String = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Thinking { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !reasoning.is_empty() {
        msg.insert("reasoning_content".into(), Value::String(reasoning));
    }
    // The signed blocks, for a client to send back on the next turn (see client_request).
    let blocks: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Thinking { text, signature } => Some(thinking_block(text, signature)),
            Part::RedactedThinking(d) => Some(json!({"type": "redacted_thinking", "data": d})),
            _ => None,
        })
        .collect();
    if !blocks.is_empty() {
        msg.insert("thinking_blocks".into(), Value::Array(blocks));
    }
    let calls: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolUse {
                id,
                name,
                arguments,
            } => Some(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}})),
            _ => None,
        })
        .collect();
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    json!({
        "id": format!("chatcmpl-{}", r.id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": msg,
            "finish_reason": super::finish_reason(r.finish.unwrap_or(Finish::Stop))}],
        "usage": usage(usage_now),
    })
}

/// The stream encoder's state for one call.
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    /// Model block index → the client's `tool_calls[].index`.
    tools: Vec<(usize, usize)>,
    client_wants_usage: bool,
    started: bool,
}

impl StreamEncoder {
    pub fn new(model: &str, created: u64, client_wants_usage: bool) -> StreamEncoder {
        StreamEncoder {
            id: String::new(),
            model: model.to_string(),
            created,
            tools: Vec::new(),
            client_wants_usage,
            started: false,
        }
    }

    fn chunk(&self, delta: impl Serialize, finish: Option<&'static str>, out: &mut Vec<u8>) {
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
        };
        out.extend_from_slice(b"data: ");
        // Writing these types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &c);
        out.extend_from_slice(b"\n\n");
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.id = format!("chatcmpl-{id}");
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    /// Writes what `e` becomes for the client (the finish chunk at once: only the usage
    /// chunk and `[DONE]` wait for the charge).
    pub fn push(&mut self, e: &Event, out: &mut Vec<u8>) {
        match e {
            Event::Start { id, .. } => self.start(id, out),
            Event::TextDelta { text, .. } => {
                self.start("", out);
                // An externally tagged newtype variant is `{"content": text}`.
                self.chunk(TextDelta::Content(text), None, out);
            }
            Event::ThinkingDelta { text, .. } => {
                self.start("", out);
                self.chunk(TextDelta::Reasoning(text), None, out);
            }
            Event::Signature { signature, .. } => {
                self.start("", out);
                self.chunk(
                    json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": signature}]}),
                    None,
                    out,
                );
            }
            Event::ToolStart { index, id, name } => {
                self.start("", out);
                let n = self.tools.len();
                self.tools.push((*index, n));
                self.chunk(
                    json!({"tool_calls": [{"index": n, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                    out,
                );
            }
            Event::ToolArgs { index, fragment } => {
                let Some((_, n)) = self.tools.iter().find(|(b, _)| b == index) else {
                    return;
                };
                let n = *n;
                self.chunk(
                    json!({"tool_calls": [{"index": n, "function": {"arguments": fragment}}]}),
                    None,
                    out,
                );
            }
            Event::Finish(f) => {
                self.start("", out);
                self.chunk(json!({}), Some(super::finish_reason(*f)), out);
            }
            Event::BlockStop { .. } | Event::Usage(_) | Event::Done | Event::Error { .. } => {}
        }
    }

    /// After the charge: the usage chunk if the client asked for it, then `[DONE]`.
    pub fn tail(&mut self, usage_now: &Usage, out: &mut Vec<u8>) {
        if self.client_wants_usage {
            let v = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(usage_now),
            });
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(v.to_string().as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    /// A failure mid-stream, as the relay's passthrough reports one.
    pub fn error(&mut self, message: &str, kind: &str, code: &str, out: &mut Vec<u8>) {
        let v = json!({"error": {"message": message, "type": kind, "code": code}});
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}
