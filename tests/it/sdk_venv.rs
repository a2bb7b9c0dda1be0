//! The official SDKs' venvs, shared by the tests that run an SDK unchanged as a client
//! (formats/sdk.rs: anthropic; responses/sdk.rs: openai; gemini/sdk.rs: google-genai).
//!
//! Each SDK is installed once into a venv under target/, re-made when its pinned requirements
//! file changes, from the package index like tests/schemathesis/run.sh's. Nothing is skipped:
//! a missing python3 or a failed install fails the test with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to completion within `limit`, off the async threads (the child is waited on by
/// `child::output_within`, killed past the deadline); fails the test with its output otherwise.
pub async fn run(mut cmd: Command, limit: Duration, what: &str) -> String {
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

/// The venv `target/<name>` with the packages pinned in `requirements` (a path from the
/// repository root), made (or re-made) when that file changed. `sdk` names it in failures.
/// `every_package_pinned`: the file pins the whole set, so pip installs it without resolving.
pub async fn venv(
    name: &str,
    requirements: &str,
    sdk: &str,
    every_package_pinned: bool,
) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let venv = target.join(name);
    let req = root().join(requirements);
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read(&req).unwrap();
    if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
        return venv;
    }
    // Several test binaries may race here: build in a fresh directory, then rename.
    let tmp = target.join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&tmp);
    run(c, Duration::from_secs(120), "python3 -m venv").await;
    let mut c = Command::new(tmp.join("bin/pip"));
    c.args(["install", "--quiet", "--disable-pip-version-check"]);
    if every_package_pinned {
        c.arg("--no-deps");
    }
    c.arg("-r").arg(&req);
    run(
        c,
        Duration::from_secs(400),
        &format!("pip install of the pinned {sdk} SDK"),
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

pub fn python(venv: &Path) -> PathBuf {
    venv.join("bin/python")
}
