//! The money race every format pair runs: 40 calls at once against a balance of 1,000, after
//! which every charge has its row, the balance never went negative, and the ledger equals the
//! logs. The caller starts the server and sets up the channel; the client side is a [`Client`].

use crate::common::{TestServer, send};
use bytes::Bytes;
use serde_json::{Value, json};

/// How a client calls: its route, the header its key goes in, its body, and what a whole
/// answer (or a finished stream) contains.
pub struct Client {
    pub route: &'static str,
    /// The key's header: `authorization` (as `Bearer <key>`) or `x-api-key` (the key alone).
    pub key_header: &'static str,
    pub body: Value,
    pub end: &'static str,
}

impl Client {
    /// `POST /v1/chat/completions`, the key as a bearer token.
    pub fn chat(stream: bool) -> Client {
        Client {
            route: "/v1/chat/completions",
            key_header: "authorization",
            body: json!({"model": "m", "max_tokens": 93, "stream": stream,
                         "messages": [{"role": "user", "content": "hello"}]}),
            end: if stream { "[DONE]" } else { "\"usage\"" },
        }
    }

    /// `POST /v1/messages`, the key in `x-api-key`.
    pub fn messages(stream: bool) -> Client {
        Client {
            route: "/v1/messages",
            key_header: "x-api-key",
            body: json!({"model": "m", "max_tokens": 93, "stream": stream,
                         "messages": [{"role": "user", "content": "hello"}]}),
            end: if stream { "message_stop" } else { "\"usage\"" },
        }
    }

    /// `POST /v1/responses`, the key as a bearer token.
    pub fn responses(stream: bool) -> Client {
        Client {
            route: "/v1/responses",
            key_header: "authorization",
            body: json!({"model": "m", "max_output_tokens": 93, "stream": stream,
                         "input": "hello"}),
            end: if stream {
                "response.completed"
            } else {
                "\"usage\""
            },
        }
    }
}

/// Funds user 1 with 1,000, makes an unlimited key, and races 40 calls of `client` at `t`
/// (whose channel serving model `m` the caller has set up); `what` names the pair in failures.
pub async fn race_keeps_the_ledger_equal_to_the_logs(t: &TestServer, client: Client, what: &str) {
    t.fund(1000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let auth = if client.key_header == "authorization" {
        format!("Bearer {key}")
    } else {
        key
    };
    let body = Bytes::from(client.body.to_string());
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(40));
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (url, auth, body, barrier) = (
            t.url(client.route),
            auth.clone(),
            body.clone(),
            barrier.clone(),
        );
        let header = client.key_header;
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = send(
                "POST",
                &url,
                &[(header, &auth), ("content-type", "application/json")],
                Some(body),
            )
            .await;
            (r.status, r.text())
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        let (status, text) = task.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert!(text.contains(client.end), "{what}: {text}");
            }
            429 => refused += 1,
            s => panic!("{what}: status {s}: {text}"),
        }
    }
    t.relays_idle().await;
    let (balance, used) = t.user_balance(1);
    assert!(
        ok >= 1 && refused >= 1,
        "{what}: {ok} ok, {refused} refused"
    );
    assert!(balance >= 0, "{what}");
    assert_eq!(balance + used, 1000, "{what}");
    assert_eq!(
        t.charged(1),
        used,
        "{what}: charges in the log sum to what was taken"
    );
    let rows: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, ok, "{what}: one consume row per answered call");
    assert_eq!(
        t.state.catalog.user_account(1).unwrap().available(),
        balance,
        "{what}"
    );
}
