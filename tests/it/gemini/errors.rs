//! Gemini's errors: 429 `RESOURCE_EXHAUSTED` and 5xx `UNAVAILABLE` retried on the next channel
//! before any byte; 400 / 404 passed to the client in its own format with Google's message; a
//! tool schema no Gemini request can say refused by sluice with a 400 before anything is sent.

use super::gemini_channel;
use crate::formats::{messages, server};
use serde_json::json;

#[tokio::test]
async fn rate_limits_and_unavailability_move_on_to_the_next_channel() {
    for (bad, stream) in [
        ("g-mock-429", false),
        ("g-mock-503", true),
        ("g-mock-500", false),
    ] {
        let (t, key) = server().await;
        gemini_channel(
            &t,
            &["gem-x"],
            json!({"priority": 10, "model_mapping": {"gem-x": bad}}),
        )
        .await;
        gemini_channel(&t, &["gem-x"], json!({"priority": 0})).await;
        let r = t
            .relay(
                &key,
                "/v1/chat/completions",
                json!({"model": "gem-x", "max_tokens": 2, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{bad}: {}", r.text());
        assert!(r.text().contains(" hello"), "{bad}: {}", r.text());
        let paths: Vec<String> = t.mock.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths.len(), 2, "{bad}: {paths:?}");
        assert!(paths[0].contains(bad), "{paths:?}");
        assert!(paths[1].contains("/models/gem-x:"), "{paths:?}");
    }
}

#[tokio::test]
async fn refusals_reach_the_client_in_its_own_shape() {
    let (t, key) = server().await;
    gemini_channel(
        &t,
        &["bad", "gone"],
        json!({"model_mapping": {"bad": "g-mock-400", "gone": "g-mock-404"}}),
    )
    .await;
    for (model, status, kind) in [
        ("bad", 400, "invalid_request_error"),
        ("gone", 404, "not_found_error"),
    ] {
        let body = json!({"model": model, "max_tokens": 2,
                          "messages": [{"role": "user", "content": "hi"}]});
        let r = t.relay(&key, "/v1/chat/completions", body.clone()).await;
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mock failure"),
            "{v}"
        );
        assert!(v["error"]["type"].is_string(), "OpenAI's shape: {v}");
        let r = messages(&t, &key, body).await;
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mock failure")
        );
        // Refused, not charged.
        assert!(
            t.log_rows(&r.request_id()).iter().all(|row| row.1 == 0),
            "{:?}",
            t.log_rows(&r.request_id())
        );
    }
}

#[tokio::test]
async fn a_schema_gemini_cannot_take_is_refused_before_anything_is_sent() {
    let (t, key) = server().await;
    gemini_channel(&t, &["gem-x"], json!({})).await;
    let tree = json!({"type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"kids": {"type": "array",
            "items": {"$ref": "#/$defs/Node"}}}}}});
    let r = messages(
        &t,
        &key,
        json!({"model": "gem-x", "max_tokens": 2,
               "tools": [{"name": "walk_tree", "input_schema": tree}],
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("walk_tree") && m.contains("refers to itself"),
        "{m}"
    );
    assert_eq!(t.mock.calls(), 0, "nothing went upstream");
}

/// The channel test (an admin's button, the scheduled checks) speaks Gemini to a gemini
/// channel: the key in its header, the route naming the model; a refused key is told.
#[tokio::test]
async fn a_channel_test_speaks_gemini() {
    let (t, _) = server().await;
    let id = gemini_channel(&t, &["gem-x"], json!({})).await;
    let r = t
        .api("POST", &format!("/api/channels/{id}/test"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gem-x:generateContent");
    assert_eq!(
        seen.body,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "generationConfig": {"maxOutputTokens": 1}})
    );
    let bad = gemini_channel(&t, &["gem-y"], json!({"api_key": "goog-mock-key-400"})).await;
    let r = t
        .api("POST", &format!("/api/channels/{bad}/test"), None)
        .await;
    let v = r.json();
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("API key not valid"),
        "{v}"
    );
}
