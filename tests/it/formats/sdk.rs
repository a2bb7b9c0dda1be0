//! The official Anthropic Python SDK (pinned: tests/sdk/requirements.txt), unchanged, as a
//! client of a real sluice over an openai channel and over an anthropic channel, including
//! `messages.stream()`, which refuses a malformed event sequence.
//!
//! The SDK is installed once into a venv under target/ (re-made when the requirements change),
//! from the package index like tests/schemathesis/run.sh's. Nothing is skipped: a missing
//! python3 or a failed install fails this test with the reason.

use super::{anthropic_channel, server};
use crate::sdk_venv::{python, root, run, venv};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn the_anthropic_python_sdk_works_over_both_channel_kinds() {
    let venv = venv(
        "anthropic-sdk-venv",
        "tests/sdk/requirements.txt",
        "anthropic",
        false,
    )
    .await;
    let (t, key) = server().await;
    t.channel(
        &["gpt-x", "gpt-tools"],
        json!({"model_mapping": {"gpt-tools": "gpt-tools-mock-tools"}}),
    )
    .await;
    anthropic_channel(
        &t,
        &["claude-x", "claude-tools"],
        json!({"model_mapping": {"claude-tools": "claude-tools-mock-think-mock-tools"}}),
    )
    .await;
    let mut c = Command::new(python(&venv));
    c.arg(root().join("tests/sdk/anthropic_client.py"))
        .env("SLUICE_BASE", &t.base)
        .env("SLUICE_KEY", &key)
        .env("SLUICE_MODELS", "gpt-x:gpt-tools,claude-x:claude-tools")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("ANTHROPIC_BASE_URL");
    let out = run(c, Duration::from_secs(120), "the anthropic SDK client").await;
    assert!(out.contains("4 client/channel passes ok"), "{out}");
}
