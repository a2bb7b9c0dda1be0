//! Routing, request parsing and the behaviour picked by the model name.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::body::MockBody;
use super::render::{self, Content, Head, Kind, Usage};
use super::{RawRequest, State};

/// What the requested model name asks for; the `mock-*` markers combine.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Behaviour {
    delay: Option<Duration>,
    stall: Option<Duration>,
    drip: Option<Duration>,
    fail: Option<StatusCode>,
    close: bool,
    no_usage: bool,
    huge: bool,
    /// Reports this many times the real prompt tokens (an upstream that over-counts).
    inflate: Option<u64>,
    /// Reports exactly this many prompt tokens, whatever the prompt (an upstream that
    /// under-counts: a megabyte billed as 7 tokens).
    prompt: Option<u64>,
    /// Honours the larger of `max_tokens` and `max_completion_tokens`, and generates its
    /// most (`MAX_WORDS`) when neither is set: the upstream a gateway must bound.
    larger: bool,
    /// Refuses `max_tokens` and `max_completion_tokens` set together, as OpenAI does (400).
    strict: bool,
    /// Stream: pause this long after the content, before the usage chunk and `[DONE]`.
    stall_end: Option<Duration>,
}

impl Behaviour {
    pub(crate) fn of(model: &str) -> Behaviour {
        if !model.contains("mock-") {
            return Behaviour::default();
        }
        let fail = if model.contains("mock-500") {
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else if model.contains("mock-429") {
            Some(StatusCode::TOO_MANY_REQUESTS)
        } else if model.contains("mock-401") {
            Some(StatusCode::UNAUTHORIZED)
        } else {
            None
        };
        Behaviour {
            delay: millis_after(model, "mock-slow-"),
            stall: millis_after(model, "mock-stall-"),
            drip: millis_after(model, "mock-drip-"),
            fail,
            close: model.contains("mock-close"),
            no_usage: model.contains("mock-nousage"),
            huge: model.contains("mock-huge"),
            inflate: number_after(model, "mock-inflate-"),
            prompt: number_after(model, "mock-prompt-"),
            larger: model.contains("mock-larger"),
            strict: model.contains("mock-strict"),
            stall_end: millis_after(model, "mock-stall-end-"),
        }
    }
}

impl Behaviour {
    /// The error status the model name asks for, if any.
    pub(crate) fn fail_status(&self) -> Option<StatusCode> {
        self.fail
    }

    /// `mock-key-<status>` anywhere in the bearer key: every call with that key fails with
    /// that status (an error status, 400–599; anything else is ignored).
    pub(crate) fn key_failure(authorization: &str) -> Option<StatusCode> {
        let n = number_after(authorization, "mock-key-")?;
        StatusCode::from_u16(u16::try_from(n).ok()?)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
    }
}

/// The number right after `marker`, as milliseconds.
fn millis_after(model: &str, marker: &str) -> Option<Duration> {
    number_after(model, marker).map(Duration::from_millis)
}

/// The number right after `marker`.
fn number_after(model: &str, marker: &str) -> Option<u64> {
    let rest = &model[model.find(marker)? + marker.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// The fields of all three POST endpoints; each reads the ones it needs.
#[derive(Deserialize)]
struct CompletionRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    prompt: Words,
    #[serde(default)]
    input: Inputs,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Words,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The number of whitespace-separated words in a JSON value: a string's words, the sum over an
/// array, the `text` of an object (a content part), 1 per number (a token id), else 0.
#[derive(Clone, Copy, Debug, Default)]
struct Words(u64);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Words, D::Error> {
        d.deserialize_any(WordsVisitor).map(Words)
    }
}

struct WordsVisitor;

impl<'de> Visitor<'de> for WordsVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a list of texts or content parts, or token ids")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Ok(v.split_whitespace().count() as u64)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut sum = 0;
        while let Some(Words(n)) = seq.next_element()? {
            sum += n;
        }
        Ok(sum)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut sum = 0;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "text" {
                sum += map.next_value::<Words>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(sum)
    }
}

/// Embedding inputs: how many vectors to return, and their words. A string is one input; a list
/// of numbers is one input of that many tokens; any other list has one input per element.
#[derive(Clone, Copy, Debug, Default)]
struct Inputs {
    count: usize,
    words: u64,
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inputs, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Inputs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a list of strings or token ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Inputs, E> {
                Ok(Inputs {
                    count: 1,
                    words: v.split_whitespace().count() as u64,
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Inputs, E> {
                Ok(Inputs::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs, A::Error> {
                let (mut elements, mut words, mut all_numbers) = (0, 0, true);
                while let Some(element) = seq.next_element::<serde_json::Value>()? {
                    elements += 1;
                    all_numbers &= element.is_number();
                    words += match &element {
                        serde_json::Value::String(s) => s.split_whitespace().count() as u64,
                        serde_json::Value::Array(a) => a.len() as u64,
                        serde_json::Value::Number(_) => 1,
                        _ => 0,
                    };
                }
                let count = if all_numbers && elements > 0 {
                    1
                } else {
                    elements
                };
                Ok(Inputs { count, words })
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) type Reply = Result<Response<MockBody>, std::io::Error>;

/// Where a `/v1` request goes.
enum Route {
    Models,
    Completion(Kind),
    Embeddings,
    Messages,
    Responses,
    StoredResponse,
    WrongMethod,
    Unknown,
}

impl Route {
    fn of(method: &Method, path: &str) -> Route {
        match (method, path) {
            (&Method::GET, "/v1/models") => Route::Models,
            (&Method::POST, "/v1/chat/completions") => Route::Completion(Kind::Chat),
            (&Method::POST, "/v1/completions") => Route::Completion(Kind::Text),
            (&Method::POST, "/v1/embeddings") => Route::Embeddings,
            (&Method::POST, "/v1/messages") => Route::Messages,
            (&Method::POST, "/v1/responses") => Route::Responses,
            (&Method::GET | &Method::DELETE, p) if p.starts_with("/v1/responses/") => {
                Route::StoredResponse
            }
            (_, "/v1/models" | "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings") => {
                Route::WrongMethod
            }
            _ => Route::Unknown,
        }
    }
}

pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if path.starts_with("/openai/") {
        return super::azure::handle(state, req).await;
    }
    let gemini = path.starts_with("/v1beta/");
    if !path.starts_with("/v1/") && !gemini {
        return Ok(error(StatusCode::NOT_FOUND, render::ERROR_404));
    }
    state.calls.fetch_add(1, Ordering::Relaxed);
    state.call_seen.notify_waiters();
    let route = Route::of(req.method(), path);
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let path = path.to_owned();
    let (stored_method, stored_path) = (method.clone(), path.clone());
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    // Anthropic's headers, recorded for the tests (none on the OpenAI routes: nothing cloned).
    let anthropic: Vec<(String, String)> = [
        "x-api-key",
        "anthropic-version",
        "anthropic-beta",
        "x-goog-api-key",
    ]
    .into_iter()
    .filter_map(|n| {
        let v = req.headers().get(n)?.to_str().ok()?;
        Some((n.to_string(), v.to_string()))
    })
    .collect();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return Err(std::io::Error::other(err)),
    };
    // The channel's key can carry a failure too, so one channel fails whatever the model and
    // recovers once an admin edits its key.
    let key_fail = authorization
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            anthropic
                .iter()
                .find(|(n, _)| n == "x-api-key")
                .map(|(_, v)| v.as_str())
        })
        .and_then(Behaviour::key_failure);
    let goog_key = anthropic
        .iter()
        .find(|(n, _)| n == "x-goog-api-key")
        .map(|(_, v)| v.clone());
    state.record(RawRequest {
        method,
        // Gemini's route says whether it streams in its query (`?alt=sse`): kept in the path
        // too, so a test reads the whole route at once.
        path: match (&query, gemini) {
            (Some(q), true) => format!("{path}?{q}"),
            _ => path.clone(),
        },
        query: query.clone(),
        authorization,
        anthropic,
        api_key: None,
        body: body.clone(),
    });
    if gemini {
        return Ok(super::gemini::generate(
            &state,
            &path,
            query.as_deref(),
            goog_key.as_deref(),
            &body,
        ));
    }
    match route {
        Route::Models => Ok(json(
            StatusCode::OK,
            Bytes::from_static(render::MODELS.as_bytes()),
        )),
        Route::Completion(kind) => respond(&state, &body, Some(kind), key_fail).await,
        Route::Embeddings => respond(&state, &body, None, key_fail).await,
        Route::Messages => Ok(super::anthropic::messages(&state, &body, key_fail)),
        Route::Responses => Ok(super::responses::create(&state, &body, key_fail)),
        Route::StoredResponse => Ok(super::responses::stored(
            &state,
            &stored_method,
            &stored_path,
        )),
        Route::WrongMethod => Ok(error(StatusCode::METHOD_NOT_ALLOWED, render::ERROR_405)),
        Route::Unknown => Ok(error(StatusCode::NOT_FOUND, render::ERROR_404)),
    }
}

/// A completion (`kind` set) or an embeddings answer (`kind` None).
pub(super) async fn respond(
    state: &Arc<State>,
    body: &[u8],
    kind: Option<Kind>,
    key_fail: Option<StatusCode>,
) -> Reply {
    let Ok(req) = serde_json::from_slice::<CompletionRequest<'_>>(body) else {
        return Ok(error(StatusCode::BAD_REQUEST, render::ERROR_BAD_JSON));
    };
    if kind == Some(Kind::Chat)
        && super::scripted::wants(&req.model)
        && key_fail.is_none()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
    {
        return Ok(super::scripted::chat(state, &v));
    }
    let mut how = Behaviour::of(&req.model);
    how.fail = key_fail.or(how.fail);
    if let Some(delay) = how.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = how.fail {
        let body = match status {
            StatusCode::TOO_MANY_REQUESTS => render::ERROR_429,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => render::ERROR_401,
            _ => render::ERROR_500,
        };
        let mut res = error(status, body);
        if status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return Ok(res);
    }
    let stream = req.stream.unwrap_or(false);
    if how.close && !stream {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "mock-close: no response on purpose",
        ));
    }
    let Some(kind) = kind else {
        let usage = (!how.no_usage).then_some(req.input.words);
        return Ok(json(
            StatusCode::OK,
            render::embeddings(&req.model, req.input.count, usage),
        ));
    };
    if how.strict && req.max_tokens.is_some() && req.max_completion_tokens.is_some() {
        return Ok(error(StatusCode::BAD_REQUEST, render::ERROR_BOTH_LIMITS));
    }
    let asked = if how.larger {
        match (req.max_tokens, req.max_completion_tokens) {
            (None, None) => Some(render::MAX_WORDS),
            (a, b) => a.max(b),
        }
    } else {
        req.max_tokens.or(req.max_completion_tokens)
    };
    let n = asked.unwrap_or(16).clamp(1, render::MAX_WORDS);
    let prompt = match kind {
        Kind::Chat => {
            let words: u64 = req.messages.iter().map(|m| m.content.0).sum();
            words + 3 * req.messages.len() as u64 + 3
        }
        Kind::Text => req.prompt.0,
    };
    let usage = Usage {
        prompt: how.prompt.unwrap_or(prompt * how.inflate.unwrap_or(1)),
        completion: n,
    };
    let content = if how.huge {
        Content::Huge(n - 1)
    } else {
        Content::Words(n)
    };
    let head = Head {
        kind,
        id: state.next_id.fetch_add(1, Ordering::Relaxed),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: &req.model,
    };
    if !stream {
        let usage = (!how.no_usage).then_some(usage);
        return Ok(json(
            StatusCode::OK,
            render::completion(&head, content, usage),
        ));
    }
    let include_usage = req
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let send_usage = include_usage && !how.no_usage && !how.close;
    let events = render::stream(&head, content, send_usage.then_some(usage), include_usage);
    let half = events.len().saturating_sub(1).max(1) / 2;
    let pieces = content.piece_count();
    let mut body = MockBody::stream(events, state.clone());
    if how.close {
        body = body.cut_before(half.max(1));
    } else if let Some(stall) = how.stall {
        body = body.stall_before(1, stall);
    } else if let Some(stall) = how.stall_end {
        body = body.stall_before(pieces, stall);
    }
    if let Some(every) = how.drip {
        body = body.drip(every);
    }
    let mut res = Response::new(body);
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

fn error(status: StatusCode, body: &'static str) -> Response<MockBody> {
    json(status, Bytes::from_static(body.as_bytes()))
}

pub(super) fn json(status: StatusCode, body: Bytes) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_markers_combine() {
        assert_eq!(Behaviour::of("gpt-4o-mini"), Behaviour::default());
        let b = Behaviour::of("mock-slow-300-mock-nousage");
        assert_eq!(b.delay, Some(Duration::from_millis(300)));
        assert!(b.no_usage);
        assert_eq!(
            Behaviour::of("mock-stall-25").stall,
            Some(Duration::from_millis(25))
        );
        assert_eq!(
            Behaviour::of("mock-429").fail,
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(Behaviour::of("mock-slow-").delay, None);
        assert_eq!(
            Behaviour::key_failure("Bearer sk-mock-key-401"),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(Behaviour::key_failure("Bearer sk-mock-key-200"), None);
        assert_eq!(Behaviour::key_failure("Bearer sk-good"), None);
    }

    #[test]
    fn prompt_words_rule() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"Say hello now"},{"type":"image_url","image_url":{"url":"x y"}}]}]}"#;
        let req: CompletionRequest<'_> = serde_json::from_slice(body).expect("parses");
        let words: u64 = req.messages.iter().map(|m| m.content.0).sum();
        assert_eq!(words, 5);
        let req: CompletionRequest<'_> =
            serde_json::from_slice(br#"{"model":"m","input":[[1,2,3],[4]]}"#).expect("parses");
        assert_eq!((req.input.count, req.input.words), (2, 4));
        let req: CompletionRequest<'_> =
            serde_json::from_slice(br#"{"model":"m","input":[1,2,3]}"#).expect("parses");
        assert_eq!((req.input.count, req.input.words), (1, 3));
        let req: CompletionRequest<'_> =
            serde_json::from_slice(br#"{"model":"m","prompt":["a b","c"]}"#).expect("parses");
        assert_eq!(req.prompt.0, 3);
    }
}
