//! Money across the Responses lanes: a concurrent race per lane (passthrough, conversion),
//! streamed and not, after which the ledger equals the logs and no balance went negative.

use super::anthropic_channel;
use crate::common::{TestServer, send};
use bytes::Bytes;
use serde_json::json;

/// 40 calls at once against a balance of 1,000: every charge has its row, the balance never
/// goes negative, and the ledger equals the logs.
#[tokio::test]
async fn concurrent_races_per_responses_lane_keep_the_ledger_equal_to_the_logs() {
    for (channel_kind, stream) in [
        ("openai", false),
        ("openai", true),
        ("anthropic", false),
        ("anthropic", true),
    ] {
        let t = TestServer::start().await;
        if channel_kind == "anthropic" {
            anthropic_channel(&t, &["m"], json!({})).await;
        } else {
            t.channel(&["m"], json!({})).await;
        }
        t.fund(1000).await;
        let (_, key) = t.key(json!({"unlimited": true})).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(40));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let (key, barrier, url) = (key.clone(), barrier.clone(), t.url("/v1/responses"));
            tasks.push(tokio::spawn(async move {
                let body = json!({"model": "m", "max_output_tokens": 93, "stream": stream,
                                  "input": "hello"});
                barrier.wait().await;
                let auth = format!("Bearer {key}");
                let r = send(
                    "POST",
                    &url,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    Some(Bytes::from(body.to_string())),
                )
                .await;
                (r.status, r.text())
            }));
        }
        let what = format!("responses->{channel_kind} stream={stream}");
        let (mut ok, mut refused) = (0, 0);
        for task in tasks {
            let (status, text) = task.await.unwrap();
            match status {
                200 => {
                    ok += 1;
                    let end = if stream {
                        "response.completed"
                    } else {
                        "\"usage\""
                    };
                    assert!(text.contains(end), "{what}: {text}");
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
}
