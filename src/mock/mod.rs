//! A mock OpenAI-compatible (and Anthropic Messages) upstream, for integration tests and the
//! benchmark. Chat models with the markers of `scripted` (`mock-tools`, `mock-think`,
//! `mock-cache-…`, `mock-reasoning-…`, `mock-midfail`) get its recorded-shape answers.
//!
//! [`MockUpstream::start`] serves on an already-bound listener (port 0 in tests) and records every
//! request under `/v1`. It answers:
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/chat/completions` | `chat.completion`, or SSE `chat.completion.chunk` events when `"stream": true` |
//! | `POST /v1/completions` | legacy `text_completion` (one choice, whatever the number of prompts), stream or not |
//! | `POST /v1/embeddings` | one vector of 8 floats per input |
//! | `GET /v1/models` | a short fixed list |
//! | `POST /v1/messages` | Anthropic Messages, stream or not (`scripted`: text, parallel tool use, thinking, cache usage, errors) |
//! | `POST /v1beta/models/{m}:generateContent`, `:streamGenerateContent?alt=sse` | Gemini, key in `x-goog-api-key` (`gemini`: text, thoughts, function calls, cache and thoughts usage, safety blocks, errors) |
//! | `POST /v1/responses` | OpenAI Responses, stream or not (`responses`: the same scripts as Responses items and events) |
//! | `GET`/`DELETE /v1/responses/{id}` | a response the Responses mode stored, or a 404 |
//!
//! Any bearer token is accepted and recorded. Other `/v1` paths get an OpenAI-shaped 404 (and are
//! counted); paths outside `/v1` get a 404 and are not counted.
//!
//! # Deterministic content and usage
//! The completion is N words: `"hello"` then `" hello"` repeated, so `"hello hello hello"`. Each
//! word is exactly one token in tiktoken's cl100k and o200k. N = `max_tokens` (or, when that is
//! not set, `max_completion_tokens`) clamped to 1..=4096, else 16: like many OpenAI-compatible
//! servers it honours `max_tokens` over `max_completion_tokens`. A stream sends one chunk per
//! word, the first with `"role":"assistant"`, the last with `"finish_reason":"stop"`.
//!
//! `prompt_tokens` is not a tokenizer count, it is a rule a test can compute by hand:
//! - chat: the sum over messages of the whitespace-separated words of `content` (a string, or the
//!   `text` of each part of an array), plus 3 per message, plus 3;
//! - legacy completions: the words of `prompt` (a string or a list; a token array counts its length);
//! - embeddings: the words of `input`, same rule.
//!
//! `completion_tokens` = N (for `mock-huge` too), `total_tokens` = the sum.
//!
//! # Behaviour by model name
//! Substrings of the requested `model` select the behaviour; they combine
//! (`mock-slow-50-mock-nousage` is slow and reports no usage):
//! - `mock-slow-<ms>`: wait that long before the response headers;
//! - `mock-stall-<ms>`: stream: first chunk, then a stall of that long, then the rest;
//! - `mock-stall-end-<ms>`: stream: all the content, then a stall of that long, then the usage
//!   chunk and `[DONE]`;
//! - `mock-drip-<ms>`: stream: a pause of that long before every chunk after the first (with
//!   `max_tokens` N, a stream of about N × ms);
//! - `mock-500`, `mock-429` (with `retry-after: 1`), `mock-401`: that status with an OpenAI error body;
//! - `mock-close`: stream: half the chunks, then the connection is cut (no `[DONE]`, no usage);
//!   non-stream: the connection is closed without a response;
//! - `mock-nousage`: never a `usage` (not in the body, no usage chunk even when asked);
//! - `mock-huge`: N − 1 words, then 8 MiB of `a` (a stream: N − 1 word events, then one
//!   `data:` line of ~8 MiB);
//! - `mock-inflate-<k>`: reports k times the real prompt tokens (an upstream that over-counts);
//! - `mock-prompt-<n>`: reports exactly n prompt tokens, whatever was sent (an upstream that
//!   under-counts);
//! - `mock-larger`: N = the larger of `max_tokens` and `max_completion_tokens`, and 4096 when
//!   neither is set (an upstream that generates all it may: the one a gateway must bound);
//! - `mock-strict`: 400 `invalid_parameter_combination` when both `max_tokens` and
//!   `max_completion_tokens` are set, as OpenAI answers;
//! - anything else: the normal answer; the response's `model` echoes the requested one.
//!
//! # Azure mode
//! Under `/openai/` the mock is an Azure OpenAI resource (see `azure`'s module docs):
//! `POST /openai/deployments/{deployment}/{chat/completions|completions|embeddings}` with
//! `?api-version=` (else Azure's 404 "Resource not found"), or `POST /openai/v1/{…}` without
//! it; the key in the `api-key` header (else Azure's 401). The deployment name stands for the
//! model (its `mock-*` markers apply); the answers are the ones above. These calls count and
//! are recorded like `/v1` ones.
//!
//! # Behaviour by key
//! `mock-key-<status>` in the bearer key (e.g. `sk-mock-key-401`) makes every completion and
//! embeddings call with that key answer that error status (400–599), whatever the model: a
//! channel with a bad key, which recovers once its key is edited.

mod anthropic;
mod azure;
mod body;
mod gemini;
mod handler;
mod render;
mod responses;
mod scripted;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How many requests [`MockUpstream::requests`] keeps.
const MAX_RECORDED: usize = 1000;

/// A running mock upstream. Dropping it (or [`MockUpstream::shutdown`]) stops the accept loop and
/// cuts every open connection.
pub struct MockUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    // Dropping the sender wakes every `changed()` in the accept loop and the connection tasks.
    _stop: watch::Sender<()>,
}

/// One request the mock received under `/v1`.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The query string (Azure's `api-version=…`), when there was one.
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// `x-api-key`, `anthropic-version`, `anthropic-beta` and `x-goog-api-key`, when sent.
    pub anthropic: Vec<(String, String)>,
    /// Azure's `api-key` header.
    pub api_key: Option<String>,
    /// The request body as JSON; `Null` if it was not JSON (or empty).
    pub body: serde_json::Value,
    /// The body's bytes as they came (a key sent twice shows here, not in `body`).
    pub raw: Bytes,
}

/// What the hot path stores: the raw body, parsed only when a test asks for it.
struct RawRequest {
    method: http::Method,
    path: String,
    query: Option<String>,
    authorization: Option<http::HeaderValue>,
    anthropic: Vec<(String, String)>,
    api_key: Option<http::HeaderValue>,
    body: Bytes,
}

impl RawRequest {
    fn to_recorded(&self) -> RecordedRequest {
        RecordedRequest {
            method: self.method.as_str().to_owned(),
            path: self.path.clone(),
            query: self.query.clone(),
            authorization: self
                .authorization
                .as_ref()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            anthropic: self.anthropic.clone(),
            api_key: self
                .api_key
                .as_ref()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            body: serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null),
            raw: self.body.clone(),
        }
    }
}

/// Counters and the request log, shared by all connections.
#[derive(Default)]
struct State {
    calls: AtomicU64,
    /// Woken on every call, so tests wait for a request to arrive instead of polling.
    call_seen: tokio::sync::Notify,
    completed_streams: AtomicU64,
    next_id: AtomicU64,
    recorded: Mutex<VecDeque<RawRequest>>,
    /// The Responses mode's stored responses (`store` not false), by id.
    stored: Mutex<std::collections::HashMap<String, serde_json::Value>>,
}

impl State {
    fn record(&self, req: RawRequest) {
        let mut log = self.recorded.lock();
        if log.len() >= MAX_RECORDED {
            log.pop_front();
        }
        log.push_back(req);
    }

    fn stream_completed(&self) {
        self.completed_streams.fetch_add(1, Ordering::Relaxed);
    }
}

impl MockUpstream {
    /// Serve on an already-bound listener until the handle is dropped or [`Self::shutdown`] is
    /// called. Returns at once; serving happens in a spawned task, so this must be called inside
    /// a tokio runtime.
    pub fn start(listener: TcpListener) -> MockUpstream {
        let addr = listener
            .local_addr()
            .expect("a bound TcpListener has a local address");
        let state = Arc::new(State::default());
        let (stop, stopped) = watch::channel(());
        tokio::spawn(accept_loop(listener, state.clone(), stopped));
        MockUpstream {
            addr,
            state,
            _stop: stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint an Azure client or an azure channel is given.
    pub fn azure_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL a client or a gateway channel is given.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received under `/v1`, whatever their answer.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` requests have arrived under `/v1`.
    pub async fn wait_for_calls(&self, n: u64) {
        loop {
            let notified = self.state.call_seen.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.calls() >= n {
                return;
            }
            notified.await;
        }
    }

    /// The most recent request under `/v1` whose body was read.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.state
            .recorded
            .lock()
            .back()
            .map(RawRequest::to_recorded)
    }

    /// The recorded requests, oldest first (at most the last 1000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .recorded
            .lock()
            .iter()
            .map(RawRequest::to_recorded)
            .collect()
    }

    /// Streams whose last chunk was handed to the connection (a cut or stalled-and-abandoned
    /// stream does not count).
    pub fn completed_streams(&self) -> u64 {
        self.state.completed_streams.load(Ordering::Relaxed)
    }

    /// Stop serving and cut open connections (the same as dropping the handle).
    pub fn shutdown(self) {}
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No header read timeout: an idle pooled connection from the gateway stays open as long as
    // the gateway wants, so its tests never race a server-side close.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("mock upstream: accept failed: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        if let Err(err) = stream.set_nodelay(true) {
            log::warn!("mock upstream: TCP_NODELAY: {err}");
        }
        let state = state.clone();
        let builder = builder.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handler::handle(state.clone(), req));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                // Connection errors are expected here (mock-close, clients going away).
                _ = conn => {}
                _ = stopped.changed() => {}
            }
        });
    }
}
