//! A really full disk: a small tmpfs mounted for the test, filled to the last block and freed
//! again. Mounting needs root (CI runs as root); elsewhere these tests say so and pass without
//! running (`cargo test` as a user cannot mount).

use crate::child::{EXIT_WITHIN, output_within};
use crate::common::send;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs of a fixed size, unmounted (lazily, so an open file cannot block it) on drop.
pub(crate) struct Tmpfs {
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a note on stderr) when not root.
    pub(crate) fn mount(kib: u64) -> Option<Tmpfs> {
        if !running_as_root() {
            eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs these as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = output_within(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={kib}k,mode=0755"),
                    "tmpfs",
                ])
                .arg(dir.path()),
            None,
            EXIT_WITHIN,
        );
        assert!(
            out.status.success(),
            "mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    /// Writes zeros to `filler` until the file system refuses with ENOSPC.
    pub(crate) fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Also the last partial block, so even a one-byte write fails.
        loop {
            match f.write_all(&[0u8]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
    }

    pub(crate) fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = output_within(
            Command::new("umount").arg("-l").arg(&self.path),
            None,
            EXIT_WITHIN,
        );
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `name value` of one metric line in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub(crate) async fn metrics(base: &str) -> String {
    let r = send("GET", &format!("{base}/metrics"), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn log_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sluice-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_full_log_disk_is_said_once_counted_and_recovered_from_without_new_files() {
    let Some(fs) = Tmpfs::mount(512) else { return };
    let data = tempfile::tempdir().unwrap();
    let logs = fs.path.join("logs");
    let mut p = crate::process::spawn_with_env(
        data.path(),
        &[
            ("SLUICE_LOG_DIR", logs.to_str().unwrap()),
            ("SLUICE_METRICS_FROM_LOOPBACK", "true"),
        ],
    );
    let status = format!("{}/api/status", p.base);
    let files_before = log_files(&logs);
    assert_eq!(files_before.len(), 1, "{files_before:?}");
    fs.fill();

    // Access lines (DEBUG is on, so several lines each) until the failure is reported.
    let failing = "log file in";
    // (The failure shows at the first flush after a line: send lines until it does.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.output().contains("lines are dropped") {
        assert!(Instant::now() < deadline, "no failure line: {}", p.output());
        send("GET", &status, &[], None).await;
    }
    // Keep logging for 5 s: two and a half of the sink's 2 s retry periods. A retry that
    // fails again has no outside event to wait for, so the window is timed (bounded).
    let until = Instant::now() + Duration::from_secs(5);
    let mut sent = 0;
    while Instant::now() < until {
        send("GET", &status, &[], None).await;
        sent += 1;
    }
    let m = metrics(&p.base).await;
    let out = p.output();
    let says = |what: &str| {
        out.lines()
            .filter(|l| l.contains(failing) && l.contains(what))
            .count()
    };
    assert_eq!(
        says("lines are dropped"),
        1,
        "after {sent} requests:\n{out}"
    );
    assert_eq!(says("is written again"), 0, "{out}");
    assert_eq!(metric(&m, "sluice_log_file_writable"), Some(0.0), "{m}");
    assert_eq!(
        metric(&m, "sluice_log_file_failures_total"),
        Some(1.0),
        "{m}"
    );
    let dropped = metric(&m, "sluice_log_lines_dropped_total").unwrap();
    assert!(
        dropped >= sent as f64,
        "{dropped} dropped for {sent} requests"
    );
    // No new (empty) file per attempt: the same one file.
    let names = |v: Vec<(String, u64)>| v.into_iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(names(log_files(&logs)), names(files_before.clone()));

    // Space comes back: one line says so, in the journal and in the file, and lines flow again.
    fs.free();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.output().contains("is written again") {
        send("GET", &status, &[], None).await;
        assert!(
            Instant::now() < deadline,
            "no recovery line: {}",
            p.output()
        );
    }
    let rid2 = send("GET", &status, &[], None).await.request_id();
    let file = logs.join(&files_before[0].0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&file).unwrap().contains(&rid2) {
        assert!(Instant::now() < deadline, "{rid2} never reached the file");
        send("GET", &status, &[], None).await;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("is written again"), "{text}");
    assert!(text.lines().all(|l| l.starts_with('[')), "whole lines only");
    let out = p.output();
    let says = |what: &str| {
        out.lines()
            .filter(|l| l.contains(failing) && l.contains(what))
            .count()
    };
    assert_eq!(
        (says("lines are dropped"), says("is written again")),
        (1, 1),
        "{out}"
    );
    let m = metrics(&p.base).await;
    assert_eq!(metric(&m, "sluice_log_file_writable"), Some(1.0), "{m}");
    assert_eq!(
        metric(&m, "sluice_log_file_failures_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(names(log_files(&logs)), names(files_before));
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
}

async fn chat(base: &str, key: &str, stream: bool) -> crate::common::Resp {
    send(
        "POST",
        &format!("{base}/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(
            serde_json::json!({"model": "gpt-x", "max_tokens": 3, "stream": stream,
                               "messages": [{"role": "user", "content": "hello"}]})
            .to_string()
            .into(),
        ),
    )
    .await
}

async fn ready(base: &str) -> u16 {
    send("GET", &format!("{base}/readyz"), &[], None)
        .await
        .status
}

fn healthcheck(base: &str) -> std::process::Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_sluice")).args([
            "healthcheck",
            "--listen",
            base.trim_start_matches("http://"),
        ]),
        None,
        EXIT_WITHIN,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_makes_sluice_unready_and_refuses_calls_until_space_returns() {
    let Some(fs) = Tmpfs::mount(16 * 1024) else {
        return;
    };
    let data = fs.path.join("data");
    let elsewhere = tempfile::tempdir().unwrap();
    let notify = crate::service::NotifySocket::bind(elsewhere.path());
    let logs = elsewhere.path().join("logs");
    let mock = sluice::mock::MockUpstream::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let mut p = crate::process::spawn_with_env(
        &data,
        &[
            ("SLUICE_DB_PING_INTERVAL_SECS", "1"),
            ("SLUICE_METRICS_FROM_LOOPBACK", "true"),
            ("SLUICE_LOG_DIR", logs.to_str().unwrap()),
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let (token, _) = crate::process::admin_token(&p.base).await;
    let key = crate::process::set_up(&p.base, &token, &mock, "sk-full", &["gpt-x"]).await;
    assert_eq!(chat(&p.base, &key, false).await.status, 200);
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10));

    fs.fill();
    // No call needed: the ping turns /readyz to 503 on its own. Either its write fails, or
    // (when the commit fits in WAL pages already on disk, as after a checkpoint) its free-space
    // check finds the disk full: both are the ping failing.
    p.wait_output("database ping failed: ", Duration::from_secs(15));
    assert_eq!(
        ready(&p.base).await,
        503,
        "/readyz stayed 200 on a full disk"
    );
    let m = metrics(&p.base).await;
    assert_eq!(metric(&m, "sluice_db_healthy"), Some(0.0), "{m}");
    let out = healthcheck(&p.base);
    assert_eq!(
        out.status.code(),
        Some(1),
        "healthcheck passed on a full disk"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
    // Refused before anything is sent upstream: no call reaches the mock, none streams free.
    let calls = mock.calls();
    for stream in [false, true] {
        let r = chat(&p.base, &key, stream).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("database_unavailable"), "{}", r.text());
        assert_eq!(r.headers["retry-after"], "5");
    }
    assert_eq!(mock.calls(), calls, "a refused call reached the upstream");
    // The watchdog goes hungry: between two failed pings nothing feeds it.
    notify.wait_for("STATUS=database not answering", Duration::from_secs(10));
    let between = notify.wait_for("STATUS=database not answering", Duration::from_secs(10));
    assert!(
        !between.iter().any(|m| m.lines().any(|l| l == "WATCHDOG=1")),
        "fed while the disk was full: {between:?}"
    );
    assert_eq!(
        ready(&p.base).await,
        503,
        "ready again while the disk is full"
    );

    // Space returns: ready again without a restart, calls charged again.
    fs.free();
    p.wait_output("database healthy again", Duration::from_secs(15));
    assert_eq!(ready(&p.base).await, 200, "not ready after space returned");
    notify.wait_for("WATCHDOG=1", Duration::from_secs(10));
    assert!(healthcheck(&p.base).status.success());
    assert_eq!(
        metric(&metrics(&p.base).await, "sluice_db_healthy"),
        Some(1.0)
    );
    let r = chat(&p.base, &key, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());

    // Nothing half-written: the file is sound and every charge has its row.
    let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let (rows, sum, used): (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM logs WHERE type = 2), (SELECT SUM(quota) FROM logs WHERE type = 2), used_quota FROM users WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(rows, 2, "rows of the calls answered 200");
    assert_eq!(sum, used);
}
