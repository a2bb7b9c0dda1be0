//! `sluice backup` beside a running server (the real binary), and `sluice restore`.

use super::{Before, Load, check_copy, filler_sql};
use crate::process::{admin_token, api, spawn};
use serde_json::Value;
use sluice::mock::MockUpstream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// Runs the real binary with `args` against `data`, feeding `stdin`, off the async threads.
async fn sluice(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args).arg("--data-dir").arg(data);
    let input = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        crate::child::output_within(&mut cmd, Some(input.as_bytes()), crate::child::EXIT_WITHIN)
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn digest(p: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

/// Files in `dir` whose names contain `part`.
fn files_with(dir: &Path, part: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(part))
        .collect();
    v.sort();
    v
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_backup_beside_a_running_server_then_restore_after_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let db = data.join("sluice.db");
    let out_dir = tempfile::tempdir().unwrap();
    let copy = out_dir.path().join("copy.db");
    let copy_s = copy.to_str().unwrap();
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let (mut p, token, key) = super::serve_for_calls(data, &mock).await;
    {
        // Bulk, so the copy takes a while; written before the load, beside the idle server.
        let c = rusqlite::Connection::open(&db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c.execute_batch(&format!("BEGIN IMMEDIATE; {}; COMMIT;", filler_sql(60_000)))
            .unwrap();
    }

    // A second server on the same data directory is refused by the lock.
    let second = sluice(data, &["serve", "--listen", "127.0.0.1:0"], "").await;
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(text(&second).contains("stop it first"), "{}", text(&second));

    // `sluice backup --out` while relayed calls are being written.
    let load = Load::start(&p.base, &key, 4);
    load.wait_for(20).await;
    let before = Before::read(&db);
    let started = Instant::now();
    let o = sluice(data, &["backup", "--out", copy_s], "").await;
    let ended = Instant::now();
    assert!(o.status.success(), "{}", text(&o));
    let during = load.within(started, ended);
    load.wait_for(load.completed() + 10).await;
    load.finish().await;
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains(&format!("backup: {copy_s}")), "{stdout}");
    assert!(stdout.contains("integrity: ok"), "{stdout}");
    let copied_consumes = check_copy(&copy, &before);
    assert!(
        during >= 1,
        "relayed calls completed while `sluice backup` ran"
    );
    let copied_used = count(&copy, "SELECT used_quota FROM users WHERE id = 1");

    // The default place is the backups directory, which the server lists.
    let o = sluice(data, &["backup"], "").await;
    assert!(o.status.success(), "{}", text(&o));
    let listed = api(&p.base, &token, "GET", "/api/backups", Value::Null).await;
    let name = listed[0]["name"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("backups/{name}")),
        "{}",
        text(&o)
    );
    assert_eq!(listed[0]["integrity"], "ok");
    // --out never replaces a file.
    let o = sluice(data, &["backup", "--out", copy_s], "").await;
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("already exists"), "{}", text(&o));

    // Restore refuses while the server runs, and changes nothing.
    let o = sluice(data, &["restore", copy_s, "--yes"], "").await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("stop it first"), "{}", text(&o));
    assert!(files_with(data, "before-restore").is_empty());

    // One more call after the copy, then a clean stop.
    assert_eq!(super::chat(&p.base, &key).await, 200);
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    let live_consumes = count(&db, "SELECT COUNT(*) FROM logs WHERE type = 2");
    assert!(live_consumes > copied_consumes);
    let live = digest(&db);

    // Refusals with the server stopped leave the database as it was.
    let corrupt = out_dir.path().join("corrupt.db");
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = (bytes.len() / 2) & !4095;
    bytes[mid..mid + 3 * 4096].fill(0xA5);
    std::fs::write(&corrupt, bytes).unwrap();
    let newer = out_dir.path().join("newer.db");
    std::fs::copy(&copy, &newer).unwrap();
    let future = sluice::store::migrate::latest_version() + 1;
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (?1, 'future', '2030-01-01T00:00:00Z', '0')",
            [future],
        )
        .unwrap();
    for (file, expect, stdin) in [
        (corrupt.to_str().unwrap(), "corrupt", ""),
        (newer.to_str().unwrap(), "newer than this sluice", ""),
        (copy_s, "cancelled", "n\n"),
    ] {
        let args: Vec<&str> = if stdin.is_empty() {
            vec!["restore", file, "--yes"]
        } else {
            vec!["restore", file]
        };
        let o = sluice(data, &args, stdin).await;
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{all}");
        let named = match expect {
            "corrupt" => all.contains("integrity check") || all.contains("not a readable"),
            other => all.contains(other),
        };
        assert!(named, "{expect}: {all}");
        assert_eq!(digest(&db), live, "{expect}: the database changed");
        assert!(files_with(data, "before-restore").is_empty(), "{expect}");
        assert!(files_with(data, ".sluice-tmp").is_empty(), "{expect}");
    }

    // The restore itself.
    let o = sluice(data, &["restore", copy_s, "--yes"], "").await;
    assert!(o.status.success(), "{}", text(&o));
    let aside = files_with(data, "sluice.db.before-restore-");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        text(&o).contains("moved the previous database aside"),
        "{}",
        text(&o)
    );
    assert_eq!(digest(&aside[0]), live, "the old database is kept whole");
    assert_eq!(digest(&db), digest(&copy));

    // The server starts on the restored data: the balance and the rows of the copy.
    let mut p = spawn(data);
    let (token, _) = admin_token(&p.base).await;
    let me = api(&p.base, &token, "GET", "/api/users/1", Value::Null).await;
    assert_eq!(me["used_quota"].as_i64(), Some(copied_used));
    assert_eq!(
        super::chat(&p.base, &key).await,
        200,
        "the key in the copy works"
    );
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM logs WHERE type = 2"),
        copied_consumes + 1
    );
    let ok: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
