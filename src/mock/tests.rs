use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::MockUpstream;

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

#[tokio::test]
async fn mock_500_429_401() {
    let mock = mock().await;
    for (model, status, code) in [
        ("mock-500", 500, Value::Null),
        ("mock-429", 429, json!("rate_limit_exceeded")),
        ("mock-401", 401, json!("invalid_api_key")),
    ] {
        let req = json!({"model": model, "messages": []});
        let (got, headers, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
        assert_eq!(got.as_u16(), status);
        let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
        assert!(v["error"]["message"].is_string());
        assert_eq!(v["error"]["code"], code);
        assert_eq!(headers.get("retry-after").is_some(), status == 429);
    }
    assert_eq!(mock.calls(), 3);
}

#[tokio::test]
async fn mock_close_cuts_the_stream_and_the_non_stream() {
    let mock = mock().await;
    let req = json!({"model": "mock-close", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/chat/completions")
        .header("host", "mock")
        .body(Full::new(Bytes::from(req.to_string())))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let mut got = Vec::new();
    let err = loop {
        match body.frame().await {
            Some(Ok(frame)) => got.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(err)) => break err,
            None => panic!("the stream ended cleanly"),
        }
    };
    assert!(
        format!("{err:?}").contains("EOF") || err.is_incomplete_message(),
        "{err:?}"
    );
    let text = String::from_utf8(got).unwrap();
    assert_eq!(
        text.matches("data: ").count(),
        8,
        "half of 16 chunks: {text}"
    );
    assert!(!text.contains("[DONE]"));
    assert_eq!(mock.completed_streams(), 0);

    // Non-stream: no response at all.
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/chat/completions")
        .header("host", "mock")
        .body(Full::new(Bytes::from(
            r#"{"model":"mock-close","messages":[]}"#,
        )))
        .unwrap();
    assert!(send.send_request(req).await.is_err());
}

#[tokio::test]
async fn slow_and_stall_wait() {
    let mock = mock().await;
    let started = Instant::now();
    let (status, _, _) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "mock-slow-150", "messages": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let started = Instant::now();
    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "mock-stall-120", "stream": true, "messages": []})),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(sse_events(&body.unwrap()).len(), 17);

    // 4 words, then [DONE]: the 4 events after the first wait 40 ms each.
    let started = Instant::now();
    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "mock-drip-40", "stream": true, "max_tokens": 4, "messages": []})),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(160));
    assert_eq!(sse_events(&body.unwrap()).len(), 5);
}

#[tokio::test]
async fn huge_stream_is_one_big_line() {
    let mock = mock().await;
    let req = json!({"model": "mock-huge", "stream": true, "messages": [], "max_tokens": 1,
        "stream_options": {"include_usage": true}});
    let (_, _, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    let events = sse_events(&body.unwrap());
    assert_eq!(events.len(), 3);
    let chunk: Value = serde_json::from_str(&events[0]).unwrap();
    let content = chunk["choices"][0]["delta"]["content"].as_str().unwrap();
    assert_eq!(content.len(), 8 * 1024 * 1024);
    assert_eq!(chunk["choices"][0]["finish_reason"], "stop");
    // N − 1 words come first, then the huge line.
    let req = json!({"model": "mock-huge", "stream": true, "messages": [], "max_tokens": 4});
    let (_, _, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    let events = sse_events(&body.unwrap());
    assert_eq!(events.len(), 5);
    let content = |e: &str| {
        let v: Value = serde_json::from_str(e).unwrap();
        v["choices"][0]["delta"]["content"].as_str().unwrap().len()
    };
    assert_eq!(content(&events[0]), "hello".len());
    assert_eq!(content(&events[2]), " hello".len());
    assert_eq!(content(&events[3]), 8 * 1024 * 1024);
}

/// The completion's word count of a non-stream chat answer.
fn words_of(v: &Value) -> usize {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .count()
}

#[tokio::test]
async fn output_limits_by_marker() {
    let mock = mock().await;
    let chat = |model: &str, extra: Value| {
        let mut req = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        req
    };
    let both = json!({"max_tokens": 40, "max_completion_tokens": 3});
    // By default max_tokens wins over max_completion_tokens.
    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(chat("m", both.clone())),
    )
    .await;
    assert_eq!(
        words_of(&serde_json::from_slice(&body.unwrap()).unwrap()),
        40
    );
    // mock-larger: the larger of the two, whichever field holds it; 4096 when none is set.
    let flipped = json!({"max_tokens": 3, "max_completion_tokens": 40});
    for extra in [both.clone(), flipped] {
        let (_, _, body) = call(
            &mock,
            "POST",
            "/v1/chat/completions",
            Some(chat("mock-larger", extra)),
        )
        .await;
        assert_eq!(
            words_of(&serde_json::from_slice(&body.unwrap()).unwrap()),
            40
        );
    }
    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(chat("mock-larger", json!({}))),
    )
    .await;
    assert_eq!(
        words_of(&serde_json::from_slice(&body.unwrap()).unwrap()),
        4096
    );
    // mock-strict refuses both at once, as OpenAI does, and takes either alone.
    let (status, _, body) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(chat("mock-strict", both)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "invalid_parameter_combination");
    let (status, _, _) = call(
        &mock,
        "POST",
        "/v1/chat/completions",
        Some(chat("mock-strict", json!({"max_completion_tokens": 2}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn prompt_marker_reports_a_fixed_prompt_count() {
    let mock = mock().await;
    let big = "word ".repeat(10_000);
    let req = json!({"model": "mock-prompt-7", "max_tokens": 2,
        "messages": [{"role": "user", "content": big}]});
    let (_, _, body) = call(&mock, "POST", "/v1/chat/completions", Some(req)).await;
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn stall_end_pauses_after_the_content() {
    let mock = mock().await;
    let req = json!({"model": "mock-stall-end-150", "stream": true, "max_tokens": 3,
        "stream_options": {"include_usage": true}, "messages": []});
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/chat/completions")
        .header("host", "mock")
        .body(Full::new(Bytes::from(req.to_string())))
        .unwrap();
    let mut body = send.send_request(req).await.unwrap().into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"finish_reason\":\"stop\"") {
        let frame = body.frame().await.unwrap().unwrap();
        seen.extend_from_slice(frame.data_ref().unwrap());
    }
    // All the content is here; the usage chunk and [DONE] come after the stall.
    let started = Instant::now();
    assert!(!String::from_utf8_lossy(&seen).contains("[DONE]"));
    while let Some(frame) = body.frame().await {
        seen.extend_from_slice(frame.unwrap().data_ref().unwrap());
    }
    assert!(started.elapsed() >= Duration::from_millis(100));
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("\"usage\":{") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
}

#[tokio::test]
async fn legacy_completions_embeddings_and_models() {
    let mock = mock().await;
    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/completions",
        Some(json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hello", "max_tokens": 2})),
    )
    .await;
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "hello hello");
    assert_eq!(v["usage"]["prompt_tokens"], 2);

    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/completions",
        Some(json!({"model": "m", "prompt": ["Say hello"], "max_tokens": 2, "stream": true})),
    )
    .await;
    let events = sse_events(&body.unwrap());
    assert_eq!(events.len(), 3);
    let last: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(last["choices"][0]["text"], " hello");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");

    let (_, _, body) = call(
        &mock,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "text-embedding-3-small", "input": ["a b", "c"]})),
    )
    .await;
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    let (status, _, body) = call(&mock, "GET", "/v1/models", None).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-4o-mini")
    );

    let (status, _, _) = call(&mock, "GET", "/v1/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(&mock, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(mock.calls(), 5, "paths outside /v1 are not counted");
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(mock.requests()[0].path, "/v1/completions");
}

#[tokio::test]
async fn bad_json_is_400_and_recorded_as_null() {
    let mock = mock().await;
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/chat/completions")
        .header("host", "mock")
        .body(Full::new(Bytes::from_static(b"not json")))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(mock.last_request().unwrap().body, Value::Null);
    assert_eq!(mock.last_request().unwrap().authorization, None);
}

#[tokio::test]
async fn dropping_the_handle_stops_serving() {
    let mock = mock().await;
    let addr = mock.addr();
    drop(mock);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn each_word_is_one_token() {
    let text = "hello hello hello hello";
    for bpe in [
        tiktoken_rs::cl100k_base().unwrap(),
        tiktoken_rs::o200k_base().unwrap(),
    ] {
        assert_eq!(bpe.encode_with_special_tokens(text).len(), 4);
        assert_eq!(bpe.encode_with_special_tokens("hello").len(), 1);
    }
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let mock = mock().await;
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let body = json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 2, "messages": []});
    let req = Request::post(format!("http://{}/v1/chat/completions", mock.addr()))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), http::Version::HTTP_2);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(sse_events(&body).len(), 3);
    assert_eq!(mock.completed_streams(), 1);
}

#[tokio::test]
async fn a_call_is_counted_before_a_slow_answer() {
    use tokio::io::AsyncWriteExt as _;
    let mock = mock().await;
    let body = r#"{"model":"mock-slow-300","messages":[]}"#;
    let mut s = TcpStream::connect(mock.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Counted (and recorded) while the answer is still 300 ms away.
    tokio::time::timeout(Duration::from_millis(250), mock.wait_for_calls(1))
        .await
        .expect("the call was counted before the slow answer");
    assert_eq!(mock.last_request().unwrap().body["model"], "mock-slow-300");
}
