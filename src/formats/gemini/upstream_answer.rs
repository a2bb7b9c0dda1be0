//! Decoding a Gemini `GenerateContentResponse` (from an upstream): whole, or chunk by chunk.
//! Each SSE chunk is a whole response holding deltas; the decoder makes blocks of them: a run
//! of thought text, a run of text, and each function call (which arrives whole: its start,
//! one argument fragment, its stop).
//!
//! Gemini gives calls no ids: the decoder names them `call_<n>` by their order in the answer,
//! and the request encoder finds a result's call by that id among the earlier turns.

use crate::billing::Usage;
use crate::formats::model::{Event, Finish, Part, Response};
use serde::Deserialize;
use serde_json::Value;

/// `usageMetadata`.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

impl WireUsage {
    /// To the normalised meaning: `promptTokenCount` already includes the cached tokens (as
    /// OpenAI's prompt does); the tokens of a built-in tool's results are input too, reported
    /// apart; thoughts are reported apart from the candidates and billed as output, so the
    /// completion is their sum and the reasoning part is the thoughts.
    pub fn normalise(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_token_count + self.tool_use_prompt_token_count,
            completion_tokens: self.candidates_token_count + self.thoughts_token_count,
            cache_read: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
            ..Usage::default()
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireAnswer {
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
    #[serde(default)]
    model_version: String,
    #[serde(default)]
    response_id: String,
    /// An error object in place of an answer (sent mid-stream by some front ends).
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<WireCall>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct WireCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

fn args_text(args: &Value) -> String {
    if args.is_null() {
        "{}".into()
    } else {
        args.to_string()
    }
}

/// The finish of a candidate: a turn that called functions and stopped asks for their results.
fn finish_of(reason: &str, called: bool) -> Finish {
    match super::parse_finish(reason) {
        Finish::Stop if called => Finish::ToolCalls,
        f => f,
    }
}

pub fn decode(body: &[u8]) -> Option<Response> {
    let w: WireAnswer = serde_json::from_slice(body).ok()?;
    if w.error.is_some() {
        return None;
    }
    let mut parts = Vec::new();
    let mut calls = 0;
    let candidate = w.candidates.into_iter().next();
    let reason = candidate.as_ref().and_then(|c| c.finish_reason.clone());
    for p in candidate
        .and_then(|c| c.content)
        .map(|c| c.parts)
        .unwrap_or_default()
    {
        if let Some(c) = p.function_call {
            // The call's signature rides ahead of it as a signed, empty thinking part (what
            // clients already send back across tool turns).
            if let Some(sig) = p.thought_signature.filter(|s| !s.is_empty()) {
                parts.push(Part::Thinking {
                    text: String::new(),
                    signature: Some(super::wrap_signature(&sig)),
                });
            }
            parts.push(Part::ToolUse {
                id: format!("call_{calls}"),
                name: c.name,
                arguments: args_text(&c.args),
            });
            calls += 1;
            continue;
        }
        let Some(t) = p.text.filter(|t| !t.is_empty()) else {
            continue;
        };
        // Runs of one kind join into one part, as the stream decoder's blocks do.
        match (parts.last_mut(), p.thought) {
            (Some(Part::Thinking { text, .. }), true) | (Some(Part::Text(text)), false) => {
                text.push_str(&t)
            }
            (_, true) => parts.push(Part::Thinking {
                text: t,
                signature: None,
            }),
            (_, false) => parts.push(Part::Text(t)),
        }
    }
    let blocked = w.prompt_feedback.and_then(|f| f.block_reason).is_some();
    let finish = match reason {
        Some(r) => Some(finish_of(&r, calls > 0)),
        None if blocked => Some(Finish::ContentFilter),
        None => None,
    };
    Some(Response {
        id: w.response_id,
        model: w.model_version,
        parts,
        finish,
        usage: w.usage_metadata.map(|u| u.normalise()),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking(usize),
    Text(usize),
}

/// The stream decoder's state for one call.
#[derive(Default)]
pub struct StreamDecoder {
    started: bool,
    next_block: usize,
    open: Option<Open>,
    calls: usize,
    finished: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some(Open::Thinking(index) | Open::Text(index)) = self.open.take() {
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

    /// One `data:` payload: a whole `GenerateContentResponse`. Gemini's stream has no end
    /// event: the chunk with a finish reason (or a blocked prompt) is the last, so it is the
    /// stream's [`Event::Done`]; its usage comes first, on the same chunk.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let Ok(w) = serde_json::from_slice::<WireAnswer>(data) else {
            return;
        };
        if let Some(e) = w.error {
            out.push(Event::Error {
                kind: if e.status.is_empty() {
                    "api_error".into()
                } else {
                    e.status
                },
                message: e.message,
            });
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: w.response_id.clone(),
                model: w.model_version.clone(),
            });
        }
        let mut reason = None;
        if let Some(c) = w.candidates.into_iter().next() {
            for p in c.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(call) = p.function_call {
                    self.close(out);
                    if let Some(sig) = p.thought_signature.filter(|s| !s.is_empty()) {
                        let index = self.next_block;
                        self.next_block += 1;
                        out.push(Event::Signature {
                            index,
                            signature: super::wrap_signature(&sig),
                        });
                        out.push(Event::BlockStop { index });
                    }
                    let index = self.next_block;
                    self.next_block += 1;
                    out.push(Event::ToolStart {
                        index,
                        id: format!("call_{}", self.calls),
                        name: call.name,
                    });
                    out.push(Event::ToolArgs {
                        index,
                        fragment: args_text(&call.args),
                    });
                    out.push(Event::BlockStop { index });
                    self.calls += 1;
                    continue;
                }
                let Some(text) = p.text.filter(|t| !t.is_empty()) else {
                    continue;
                };
                if p.thought {
                    let index = match self.open {
                        Some(Open::Thinking(i)) => i,
                        _ => self.open(Open::Thinking, out),
                    };
                    out.push(Event::ThinkingDelta { index, text });
                } else {
                    let index = match self.open {
                        Some(Open::Text(i)) => i,
                        _ => self.open(Open::Text, out),
                    };
                    out.push(Event::TextDelta { index, text });
                }
            }
            reason = c.finish_reason;
        }
        let blocked = w.prompt_feedback.and_then(|f| f.block_reason).is_some();
        if let Some(u) = w.usage_metadata {
            out.push(Event::Usage(u.normalise()));
        }
        let finish = match reason {
            Some(r) => Some(finish_of(&r, self.calls > 0)),
            None if blocked => Some(Finish::ContentFilter),
            None => None,
        };
        if let Some(f) = finish
            && !self.finished
        {
            self.finished = true;
            self.close(out);
            out.push(Event::Finish(f));
            out.push(Event::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_normalises_without_counting_twice() {
        let w: WireUsage = serde_json::from_value(json!({"promptTokenCount": 100,
            "cachedContentTokenCount": 60, "toolUsePromptTokenCount": 5,
            "candidatesTokenCount": 20, "thoughtsTokenCount": 7, "totalTokenCount": 132}))
        .unwrap();
        let u = w.normalise();
        assert_eq!(
            (u.prompt_tokens, u.cache_read, u.uncached_input()),
            (105, 60, 45)
        );
        assert_eq!((u.completion_tokens, u.reasoning_tokens), (27, 7));
    }

    #[test]
    fn finish_reasons_map() {
        for (r, f) in [
            ("STOP", Finish::Stop),
            ("MAX_TOKENS", Finish::Length),
            ("SAFETY", Finish::ContentFilter),
            ("RECITATION", Finish::ContentFilter),
            ("BLOCKLIST", Finish::ContentFilter),
            ("PROHIBITED_CONTENT", Finish::ContentFilter),
            ("SPII", Finish::ContentFilter),
            ("OTHER", Finish::Stop),
        ] {
            assert_eq!(finish_of(r, false), f, "{r}");
        }
        assert_eq!(finish_of("STOP", true), Finish::ToolCalls);
        assert_eq!(finish_of("MAX_TOKENS", true), Finish::Length);
    }

    #[test]
    fn a_stream_makes_blocks_and_whole_calls() {
        let mut d = StreamDecoder::new();
        let mut ev = Vec::new();
        let chunks = [
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hm", "thought": true}]}}],
                   "responseId": "r1", "modelVersion": "gemini-x"}),
            json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}),
            json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"name": "a", "args": {"x": 1}}},
                {"functionCall": {"name": "b", "args": {}}}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 2}}),
        ];
        for c in chunks {
            d.push(c.to_string().as_bytes(), &mut ev);
        }
        assert_eq!(
            ev,
            vec![
                Event::Start {
                    id: "r1".into(),
                    model: "gemini-x".into()
                },
                Event::ThinkingDelta {
                    index: 0,
                    text: "hm".into()
                },
                Event::BlockStop { index: 0 },
                Event::TextDelta {
                    index: 1,
                    text: "Hi".into()
                },
                Event::BlockStop { index: 1 },
                Event::ToolStart {
                    index: 2,
                    id: "call_0".into(),
                    name: "a".into()
                },
                Event::ToolArgs {
                    index: 2,
                    fragment: "{\"x\":1}".into()
                },
                Event::BlockStop { index: 2 },
                Event::ToolStart {
                    index: 3,
                    id: "call_1".into(),
                    name: "b".into()
                },
                Event::ToolArgs {
                    index: 3,
                    fragment: "{}".into()
                },
                Event::BlockStop { index: 3 },
                Event::Usage(Usage {
                    prompt_tokens: 9,
                    completion_tokens: 6,
                    reasoning_tokens: 2,
                    ..Usage::default()
                }),
                Event::Finish(Finish::ToolCalls),
                Event::Done,
            ]
        );
    }

    #[test]
    fn a_blocked_prompt_is_a_content_filter_answer() {
        let body = json!({"promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 8}});
        let r = decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.finish, Some(Finish::ContentFilter));
        assert!(r.parts.is_empty());
        let mut ev = Vec::new();
        StreamDecoder::new().push(body.to_string().as_bytes(), &mut ev);
        assert!(ev.contains(&Event::Finish(Finish::ContentFilter)));
        assert_eq!(ev.last(), Some(&Event::Done));
        // Not an answer at all.
        assert!(decode(b"[1,2]").is_none());
        assert!(decode(br#"{"error":{"code":500,"message":"x","status":"INTERNAL"}}"#).is_none());
    }
}
