//! The real binary as systemd runs it: readiness, watchdog and stopping over a real notify
//! socket; a failed migration that leaves the database untouched; the first-start password
//! kept out of non-terminal output.

use crate::common::send;
use crate::process;
use sluice::store::migrate;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

/// The datagram socket systemd would listen on, read with a deadline (never a sleep).
pub(crate) struct NotifySocket {
    sock: UnixDatagram,
    pub(crate) path: std::path::PathBuf,
}

impl NotifySocket {
    pub(crate) fn bind(dir: &std::path::Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        NotifySocket { sock, path }
    }

    /// Reads messages until one has a line starting with `want`; returns every message read,
    /// in order.
    pub(crate) fn wait_for(&self, want: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {want} within {within:?}; got {seen:?}");
            self.sock.set_read_timeout(Some(left)).unwrap();
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no {want} within {within:?} ({e}); got {seen:?}"),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l.starts_with(want));
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn systemd_hears_ready_after_the_listener_is_up_then_the_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    // 400 ms: fed every 200 ms, so several feeds arrive within the test's deadline.
    let mut p = process::spawn_with_env(
        &dir.path().join("data"),
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );

    let before_ready = notify.wait_for("READY=1", Duration::from_secs(30));
    let all = before_ready.join("\n");
    assert!(
        all.contains("STATUS=migrating the database"),
        "a status line before readiness: {all}"
    );
    let ready = before_ready.last().unwrap();
    assert!(
        ready.contains(&format!("STATUS=serving on {}", p.base)),
        "{ready}"
    );
    // Ready means ready: the very next request is answered.
    let r = send("GET", &format!("{}/readyz", p.base), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The watchdog is fed repeatedly while the database answers.
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10));
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10));

    p.signal("-TERM");
    let stopping = notify.wait_for("STOPPING=1", Duration::from_secs(10));
    // With it, how long the stop may take (app::stop_budget: 44 s at the default 30 s grace,
    // plus 5 s), so systemd waits for a longer configured grace instead of killing the flush.
    let stop = stopping.last().unwrap();
    assert!(
        stop.lines().any(|l| l == "EXTEND_TIMEOUT_USEC=49000000"),
        "{stop}"
    );
    assert_eq!(p.wait(), 0, "{}", p.output());
}

#[tokio::test]
async fn the_watchdog_goes_hungry_while_the_writer_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let data = dir.path().join("data");
    let mut p = process::spawn_with_env(
        &data,
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    notify.wait_for("WATCHDOG=1", Duration::from_secs(30));

    // Another process holds the write lock: the writer's pings wait, then fail.
    let blocker = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let hungry = Duration::from_secs(30);
    notify.wait_for("STATUS=database not answering", hungry);
    // From one failed ping to the next, nothing feeds the watchdog.
    let between = notify.wait_for("STATUS=database not answering", hungry);
    assert!(
        !between.iter().any(|m| m.lines().any(|l| l == "WATCHDOG=1")),
        "fed while the writer was stuck: {between:?}"
    );

    blocker.execute_batch("ROLLBACK").unwrap();
    let after = notify.wait_for("WATCHDOG=1", hungry);
    assert!(
        after
            .iter()
            .any(|m| m.contains("STATUS=serving (the database answers again)")),
        "{after:?}"
    );
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
}

#[tokio::test]
async fn without_a_notify_socket_the_server_runs_as_before() {
    let dir = tempfile::tempdir().unwrap();
    // WATCHDOG_USEC alone (no NOTIFY_SOCKET) must not make the server try to notify anyone.
    let mut p = process::spawn_with_env(dir.path(), &[("WATCHDOG_USEC", "100000")]);
    let r = send("GET", &format!("{}/readyz", p.base), &[], None).await;
    assert_eq!(r.status, 200);
    p.signal("-TERM");
    assert_eq!(p.wait(), 0);
    assert!(
        !p.output().contains("cannot notify systemd"),
        "{}",
        p.output()
    );
}

/// Every table, index and trigger with its SQL, the schema history and the users: what a failed
/// upgrade must leave exactly as it found.
#[derive(Debug, PartialEq)]
struct Snapshot {
    schema: Vec<(String, String)>,
    history: Vec<(i64, String)>,
    users: Vec<String>,
}

fn snapshot(path: &std::path::Path) -> Snapshot {
    let conn = rusqlite::Connection::open(path).unwrap();
    let schema = conn
        .prepare("SELECT name, COALESCE(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let history = conn
        .prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let users = conn
        .prepare("SELECT username FROM users ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    Snapshot {
        schema,
        history,
        users,
    }
}

#[test]
fn a_failed_migration_names_itself_and_leaves_the_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sluice.db");
    {
        // A database written by an older release (V2), plus an object that the newest
        // migration (V4) wants to create: V3 would succeed on its own, V4 cannot.
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        migrate::run_to(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO users (username, password_hash, role, quota, created_at)
                 VALUES ('old', 'x', 'root', 42, 0);
             CREATE TABLE notify_warnings (leftover INTEGER);",
        )
        .unwrap();
    }
    assert!(migrate::latest_version() >= 4);
    let before = snapshot(&db);

    for command in ["migrate", "serve"] {
        let out = crate::child::output_within(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args([command, "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path()),
            None,
            crate::child::EXIT_WITHIN,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} must fail: {stderr}");
        assert!(
            stderr.contains("migration V4__notify failed")
                && stderr.contains("notify_warnings already exists")
                && stderr.contains("still at schema version 2"),
            "{command}: {stderr}"
        );
        // V3 ran before V4 in the same transaction: it is rolled back too.
        assert_eq!(snapshot(&db), before, "{command} changed the database");
    }
    assert!(!before.schema.iter().any(|(name, _)| name == "usage_hourly"));
    assert_eq!(before.history.len(), 2);
    assert_eq!(before.users, ["old"]);
}

#[test]
fn the_generated_root_password_stays_out_of_non_terminal_output() {
    let dir = tempfile::tempdir().unwrap();
    // `serve` creates root on the first start; stop it once it listens.
    let mut p = process::spawn_with_env(dir.path(), &[("SLUICE_ROOT_PASSWORD", "")]);
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    let file = dir.path().join("initial-root-password");
    let password = std::fs::read_to_string(&file).unwrap();
    let password = password.trim();
    assert!(password.len() >= 16, "a generated password: {password:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let output = p.output();
    assert!(!output.contains(password), "the password reached the log");
    assert!(
        output.contains(&format!("its password is in {}", file.display())),
        "the log says where the password is: {output}"
    );
}
