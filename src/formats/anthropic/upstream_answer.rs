//! Decoding an Anthropic Messages answer (from an upstream): whole, or event by event. Its
//! blocks are the model's blocks, index for index.

use crate::billing::Usage;
use crate::formats::model::{Event, Part, Response};
use serde::Deserialize;
use serde_json::Value;

/// Anthropic's usage object (`message`, `message_start.message`, `message_delta`).
#[derive(Deserialize, Default)]
pub struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    ephemeral_1h_input_tokens: u64,
}

impl WireUsage {
    /// To the normalised meaning: Anthropic's `input_tokens` excludes the cache reads and
    /// writes, so the prompt is their sum. Writes split by lifetime when the split is given,
    /// else all 5-minute (the default lifetime).
    pub fn normalise(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        let (w5, w1) = match &self.cache_creation {
            Some(c) if c.ephemeral_5m_input_tokens + c.ephemeral_1h_input_tokens > 0 => {
                (c.ephemeral_5m_input_tokens, c.ephemeral_1h_input_tokens)
            }
            _ => (written, 0),
        };
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0) + read + w5 + w1,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cache_read: read,
            cache_write_5m: w5,
            cache_write_1h: w1,
            reasoning_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

pub fn decode(body: &[u8]) -> Option<Response> {
    let w: WireMessage = serde_json::from_slice(body).ok()?;
    let parts = w
        .content
        .into_iter()
        .filter_map(|b| match b {
            WireBlock::Text { text } => Some(Part::Text(text)),
            WireBlock::Thinking {
                thinking,
                signature,
            } => Some(Part::Thinking {
                text: thinking,
                signature,
            }),
            WireBlock::RedactedThinking { data } => Some(Part::RedactedThinking(data)),
            WireBlock::ToolUse { id, name, input } => Some(Part::ToolUse {
                id,
                name,
                arguments: if input.is_null() {
                    "{}".into()
                } else {
                    input.to_string()
                },
            }),
            WireBlock::Other => None,
        })
        .collect();
    Some(Response {
        id: w.id,
        model: w.model,
        parts,
        finish: w.stop_reason.as_deref().map(super::parse_stop),
        usage: w.usage.map(|u| u.normalise()),
    })
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: StopDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct StopDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

/// The stream decoder's state for one call: usage comes in two parts (input and cache in
/// `message_start`, cumulative output in `message_delta`), merged by the relay.
#[derive(Default)]
pub struct StreamDecoder {
    /// The first usage seen, so a later `message_delta` that repeats only output keeps it.
    usage: Usage,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// One `data:` payload (the event's name is also its `type`).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let Ok(e) = serde_json::from_slice::<WireEvent>(data) else {
            return;
        };
        match e {
            WireEvent::MessageStart { message } => {
                out.push(Event::Start {
                    id: message.id,
                    model: message.model,
                });
                if let Some(u) = message.usage {
                    self.usage.merge(u.normalise());
                    out.push(Event::Usage(self.usage));
                }
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                WireBlock::ToolUse { id, name, .. } => {
                    out.push(Event::ToolStart { index, id, name })
                }
                WireBlock::Text { text } if !text.is_empty() => {
                    out.push(Event::TextDelta { index, text })
                }
                WireBlock::Thinking { thinking, .. } if !thinking.is_empty() => {
                    out.push(Event::ThinkingDelta {
                        index,
                        text: thinking,
                    })
                }
                WireBlock::Text { .. }
                | WireBlock::Thinking { .. }
                | WireBlock::RedactedThinking { .. }
                | WireBlock::Other => {}
            },
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                WireDelta::TextDelta { text } => out.push(Event::TextDelta { index, text }),
                WireDelta::ThinkingDelta { thinking } => out.push(Event::ThinkingDelta {
                    index,
                    text: thinking,
                }),
                WireDelta::SignatureDelta { signature } => {
                    out.push(Event::Signature { index, signature })
                }
                WireDelta::InputJsonDelta { partial_json } => out.push(Event::ToolArgs {
                    index,
                    fragment: partial_json,
                }),
                WireDelta::Other => {}
            },
            WireEvent::ContentBlockStop { index } => out.push(Event::BlockStop { index }),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(s) = delta.stop_reason.as_deref() {
                    out.push(Event::Finish(super::parse_stop(s)));
                }
                if let Some(u) = usage {
                    // Output is cumulative; input and cache, when repeated, the same figures.
                    self.usage.merge(u.normalise());
                    out.push(Event::Usage(self.usage));
                }
            }
            WireEvent::MessageStop => out.push(Event::Done),
            WireEvent::Error { error } => out.push(Event::Error {
                kind: error.kind,
                message: error.message,
            }),
            WireEvent::Other => {}
        }
    }
}
