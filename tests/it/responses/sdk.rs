//! The official `openai` Python SDK (pinned: tests/sdk/openai-requirements.txt), unchanged, as
//! a Responses client of a real sluice over a passthrough channel (openai) and converting ones
//! (an openai channel marked chat-only, an anthropic one): `responses.create` streamed and not, and `responses.stream()`, which checks
//! the event sequence.
//!
//! The SDK is installed once into a venv under target/ (re-made when the requirements change)
//! from the package index as pip is set up here (like tests/schemathesis/run.sh's). Nothing is
//! skipped: a missing python3 or a failed install fails this test with the reason.

use super::{anthropic_channel, priced};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to completion within `limit`, off the async threads (killed past the deadline).
async fn run(mut cmd: Command, limit: Duration, what: &str) -> String {
    let what2 = what.to_string();
    let out =
        tokio::task::spawn_blocking(move || crate::child::output_within(&mut cmd, None, limit))
            .await
            .unwrap_or_else(|e| panic!("{what2}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The venv with the pinned SDK, made (or re-made) when its requirements changed.
async fn venv() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let venv = target.join("openai-sdk-venv");
    let req = root().join("tests/sdk/openai-requirements.txt");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read(&req).unwrap();
    if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
        return venv;
    }
    // Several test binaries may race here: build in a fresh directory, then rename.
    let tmp = target.join(format!("openai-sdk-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&tmp);
    run(c, Duration::from_secs(120), "python3 -m venv").await;
    let mut c = Command::new(tmp.join("bin/pip"));
    // Every package is pinned in the file: no resolution, the same set everywhere.
    c.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "-r",
    ])
    .arg(&req);
    run(
        c,
        Duration::from_secs(400),
        "pip install of the pinned openai SDK",
    )
    .await;
    std::fs::write(tmp.join(".requirements"), &wanted).unwrap();
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another binary won the race: use its venv, drop ours.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    venv
}

fn python(venv: &Path) -> PathBuf {
    venv.join("bin/python")
}

#[tokio::test]
async fn the_openai_python_sdk_speaks_responses_through_passthrough_and_conversion() {
    let venv = venv().await;
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
