//! Encoding the model as an Anthropic Messages answer (to a client): whole, or as the event
//! sequence the SDKs check (`message_start`, per block `content_block_start` / deltas /
//! `content_block_stop`, `message_delta`, `message_stop`). The final `message_delta` carries
//! the usage, so it waits for upstream's; it and `message_stop` are the tail, written after the
//! charge commits.

use crate::billing::Usage;
use crate::formats::model::{Event, Finish, Part, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// Anthropic's usage object for the normalised usage: `input_tokens` is the uncached part
/// only, so the cached tokens are not counted twice by a client that adds them up.
pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.uncached_input(),
        "cache_creation_input_tokens": u.cache_write_5m + u.cache_write_1h,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_write_5m,
            "ephemeral_1h_input_tokens": u.cache_write_1h,
        },
        "output_tokens": u.completion_tokens,
    })
}

fn message_id(upstream: &str) -> String {
    if upstream.starts_with("msg_") {
        upstream.to_string()
    } else {
        format!("msg_{}", upstream.trim_start_matches("chatcmpl-"))
    }
}

/// A tool call's arguments as the object Anthropic's `input` is (`{}` when they are not one).
fn input_of(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => json!({}),
    }
}

pub fn encode(r: &Response, model: &str, usage_now: &Usage) -> Value {
    let content: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::Thinking { text, signature } => Some(json!({"type": "thinking",
                "thinking": text, "signature": signature.clone().unwrap_or_default()})),
            Part::RedactedThinking(d) => Some(json!({"type": "redacted_thinking", "data": d})),
            Part::ToolUse {
                id,
                name,
                arguments,
            } => Some(json!({"type": "tool_use", "id": id, "name": name,
                "input": input_of(arguments)})),
            Part::Image { .. } | Part::ToolResult { .. } => None,
        })
        .collect();
    json!({
        "id": message_id(&r.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": super::stop_reason(r.finish.unwrap_or(Finish::Stop)),
        "stop_sequence": null,
        "usage": usage(usage_now),
    })
}

fn event(name: &str, data: &impl Serialize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing these types into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// `content_block_delta`, the event of nearly every chunk: written straight from borrowed
/// text (no JSON tree built per chunk).
#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: Delta<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

/// The stream encoder's state for one call.
pub struct StreamEncoder {
    model: String,
    /// `input_tokens` in `message_start`: the estimate (the real figure is in the tail).
    input_estimate: u64,
    started: bool,
    /// Model block index → the client's block index, in the order blocks opened.
    blocks: Vec<usize>,
    open: Option<usize>,
    finish: Option<Finish>,
}

impl StreamEncoder {
    pub fn new(model: &str, input_estimate: u64) -> StreamEncoder {
        StreamEncoder {
            model: model.to_string(),
            input_estimate,
            started: false,
            blocks: Vec::new(),
            open: None,
            finish: None,
        }
    }

    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let msg = json!({"type": "message_start", "message": {
            "id": message_id(id), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_estimate, "output_tokens": 0}}});
        event("message_start", &msg, out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(i) = self.open.take() {
            event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": i}),
                out,
            );
        }
    }

    /// The client index of model block `index`, opening it (and closing the one before) with
    /// `block` as its start when it is new.
    fn block(&mut self, index: usize, block: Value, out: &mut Vec<u8>) -> Option<usize> {
        if let Some(i) = self.blocks.iter().position(|b| *b == index) {
            // A fragment of a block already closed (an upstream interleaving parallel calls)
            // still names it: the SDKs find blocks by index.
            return Some(i);
        }
        self.start("", out);
        self.close(out);
        let i = self.blocks.len();
        self.blocks.push(index);
        self.open = Some(i);
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": block}),
            out,
        );
        Some(i)
    }

    fn delta(&self, i: usize, delta: Delta<'_>, out: &mut Vec<u8>) {
        let d = BlockDelta {
            kind: "content_block_delta",
            index: i,
            delta,
        };
        event("content_block_delta", &d, out);
    }

    pub fn push(&mut self, e: &Event, out: &mut Vec<u8>) {
        match e {
            Event::Start { id, .. } => self.start(id, out),
            Event::TextDelta { index, text } => {
                if let Some(i) = self.block(*index, json!({"type": "text", "text": ""}), out) {
                    self.delta(i, Delta::Text { text }, out);
                }
            }
            Event::ThinkingDelta { index, text } => {
                let start = json!({"type": "thinking", "thinking": "", "signature": ""});
                if let Some(i) = self.block(*index, start, out) {
                    self.delta(i, Delta::Thinking { thinking: text }, out);
                }
            }
            Event::Signature { index, signature } => {
                let start = json!({"type": "thinking", "thinking": "", "signature": ""});
                if let Some(i) = self.block(*index, start, out) {
                    self.delta(i, Delta::Signature { signature }, out);
                }
            }
            Event::ToolStart { index, id, name } => {
                let start = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.block(*index, start, out);
            }
            Event::ToolArgs { index, fragment } => {
                if let Some(i) = self.blocks.iter().position(|b| b == index) {
                    self.delta(
                        i,
                        Delta::InputJson {
                            partial_json: fragment,
                        },
                        out,
                    );
                }
            }
            Event::BlockStop { index } => {
                if let Some(i) = self.blocks.iter().position(|b| b == index)
                    && self.open == Some(i)
                {
                    self.close(out);
                }
            }
            Event::Finish(f) => {
                self.finish = Some(*f);
                self.close(out);
            }
            Event::Usage(_) | Event::Done | Event::Error { .. } => {}
        }
    }

    /// After the charge: the final `message_delta` with the stop reason and the usage, and
    /// `message_stop`.
    pub fn tail(&mut self, usage_now: &Usage, out: &mut Vec<u8>) {
        self.start("", out);
        self.close(out);
        let stop = super::stop_reason(self.finish.unwrap_or(Finish::Stop));
        event(
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": usage(usage_now)}),
            out,
        );
        event("message_stop", &json!({"type": "message_stop"}), out);
    }

    /// A failure mid-stream: Anthropic's `event: error`.
    pub fn error(&mut self, message: &str, kind: &str, out: &mut Vec<u8>) {
        error_event(message, kind, out);
    }
}

/// Anthropic's in-stream error event.
pub fn error_event(message: &str, kind: &str, out: &mut Vec<u8>) {
    event(
        "error",
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
        out,
    );
}
