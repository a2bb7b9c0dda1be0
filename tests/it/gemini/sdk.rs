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
    let venv = target.join("google-genai-venv");
    let req = root().join("tests/gemini_sdk/requirements.txt");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read(&req).unwrap();
    if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
        return venv;
    }
    // Several test binaries may race here: build in a fresh directory, then rename.
    let tmp = target.join(format!("google-genai-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&tmp);
    run(c, Duration::from_secs(120), "python3 -m venv").await;
    let mut c = Command::new(tmp.join("bin/pip"));
    c.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&req);
    run(
        c,
        Duration::from_secs(400),
        "pip install of the pinned google-genai SDK",
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
async fn the_google_genai_sdk_parses_the_mocks_gemini_answers() {
    let venv = venv().await;
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
