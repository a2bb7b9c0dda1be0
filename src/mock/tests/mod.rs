//! The mock upstream's own tests: the answer shapes here; the fault and size markers in
//! [`markers`]; the other endpoints, bad input, HTTP/2 and the handle's life in [`serving`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::MockUpstream;

mod markers;
mod serving;

async fn mock() -> MockUpstream {
    MockUpstream::start(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// One request on a fresh HTTP/1.1 connection: status, headers and the whole body, or the error
/// that ended the body.
async fn call(
    mock: &MockUpstream,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, http::HeaderMap, Result<Bytes, hyper::Error>) {
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", mock.addr().to_string())
        .header("authorization", "Bearer sk-test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes());
    (parts.status, parts.headers, body)
}

fn sse_events(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "events end with a blank line");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn non_stream_shape_and_usage() {
    let mock = mock().await;
    let req = json!({"model": "gpt-4o-mini", "max_tokens": 5,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Say hello"}]});
    let (status, headers, body) =
        call(&mock, "POST", "/v1/chat/completions", Some(req.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "hello hello hello hello hello"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // 4 words + 3 per message + 3
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18})
    );
    assert_eq!(mock.calls(), 1);
    let last = mock.last_request().unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(last.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(last.body, req);
}

#[tokio::test]
async fn default_is_sixteen_words_and_nousage_omits_usage() {
    let mock = mock().await;
    let req = json!({"model": "x-mock-nousage", "messages": [{"role": "user", "content": "hi"}]});
    let (_, _, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.split(' ').count(), 16);
    assert!(v.get("usage").is_none());
}

#[tokio::test]
async fn stream_with_include_usage() {
    let mock = mock().await;
    let req = json!({"model": "gpt-4o-mini", "max_tokens": 3, "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hello"}]});
    let (status, headers, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let events = sse_events(&body.unwrap());
    assert_eq!(events.len(), 3 + 1 + 1, "3 words, usage, [DONE]");
    assert_eq!(events[4], "[DONE]");
    let chunks: Vec<Value> = events[..4]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "hello"})
    );
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": " hello"})
    );
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[2]["usage"], Value::Null);
    assert_eq!(chunks[3]["choices"], json!([]));
    assert_eq!(
        chunks[3]["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11})
    );
    assert_eq!(chunks[3]["model"], "gpt-4o-mini");
    assert_eq!(mock.completed_streams(), 1);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let mock = mock().await;
    let req = json!({"model": "gpt-4o-mini", "stream": true, "messages": []});
    let (_, _, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    let events = sse_events(&body.unwrap());
    assert_eq!(events.len(), 17);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert!(first.get("usage").is_none());
}
