//! Files at rest: whatever umask sluice is started with, what it writes is its user's alone.

use crate::child::{EXIT_WITHIN, output_within};
use crate::process::{admin_token, api, set_up, spawn_via};
use serde_json::{Value, json};
use sluice::mock::MockUpstream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the rest of the command line with umask 000, as a careless shell or supervisor would.
const PERMISSIVE: &[&str] = &["sh", "-c", "umask 000; exec \"$0\" \"$@\""];

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file and directory under `root` (itself included) with its mode.
fn tree(root: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = vec![(root.to_path_buf(), mode(root), true)];
    let mut i = 0;
    while i < out.len() {
        if out[i].2 {
            let dir = out[i].0.clone();
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                // The data lock and a socket are not data; everything else is checked.
                let is_dir = p.is_dir();
                out.push((p.clone(), mode(&p), is_dir));
            }
        }
        i += 1;
    }
    out
}

fn assert_private(root: &Path) {
    let all = tree(root);
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, m, dir)| *m != if *dir { 0o700 } else { 0o600 })
        .map(|(p, m, _)| format!("{} {m:o}", p.display()))
        .collect();
    assert!(wrong.is_empty(), "not private: {wrong:?} (all: {all:?})");
}

#[tokio::test]
async fn everything_sluice_writes_is_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let mut p = spawn_via(&data, &[], PERMISSIVE);
    let (token, _) = admin_token(&p.base).await;
    // Writes (database, WAL, shared memory), a log file, a backup and a CPU profile.
    let key = set_up(&p.base, &token, &mock, "sk-modes", &["gpt-x"]).await;
    let r = crate::common::send(
        "POST",
        &format!("{}/v1/chat/completions", p.base),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"model": "gpt-x", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]})
                .to_string()
                .into(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    api(&p.base, &token, "POST", "/api/backups", Value::Null).await;
    api(
        &p.base,
        &token,
        "POST",
        "/api/profiles",
        json!({"seconds": 1}),
    )
    .await;
    for f in [
        "sluice.db",
        "sluice.db-wal",
        "sluice.db-shm",
        "logs",
        "backups",
        "pprof",
    ] {
        assert!(
            data.join(f).exists(),
            "{f} was not written: {:?}",
            tree(&data)
        );
    }
    assert_private(&data);

    // The command-line backup, run the same careless way.
    let out_file = tmp.path().join("cli-backup.db");
    let mut cmd = Command::new(PERMISSIVE[0]);
    cmd.args(&PERMISSIVE[1..])
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(["backup", "--out"])
        .arg(&out_file)
        .arg("--data-dir")
        .arg(&data);
    let out = output_within(&mut cmd, None, EXIT_WITHIN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&out_file), 0o600);

    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    assert_private(&data);

    // A database left readable by an older release is made private at the next start (the
    // WAL and shared-memory files SQLite makes take the database's mode).
    std::fs::set_permissions(
        data.join("sluice.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut p = spawn_via(&data, &[], PERMISSIVE);
    assert_private(&data);
    assert!(
        p.output()
            .contains("was readable by others (mode 644); made it 0600"),
        "{}",
        p.output()
    );
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
}
