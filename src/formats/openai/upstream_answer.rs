//! Decoding an OpenAI chat/completions answer (from an upstream): whole, or chunk by chunk
//! into [`Event`]s. OpenAI's deltas have no blocks, so the decoder makes them: a run of
//! reasoning, a run of text, and each tool call (by its `index`) are one block each.

use crate::billing::Usage;
use crate::formats::model::{Event, Part, Response};
use crate::formats::names;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<Value>,
    #[serde(default)]
    completion_tokens_details: Option<Value>,
}

impl WireUsage {
    pub(crate) fn normalise(&self) -> Usage {
        openai_usage(
            self.prompt_tokens,
            self.completion_tokens,
            &self.prompt_tokens_details,
            &self.completion_tokens_details,
        )
    }
}

/// OpenAI's usage, chat's (`prompt_tokens`, …) or Responses' (`input_tokens`, …), is already
/// the normalised meaning: the prompt count includes the cached tokens (`cached_tokens` of
/// its details), the completion count the reasoning ones (`reasoning_tokens`). The two wire
/// structs keep their own field names rather than one struct with serde aliases: an answer
/// that carried both spellings would then fail to parse as a duplicate field.
pub(crate) fn openai_usage(
    prompt: u64,
    completion: u64,
    prompt_details: &Option<Value>,
    completion_details: &Option<Value>,
) -> Usage {
    let n = |v: &Option<Value>, k: &str| {
        v.as_ref()
            .and_then(|d| d.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cache_read: n(prompt_details, "cached_tokens"),
        reasoning_tokens: n(completion_details, "reasoning_tokens"),
        ..Usage::default()
    }
}

// Borrowed where the JSON has no escapes: a chunk's strings are read, not copied, until an
// event needs its own.
#[derive(Deserialize)]
struct WireAnswer<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    choices: Vec<WireChoice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default, borrow)]
    message: Option<WireMessage<'a>>,
    #[serde(default, borrow)]
    delta: Option<WireMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct WireMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    /// Reasoning text as DeepSeek, vLLM, OpenRouter and others send it.
    #[serde(default, borrow, alias = "reasoning")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<WireCall<'a>>,
}

#[derive(Deserialize)]
struct WireCall<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<WireFunction<'a>>,
}

#[derive(Deserialize)]
struct WireFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// A whole answer; `tools` are the request's tool names (to restore shortened ones).
pub fn decode(body: &[u8], tools: &[String]) -> Option<Response> {
    let w: WireAnswer = serde_json::from_slice(body).ok()?;
    let choice = w.choices.into_iter().next();
    let finish = choice
        .as_ref()
        .and_then(|c| c.finish_reason.as_deref())
        .map(super::parse_finish);
    let m = choice.and_then(|c| c.message).unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(r) = m.reasoning_content.filter(|r| !r.is_empty()) {
        parts.push(Part::Thinking {
            text: r.into_owned(),
            signature: None,
        });
    }
    if let Some(t) = m.content.filter(|t| !t.is_empty()) {
        parts.push(Part::Text(t.into_owned()));
    }
    for c in m.tool_calls {
        let f = c.function.unwrap_or(WireFunction {
            name: None,
            arguments: None,
        });
        parts.push(Part::ToolUse {
            id: c.id.unwrap_or_default().into_owned(),
            name: names::restore(
                f.name.as_deref().unwrap_or(""),
                tools.iter().map(String::as_str),
            ),
            arguments: f.arguments.unwrap_or_default().into_owned(),
        });
    }
    Some(Response {
        id: w.id.into_owned(),
        model: w.model.into_owned(),
        parts,
        finish,
        usage: w.usage.map(|u| u.normalise()),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking(usize),
    Text(usize),
    Tool(usize),
}

/// The stream decoder's state for one call.
pub struct StreamDecoder {
    tools: Vec<String>,
    started: bool,
    next_block: usize,
    open: Option<Open>,
    /// Tool call index → its block, for fragments of a call whose block is still open.
    calls: Vec<(usize, usize)>,
}

impl StreamDecoder {
    pub fn new(tools: Vec<String>) -> StreamDecoder {
        StreamDecoder {
            tools,
            started: false,
            next_block: 0,
            open: None,
            calls: Vec::new(),
        }
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(o) = self.open.take() {
            let index = match o {
                Open::Thinking(i) | Open::Text(i) => i,
                Open::Tool(i) => i,
            };
            out.push(Event::BlockStop { index });
        }
    }

    fn open(&mut self, make: impl FnOnce(usize) -> Open, out: &mut Vec<Event>) -> usize {
        self.close(out);
        let i = self.next_block;
        self.next_block += 1;
        self.open = Some(make(i));
        i
    }

    /// One `data:` payload; `[DONE]` ends the stream.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        if data == b"[DONE]" {
            self.close(out);
            out.push(Event::Done);
            return;
        }
        let Ok(w) = serde_json::from_slice::<WireAnswer>(data) else {
            // An error object in the stream (some servers send one before closing).
            if let Ok(v) = serde_json::from_slice::<Value>(data)
                && let Some(e) = v.get("error")
            {
                out.push(Event::Error {
                    kind: "api_error".into(),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("upstream error")
                        .to_string(),
                });
            }
            return;
        };
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: w.id.clone().into_owned(),
                model: w.model.clone().into_owned(),
            });
        }
        for c in w.choices.into_iter().take(1) {
            let d = c.delta.unwrap_or_default();
            if let Some(r) = d.reasoning_content.filter(|r| !r.is_empty()) {
                let index = match self.open {
                    Some(Open::Thinking(i)) => i,
                    _ => self.open(Open::Thinking, out),
                };
                out.push(Event::ThinkingDelta {
                    index,
                    text: r.into_owned(),
                });
            }
            if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                let index = match self.open {
                    Some(Open::Text(i)) => i,
                    _ => self.open(Open::Text, out),
                };
                out.push(Event::TextDelta {
                    index,
                    text: t.into_owned(),
                });
            }
            for (k, call) in d.tool_calls.into_iter().enumerate() {
                let n = call.index.unwrap_or(k);
                let f = call.function.unwrap_or(WireFunction {
                    name: None,
                    arguments: None,
                });
                let known = self.calls.iter().find(|(c, _)| *c == n).map(|(_, b)| *b);
                // A call index not seen before is a new call with its own block (a parallel
                // call closes the one before it).
                let block = match known {
                    Some(b) => b,
                    None => {
                        let b = self.open(Open::Tool, out);
                        self.calls.push((n, b));
                        out.push(Event::ToolStart {
                            index: b,
                            id: call.id.map_or_else(|| format!("call_{b}"), Cow::into_owned),
                            name: names::restore(
                                f.name.as_deref().unwrap_or(""),
                                self.tools.iter().map(String::as_str),
                            ),
                        });
                        b
                    }
                };
                if let Some(a) = f.arguments.filter(|a| !a.is_empty()) {
                    out.push(Event::ToolArgs {
                        index: block,
                        fragment: a.into_owned(),
                    });
                }
            }
            if let Some(f) = c.finish_reason.as_deref() {
                self.close(out);
                out.push(Event::Finish(super::parse_finish(f)));
            }
        }
        if let Some(u) = w.usage {
            out.push(Event::Usage(u.normalise()));
        }
    }
}
