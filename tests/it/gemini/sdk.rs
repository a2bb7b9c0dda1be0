//! The official `google-genai` Python SDK (pinned: tests/gemini_sdk/requirements.txt),
//! unchanged, calling the mock's gemini mode: `generate_content` and
//! `generate_content_stream` must parse its text, thoughts, function calls, usage, blocked
//! prompts and errors. No client route speaks Gemini, so the SDK proves the mock true to
//! Gemini, which the conversion tests then rely on.
//!
//! The SDK is installed once into a venv under target/ (re-made when the requirements change)
//! from the package index, as tests/schemathesis/run.sh does. Nothing is skipped: a missing
//! python3 or a failed install fails this test with the reason.

use crate::common::TestServer;
use crate::sdk_venv::{python, root, run, venv};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn the_google_genai_sdk_parses_the_mocks_gemini_answers() {
    let venv = venv(
        "google-genai-venv",
        "tests/gemini_sdk/requirements.txt",
        "google-genai",
        false,
    )
    .await;
    let t = TestServer::start().await;
    let mut c = Command::new(python(&venv));
    c.arg(root().join("tests/gemini_sdk/client.py"))
        .env("GEMINI_MOCK", format!("http://{}", t.mock.addr()))
        .env("GEMINI_KEY", "goog-sdk-key")
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("GOOGLE_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GOOGLE_GENAI_USE_VERTEXAI")
        .env_remove("GOOGLE_GENAI_API_VERSION");
    let out = run(c, Duration::from_secs(120), "the google-genai SDK client").await;
    assert!(out.contains("6 google-genai checks ok"), "{out}");
    // What the SDK sent: Gemini's route, the key in its header, never in the URL.
    let reqs = t.mock.requests();
    assert!(
        reqs.iter()
            .any(|r| r.path == "/v1beta/models/gem-plain:generateContent")
    );
    assert!(
        reqs.iter()
            .any(|r| r.path == "/v1beta/models/gem-plain:streamGenerateContent?alt=sse")
    );
    assert!(reqs.iter().all(|r| {
        r.anthropic
            .contains(&("x-goog-api-key".into(), "goog-sdk-key".into()))
    }));
}
