//! The official `openai` Python SDK's `AzureOpenAI` client (pinned in
//! tests/azure_sdk/requirements.txt, unchanged) against the mock's Azure mode: the mock
//! accepts what the SDK sends (so it is true to Azure), and sluice's azure channel sends the
//! same route, query, key header and body fields to the same mock.
//!
//! The venv is built by tests/azure_sdk/venv.sh on first use (pip, from the package index).

use crate::child::output_within;
use crate::common::TestServer;
use serde_json::{Value, json};
use sluice::mock::RecordedRequest;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, building the venv when its requirements changed.
fn python() -> String {
    let out = output_within(
        Command::new(root().join("tests/azure_sdk/venv.sh")).current_dir(root()),
        None,
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "building the SDK venv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// What one call looked like at the mock, minus what differs by design (the key's value,
/// the SDK's own headers): route, query, whether the key came in `api-key` and not as a
/// bearer, and the body's fields.
fn shape(r: &RecordedRequest) -> Value {
    let mut fields: Vec<&String> = r
        .body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    fields.sort();
    json!({
        "method": r.method,
        "fields": fields,
        "path": r.path,
        "query": r.query,
        "api_key_header": r.api_key.is_some(),
        "bearer": r.authorization.is_some(),
        "stream": r.body.get("stream"),
        "include_usage": r.body.pointer("/stream_options/include_usage"),
    })
}

#[tokio::test]
async fn azure_openai_sdk_and_sluice_send_the_same_requests_to_the_mock() {
    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let t = TestServer::start().await;

    // 1. The SDK straight to the mock: every call accepted.
    let endpoint = t.mock.azure_endpoint();
    let script = root().join("tests/azure_sdk/client.py");
    let out = tokio::task::spawn_blocking(move || {
        output_within(
            Command::new(py).arg(script).args([
                endpoint.as_str(),
                "sdk-key-00000001",
                "2024-10-21",
                "chat-dep",
                "emb-dep",
            ]),
            None,
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "AzureOpenAI against the mock failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["whole"], "hello hello hello", "{read}");
    assert_eq!(read["whole_usage"]["prompt_tokens"], 7);
    assert_eq!(read["stream"], "hello hello hello hello");
    assert_eq!(read["stream_usage"]["completion_tokens"], 4, "{read}");
    assert_eq!(read["embedding_len"], 8);
    assert_eq!(read["embedding_usage"], 3);
    let sdk = t.mock.requests();
    assert_eq!(sdk.len(), 3, "{sdk:?}");
    // What Azure takes, as the SDK sends it: the deployment route with api-version, the key in
    // api-key and no bearer.
    assert_eq!(sdk[0].path, "/openai/deployments/chat-dep/chat/completions");
    assert_eq!(sdk[2].path, "/openai/deployments/emb-dep/embeddings");
    assert!(
        sdk.iter()
            .all(|r| r.query.as_deref() == Some("api-version=2024-10-21"))
    );
    assert!(sdk.iter().all(|r| r.authorization.is_none()));
    assert!(
        sdk.iter()
            .all(|r| r.api_key.as_deref() == Some("sdk-key-00000001"))
    );

    // 2. sluice through an azure channel to the same mock, the same three calls.
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    t.channel(
        &["gpt-4o-mini", "text-embedding-3-small"],
        json!({"kind": "azure", "base_url": t.mock.azure_endpoint(), "api_key": "sluice-key-0001",
               "model_mapping": {"gpt-4o-mini": "chat-dep", "text-embedding-3-small": "emb-dep"},
               "settings": {"api_version": "2024-10-21"}}),
    )
    .await;
    // The SDK's own bodies, with sluice's model names: the same client body must reach Azure
    // in the same shape through sluice.
    for (sent, path, model) in [
        (&sdk[0], "/v1/chat/completions", "gpt-4o-mini"),
        (&sdk[1], "/v1/chat/completions", "gpt-4o-mini"),
        (&sdk[2], "/v1/embeddings", "text-embedding-3-small"),
    ] {
        let mut body = sent.body.clone();
        body["model"] = json!(model);
        let r = t.relay(&key, path, body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let all = t.mock.requests();
    let ours = &all[3..];
    assert_eq!(ours.len(), 3);
    for (s, o) in sdk.iter().zip(ours) {
        assert_eq!(shape(s), shape(o), "SDK vs sluice");
        assert_eq!(o.api_key.as_deref(), Some("sluice-key-0001"));
    }
    // A client that did not ask for usage: sluice asks Azure for it just as the SDK does.
    let r = t.chat(&key, "gpt-4o-mini", 2, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        shape(&t.mock.last_request().unwrap())["include_usage"],
        shape(&sdk[1])["include_usage"]
    );
}
