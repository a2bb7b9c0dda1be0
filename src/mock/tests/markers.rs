//! The model-name markers: upstream errors, cut and slow answers, huge lines, output and
//! prompt sizes.

use super::*;

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
