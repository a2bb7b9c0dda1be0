//! Log files of the real binary: request ids in the file, `[SYS]` lines, SIGHUP starts a new
//! file, SIGTERM leaves the shutdown line last.

use crate::common::send;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `sluice-YYYYMMDD-HHMMSS[-N].log` files in `dir`, in the order they were opened.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let stem = name.strip_prefix("sluice-")?.strip_suffix(".log")?;
            let key: Vec<u64> = stem
                .split('-')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((key, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

fn all_text(dir: &Path) -> String {
    log_files(dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

/// Polls `cond` until it holds or 10 s pass (the event happens in another process).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn the_log_file_gets_request_ids_sys_lines_and_follows_sighup_and_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let logs = data.path().join("logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("SLUICE_ROOT_PASSWORD", "logfiles-test-root-pw")
        .env_remove("SLUICE_LOG_DIR")
        .env_remove("SLUICE_LOG_FILES")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("sluice did not start");
    let pid = child.id();

    // One file, in <data_dir>/logs by default, with the start-up SYS lines.
    let files = log_files(&logs);
    assert_eq!(files.len(), 1, "{files:?}");
    wait_for("the [SYS] config summary in the file", || {
        all_text(&logs)
            .lines()
            .any(|l| l.starts_with("[SYS] ") && l.contains("listen="))
    });
    let text = all_text(&logs);
    assert!(
        !text.contains("logfiles-test-root-pw"),
        "the root password reached the log file"
    );

    // A request's id shows up in a line of the file.
    let r = send("GET", &format!("{base}/api/status"), &[], None).await;
    let rid = r.request_id();
    assert_eq!(rid.len(), 26, "a ULID: {rid}");
    wait_for("the request id in the file", || {
        all_text(&logs)
            .lines()
            .any(|l| l.contains(&format!("| {rid} |")))
    });

    // SIGHUP: a new file appears and later lines go there.
    kill("-HUP", pid);
    wait_for("a second log file after SIGHUP", || {
        log_files(&logs).len() == 2
    });
    let r = send("GET", &format!("{base}/api/status"), &[], None).await;
    let rid2 = r.request_id();
    let newest = log_files(&logs)[1].clone();
    wait_for("the second request in the new file", || {
        std::fs::read_to_string(&newest).is_ok_and(|t| t.contains(&rid2))
    });
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped sluice");

    // SIGTERM: a clean exit, and the newest file ends with the shutdown SYS line.
    kill("-TERM", pid);
    let status = crate::child::wait_or_fail(&mut child, crate::child::EXIT_WITHIN, "sluice");
    assert_eq!(status.code(), Some(0));
    let files = log_files(&logs);
    assert_eq!(files.len(), 2, "{files:?}");
    let last = std::fs::read_to_string(&files[1]).unwrap();
    assert!(last.ends_with('\n'), "the file ends with a whole line");
    let last_line = last.lines().last().unwrap_or_default();
    assert!(
        last_line.starts_with("[SYS] ") && last_line.contains("stopped"),
        "last line: {last_line}"
    );
    // Every line of both files is whole and well-formed.
    for f in &files {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            assert!(l.starts_with('['), "{f:?}: {l}");
            assert!(l.contains(" | "), "{f:?}: {l}");
        }
    }
}
