//! `POST /api/playground/chat/completions`: chat on the signed-in session, charged to the user
//! like a key of theirs with no key limits, cost told to the client.

use crate::common::{ROOT_PASSWORD, TestServer, send};
use serde_json::{Value, json};

/// Signs root in with a cookie: (cookie, csrf).
async fn session(t: &TestServer) -> (String, String) {
    let r = send(
        "POST",
        &t.url("/api/auth/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"username": "root", "password": ROOT_PASSWORD})
                .to_string()
                .into(),
        ),
    )
    .await;
    let cookie = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (cookie, r.json()["csrf_token"].as_str().unwrap().to_string())
}

async fn play(
    t: &TestServer,
    cookie: &str,
    csrf: Option<&str>,
    body: Value,
) -> crate::common::Resp {
    let mut h = vec![("cookie", cookie), ("content-type", "application/json")];
    if let Some(c) = csrf {
        h.push(("x-csrf-token", c));
    }
    send(
        "POST",
        &t.url("/api/playground/chat/completions"),
        &h,
        Some(body.to_string().into()),
    )
    .await
}

fn chat(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5, "stream": stream})
}

#[tokio::test]
async fn playground_charges_the_user_and_tells_the_cost() {
    let t = TestServer::start().await;
    t.channel(&["m"], json!({})).await;
    t.fund(1_000_000).await;
    let (cookie, csrf) = session(&t).await;

    let r = play(&t, &cookie, Some(&csrf), chat(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let usage = &v["usage"];
    let tokens =
        usage["prompt_tokens"].as_i64().unwrap() + usage["completion_tokens"].as_i64().unwrap();
    let quota: i64 = r.headers["x-sluice-quota"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(quota, tokens, "ratio 1 in tests: quota = tokens");
    assert_eq!(
        r.headers["x-sluice-cost"].to_str().unwrap(),
        format!("${:.6}", quota as f64 / 500_000.0).trim_end_matches('0')
    );
    assert!(r.headers.contains_key("x-sluice-ttfb-ms"));
    t.relays_idle().await;
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0, rows[0].1),
        (2, quota),
        "one consume row with the charge"
    );
    let (key_id, key_name): (Option<i64>, String) = t
        .db()
        .query_row(
            "SELECT key_id, key_name FROM logs WHERE request_id = ?1",
            [r.request_id()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((key_id, key_name.as_str()), (None, "playground"));
    assert_eq!(
        t.user_balance(1),
        (1_000_000 - quota, quota),
        "charged to the user"
    );

    // Streamed: the chunks, then one sluice.cost event, then [DONE].
    let r = play(&t, &cookie, Some(&csrf), chat(true)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let cost_at = text.find("event: sluice.cost\ndata: ").expect(&text);
    let done_at = text.find("data: [DONE]").unwrap();
    assert!(
        cost_at < done_at && text[..cost_at].contains("chat.completion.chunk"),
        "{text}"
    );
    let line = text[cost_at..].lines().nth(1).unwrap();
    let cost: Value = serde_json::from_str(line.strip_prefix("data: ").unwrap()).unwrap();
    t.relays_idle().await;
    let rows = t.log_rows(&r.request_id());
    assert_eq!(cost["quota"].as_i64(), Some(rows[0].1));
    assert_eq!(cost["cost"]["currency"], "USD");
    assert_eq!(cost["prompt_tokens"].as_i64(), Some(rows[0].3));
    assert!(cost["ttfb_ms"].is_number() && cost["latency_ms"].is_number());
    assert_eq!(
        t.charged(1),
        1_000_000 - t.user_balance(1).0,
        "ledger = logs"
    );
}

#[tokio::test]
async fn playground_needs_the_csrf_token_and_keeps_user_limits() {
    let t = TestServer::start_with_options(json!({"ratelimit.user_rpm": 1})).await;
    t.channel(&["m"], json!({})).await;
    t.fund(1_000_000).await;
    let (cookie, csrf) = session(&t).await;
    let r = play(&t, &cookie, None, chat(false)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = play(&t, &cookie, Some(&csrf), chat(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = play(&t, &cookie, Some(&csrf), chat(false)).await;
    assert_eq!(
        r.status,
        429,
        "the user's requests-per-minute limit: {}",
        r.text()
    );
    // Without a session at all.
    let r = send(
        "POST",
        &t.url("/api/playground/chat/completions"),
        &[("content-type", "application/json")],
        Some(chat(false).to_string().into()),
    )
    .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn playground_refuses_a_call_the_balance_cannot_cover() {
    let t = TestServer::start().await;
    t.channel(&["m"], json!({})).await;
    t.fund(3).await;
    let (cookie, csrf) = session(&t).await;
    let r = play(&t, &cookie, Some(&csrf), chat(false)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "insufficient_quota");
    assert_eq!(t.user_balance(1).0, 3);
}
