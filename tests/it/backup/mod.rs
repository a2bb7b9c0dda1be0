//! Backups, hot copies and restore: copies taken under write load are complete, consistent
//! snapshots; the API refuses what it should; the CLI works beside a running server.

mod api;
mod cli;
mod compact;

use crate::common::send;
use bytes::Bytes;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the live database held just before a copy began.
pub struct Before {
    max_id: i64,
    count: i64,
}

impl Before {
    pub fn read(db: &Path) -> Before {
        let c = rusqlite::Connection::open(db).unwrap();
        let (max_id, count) = c
            .query_row("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM logs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        Before { max_id, count }
    }
}

/// Asserts a copy is a checked, self-contained snapshot holding every row committed before it
/// began, with a ledger that reconciles. Returns its number of consume rows.
pub fn check_copy(path: &Path, before: &Before) -> i64 {
    let head = std::fs::read(path).unwrap();
    assert!(head.starts_with(b"SQLite format 3\0"), "not a database");
    assert_eq!((head[18], head[19]), (1, 1), "the copy is not in WAL mode");
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let held: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE id <= ?1",
            [before.max_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        held, before.count,
        "rows committed before the copy are missing"
    );
    // The ledger reconciles: every balance, used quota and request count against the rows.
    let report = sluice::store::reconcile::run(&c).unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert!(report.users_checked >= 1 && report.keys_checked >= 1);
    c.query_row("SELECT COUNT(*) FROM logs WHERE type = 2", [], |r| r.get(0))
        .unwrap()
}

/// Adds `n` system log rows of ~300 bytes in one transaction, so a copy takes long enough for
/// relayed requests to finish while it runs.
pub fn filler_sql(n: u32) -> String {
    format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
         INSERT INTO logs (created_at, type, request_id, content)
         SELECT 1, 4, 'filler-' || i, hex(randomblob(150)) FROM s"
    )
}

/// The real binary serving `data`, a channel to `mock` for `gpt-x` and root's quota lifted:
/// the process, an admin token and an API key that relays.
pub async fn serve_for_calls(
    data: &Path,
    mock: &sluice::mock::MockUpstream,
) -> (crate::process::Proc, String, String) {
    use crate::process::{admin_token, api, set_up, spawn};
    let p = spawn(data);
    let (token, _) = admin_token(&p.base).await;
    let key = set_up(&p.base, &token, mock, "sk-up", &["gpt-x"]).await;
    api(
        &p.base,
        &token,
        "PATCH",
        "/api/users/1",
        json!({"quota": 100_000_000}),
    )
    .await;
    (p, token, key)
}

/// A chat call; returns its status.
pub async fn chat(base: &str, key: &str) -> u16 {
    let auth = format!("Bearer {key}");
    let body = json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3});
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
    .status
}

/// Relayed calls on `workers` connections until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<parking_lot::Mutex<Vec<(Instant, Instant, u16)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(base: &str, key: &str, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let tasks = (0..workers)
            .map(|_| {
                let (base, key) = (base.to_string(), key.to_string());
                let (stop, done) = (stop.clone(), done.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        let status = chat(&base, &key).await;
                        done.lock().push((t0, Instant::now(), status));
                    }
                })
            })
            .collect();
        Load { stop, done, tasks }
    }

    pub fn completed(&self) -> usize {
        self.done.lock().len()
    }

    /// Waits (bounded) until at least `n` calls have completed.
    pub async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.completed() < n {
            assert!(Instant::now() < deadline, "the load made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Calls that started after `from` and finished before `to`.
    pub fn within(&self, from: Instant, to: Instant) -> usize {
        self.done
            .lock()
            .iter()
            .filter(|(s, e, _)| *s >= from && *e <= to)
            .count()
    }

    /// Stops, and asserts every call succeeded; returns how many there were.
    pub async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let done = self.done.lock();
        let failed: Vec<u16> = done.iter().map(|d| d.2).filter(|s| *s != 200).collect();
        assert!(failed.is_empty(), "relayed calls failed: {failed:?}");
        done.len()
    }
}
