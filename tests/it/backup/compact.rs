//! `sluice compact`: a database made with 4 KiB pages (as sluice made them before 1 KiB pages)
//! is rewritten in 1 KiB pages without its free pages, with every row and balance kept, the old
//! file moved aside; refused while a server runs.

use super::{chat, filler_sql, serve_for_calls};
use crate::process::{admin_token, api, spawn};
use serde_json::Value;
use sluice::mock::MockUpstream;
use std::path::Path;
use std::process::{Command, Output};

fn sluice(data: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args).arg("--data-dir").arg(data);
    crate::child::output_within(&mut cmd, None, crate::child::EXIT_WITHIN)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// (page size, free pages, log rows, consume rows' quota, users' used quota).
fn shape(db: &Path) -> (i64, i64, i64, i64, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let one = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    (
        one("PRAGMA page_size"),
        one("PRAGMA freelist_count"),
        one("SELECT COUNT(*) FROM logs"),
        one("SELECT IFNULL(SUM(quota), 0) FROM logs WHERE type = 2"),
        one("SELECT SUM(used_quota) FROM users"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compact_rewrites_a_4_kib_page_database_in_1_kib_pages_keeping_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let db = data.join("sluice.db");
    {
        // The file an older sluice created: 4 KiB pages, WAL.
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
            .unwrap();
    }
    let mock = MockUpstream::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    let (mut p, _, key) = serve_for_calls(data, &mock).await;
    for _ in 0..20 {
        assert_eq!(chat(&p.base, &key).await, 200);
    }
    {
        // Rows written and purged leave free pages, which the copy drops.
        let c = rusqlite::Connection::open(&db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c.execute_batch(&format!(
            "BEGIN IMMEDIATE; {}; DELETE FROM logs WHERE type = 4; COMMIT;",
            filler_sql(5_000)
        ))
        .unwrap();
    }

    // Refused while the server holds the data directory; nothing changes.
    let o = tokio::task::spawn_blocking({
        let data = data.to_path_buf();
        move || sluice(&data, &["compact"])
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("stop it first"), "{}", text(&o));

    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    let before = shape(&db);
    assert_eq!(before.0, 4096);
    assert!(before.1 > 100, "the purge left free pages: {before:?}");
    assert!(
        before.2 >= 20,
        "the calls and the set-up are logged: {before:?}"
    );
    let old_bytes = std::fs::read(&db).unwrap();

    let o = sluice(data, &["compact"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("1024-byte pages"), "{out}");
    assert!(out.contains("was 4096-byte pages"), "{out}");
    let after = shape(&db);
    assert_eq!(after.0, 1024, "{after:?}");
    assert_eq!(after.1, 0, "{after:?}");
    assert_eq!(
        (after.2, after.3, after.4),
        (before.2, before.3, before.4),
        "rows and balances kept"
    );
    let ok: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    assert!(std::fs::metadata(&db).unwrap().len() < old_bytes.len() as u64);
    let aside: Vec<_> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("sluice.db.before-compact-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(&aside[0]).unwrap(),
        old_bytes,
        "the old file is kept whole"
    );
    assert!(out.contains(&aside[0].display().to_string()), "{out}");

    // The server runs on the new file: the key works, charges land, the ledger reconciles.
    let mut p = spawn(data);
    assert_eq!(chat(&p.base, &key).await, 200);
    let (token, _) = admin_token(&p.base).await;
    let me = api(&p.base, &token, "GET", "/api/users/1", Value::Null).await;
    assert!(me["used_quota"].as_i64().unwrap() > before.4);
    p.signal("-TERM");
    assert_eq!(p.wait(), 0, "{}", p.output());
    let o = sluice(data, &["reconcile"]);
    assert!(o.status.success(), "{}", text(&o));
}
