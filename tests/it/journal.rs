//! The log journal: a relayed call commits one journal row, folded later into `logs`, the
//! rollups and the balances (src/store/journal.rs). A fold that cannot run, and a process
//! killed with rows not yet folded (`process::a_kill_with_calls_not_yet_folded_loses_no_charge`),
//! lose no charge and count none twice.
//!
//! Both tests hold the fold with a real SQLite failure: a trigger, added from another
//! connection, that aborts the fold's `DELETE FROM log_journal` (and with it the fold's whole
//! savepoint) until the test drops it.

use crate::common::TestServer;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

pub(crate) const HOLD: &str = "CREATE TRIGGER hold_fold BEFORE DELETE ON log_journal
    BEGIN SELECT RAISE(ABORT, 'the fold is held by the test'); END;";
pub(crate) const RELEASE: &str = "DROP TRIGGER hold_fold;";

/// A connection of the test's own: reads the file as it is, without asking sluice to fold.
pub(crate) fn raw(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

pub(crate) fn count(c: &rusqlite::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fold_that_fails_keeps_its_rows_and_the_next_fold_moves_each_once() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let db = t.dir.path().join("sluice.db");
    raw(&db).execute_batch(HOLD).unwrap();

    // Calls are still charged and answered: their rows commit to the journal.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = t.chat(&key, "gpt-x", 3, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.request_id());
    }
    // A read that needs them cannot see them: it fails (503, an error body), it does not
    // answer without them.
    let r = t.api("GET", "/api/users/1", None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
    // Nor does a write that would act on stale balances go through.
    let r = t
        .api("PATCH", "/api/users/1", Some(json!({"quota": 5000})))
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    {
        let c = raw(&db);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM log_journal"), 2);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM logs WHERE type = 2"), 0);
        assert_eq!(count(&c, "SELECT quota FROM users WHERE id = 1"), 1000);
    }

    raw(&db).execute_batch(RELEASE).unwrap();
    let me = t.get("/api/users/1").await;
    assert_eq!(
        (me["quota"].as_i64(), me["used_quota"].as_i64()),
        (Some(980), Some(20)),
        "{me}"
    );
    for id in &ids {
        assert_eq!(t.log_rows(id).len(), 1, "one row for {id}");
    }
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
    assert_eq!(count(&raw(&db), "SELECT COUNT(*) FROM log_journal"), 0);
    assert_eq!(t.user_balance(1), (980, 20));
}

/// The time each fold holds the writer is in /metrics: a call arriving meanwhile waits for it,
/// so it is what a single client's slowest calls are made of (issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fold_that_moves_rows_is_timed_in_the_metrics() {
    let t = TestServer::start().await;
    t.channel(&["gpt-x"], json!({})).await;
    t.fund(1000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let folds = |text: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("sluice_journal_fold_seconds_count "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1)
    };
    let before = folds(&t.api("GET", "/metrics", None).await.text());
    assert!(before >= 0, "the fold histogram is exported");
    let r = t.chat(&key, "gpt-x", 3, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A read folds the waiting row first.
    t.get("/api/users/1").await;
    let text = t.api("GET", "/metrics", None).await.text();
    assert_eq!(folds(&text), before + 1, "{text}");
    assert!(
        text.contains("sluice_journal_fold_seconds_bucket{le=\"0.00025\"}"),
        "sub-millisecond buckets: {text}"
    );
}
