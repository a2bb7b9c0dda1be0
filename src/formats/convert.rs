//! A call that crosses formats: the decoder of the upstream's format and the encoder of the
//! client's, joined through the model. [`StreamConverter`] is the per-call state machine the
//! relay's stream pump feeds `data:` payloads; [`decode_answer`] / [`encode_answer`] do a
//! whole answer; [`error_body`] puts an upstream's error into the client's shape.

use super::model::{Event, Part, Response};
use super::{Format, anthropic, gemini, openai, responses};
use crate::billing::Usage;
use bytes::Bytes;
use serde_json::{Value, json};

/// What the encoders need to know of the call.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The model the client asked for (answers name it, not the upstream's).
    pub model: String,
    /// The request's tool names, to restore names shortened for OpenAI.
    pub tools: Vec<String>,
    /// The prompt estimate, for Anthropic's `message_start` (the tail has the real figure).
    pub input_estimate: u64,
    /// OpenAI clients: the usage chunk was asked for.
    pub client_wants_usage: bool,
    pub created: u64,
}

enum Decoder {
    OpenAi(openai::upstream_answer::StreamDecoder),
    Anthropic(anthropic::upstream_answer::StreamDecoder),
    Gemini(gemini::upstream_answer::StreamDecoder),
    Responses(responses::upstream_answer::StreamDecoder),
}

enum Encoder {
    OpenAi(openai::client_answer::StreamEncoder),
    Anthropic(anthropic::client_answer::StreamEncoder),
    Responses(responses::client_stream::StreamEncoder),
}

/// Most generated text kept for a local count when upstream reports no usage.
const MAX_KEPT_TEXT: usize = 1024 * 1024;

pub struct StreamConverter {
    decoder: Decoder,
    encoder: Encoder,
    events: Vec<Event>,
    /// Upstream's usage so far (merged: cumulative figures).
    pub usage: Option<Usage>,
    /// Upstream sent its final event.
    pub done: bool,
    /// An error upstream reported in the stream: its type and message.
    pub error: Option<(String, String)>,
    /// Generated text (bounded), and all of its bytes, for a local count.
    text: String,
    text_total: usize,
}

impl StreamConverter {
    pub fn new(upstream: Format, client: Format, info: &CallInfo) -> StreamConverter {
        StreamConverter {
            decoder: match upstream {
                Format::OpenAiChat => Decoder::OpenAi(openai::upstream_answer::StreamDecoder::new(
                    info.tools.clone(),
                )),
                Format::Anthropic => {
                    Decoder::Anthropic(anthropic::upstream_answer::StreamDecoder::new())
                }
                Format::Gemini => Decoder::Gemini(gemini::upstream_answer::StreamDecoder::new()),
                Format::Responses => {
                    Decoder::Responses(responses::upstream_answer::StreamDecoder::new())
                }
            },
            encoder: match client {
                // No route speaks Gemini to clients: a Gemini "client" cannot occur.
                Format::OpenAiChat | Format::Gemini => {
                    Encoder::OpenAi(openai::client_answer::StreamEncoder::new(
                        &info.model,
                        info.created,
                        info.client_wants_usage,
                    ))
                }
                Format::Anthropic => Encoder::Anthropic(
                    anthropic::client_answer::StreamEncoder::new(&info.model, info.input_estimate),
                ),
                Format::Responses => Encoder::Responses(
                    responses::client_stream::StreamEncoder::new(&info.model, info.created),
                ),
            },
            events: Vec::new(),
            usage: None,
            done: false,
            error: None,
            text: String::new(),
            text_total: 0,
        }
    }

    /// One upstream `data:` payload; appends what the client is sent now to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.events.clear();
        match &mut self.decoder {
            Decoder::OpenAi(d) => d.push(data, &mut self.events),
            Decoder::Anthropic(d) => d.push(data, &mut self.events),
            Decoder::Gemini(d) => d.push(data, &mut self.events),
            Decoder::Responses(d) => d.push(data, &mut self.events),
        }
        let events = std::mem::take(&mut self.events);
        for e in &events {
            match e {
                Event::Usage(u) => match &mut self.usage {
                    Some(have) => have.merge(*u),
                    None => self.usage = Some(*u),
                },
                Event::Done => self.done = true,
                Event::Error { kind, message } => {
                    self.error = Some((kind.clone(), message.clone()));
                }
                Event::TextDelta { text, .. } | Event::ThinkingDelta { text, .. } => {
                    self.keep(text)
                }
                Event::ToolArgs { fragment, .. } => self.keep(fragment),
                Event::ToolStart { name, .. } => self.keep(name),
                Event::Start { .. }
                | Event::Signature { .. }
                | Event::BlockStop { .. }
                | Event::Finish(_) => {}
            }
            match &mut self.encoder {
                Encoder::OpenAi(enc) => enc.push(e, out),
                Encoder::Anthropic(enc) => enc.push(e, out),
                Encoder::Responses(enc) => enc.push(e, out),
            }
        }
        self.events = events;
    }

    fn keep(&mut self, s: &str) {
        self.text_total += s.len();
        if self.text.len() + s.len() <= MAX_KEPT_TEXT {
            self.text.push_str(s);
        }
    }

    /// The generated text kept, and the share of all of it that is (≥ 1).
    pub fn text(&self) -> (String, f64) {
        let scale = if self.text.is_empty() {
            1.0
        } else {
            self.text_total as f64 / self.text.len() as f64
        };
        (self.text.clone(), scale.max(1.0))
    }

    /// The end of a stream that finished, after the charge: the client format's last events.
    pub fn tail(&mut self, usage: &Usage) -> Bytes {
        let mut out = Vec::new();
        match &mut self.encoder {
            Encoder::OpenAi(enc) => enc.tail(usage, &mut out),
            Encoder::Anthropic(enc) => enc.tail(usage, &mut out),
            Encoder::Responses(enc) => enc.tail(usage, &mut out),
        }
        Bytes::from(out)
    }

    /// The end of a stream that failed: the client format's error event. `kind` and `code` are
    /// OpenAI's; an Anthropic client gets the matching Anthropic type.
    pub fn error_tail(&mut self, message: &str, kind: &str, code: &str) -> Bytes {
        let mut out = Vec::new();
        match &mut self.encoder {
            Encoder::OpenAi(enc) => enc.error(message, kind, code, &mut out),
            Encoder::Anthropic(enc) => {
                let t = if code == "shutting_down" {
                    "overloaded_error"
                } else {
                    "api_error"
                };
                enc.error(message, t, &mut out)
            }
            Encoder::Responses(enc) => enc.error(message, code, &mut out),
        }
        Bytes::from(out)
    }
}

/// A whole upstream answer in the model (`None` when it is not one).
pub fn decode_answer(upstream: Format, body: &[u8], info: &CallInfo) -> Option<Response> {
    match upstream {
        Format::OpenAiChat => openai::upstream_answer::decode(body, &info.tools),
        Format::Anthropic => anthropic::upstream_answer::decode(body),
        Format::Gemini => gemini::upstream_answer::decode(body),
        Format::Responses => responses::upstream_answer::decode(body),
    }
}

/// The generated text of an answer, for a local count.
pub fn answer_text(r: &Response) -> String {
    let mut s = String::new();
    for p in &r.parts {
        match p {
            Part::Text(t) | Part::Thinking { text: t, .. } => s.push_str(t),
            Part::ToolUse {
                name, arguments, ..
            } => {
                s.push_str(name);
                s.push_str(arguments);
            }
            Part::Image { .. } | Part::ToolResult { .. } | Part::RedactedThinking(_) => {}
        }
    }
    s
}

/// The client's answer, with the usage the call was charged for.
pub fn encode_answer(client: Format, r: &Response, info: &CallInfo, usage: &Usage) -> Bytes {
    let v = match client {
        Format::OpenAiChat | Format::Gemini => {
            openai::client_answer::encode(r, &info.model, usage, info.created)
        }
        Format::Anthropic => anthropic::client_answer::encode(r, &info.model, usage),
        Format::Responses => responses::client_answer::encode(r, &info.model, usage, info.created),
    };
    Bytes::from(v.to_string())
}

/// Anthropic's error `type` for an HTTP status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 409 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 | 403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// An upstream's error answer (either format) in the client's shape, keeping its message.
pub fn error_body(client: Format, status: u16, upstream_body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(upstream_body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("the upstream refused the request with status {status}"));
    let v = match client {
        Format::Anthropic => json!({"type": "error",
            "error": {"type": anthropic_error_type(status), "message": message}}),
        Format::OpenAiChat | Format::Responses | Format::Gemini => {
            let kind = parsed
                .as_ref()
                .and_then(|v| v.pointer("/error/type"))
                .and_then(Value::as_str)
                .unwrap_or("invalid_request_error")
                .to_string();
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    Bytes::from(v.to_string())
}
