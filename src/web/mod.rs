//! Small HTTP helpers: the response body type, JSON responses, bounded body reading.

pub mod conn;
pub mod cors;
pub mod download;

use crate::error::ApiError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use serde::Serialize;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Every response body: a full buffer or a channel fed by a relay task.
pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => with_type(status, "application/json", full(b)),
        Err(e) => error(&ApiError::Internal(format!(
            "cannot serialise a response: {e}"
        ))),
    }
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub fn no_content() -> Resp {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The error response, in OpenAI's shape, with `Retry-After` where it applies.
pub fn error(e: &ApiError) -> Resp {
    error_in(e, crate::formats::Format::OpenAiChat)
}

/// [`error`] in the shape of the route's client format (the one place the format is chosen:
/// the server's dispatch and the relay call this with the route's format).
pub fn error_in(e: &ApiError, format: crate::formats::Format) -> Resp {
    let mut r = with_type(e.status(), "application/json", full(e.body_in(format)));
    if let ApiError::MethodNotAllowed { allow, .. } = e
        && let Ok(v) = HeaderValue::from_str(allow)
    {
        r.headers_mut().insert(header::ALLOW, v);
    }
    if let Some(secs) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    for (name, v) in e.extra_headers() {
        r.headers_mut().insert(name, v);
    }
    r
}

/// Reads the whole body, refusing it with 413 before buffering when `Content-Length` is over
/// `limit`, and as soon as the bytes received pass it otherwise.
pub async fn read_body(
    req: http::Request<Incoming>,
    limit: usize,
) -> Result<(http::request::Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::BadRequest("Content-Length is not a number".into()))?;
        if len > limit as u64 {
            return Err(ApiError::PayloadTooLarge(limit));
        }
    }
    let collected = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })?;
    Ok((parts, collected.to_bytes()))
}

/// Parses a JSON body, requiring a JSON content type when one is given.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<T, ApiError> {
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") && !ct.is_empty() {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content type {ct:?} is not supported: send application/json"
            )));
        }
    }
    // Every body this API takes is an object (serde would also read a struct from an array).
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    let bad = |e: serde_json::Error| ApiError::BadRequest(format!("invalid JSON body: {e}"));
    let first = match serde_json::from_slice::<T>(body) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    // Only a body that failed is looked at again (the relay's bodies never pay for this).
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Err(bad(first));
    };
    if !whole_numbers(&mut v) {
        return Err(bad(first));
    }
    serde_json::from_value(v).map_err(bad)
}

/// JSON has one number type: `5.0` is the integer 5 (as JSON Schema says), so a number with
/// no fraction that fits an i64 is read as an integer; fields typed as floats still take it.
/// True when something changed.
pub fn whole_numbers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                *v = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(a) => a.iter_mut().fold(false, |c, x| whole_numbers(x) | c),
        Value::Object(m) => m.values_mut().fold(false, |c, x| whole_numbers(x) | c),
        _ => false,
    }
}

/// Most bytes joined from queued messages into one frame.
const JOIN_LIMIT: usize = 64 * 1024;

/// A response body fed through a channel: each message is sent to the client as it arrives.
/// When the client goes away the receiver is dropped and the sender's `send` fails, which is
/// how the relay learns of a disconnect.
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        ChannelBody { rx }
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let first = match self.rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => b,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        // Events that queued up while the connection was writing go out in one write.
        let mut joined: Option<bytes::BytesMut> = None;
        while joined.as_ref().map_or(first.len(), |j| j.len()) < JOIN_LIMIT {
            let Ok(more) = self.rx.try_recv() else { break };
            joined
                .get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                .extend_from_slice(&more);
        }
        let data = joined.map_or(first, bytes::BytesMut::freeze);
        Poll::Ready(Some(Ok(http_body::Frame::data(data))))
    }
}

pub use crate::util::not_null;
