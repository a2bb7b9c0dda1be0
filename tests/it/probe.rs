//! `sluice probe` against a real sluice (in-process) in front of the mock upstream.

use crate::common::TestServer;
use serde_json::{Value, json};
use sluice::probe::{ProbeArgs, run};

/// A server with a channel for `models`, funded, and an unlimited key.
async fn setup(models: &[&str]) -> (TestServer, String) {
    let t = TestServer::start().await;
    t.channel(models, json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    (t, key)
}

async fn probe(args: &ProbeArgs) -> (i32, String) {
    let mut buf = Vec::new();
    let code = run(args, &mut buf).await;
    (code, String::from_utf8(buf).unwrap())
}

#[tokio::test]
async fn five_requests_all_ok() {
    let (t, key) = setup(&["gpt-4o-mini"]).await;
    let mut a = ProbeArgs::new(format!("{}/", t.base), key);
    a.requests = 5;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 sent, 5 ok, 0 failed"), "{out}");
    assert!(out.contains("p50 "), "{out}");
    assert!(out.contains("mean "), "{out}");
    for i in 1..=5 {
        assert!(out.contains(&format!("#{i}  200")), "line {i}: {out}");
    }
    assert!(!out.contains("ttft"), "no TTFT without --stream: {out}");
    // what reached upstream: the probe's body, with the gateway's key
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.body["model"], "gpt-4o-mini");
    assert_eq!(seen.body["max_tokens"], 1);
    assert_eq!(seen.body["messages"][0]["content"], "ping");
}

#[tokio::test]
async fn stream_reports_time_to_first_token() {
    let (t, key) = setup(&["gpt-4o-mini"]).await;
    let mut a = ProbeArgs::new(format!("{}/v1", t.base), key);
    a.requests = 3;
    a.stream = true;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 sent, 3 ok"), "{out}");
    assert!(out.contains("ttft      mean "), "{out}");
    assert!(out.contains("over 3 streams"), "{out}");
    assert_eq!(
        out.matches("  ttft ").count(),
        3,
        "a TTFT per request: {out}"
    );
    assert_eq!(t.mock.last_request().unwrap().body["stream"], true);

    // the same as JSON: TTFT no later than the total
    a.json = true;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ttft_ms"]["count"], 3);
    for r in v["results"].as_array().unwrap() {
        let (ttft, total) = (r["ttft_ms"].as_f64().unwrap(), r["ms"].as_f64().unwrap());
        assert!(ttft > 0.0 && ttft <= total, "{r}");
    }
}

#[tokio::test]
async fn a_bad_key_fails_with_401() {
    let (t, _key) = setup(&["gpt-4o-mini"]).await;
    let mut a = ProbeArgs::new(t.base.clone(), "sk-not-a-real-key");
    a.requests = 3;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("3 sent, 0 ok, 3 failed"), "{out}");
    assert!(out.contains("status 401: 3"), "{out}");
    assert!(out.contains("no successful requests"), "{out}");
    assert!(t.mock.last_request().is_none(), "nothing reached upstream");
}

#[tokio::test]
async fn upstream_500_is_a_502_failure() {
    let (t, key) = setup(&["gpt-4o-mini"]).await;
    t.channel(&["mock-500"], json!({})).await;
    let mut a = ProbeArgs::new(t.base.clone(), key);
    a.requests = 2;
    a.model = "mock-500".into();
    let (code, out) = probe(&a).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("status 502: 2"), "{out}");
    assert!(out.contains("#1  502"), "{out}");

    a.json = true;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failures"]["by_status"]["502"], 2, "{v}");
    assert_eq!(v["results"][0]["status"], 502);
    assert_eq!(v["results"][0]["ok"], false);
    assert!(v["results"][0]["message"].is_string(), "{v}");
}

#[tokio::test]
async fn json_has_the_documented_fields() {
    let (t, key) = setup(&["gpt-4o-mini"]).await;
    let mut a = ProbeArgs::new(t.base.clone(), key);
    a.requests = 4;
    a.json = true;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["url"], format!("{}/v1/chat/completions", t.base));
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["stream"], false);
    assert_eq!(v["requests"], 4);
    assert_eq!(v["concurrency"], 1);
    assert_eq!(v["timeout_secs"], 60.0);
    assert_eq!((v["count"].as_u64(), v["ok"].as_u64()), (Some(4), Some(4)));
    assert_eq!(v["failed"], 0);
    assert_eq!(v["failures"], json!({"by_status": {}, "by_error": {}}));
    for f in ["count", "mean", "stddev", "min", "p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][f].is_number(), "latency_ms.{f}: {v}");
    }
    assert_eq!(v["ttft_ms"], Value::Null);
    assert!(v["wall_ms"].as_f64().unwrap() > 0.0);
    assert!(v["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(v["exit_code"], 0);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i + 1);
        assert_eq!(r["status"], 200);
        assert!(r["ms"].as_f64().unwrap() > 0.0);
        assert_eq!(r["ok"], true);
        assert_eq!(r["error"], Value::Null);
        assert_eq!(r["ttft_ms"], Value::Null);
    }
}

#[tokio::test]
async fn concurrency_4_with_8_requests() {
    let (t, key) = setup(&["mock-slow-200"]).await;
    let mut a = ProbeArgs::new(t.base.clone(), key);
    a.requests = 8;
    a.concurrency = 4;
    a.model = "mock-slow-200".into();
    a.json = true;
    let started = std::time::Instant::now();
    let (code, out) = probe(&a).await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["concurrency"], 4);
    let idx: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, (1..=8).collect::<Vec<_>>());
    assert_eq!(v["ok"], 8);
    // 8 requests of ≥200 ms, 4 at a time: about 2 rounds (~400 ms), far less than 8 in a row (1.6 s)
    assert!(v["latency_ms"]["min"].as_f64().unwrap() >= 200.0, "{v}");
    assert!(
        took < std::time::Duration::from_millis(1_200),
        "not concurrent: {took:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let (t, key) = setup(&["mock-slow-1500"]).await;
    let mut a = ProbeArgs::new(t.base.clone(), key);
    a.requests = 1;
    a.model = "mock-slow-1500".into();
    a.timeout = 0.3;
    let (code, out) = probe(&a).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("timeout: 1"), "{out}");
    t.relays_idle().await;
}
