//! The real binary as an operator runs it: crash safety, clean shutdown, secrets kept out of logs.

use crate::common::send;
use bytes::Bytes;
use serde_json::{Value, json};
use sluice::mock::MockUpstream;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub(crate) const PASSWORD: &str = "process-test-root-pw";

/// A running `sluice serve` with its output captured.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) base: String,
    output: Arc<(Mutex<String>, Condvar)>,
}

pub(crate) fn spawn(dir: &std::path::Path) -> Proc {
    spawn_with_env(dir, &[])
}

/// [`spawn`] with extra environment variables (applied last, so they can override).
pub(crate) fn spawn_with_env(dir: &std::path::Path, env: &[(&str, &str)]) -> Proc {
    spawn_via(dir, env, &[])
}

/// `sluice serve --listen 127.0.0.1:0 --data-dir DIR`, started through `wrapper` when one is
/// given (a program and its arguments that end by exec-ing the rest of the command line, e.g.
/// `sh -c 'umask 000; exec "$0" "$@"'`), with its output captured; returns once it listens.
pub(crate) fn spawn_via(dir: &std::path::Path, env: &[(&str, &str)], wrapper: &[&str]) -> Proc {
    let bin = env!("CARGO_BIN_EXE_sluice");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SLUICE_ROOT_PASSWORD", PASSWORD)
        .env("SLUICE_DEBUG", "true")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new((Mutex::new(String::new()), Condvar::new()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (out, tx) = (output.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
                let mut o = out.0.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
                out.1.notify_all();
            }
        });
    }
    let base = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(b) => b,
        Err(_) => {
            let _ = child.kill();
            let _ = crate::child::wait_within(&mut child, crate::child::EXIT_WITHIN);
            panic!("sluice did not start:\n{}", output.0.lock().unwrap());
        }
    };
    Proc {
        child,
        base,
        output,
    }
}

/// A test that fails half-way must not leave its server running.
impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = crate::child::wait_within(&mut self.child, crate::child::EXIT_WITHIN);
        }
    }
}

impl Proc {
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    /// Waits (bounded by [`crate::child::EXIT_WITHIN`]) for the process to exit; a stop that
    /// hangs fails the test with the process's output instead of hanging CI.
    pub(crate) fn wait(&mut self) -> i32 {
        self.wait_within(crate::child::EXIT_WITHIN)
    }
    pub(crate) fn wait_within(&mut self, within: Duration) -> i32 {
        match crate::child::wait_within(&mut self.child, within) {
            Ok(s) => s.code().unwrap_or(-1),
            Err(e) => panic!(
                "sluice did not exit within {:?}; killed. Output:\n{}",
                e.0,
                self.output()
            ),
        }
    }
    pub(crate) fn output(&self) -> String {
        self.output.0.lock().unwrap().clone()
    }
    /// Waits until the output contains `needle` (woken by each new line); fails the test
    /// after `within`. Blocking: call it from a multi-threaded runtime or a blocking task.
    pub(crate) fn wait_output(&self, needle: &str, within: Duration) {
        let (lock, cv) = &*self.output;
        let guard = lock.lock().unwrap();
        let (guard, t) = cv
            .wait_timeout_while(guard, within, |o| !o.contains(needle))
            .unwrap();
        assert!(
            !t.timed_out(),
            "no {needle:?} in the output within {within:?}:\n{}",
            *guard
        );
    }
}

pub(crate) async fn api(base: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let r = send(
        method,
        &format!("{base}{path}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(Bytes::from(body.to_string())),
    )
    .await;
    assert!(r.status < 300, "{method} {path}: {}", r.text());
    r.json()
}

pub(crate) async fn admin_token(base: &str) -> (String, String) {
    crate::common::sign_in(base, "root", PASSWORD).await
}

/// Allows unpriced models, adds a channel to `mock` serving `models` with `secret`, gives root
/// 1000 quota and returns an unlimited API key.
pub(crate) async fn set_up(
    base: &str,
    token: &str,
    mock: &MockUpstream,
    secret: &str,
    models: &[&str],
) -> String {
    api(
        base,
        token,
        "PUT",
        "/api/option",
        json!({"pricing.allow_unpriced_models": true}),
    )
    .await;
    let channel =
        json!({"name": "m", "base_url": mock.base_url(), "api_key": secret, "models": models});
    api(base, token, "POST", "/api/channels", channel).await;
    api(base, token, "PATCH", "/api/users/1", json!({"quota": 1000})).await;
    let key = api(
        base,
        token,
        "POST",
        "/api/keys",
        json!({"name": "k", "unlimited": true}),
    )
    .await;
    key["key"].as_str().unwrap().to_string()
}

async fn chat(base: &str, key: &str, model: &str) -> crate::common::Resp {
    let auth = format!("Bearer {key}");
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3});
    send(
        "POST",
        &format!("{base}/v1/chat/completions"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(Bytes::from(body.to_string())),
    )
    .await
}

#[tokio::test]
async fn sigkill_loses_no_commit_and_strands_no_reservation_and_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let mut p = spawn(dir.path());
    let (token, cookie) = admin_token(&p.base).await;
    let key = set_up(
        &p.base,
        &token,
        &mock,
        "sk-upstream-canary-7731",
        &["gpt-x", "mock-slow-20000"],
    )
    .await;
    // One acknowledged call (7 + 3 = 10), then one hanging upstream while the process dies.
    assert_eq!(chat(&p.base, &key, "gpt-x").await.status, 200);
    let base = p.base.clone();
    let k2 = key.clone();
    let hanging = tokio::spawn(async move { chat(&base, &k2, "mock-slow-20000").await });
    tokio::time::timeout(Duration::from_secs(10), mock.wait_for_calls(2))
        .await
        .expect("the hanging call reached the mock");
    p.child.kill().unwrap();
    p.wait();
    hanging.abort();
    let log_text = p.output();

    // Restart on the same files: the committed charge is there, the reservation is not.
    let mut p2 = spawn(dir.path());
    let (token2, _) = admin_token(&p2.base).await;
    let me = api(&p2.base, &token2, "GET", "/api/users/1", Value::Null).await;
    assert_eq!(
        (me["quota"].as_i64(), me["used_quota"].as_i64()),
        (Some(990), Some(10))
    );
    // and the whole 990 is usable: the in-memory ledger starts from the committed balance
    let r = chat(&p2.base, &key, "gpt-x").await;
    assert_eq!(r.status, 200);
    p2.signal("-TERM");
    assert_eq!(p2.wait(), 0);
    let db = rusqlite::Connection::open(dir.path().join("sluice.db")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let (sum, used): (i64, i64) = db
        .query_row("SELECT (SELECT SUM(quota) FROM logs WHERE type = 2), used_quota FROM users WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((sum, used), (20, 20));

    // Secrets never reach a log line (DEBUG on): upstream key, API key, password, session.
    let all = format!("{log_text}{}", p2.output());
    assert!(
        all.contains("POST /v1/chat/completions"),
        "the access log is there"
    );
    let session = cookie.trim_start_matches("sluice_session=");
    for secret in [
        "sk-upstream-canary-7731",
        key.as_str(),
        PASSWORD,
        token.as_str(),
        session,
    ] {
        assert!(!all.contains(secret), "a secret reached the log: {secret}");
    }
}

#[tokio::test]
async fn sigterm_leaves_a_database_file_that_is_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let mut p = spawn(dir.path());
    let (token, _) = admin_token(&p.base).await;
    let key = set_up(&p.base, &token, &mock, "k", &["gpt-x"]).await;
    for _ in 0..5 {
        assert_eq!(chat(&p.base, &key, "gpt-x").await.status, 200);
    }
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    assert!(p.output().contains("checkpointed"));
    // Copy the .db file alone, as an operator would after `systemctl stop`.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("sluice.db"), copy.path().join("sluice.db")).unwrap();
    let db = rusqlite::Connection::open(copy.path().join("sluice.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM logs WHERE type = 2", [], |r| r.get(0))
        .unwrap();
    let used: i64 = db
        .query_row("SELECT used_quota FROM users WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!((n, used), (5, 50));
}

#[tokio::test]
async fn healthcheck_command_reports_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path());
    let addr = p.base.trim_start_matches("http://").to_string();
    let check = |addr: &str| {
        crate::child::output_within(
            Command::new(env!("CARGO_BIN_EXE_sluice")).args(["healthcheck", "--listen", addr]),
            None,
            crate::child::EXIT_WITHIN,
        )
    };
    let out = check(&addr);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ready");
    p.signal("-TERM");
    assert_eq!(p.wait(), 0);
    let out = check(&addr);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

/// The log journal's rows are the record of calls not yet folded: a kill leaves them, and the
/// restart folds each once before it loads the balances (see `journal`).
#[tokio::test]
async fn a_kill_with_calls_not_yet_folded_loses_no_charge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    let mock = sluice::mock::MockUpstream::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let mut p = spawn(dir.path());
    let (token, _) = admin_token(&p.base).await;
    let key = set_up(&p.base, &token, &mock, "sk-up", &["gpt-x"]).await;
    crate::journal::raw(&db)
        .execute_batch(crate::journal::HOLD)
        .unwrap();
    // Three acknowledged calls (7 + 3 = 10 each): durable in the journal only.
    for _ in 0..3 {
        assert_eq!(chat(&p.base, &key, "gpt-x").await.status, 200);
    }
    {
        let c = crate::journal::raw(&db);
        assert_eq!(
            crate::journal::count(&c, "SELECT COUNT(*) FROM log_journal WHERE type = 2"),
            3
        );
        assert_eq!(
            crate::journal::count(&c, "SELECT SUM(quota) FROM log_journal"),
            30
        );
        assert_eq!(
            crate::journal::count(&c, "SELECT COUNT(*) FROM logs WHERE type = 2"),
            0
        );
        assert_eq!(
            crate::journal::count(&c, "SELECT used_quota FROM users WHERE id = 1"),
            0
        );
    }
    p.child.kill().unwrap();
    p.wait();
    crate::journal::raw(&db)
        .execute_batch(crate::journal::RELEASE)
        .unwrap();

    // The restart folds the rows before it loads the balances: each charge once.
    let mut p2 = spawn(dir.path());
    assert!(
        p2.output()
            .contains("folded 3 log journal rows left by the last run"),
        "{}",
        p2.output()
    );
    let (token2, _) = admin_token(&p2.base).await;
    let me = api(&p2.base, &token2, "GET", "/api/users/1", Value::Null).await;
    assert_eq!(
        (me["quota"].as_i64(), me["used_quota"].as_i64()),
        (Some(970), Some(30))
    );
    let audit = api(&p2.base, &token2, "GET", "/api/reconcile", Value::Null).await;
    assert_eq!(audit["clean"], true, "{audit}");
    // The ledger in memory starts from the folded balance: a fourth call is charged on it.
    assert_eq!(chat(&p2.base, &key, "gpt-x").await.status, 200);
    p2.signal("-TERM");
    assert_eq!(p2.wait(), 0);
    let c = crate::journal::raw(&db);
    assert_eq!(
        crate::journal::count(&c, "SELECT COUNT(*) FROM log_journal"),
        0
    );
    assert_eq!(
        crate::journal::count(&c, "SELECT COUNT(*) FROM logs WHERE type = 2"),
        4
    );
    assert_eq!(
        crate::journal::count(&c, "SELECT SUM(quota) FROM logs WHERE type = 2"),
        40
    );
    assert_eq!(
        crate::journal::count(&c, "SELECT quota FROM users WHERE id = 1"),
        960,
        "the fourth charge came off the folded balance"
    );
}
