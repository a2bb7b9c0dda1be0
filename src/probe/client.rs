//! One probe request over a pooled hyper-util client, timed; SSE scanning for the first token.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::report::{ErrorKind, RequestResult};

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The longest SSE line kept while looking for its end.
const MAX_LINE: usize = 64 * 1024 * 1024;
/// How much of an error body is kept for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A pooled client for http:// and https:// (web-pki roots; HTTP/1.1, or HTTP/2 by ALPN),
/// TCP_NODELAY on, keeping up to `pool` idle connections per host.
pub(crate) fn build(pool: usize) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = crate::upstream::https_connector(http)?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool)
        .build(https))
}

/// Everything one request needs; shared by the workers.
pub(crate) struct Job {
    pub client: HttpClient,
    pub endpoint: http::Uri,
    pub authorization: HeaderValue,
    pub body: Bytes,
    pub stream: bool,
    pub timeout: Duration,
}

/// What is known about a request so far (kept when the deadline cuts it short).
#[derive(Default)]
struct Progress {
    status: Option<u16>,
    ttft: Option<Duration>,
}

/// Why a request failed after (or before) its status line.
struct Failed {
    kind: ErrorKind,
    message: String,
}

impl Job {
    /// Sends request number `index` and reads the whole response, within the timeout.
    pub(crate) async fn one(&self, index: usize) -> RequestResult {
        let start = Instant::now();
        let mut progress = Progress::default();
        let outcome = tokio::time::timeout(self.timeout, self.attempt(start, &mut progress)).await;
        let elapsed = start.elapsed();
        let (error, message) = match outcome {
            Err(_) => (
                Some(ErrorKind::Timeout),
                Some(format!(
                    "no complete response within {}",
                    humantime(self.timeout)
                )),
            ),
            Ok(Err(f)) => (Some(f.kind), Some(f.message)),
            Ok(Ok(message)) => (None, message),
        };
        RequestResult {
            index,
            status: progress.status,
            ms: millis(elapsed),
            ttft_ms: progress.ttft.map(millis),
            error,
            message,
        }
    }

    /// Ok(error message of a non-2xx body, if any) or the transport failure.
    async fn attempt(
        &self,
        start: Instant,
        progress: &mut Progress,
    ) -> Result<Option<String>, Failed> {
        let req = http::Request::post(self.endpoint.clone())
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::ACCEPT,
                if self.stream {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            )
            .header(
                http::header::USER_AGENT,
                concat!("sluice-probe/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(self.body.clone()))
            .map_err(|e| Failed {
                kind: ErrorKind::Request,
                message: e.to_string(),
            })?;
        let resp = self.client.request(req).await.map_err(|e| Failed {
            kind: if e.is_connect() {
                ErrorKind::Connect
            } else {
                ErrorKind::Request
            },
            message: crate::upstream::describe(&e),
        })?;
        let status = resp.status();
        progress.status = Some(status.as_u16());
        let mut body = resp.into_body();
        if !status.is_success() {
            // Read the rest (so the time covers the whole answer) and keep the start of it.
            let mut kept = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| body_failed(&e))?;
                if let Ok(data) = frame.into_data() {
                    let room = MAX_ERROR_BODY.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            return Ok(Some(error_message(&kept)));
        }
        if !self.stream {
            while let Some(frame) = body.frame().await {
                frame.map_err(|e| body_failed(&e))?;
            }
            return Ok(None);
        }
        let mut scan = SseScan::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| body_failed(&e))?;
            if let Ok(data) = frame.into_data()
                && scan.feed(&data)
            {
                progress.ttft = Some(start.elapsed());
            }
        }
        if scan.finish() {
            progress.ttft = Some(start.elapsed());
        }
        match (scan.events.error, scan.events.done) {
            (Some(message), _) => Err(Failed {
                kind: ErrorKind::Stream,
                message,
            }),
            (None, false) => Err(Failed {
                kind: ErrorKind::Stream,
                message: "the stream ended without data: [DONE]".into(),
            }),
            (None, true) => Ok(None),
        }
    }
}

fn body_failed(e: &hyper::Error) -> Failed {
    Failed {
        kind: if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Body
        },
        message: format!(
            "reading the response failed: {}",
            crate::upstream::describe(e)
        ),
    }
}

/// Milliseconds as a float.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// `error.message` of an OpenAI-style error body, else the body's first line, shortened.
pub(crate) fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        e.get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .map(str::to_string)
    });
    let text = from_json.unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    });
    shorten(text.trim(), 160)
}

/// At most `max` characters, with "…" when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

/// Reads a server-sent-event stream chunk by chunk: notes the first event that carries content,
/// `data: [DONE]`, and an error event.
#[derive(Default, Debug)]
pub(crate) struct SseScan {
    buf: Vec<u8>,
    /// How far `buf` has been searched for a newline.
    searched: usize,
    pub events: SseEvents,
}

/// What the events of a stream said so far.
#[derive(Default, Debug)]
pub(crate) struct SseEvents {
    pub content_seen: bool,
    pub done: bool,
    pub error: Option<String>,
}

impl SseScan {
    /// Feeds the next chunk; true when it completed the first event that carries content.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        let before = self.events.content_seen;
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.buf[self.searched..].iter().position(|&b| b == b'\n') {
            let end = self.searched + pos;
            self.events.line(&self.buf[start..end]);
            start = end + 1;
            self.searched = start;
        }
        self.buf.drain(..start);
        self.searched = self.buf.len();
        if self.buf.len() > MAX_LINE && self.events.error.is_none() {
            self.events.error = Some(format!("an SSE line is longer than {MAX_LINE} bytes"));
            self.buf.clear();
            self.searched = 0;
        }
        !before && self.events.content_seen
    }

    /// The stream ended: a last line without a newline is still read. True as for `feed`.
    pub(crate) fn finish(&mut self) -> bool {
        let before = self.events.content_seen;
        if !self.buf.is_empty() {
            self.events.line(&self.buf);
        }
        self.buf.clear();
        self.searched = 0;
        !before && self.events.content_seen
    }
}

impl SseEvents {
    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.strip_prefix(b" ").unwrap_or(payload);
        if payload == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return;
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            if self.error.is_none() {
                let message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
                    .unwrap_or("an error event in the stream");
                self.error = Some(shorten(message, 160));
            }
            return;
        }
        if !self.content_seen && carries_content(&v) {
            self.content_seen = true;
        }
    }
}

/// A chunk whose first choice has non-empty `delta.content` (or `delta.reasoning_content`, or
/// `text` of a legacy completion).
fn carries_content(v: &Value) -> bool {
    let non_empty = |x: Option<&Value>| x.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    v.get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().any(|c| {
                let delta = c.get("delta");
                non_empty(delta.and_then(|d| d.get("content")))
                    || non_empty(delta.and_then(|d| d.get("reasoning_content")))
                    || non_empty(c.get("text"))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str =
        r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
    const TOKEN: &str = r#"data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}"#;

    #[test]
    fn first_content_event_is_found_across_chunk_boundaries() {
        let mut s = SseScan::default();
        assert!(!s.feed(format!("{ROLE}\n\n").as_bytes()));
        let token = format!("{TOKEN}\n\n");
        let (a, b) = token.split_at(20);
        assert!(!s.feed(a.as_bytes()));
        assert!(!s.events.content_seen);
        assert!(s.feed(b.as_bytes()));
        assert!(!s.feed(format!("{TOKEN}\n\n").as_bytes()), "only the first");
        assert!(!s.events.done);
        assert!(!s.feed(b"data: [DO"));
        assert!(!s.feed(b"NE]\r\n\r\n"));
        assert!(s.events.done);
        assert!(s.events.error.is_none());
    }

    #[test]
    fn error_event_and_unterminated_last_line() {
        let mut s = SseScan::default();
        s.feed(b": keep-alive\n\nevent: x\n");
        s.feed(br#"data: {"error":{"message":"upstream cut","type":"upstream_error"}}"#);
        assert!(s.events.error.is_none());
        assert!(!s.finish());
        assert_eq!(s.events.error.as_deref(), Some("upstream cut"));
        assert!(!s.events.done);
        let mut s = SseScan::default();
        s.feed(b"data:");
        s.feed(br#"{"choices":[{"text":"x"}]}"#);
        assert!(s.finish());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"Invalid API key","type":"x"}}"#),
            "Invalid API key"
        );
        assert_eq!(error_message(b"Bad Gateway\nmore"), "Bad Gateway");
        assert_eq!(error_message(b""), "");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
