//! A model no channel serves is a 404 `model_not_found` (as OpenAI answers), decided before
//! the price is looked up; a model a channel serves but no price covers stays the operator's
//! 403 (issue 14).

use crate::common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_model_no_channel_serves_is_404_model_not_found_before_pricing() {
    // The shipped default: unpriced models refused (the test harness allows them otherwise).
    let t = TestServer::start_with_options(json!({"pricing.allow_unpriced_models": false})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // Unpriced models are refused by default: the old order answered 403 "no price set" here.
    let r = t.chat(&key, "no-such-model", 1, false).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], "model_not_found");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-model"),
        "{e}"
    );
    // The same for embeddings and a stream (the answer comes before any stream starts).
    let r = t
        .relay(
            &key,
            "/v1/embeddings",
            json!({"model": "no-such-embedder", "input": "x"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let r = t.chat(&key, "no-such-model", 1, true).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A channel in another group only: still not served for this caller.
    t.channel(&["vip-only"], json!({"groups": ["vip"]})).await;
    let r = t.chat(&key, "vip-only", 1, false).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Served but priced by nobody: the operator's configuration is at fault, 403 as before.
    t.channel(&["served-unpriced"], json!({})).await;
    let r = t.chat(&key, "served-unpriced", 1, false).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "forbidden");
    assert!(r.text().contains("no price set"), "{}", r.text());
    assert_eq!(t.mock.calls(), 0, "nothing went upstream");
}
