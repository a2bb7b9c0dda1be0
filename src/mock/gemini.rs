//! The mock's `gemini` mode: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`, the key checked in `x-goog-api-key` (a missing one is 403
//! `PERMISSION_DENIED`; a key in the URL's `?key=` is refused with 400, so a gateway that put
//! it there fails its tests). Answers have the shapes of Gemini's: each SSE event a whole
//! `GenerateContentResponse` ending `\r\n\r\n`, `usageMetadata` on every chunk (the last is
//! final), no end event.
//!
//! Markers in the model name (they combine where it makes sense):
//! - `mock-tools`: "Let me check." then a `functionCall` to each of the first two declared
//!   functions, args `{"city":"Paris","n":1}`, arriving whole; finish `STOP`;
//! - `mock-think`: a thought part (`"thought": true`) "Let me think." first;
//!   `thoughtsTokenCount` 3 (apart from the candidates' tokens); with `mock-tools` the first
//!   call carries a `thoughtSignature`, and a history whose model turn gives a call back
//!   without its signature is refused (400), as Gemini's newer models do;
//! - `mock-cache-<r>`: `cachedContentTokenCount` r, inside `promptTokenCount`;
//! - `mock-tooluse-<t>`: `toolUsePromptTokenCount` t;
//! - `mock-safety`: stream: the first word, then a chunk with finish `SAFETY` and no content;
//!   whole: no content, finish `SAFETY`;
//! - `mock-blocked`: `promptFeedback.blockReason` `SAFETY`, no candidates;
//! - `mock-maxtokens`: finish `MAX_TOKENS`;
//! - `mock-midfail`: stream: the first word, then an `error` object (503 `UNAVAILABLE`), end;
//! - `mock-500`, `mock-503`, `mock-429`, `mock-400`, `mock-404`: that status before any byte,
//!   with Google's error body (`{"error":{"code","message","status"}}`).
//!
//! Otherwise N words "hello hello …" (N = `generationConfig.maxOutputTokens`, 1..=4096, else
//! 16), one chunk per word. Usage: prompt = the words of every `text` part (contents and
//! system instruction) + 3 per content + 3 (+ the cached r); candidates = N (for tools: 7).

use super::State;
use super::body::MockBody;
use super::handler::Behaviour;
use super::scripted::{json_response, sse};
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn google_error(code: u16, status: &str, message: &str) -> Response<MockBody> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.get("text").map_or(0, words) + o.get("parts").map_or(0, words),
        _ => 0,
    }
}

fn number_after(model: &str, marker: &str) -> Option<u64> {
    let rest = &model[model.find(marker)? + marker.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// The model and the method of a `/v1beta/models/{model}:{method}` path.
pub(crate) fn route(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/v1beta/models/")?.rsplit_once(':')
}

/// One call. `query` is the URL's query; `key` the `x-goog-api-key` header.
pub(crate) fn generate(
    state: &Arc<State>,
    path: &str,
    query: Option<&str>,
    key: Option<&str>,
    body: &[u8],
) -> Response<MockBody> {
    let Some((model, method)) = route(path) else {
        return google_error(404, "NOT_FOUND", "no such method");
    };
    let model = percent_encoding::percent_decode_str(model)
        .decode_utf8_lossy()
        .into_owned();
    let stream = match (method, query) {
        ("generateContent", _) => false,
        ("streamGenerateContent", Some(q)) if q.split('&').any(|p| p == "alt=sse") => true,
        ("streamGenerateContent", _) => {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "mock: streams are asked with alt=sse",
            );
        }
        _ => return google_error(404, "NOT_FOUND", "no such method"),
    };
    if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("key="))) {
        return google_error(400, "INVALID_ARGUMENT", "mock: the key belongs in a header");
    }
    let Some(key) = key else {
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers",
        );
    };
    if let Some(s) = Behaviour::key_failure(key) {
        return google_error(s.as_u16(), "PERMISSION_DENIED", "API key not valid");
    }
    for (marker, code, status) in [
        ("mock-500", 500, "INTERNAL"),
        ("mock-503", 503, "UNAVAILABLE"),
        ("mock-429", 429, "RESOURCE_EXHAUSTED"),
        ("mock-400", 400, "INVALID_ARGUMENT"),
        ("mock-404", 404, "NOT_FOUND"),
    ] {
        if model.contains(marker) {
            return google_error(code, status, &format!("mock failure ({marker})"));
        }
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let Some(contents) = req["contents"].as_array().filter(|c| !c.is_empty()) else {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified",
        );
    };
    // A thinking model's history must give back the signature of each turn's first call, as
    // Gemini's newer models insist.
    if model.contains("mock-think") {
        for c in contents.iter().filter(|c| c["role"] == "model") {
            let first_call = c["parts"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p.get("functionCall").is_some()));
            if first_call.is_some_and(|p| p.get("thoughtSignature").is_none()) {
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Function call is missing a thought_signature in functionCall parts.",
                );
            }
        }
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let n = req
        .pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .clamp(1, super::render::MAX_WORDS);
    let cached = number_after(&model, "mock-cache-").unwrap_or(0);
    let tool_use = number_after(&model, "mock-tooluse-").unwrap_or(0);
    let prompt = words(&Value::Array(contents.clone()))
        + words(&req["systemInstruction"])
        + 3 * contents.len() as u64
        + 3
        + cached;
    let think = model.contains("mock-think");
    let thoughts = if think { 3 } else { 0 };
    let names: Vec<String> = req
        .pointer("/tools/0/functionDeclarations")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .take(2)
                .collect()
        })
        .unwrap_or_default();
    let tools = model.contains("mock-tools") && !names.is_empty();
    // The parts of the answer, each one chunk of a stream.
    let mut parts: Vec<Value> = Vec::new();
    if think {
        parts.push(json!({"text": "Let me think.", "thought": true}));
    }
    let output = if tools {
        parts.push(json!({"text": "Let me check."}));
        for (i, name) in names.iter().enumerate() {
            let mut part =
                json!({"functionCall": {"name": name, "args": {"city": "Paris", "n": 1}}});
            // A model that thought signs its first call, as Gemini does (base64, as the SDK checks).
            if think && i == 0 {
                part["thoughtSignature"] = json!(format!("sig{id:05}"));
            }
            parts.push(part);
        }
        7
    } else {
        for i in 0..n {
            parts.push(json!({"text": if i == 0 { "hello" } else { " hello" }}));
        }
        n
    };
    let safety = model.contains("mock-safety");
    let finish = if safety {
        "SAFETY"
    } else if model.contains("mock-maxtokens") {
        "MAX_TOKENS"
    } else {
        "STOP"
    };
    let usage = |candidates: u64, last: bool| {
        let mut u = json!({"promptTokenCount": prompt,
            "totalTokenCount": prompt + candidates + if last { thoughts } else { 0 } + tool_use,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]});
        if candidates > 0 {
            u["candidatesTokenCount"] = json!(candidates);
        }
        if last && thoughts > 0 {
            u["thoughtsTokenCount"] = json!(thoughts);
        }
        if cached > 0 {
            u["cachedContentTokenCount"] = json!(cached);
        }
        if tool_use > 0 {
            u["toolUsePromptTokenCount"] = json!(tool_use);
        }
        u
    };
    let response_id = format!("mockresp{id}");
    let ratings = json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]);
    if model.contains("mock-blocked") {
        let v = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
            "usageMetadata": usage(0, true), "modelVersion": model, "responseId": response_id});
        return if stream {
            sse(vec![chunk(&v)], state)
        } else {
            json_response(StatusCode::OK, &v)
        };
    }
    if !stream {
        let candidate = if safety {
            json!({"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings})
        } else {
            json!({"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0})
        };
        return json_response(
            StatusCode::OK,
            &json!({"candidates": [candidate], "usageMetadata": usage(if safety { 0 } else { output }, true),
                "modelVersion": model, "responseId": response_id}),
        );
    }
    let total = parts.len();
    let mut chunks = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        let last = i + 1 == total && !safety;
        let so_far = if tools {
            output
        } else {
            (i as u64 + 1).min(output)
        };
        let mut candidate = json!({"content": {"role": "model", "parts": [p]}, "index": 0});
        if last {
            candidate["finishReason"] = json!(finish);
        }
        chunks.push(chunk(&json!({"candidates": [candidate],
            "usageMetadata": usage(so_far, last), "modelVersion": model, "responseId": response_id})));
        if model.contains("mock-midfail") {
            chunks.push(chunk(&json!({"error": {"code": 503,
                "message": "The model is overloaded. Please try again later. (mock-midfail)",
                "status": "UNAVAILABLE"}})));
            return sse(chunks, state);
        }
        if safety {
            chunks.push(chunk(
                &json!({"candidates": [{"finishReason": "SAFETY", "index": 0,
                "safetyRatings": ratings}], "usageMetadata": usage(1, true),
                "modelVersion": model, "responseId": response_id}),
            ));
            break;
        }
    }
    sse(chunks, state)
}

/// One SSE event, framed as Google frames them (`\r\n`).
fn chunk(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\r\n\r\n"))
}
