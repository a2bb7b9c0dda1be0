//! Reading an OpenAI Responses answer (from an upstream): the usage and generated text of a
//! passed-through call (the relay bills from them), and the decoding of a whole answer or its
//! events into the model.

use crate::billing::Usage;
use crate::formats::model::{Event, Finish, Part, Response};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<Value>,
    #[serde(default)]
    output_tokens_details: Option<Value>,
}

impl WireUsage {
    /// `input_tokens` ⊇ cached, `output_tokens` ⊇ reasoning, as chat's counts.
    pub(crate) fn normalise(&self) -> Usage {
        crate::formats::openai::upstream_answer::openai_usage(
            self.input_tokens,
            self.output_tokens,
            &self.input_tokens_details,
            &self.output_tokens_details,
        )
    }
}

/// The whole `response` object's usage, and its generated text appended to `text`.
pub fn read_response(v: &Value, text: &mut String) -> Option<Usage> {
    if let Some(output) = v.get("output").and_then(Value::as_array) {
        for item in output {
            output_text(item, text);
        }
    }
    let u = v.get("usage").filter(|u| !u.is_null())?;
    WireUsage::deserialize(u).ok().map(|w| w.normalise())
}

fn output_text(item: &Value, text: &mut String) {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match item.get("type").and_then(Value::as_str) {
        Some("message") => {
            for c in item
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = s(c, "text").or_else(|| s(c, "refusal")) {
                    text.push_str(&t);
                }
            }
        }
        Some("function_call") => {
            text.push_str(&s(item, "name").unwrap_or_default());
            text.push_str(&s(item, "arguments").unwrap_or_default());
        }
        Some("reasoning") => {
            for c in item
                .get("summary")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                text.push_str(&s(c, "text").unwrap_or_default());
            }
        }
        _ => {}
    }
}

/// What one event of a Responses stream tells the relay: usage (on `response.completed`,
/// `response.incomplete`, `response.failed`) and the text of its deltas.
pub fn read_event(data: &[u8], text: &mut String) -> Option<Usage> {
    let v: Value = serde_json::from_slice(data).ok()?;
    match v.get("type").and_then(Value::as_str)? {
        "response.output_text.delta"
        | "response.function_call_arguments.delta"
        | "response.reasoning_summary_text.delta"
        | "response.refusal.delta" => {
            text.push_str(v.get("delta").and_then(Value::as_str).unwrap_or(""));
            None
        }
        "response.output_item.added" => {
            if let Some(n) = v.pointer("/item/name").and_then(Value::as_str) {
                text.push_str(n);
            }
            None
        }
        "response.completed" | "response.incomplete" | "response.failed" => {
            let u = v.pointer("/response/usage").filter(|u| !u.is_null())?;
            WireUsage::deserialize(u).ok().map(|w| w.normalise())
        }
        _ => None,
    }
}

/// Whether a stream's event is its last (`response.completed` / `.incomplete`): the relay
/// holds it back until the charge commits. Only an event that names one of them (anywhere:
/// not every server writes `type` first) is parsed to make sure.
pub fn is_final(data: &[u8]) -> bool {
    let has = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    if !has(b"\"response.completed\"") && !has(b"\"response.incomplete\"") {
        return false;
    }
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<Kind<'_>>(data)
        .is_ok_and(|k| k.kind == "response.completed" || k.kind == "response.incomplete")
}

/// The response id of a stream's `response.created` event (`None` for any other event).
pub fn created_id(data: &[u8]) -> Option<String> {
    if !data.windows(18).any(|w| w == b"\"response.created\"") {
        return None;
    }
    let v: Value = serde_json::from_slice(data).ok()?;
    if v.get("type").and_then(Value::as_str) != Some("response.created") {
        return None;
    }
    v.pointer("/response/id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The `id` of a whole `response` object.
pub fn response_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<Id>(body).ok().map(|i| i.id)
}

fn finish_of(status: Option<&str>, reason: Option<&str>, calls: bool) -> Finish {
    match (status, reason) {
        (Some("incomplete"), Some("content_filter")) => Finish::ContentFilter,
        (Some("incomplete"), _) => Finish::Length,
        _ if calls => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// A whole answer in the model.
pub fn decode(body: &[u8]) -> Option<Response> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut parts = Vec::new();
    for item in v.get("output").and_then(Value::as_array)? {
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                let mut t = String::new();
                output_text(item, &mut t);
                parts.push(Part::Text(t));
            }
            Some("function_call") => parts.push(Part::ToolUse {
                id: s("call_id"),
                name: s("name"),
                arguments: s("arguments"),
            }),
            Some("reasoning") => {
                let mut t = String::new();
                output_text(item, &mut t);
                parts.push(Part::Thinking {
                    text: t,
                    signature: item
                        .get("encrypted_content")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
            _ => {}
        }
    }
    let calls = parts.iter().any(|p| matches!(p, Part::ToolUse { .. }));
    let mut text = String::new();
    Some(Response {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        finish: Some(finish_of(
            v.get("status").and_then(Value::as_str),
            v.pointer("/incomplete_details/reason")
                .and_then(Value::as_str),
            calls,
        )),
        usage: read_response(&v, &mut text),
        parts,
    })
}

/// The stream decoder: Responses events carry their own `output_index`, which is the block.
#[derive(Default)]
pub struct StreamDecoder {
    calls: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "response.created" => out.push(Event::Start {
                id: s("/response/id"),
                model: s("/response/model"),
            }),
            "response.output_text.delta" => out.push(Event::TextDelta {
                index,
                text: s("/delta"),
            }),
            "response.reasoning_summary_text.delta" => out.push(Event::ThinkingDelta {
                index,
                text: s("/delta"),
            }),
            "response.output_item.added" if s("/item/type") == "function_call" => {
                self.calls = true;
                out.push(Event::ToolStart {
                    index,
                    id: s("/item/call_id"),
                    name: s("/item/name"),
                });
            }
            "response.function_call_arguments.delta" => out.push(Event::ToolArgs {
                index,
                fragment: s("/delta"),
            }),
            "response.output_item.done" => {
                if let Some(sig) = v.pointer("/item/encrypted_content").and_then(Value::as_str) {
                    out.push(Event::Signature {
                        index,
                        signature: sig.to_string(),
                    });
                }
                out.push(Event::BlockStop { index });
            }
            "response.completed" | "response.incomplete" => {
                out.push(Event::Finish(finish_of(
                    v.pointer("/response/status").and_then(Value::as_str),
                    v.pointer("/response/incomplete_details/reason")
                        .and_then(Value::as_str),
                    self.calls,
                )));
                let mut text = String::new();
                if let Some(u) = read_event(data, &mut text) {
                    out.push(Event::Usage(u));
                }
                out.push(Event::Done);
            }
            "response.failed" | "error" => out.push(Event::Error {
                kind: "api_error".into(),
                message: v
                    .pointer("/response/error/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error")
                    .to_string(),
            }),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_in_the_normalised_meaning() {
        let ev = br#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","output":[],"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":60},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":130}}}"#;
        assert!(is_final(ev));
        let mut t = String::new();
        let u = read_event(ev, &mut t).unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.cache_read,
                u.completion_tokens,
                u.reasoning_tokens
            ),
            (100, 60, 30, 12)
        );
        assert_eq!(u.uncached_input(), 40);
        assert!(!is_final(
            br#"{"type":"response.output_text.delta","delta":"response.completed"}"#
        ));
        let mut t = String::new();
        assert!(
            read_event(
                br#"{"type":"response.output_text.delta","delta":"hi"}"#,
                &mut t
            )
            .is_none()
        );
        assert_eq!(t, "hi");
    }
}
