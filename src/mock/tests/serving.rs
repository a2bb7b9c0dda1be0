//! The other endpoints (completions, embeddings, models), bad JSON, the handle's life, word
//! counting, h2c and the call count.

use super::*;

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
    // The accept loop ends in its own task once it sees the stop; nothing outside it can await
    // that, so poll for the refusal, bounded (a fixed 20 ms wait was a guess at how long it takes).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting 10 s after the drop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
