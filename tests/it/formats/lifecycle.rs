//! The relay's one code path holds for every format pair: the final event (`message_stop`,
//! `[DONE]`) goes out only after the charge has committed, and a client that hangs up
//! mid-stream is billed to the end of upstream's answer.

use super::{anthropic_channel, server};
use crate::common::TestServer;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Streams `body` to `/v1/messages` while another connection holds the database's write lock:
/// once `until` has arrived nothing more may (the charge cannot commit); after the lock is let
/// go the stream ends with `message_stop`, and the row was there by then.
async fn final_event_waits_for_the_commit(t: &TestServer, key: &str, body: Value, until: &str) {
    let lock = t.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let req = http::Request::post(t.url("/v1/messages"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = crate::common::client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = resp.into_body();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(until) {
        let frame = body.frame().await.unwrap().unwrap();
        seen.extend_from_slice(frame.data_ref().unwrap());
    }
    // An absence can only be watched for a while: 500 ms, far longer than the final event takes
    // to follow when it does not wait (as relay::done_waits_for_the_charge_to_commit does).
    let more = tokio::time::timeout(Duration::from_millis(500), body.frame()).await;
    assert!(
        more.is_err(),
        "something arrived before the charge committed: {more:?}"
    );
    assert!(!String::from_utf8_lossy(&seen).contains("message_stop"));
    assert!(t.log_rows(&rid).is_empty(), "not committed yet");
    lock.execute_batch("COMMIT").unwrap();
    while let Some(frame) = body.frame().await {
        seen.extend_from_slice(frame.unwrap().data_ref().unwrap());
    }
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    assert_eq!(t.log_rows(&rid).len(), 1);
}

#[tokio::test]
async fn message_stop_waits_for_the_charge_converted_and_passed_through() {
    let (t, key) = server().await;
    t.channel(&["gpt-x"], json!({})).await;
    anthropic_channel(&t, &["claude-x"], json!({})).await;
    let body = |m: &str| {
        json!({"model": m, "max_tokens": 4, "stream": true,
               "messages": [{"role": "user", "content": "hello"}]})
    };
    // Converted: the content ends with its block's stop; message_delta (with the usage) and
    // message_stop are the tail.
    final_event_waits_for_the_commit(&t, &key, body("gpt-x"), "content_block_stop").await;
    // Passed through: upstream's message_delta goes on, its message_stop is held.
    final_event_waits_for_the_commit(&t, &key, body("claude-x"), "message_delta").await;
}

#[tokio::test]
async fn a_converted_stream_whose_client_hangs_up_is_billed_to_the_end() {
    let (t, key) = server().await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "mock-stall-300"}}),
    )
    .await;
    let addr = t.base.trim_start_matches("http://").to_string();
    let body = json!({"model": "gpt-x", "max_tokens": 6, "stream": true,
                      "messages": [{"role": "user", "content": "hello"}]})
    .to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    t.relays_idle().await;
    let (quota, completion, source, content): (i64, i64, String, String) = t
        .db()
        .query_row(
            "SELECT quota, completion_tokens, usage_source, content FROM logs WHERE type = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((quota, completion, source.as_str()), (13, 6, "upstream"));
    assert!(content.contains("disconnected"), "{content}");
    assert_eq!(
        t.mock.completed_streams(),
        1,
        "upstream was read to the end"
    );
}
