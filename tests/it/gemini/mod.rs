//! Gemini channels over real HTTP: OpenAI chat and Anthropic clients converted to Gemini's
//! `generateContent` / `streamGenerateContent?alt=sse` on the mock's gemini mode (streamed and
//! not), errors before and in the middle of a stream, cache- and thoughts-aware billing, and the
//! official `google-genai` Python SDK proving the mock's answers are Gemini's shapes.

mod billing;
mod conversions;
mod errors;
mod sdk;
mod streams;

use crate::common::TestServer;
use serde_json::{Value, json};

/// A gemini channel to the mock serving `models` (extra fields merged in).
pub async fn gemini_channel(t: &TestServer, models: &[&str], extra: Value) -> i64 {
    let mut body = json!({"kind": "gemini", "base_url": format!("http://{}", t.mock.addr()),
        "api_key": "goog-upstream-secret-canary"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.channel(models, body).await
}

/// The `x-goog-api-key` the mock saw on its last request.
pub fn goog_key(t: &TestServer) -> Option<String> {
    t.mock
        .last_request()?
        .anthropic
        .into_iter()
        .find(|(n, _)| n == "x-goog-api-key")
        .map(|(_, v)| v)
}

/// The `data:` payloads of an OpenAI stream, parsed (`[DONE]` as a string).
pub fn chunks(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

/// The content an OpenAI stream's chunks add up to, and its finish reason.
pub fn assembled(chunks: &[Value]) -> (String, Option<String>) {
    let mut text = String::new();
    let mut finish = None;
    for c in chunks {
        if let Some(t) = c
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            text.push_str(t);
        }
        if let Some(f) = c
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
        {
            finish = Some(f.to_string());
        }
    }
    (text, finish)
}
