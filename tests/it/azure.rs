//! Azure upstreams (issue 14): an `azure` channel sends OpenAI-shaped bodies to Azure's
//! deployment route (or its v1 route) with the `api-key` header, against the mock's Azure
//! mode, which refuses what a real resource refuses.

use crate::common::TestServer;
use serde_json::{Value, json};

/// An azure channel to the mock serving gpt-4o-mini as deployment "chat-dep" and
/// text-embedding-3-small as "emb-dep".
async fn azure_channel(t: &TestServer, extra: Value) -> i64 {
    let mut body = json!({
        "kind": "azure",
        "base_url": t.mock.azure_endpoint(),
        "api_key": "azure-key-0001",
        "model_mapping": {"gpt-4o-mini": "chat-dep", "text-embedding-3-small": "emb-dep"},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.channel(&["gpt-4o-mini", "text-embedding-3-small"], body)
        .await
}

#[tokio::test]
async fn chat_stream_and_embeddings_go_to_the_deployment_route_with_the_api_key_header() {
    let t = TestServer::start().await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let id = azure_channel(&t, json!({})).await;
    let c = t.get(&format!("/api/channels/{id}")).await;
    assert_eq!(c["kind"], "azure");
    assert_eq!(c["settings"], json!({}), "defaults are not stored: {c}");

    // Non-stream chat.
    let r = t.chat(&key, "gpt-4o-mini", 3, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "hello hello hello"
    );
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/openai/deployments/chat-dep/chat/completions");
    assert_eq!(seen.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(seen.api_key.as_deref(), Some("azure-key-0001"));
    assert_eq!(seen.authorization, None, "Azure's key goes in api-key only");
    assert_eq!(seen.body["model"], "chat-dep");
    // Billed from the usage Azure reported: 7 prompt + 3 completion.
    let rows = t.log_rows(&r.request_id());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].3, rows[0].4), (7, 3), "{rows:?}");
    assert!(rows[0].1 > 0, "{rows:?}");
    assert_eq!(rows[0].5.as_deref(), Some("upstream"));

    // Stream: usage asked of Azure, hidden from a client that did not ask, billed.
    let r = t.chat(&key, "gpt-4o-mini", 4, true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(
        !text.contains("\"prompt_tokens\""),
        "usage chunk hidden: {text}"
    );
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.body["stream_options"]["include_usage"], true);
    assert_eq!(seen.path, "/openai/deployments/chat-dep/chat/completions");
    let rows = t.log_rows(&r.request_id());
    assert_eq!((rows[0].3, rows[0].4), (7, 4), "{rows:?}");
    assert_eq!(rows[0].5.as_deref(), Some("upstream"));
    // A client that asks for usage gets Azure's usage chunk.
    let r = t
        .relay(
            &key,
            "/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}],
                   "max_tokens": 2, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    assert!(r.text().contains("\"prompt_tokens\":7"), "{}", r.text());

    // Embeddings.
    let r = t
        .relay(
            &key,
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "one two three"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/openai/deployments/emb-dep/embeddings");
    assert_eq!(seen.query.as_deref(), Some("api-version=2024-10-21"));
    let rows = t.log_rows(&r.request_id());
    assert_eq!((rows[0].3, rows[0].5.as_deref()), (3, Some("upstream")));

    // A model with no mapping: its own name is the deployment.
    t.patch(
        &format!("/api/channels/{id}"),
        json!({"model_mapping": {}, "settings": {"api_version": "2025-04-01-preview"}}),
    )
    .await;
    let r = t.chat(&key, "gpt-4o-mini", 1, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(
        seen.path,
        "/openai/deployments/gpt-4o-mini/chat/completions"
    );
    assert_eq!(
        seen.query.as_deref(),
        Some("api-version=2025-04-01-preview")
    );

    // A channel test goes the same way.
    let v = t.post(&format!("/api/channels/{id}/test"), json!({})).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        t.mock.last_request().unwrap().api_key.as_deref(),
        Some("azure-key-0001")
    );
}

#[tokio::test]
async fn the_v1_route_takes_no_api_version_and_names_the_deployment_in_the_body() {
    let t = TestServer::start().await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    azure_channel(&t, json!({"settings": {"azure_route": "v1"}})).await;
    let r = t.chat(&key, "gpt-4o-mini", 2, true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = t.mock.last_request().unwrap();
    assert_eq!(seen.path, "/openai/v1/chat/completions");
    assert_eq!(seen.query, None);
    assert_eq!(seen.body["model"], "chat-dep");
    assert_eq!(seen.api_key.as_deref(), Some("azure-key-0001"));
    let rows = t.log_rows(&r.request_id());
    assert_eq!((rows[0].3, rows[0].4), (7, 2), "{rows:?}");
}

#[tokio::test]
async fn settings_are_typed_and_checked_against_the_kind() {
    let t = TestServer::start().await;
    let base = json!({"name": "a", "base_url": t.mock.azure_endpoint(), "api_key": "k-0001",
                      "models": ["m"]});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, words) in [
        (
            json!({"settings": {"api_version": "2024-10-21"}}),
            "azure channels only",
        ),
        (
            json!({"kind": "azure", "settings": {"api_version": "2024-10-21&x=y"}}),
            "not an API version",
        ),
        (
            json!({"kind": "azure", "settings": {"azure_route": "v1", "api_version": "2024-10-21"}}),
            "not used by the v1 route",
        ),
        (
            json!({"kind": "azure", "settings": {"azure_route": "v2"}}),
            "v2",
        ),
        (
            json!({"kind": "azure", "settings": {"region": "x"}}),
            "region",
        ),
        (json!({"kind": "azure", "settings": null}), "null"),
        (json!({"kind": "azure", "settings": [null, null]}), "a map"),
        (
            json!({"kind": "azure", "settings": ["2024-10-21"]}),
            "a map",
        ),
    ] {
        let r = t
            .api("POST", "/api/channels", Some(with(extra.clone())))
            .await;
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
        let m = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(m.contains(words), "{extra}: {m}");
    }
    let r = t
        .api(
            "POST",
            "/api/channels",
            Some(with(
                json!({"kind": "azure", "settings": {"api_version": "2025-04-01-preview"}}),
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["settings"]["api_version"], "2025-04-01-preview");
    // Turning the channel into an openai one needs its azure settings cleared.
    let id = r.json()["id"].as_i64().unwrap();
    let r = t
        .api(
            "PATCH",
            &format!("/api/channels/{id}"),
            Some(json!({"kind": "openai"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = t
        .api(
            "PATCH",
            &format!("/api/channels/{id}"),
            Some(json!({"kind": "openai", "settings": {}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn the_mock_refuses_what_azure_refuses() {
    let t = TestServer::start().await;
    let url = |p: &str| format!("{}{p}", t.mock.azure_endpoint());
    let body = Some(bytes::Bytes::from(
        json!({"messages": [{"role": "user", "content": "hi"}]}).to_string(),
    ));
    let ct = ("content-type", "application/json");
    // No api-version on the deployments route: Azure's 404.
    let r = crate::common::send(
        "POST",
        &url("/openai/deployments/d/chat/completions"),
        &[ct, ("api-key", "k")],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["message"], "Resource not found");
    // A bearer token is not Azure's key.
    let r = crate::common::send(
        "POST",
        &url("/openai/deployments/d/chat/completions?api-version=2024-10-21"),
        &[ct, ("authorization", "Bearer k")],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = crate::common::send(
        "POST",
        &url("/openai/deployments/d/chat/completions?api-version=2024-10-21"),
        &[ct, ("api-key", "k")],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "d", "the deployment picks the model");
}
