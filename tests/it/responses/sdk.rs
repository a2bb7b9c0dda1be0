//! The official `openai` Python SDK (pinned: tests/sdk/openai-requirements.txt), unchanged, as
//! a Responses client of a real sluice over a passthrough channel (openai) and converting ones
//! (an openai channel marked chat-only, an anthropic one): `responses.create` streamed and not, and `responses.stream()`, which checks
//! the event sequence.
//!
//! The SDK is installed once into a venv under target/ (re-made when the requirements change)
//! from the package index as pip is set up here (like tests/schemathesis/run.sh's). Nothing is
//! skipped: a missing python3 or a failed install fails this test with the reason.

use super::{anthropic_channel, priced};
use crate::sdk_venv::{python, root, run, venv};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn the_openai_python_sdk_speaks_responses_through_passthrough_and_conversion() {
    let venv = venv(
        "openai-sdk-venv",
        "tests/sdk/openai-requirements.txt",
        "openai",
        true,
    )
    .await;
    let (t, key) = priced().await;
    t.channel(
        &["gpt-x", "gpt-tools"],
        json!({"model_mapping": {"gpt-tools": "gpt-tools-mock-think-mock-tools"}}),
    )
    .await;
    t.channel(
        &["gpt-chat", "gpt-chat-tools"],
        json!({"settings": {"responses_api": false},
            "model_mapping": {"gpt-chat-tools": "gpt-chat-tools-mock-think-mock-tools"}}),
    )
    .await;
    anthropic_channel(
        &t,
        &["claude-x", "claude-tools"],
        json!({"model_mapping": {"claude-tools": "claude-tools-mock-think-mock-tools"}}),
    )
    .await;
    let mut c = Command::new(python(&venv));
    c.arg(root().join("tests/sdk/openai_responses_client.py"))
        .env("SLUICE_BASE", &t.base)
        .env("SLUICE_KEY", &key)
        .env(
            "SLUICE_MODELS",
            "gpt-x:gpt-tools,gpt-chat:gpt-chat-tools,claude-x:claude-tools",
        )
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_ORG_ID");
    let out = run(
        c,
        Duration::from_secs(120),
        "the openai SDK Responses client",
    )
    .await;
    assert!(out.contains("3 channel passes ok"), "{out}");
    // Every lane was used: the passthrough's /v1/responses, the conversions' chat/completions
    // and /v1/messages.
    let paths: Vec<String> = t.mock.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.iter().any(|p| p == "/v1/responses"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "/v1/messages"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p == "/v1/chat/completions"),
        "{paths:?}"
    );
}
