//! Stopping the real binary: one grace period, in-flight calls answered, new ones refused,
//! idle connections closed at once, streams longer than the grace cut, billed and logged.

use crate::common::{client, send};
use crate::process::{Proc, admin_token, api, set_up, spawn_with_env};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use sluice::mock::MockUpstream;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A streamed chat answer being read: its request id and, once it ends, everything received.
struct Stream {
    rid: String,
    rest: tokio::task::JoinHandle<String>,
}

/// Starts a streamed chat and returns once its first event has arrived.
async fn open_stream(base: &str, key: &str, model: &str, max_tokens: u64) -> Stream {
    let body = json!({"model": model, "stream": true, "max_tokens": max_tokens,
                      "messages": [{"role": "user", "content": "hello"}]});
    let req = http::Request::post(format!("{base}/v1/chat/completions"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = resp.into_body();
    let mut text = String::new();
    while !text.contains("data: ") {
        let frame = body.frame().await.expect("the stream ended early").unwrap();
        if let Some(d) = frame.data_ref() {
            text.push_str(std::str::from_utf8(d).unwrap());
        }
    }
    let rest = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        text.push_str(std::str::from_utf8(d).unwrap());
                    }
                }
                Err(e) => {
                    text.push_str(&format!("\n<connection error: {e}>"));
                    break;
                }
            }
        }
        text
    });
    Stream { rid, rest }
}

async fn chat(base: &str, key: &str, model: &str) -> crate::common::Resp {
    send(
        "POST",
        &format!("{base}/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"model": model, "max_tokens": 3,
                   "messages": [{"role": "user", "content": "hello"}]})
            .to_string()
            .into(),
        ),
    )
    .await
}

/// An HTTP/1.1 keep-alive connection that has had one answer and now sits idle.
async fn idle_keep_alive(base: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: sluice\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("{\"status\":\"ok\"}") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// Sends SIGTERM and waits until the server has begun to drain.
fn terminate(p: &Proc) -> Instant {
    let sent = Instant::now();
    p.signal("-TERM");
    p.wait_output("shutting down:", Duration::from_secs(10));
    sent
}

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("sluice.db")).unwrap()
}

/// (type, status, prompt, completion, quota, content) of a request's rows.
fn rows(dir: &std::path::Path, rid: &str) -> Vec<(i64, i64, i64, i64, i64, String)> {
    db(dir)
        .prepare("SELECT type, COALESCE(status, 0), prompt_tokens, completion_tokens, quota, COALESCE(content, '') FROM logs WHERE request_id = ?1")
        .unwrap()
        .query_map([rid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every charge has its row and every row its charge: the balance moved by the rows' sum.
fn assert_ledger_matches_logs(dir: &std::path::Path, funded: i64) {
    let (quota, used, sum): (i64, i64, i64) = db(dir)
        .query_row(
            "SELECT quota, used_quota, (SELECT COALESCE(SUM(quota), 0) FROM logs WHERE type = 2 AND user_id = 1) FROM users WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((used, quota + used), (sum, funded), "ledger = logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_calls_in_flight_refuses_new_ones_and_reports_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let mut p = spawn_with_env(dir.path(), &[("SLUICE_SHUTDOWN_GRACE_SECS", "20")]);
    let (token, _) = admin_token(&p.base).await;
    let key = set_up(&p.base, &token, &mock, "k", &["gpt-x", "mock-slow-1500"]).await;
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let (base, key) = (p.base.clone(), key.clone());
            tokio::spawn(async move { chat(&base, &key, "mock-slow-1500").await })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(10), mock.wait_for_calls(3))
        .await
        .expect("the calls reached the mock");
    let idle = idle_keep_alive(&p.base).await;

    let sent = terminate(&p);
    // Not ready, and new calls refused, while the calls in flight go on.
    let r = send("GET", &format!("{}/readyz", p.base), &[], None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["draining"], true);
    assert_eq!(
        send("GET", &format!("{}/healthz", p.base), &[], None)
            .await
            .status,
        200
    );
    let r = chat(&p.base, &key, "gpt-x").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "shutting_down");
    assert_eq!(mock.calls(), 3, "a refused call reached the upstream");
    // The idle keep-alive connection was closed when the drain began, not kept to the end.
    let mut idle = idle;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(1), idle.read(&mut buf))
        .await
        .expect("the idle connection is still open")
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection got data instead of a close");

    let mut answered = Vec::new();
    for c in in_flight {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        answered.push(r.request_id());
    }
    assert_eq!(p.wait(), 0, "{}", p.output());
    // Done as soon as the calls were: the 20 s grace is an upper bound, not a wait.
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "{:?}",
        sent.elapsed()
    );
    for rid in answered {
        let r = rows(dir.path(), &rid);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].0, r[0].1, r[0].3), (2, 200, 3), "{r:?}");
    }
    assert_ledger_matches_logs(dir.path(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_longer_than_the_grace_are_cut_charged_for_what_they_sent_and_logged() {
    const GRACE: u64 = 3;
    const STREAMS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let mut p = spawn_with_env(
        dir.path(),
        &[("SLUICE_SHUTDOWN_GRACE_SECS", &GRACE.to_string())],
    );
    let (token, _) = admin_token(&p.base).await;
    // 100 words, one every 100 ms: a 10 s stream.
    let model = "mock-drip-100";
    let key = set_up(&p.base, &token, &mock, "k", &[model]).await;
    api(
        &p.base,
        &token,
        "PATCH",
        "/api/users/1",
        json!({"quota": 100_000}),
    )
    .await;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        streams.push(open_stream(&p.base, &key, model, 100).await);
    }

    let sent = terminate(&p);
    let code = p.wait_within(Duration::from_secs(GRACE + 10));
    let took = sent.elapsed();
    eprintln!("exit {took:?} after SIGTERM, grace {GRACE} s, {STREAMS} streams of 10 s");
    assert_eq!(code, 0, "{}", p.output());
    // One grace period (not two), then the cut: well before the streams would have ended.
    assert!(
        took >= Duration::from_secs(GRACE) && took < Duration::from_secs(GRACE + 3),
        "exit {took:?} after SIGTERM with a grace of {GRACE} s"
    );
    assert!(
        p.output().contains(&format!(
            "shutdown grace of {GRACE} s is over: cutting {STREAMS} relays"
        )),
        "{}",
        p.output()
    );

    for s in streams {
        let text = s.rest.await.unwrap();
        let last = text
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.starts_with("data: {\"error\"") && last.contains("shutting_down"),
            "{}: the stream did not end with the shutdown's error event: {last}",
            s.rid
        );
        assert!(!text.contains("[DONE]"), "{text}");
        let words = text.matches("hello").count() as i64;
        assert!(words > 5 && words < 100, "{words} words before the cut");
        let r = rows(dir.path(), &s.rid);
        assert_eq!(r.len(), 1, "one row per stream: {r:?}");
        let (kind, status, prompt, completion, quota, note) = r[0].clone();
        assert_eq!((kind, status), (2, 503), "{r:?}");
        assert!(note.contains("cut by shutdown"), "{note}");
        // Charged exactly for the words the client got (the mock's words are one token each).
        assert_eq!(completion, words, "{}: {r:?}", s.rid);
        assert_eq!(quota, prompt + completion);
    }
    assert_ledger_matches_logs(dir.path(), 100_000);
    let ok: String = db(dir.path())
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
