use super::*;

fn open() -> (tempfile::TempDir, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("w.db")).unwrap();
    pragmas::enable_wal(&conn).unwrap();
    conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
        .unwrap();
    (dir, Writer::start(conn, None).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fold_in_chunks_under_load_and_a_fold_request_empties_the_journal() {
    use crate::store::journal::FOLD_CHUNK;
    let (dir, w) = open_journal();
    let path = dir.path().join("j.db");
    let calls = 3 * FOLD_CHUNK as i64;
    let mut tasks = Vec::new();
    for i in 0..calls {
        let w = w.clone();
        tasks.push(tokio::spawn(async move { append_call(&w, i).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // No read or other write asked for a fold, and the appends took well under the
    // timer's second: only the chunk folds kept the journal short.
    let read = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { read.query_row(sql, [], |r| r.get(0)).unwrap() };
    let waiting = count("SELECT COUNT(*) FROM log_journal");
    assert!(
        waiting < (FOLD_CHUNK as usize + MAX_BATCH) as i64,
        "{waiting} rows waiting after {calls} appends"
    );
    assert!(w.stats.folded_rows.load(Ordering::Relaxed) >= FOLD_CHUNK);
    assert!(w.stats.journal_waiting() || waiting == 0);
    w.fold().await.unwrap();
    assert!(!w.stats.journal_waiting());
    assert_eq!(count("SELECT COUNT(*) FROM log_journal"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM logs"), calls);
    assert_eq!(count("SELECT used_quota FROM users"), calls);
    assert_eq!(count("SELECT quota FROM users"), 100_000_000 - calls);
    assert_eq!(count("SELECT SUM(requests) FROM usage_hourly"), calls);
    w.shutdown().await.unwrap();
}

/// Under steady writes the WAL starts over at the writer's turn (see `checkpoint`). Without
/// the turn no write transaction ever began with every frame copied, so the WAL grew to the
/// automatic checkpoint's 64 MiB, whose copy and two syncs inside a commit were a single
/// connection's slowest call every ~8 s (issue 15). Here the automatic checkpoint is off:
/// only the turn can start the WAL over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_steady_writes_the_wal_starts_over_at_the_writers_turn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = Connection::open(&path).unwrap();
    pragmas::enable_wal(&conn).unwrap();
    pragmas::apply_writer(&conn).unwrap();
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB NOT NULL)")
        .unwrap();
    let checkpoints = Checkpointer::start_with(&path, Some(64)).unwrap();
    let w = Writer::start(conn, Some(checkpoints)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let (w, stop) = (w.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rows = 0u64;
            while !stop.load(Ordering::Relaxed) {
                w.exec(|c| {
                    c.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                        .map(|_| ())
                        .map_err(StoreError::from)
                })
                .await
                .unwrap();
                rows += 1;
            }
            rows
        })
    };
    // Each turn comes after a pass of the checkpoint thread (every 500 ms); wait for five,
    // woken by each, bounded at 30 s.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let turned = w.stats.wal_turned.notified();
        let turns = w.stats.wal_turn_latency.snapshot().count;
        if turns >= 5 {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, turned).await.is_ok(),
            "the writer took {turns} turns in 30 s"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let rows = writing.await.unwrap();
    // The WAL header's checkpoint sequence number (bytes 12..16, big-endian) counts the
    // times the WAL started over.
    let wal = std::fs::read(dir.path().join("t.db-wal")).unwrap();
    let restarts = u32::from_be_bytes([wal[12], wal[13], wal[14], wal[15]]);
    assert!(
        restarts >= 3,
        "the WAL started over {restarts} times in five turns, after {rows} rows"
    );
    w.shutdown().await.unwrap();
}

/// A writer over a migrated file with one user and one unlimited key, for journal appends.
fn open_journal() -> (tempfile::TempDir, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("j.db")).unwrap();
    pragmas::enable_wal(&conn).unwrap();
    pragmas::apply_writer(&conn).unwrap();
    crate::store::migrate::run(&mut conn).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, password_hash, role, quota, created_at)
            VALUES (1, 'ann', 'x', 'user', 100000000, 0);
         INSERT INTO api_keys (id, user_id, name, digest, prefix, unlimited, created_at)
            VALUES (1, 1, 'a', x'01', 'sk-a', 1, 0);",
    )
    .unwrap();
    (dir, Writer::start(conn, None).unwrap())
}

/// A relayed call's append, as settle makes it.
async fn append_call(w: &Writer, i: i64) {
    use crate::store::journal::{self, Charge};
    w.append(move |c| {
        let e = crate::store::logs::LogEntry {
            created_at: 1_000 + i,
            log_type: 2,
            request_id: format!("r{i}"),
            user_id: Some(1),
            key_id: Some(1),
            ..Default::default()
        };
        let charge = Charge {
            user_id: 1,
            key_id: 1,
            key_limited: false,
            quota: 1,
        };
        journal::append(c, e, Some(charge))
    })
    .await
    .unwrap();
}

/// One caller at a time: each append commits at once, none waits for company.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_never_waits_for_other_appends() {
    let (_dir, w) = open_journal();
    for i in 0..200 {
        append_call(&w, i).await;
    }
    assert_eq!(w.stats.lingered.load(Ordering::Relaxed), 0);
    assert_eq!(w.stats.commits.load(Ordering::Relaxed), 200);
    w.shutdown().await.unwrap();
}

/// Appends one at a time fold in small chunks: the call after a fold waits for it, and a
/// 1,024-row fold was a single connection's p99.9 (issue 15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_callers_appends_fold_in_small_chunks() {
    use crate::store::journal::{FOLD_CHUNK_ALONE, waiting};
    let (dir, w) = open_journal();
    let calls = 2 * FOLD_CHUNK_ALONE as i64 + 44;
    for i in 0..calls {
        append_call(&w, i).await;
    }
    let c = Connection::open(dir.path().join("j.db")).unwrap();
    let left = waiting(&c).unwrap();
    // The once-a-second timer may have folded too; it only leaves fewer rows.
    assert!(left < FOLD_CHUNK_ALONE as i64, "{left} rows wait");
    assert!(w.stats.folds.load(Ordering::Relaxed) >= 2);
    assert_eq!(
        w.stats.folded_rows.load(Ordering::Relaxed) as i64 + left,
        calls
    );
    w.shutdown().await.unwrap();
}

/// Calls side by side, each spending ~100 µs of CPU before its append (as a relayed call
/// does), on two threads: their appends share commits. Without the wait for more appends
/// the writer committed every ~2 calls here, writing its journal page once per commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_side_by_side_share_their_commits() {
    let (_dir, w) = open_journal();
    let mut tasks = Vec::new();
    for t in 0..32i64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..60 {
                let until = std::time::Instant::now() + std::time::Duration::from_micros(100);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                append_call(&w, t * 1_000 + i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let commits = w.stats.commits.load(Ordering::Relaxed);
    assert!(
        32 * 60 / commits >= 8,
        "{commits} commits for {} appends",
        32 * 60
    );
    assert!(w.stats.lingered.load(Ordering::Relaxed) > 0);
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_a_failure_stays_alone() {
    let (dir, w) = open();
    let mut tasks = Vec::new();
    for i in 0..400i64 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            // Every 50th job writes twice then fails: its savepoint must undo both rows.
            w.exec(move |c| {
                c.execute("INSERT INTO t (v) VALUES (?1)", [i])?;
                if i % 50 == 0 {
                    c.execute("INSERT INTO t (v) VALUES (?1)", [i + 10_000])?;
                    c.execute("INSERT INTO t (v) VALUES (?1)", [i])?; // UNIQUE violation
                }
                Ok(())
            })
            .await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 8);
    let commits = w.stats.commits.load(Ordering::Relaxed);
    assert!(
        commits < 400,
        "group commit batched {commits} commits for 400 writes"
    );
    w.shutdown().await.unwrap();
    let conn = Connection::open(dir.path().join("w.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 392);
    let big: i64 = conn
        .query_row("SELECT COUNT(*) FROM t WHERE v >= 10000", [], |r| r.get(0))
        .unwrap();
    assert_eq!(big, 0);
    // shutdown checkpointed: the WAL is empty
    let wal = std::fs::metadata(dir.path().join("w.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
}

/// Each look at the queue wakes the writer, which on sluice's one core preempts the thread
/// serving calls: the linger looks every half gap (it looked every fifth), and no later than
/// the gap's or `LINGER_MAX`'s end.
#[test]
fn the_linger_looks_at_the_queue_every_half_gap_and_at_its_ends() {
    use std::time::Duration;
    let t = std::time::Instant::now();
    let (gap_over, max_over) = (t + LINGER_GAP, t + LINGER_MAX);
    assert_eq!(until_next_look(t, gap_over, max_over), LINGER_GAP / 2);
    assert_eq!(
        until_next_look(t + Duration::from_micros(400), gap_over, max_over),
        Duration::from_micros(100)
    );
    let late = t + LINGER_MAX - Duration::from_micros(50);
    assert_eq!(
        until_next_look(late, late + LINGER_GAP, max_over),
        Duration::from_micros(50)
    );
}

/// The timer's fold runs after the batch at hand, in a transaction of its own: a call whose
/// append shares the writer's turn with the timer's request is not held by the fold (as a job,
/// the timer's fold ran first inside the batch, and the call waited for every waiting row to
/// fold). Rows the timer found still fold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timers_fold_comes_after_the_calls_it_meets() {
    use crate::store::journal::{FOLD_CHUNK_ALONE, waiting};
    let (dir, w) = open_journal();
    // Fewer rows than a lone caller's chunk, so no append folds them (the job that holds the
    // writer below is an append too, and the writer counts it as a row).
    let rows = FOLD_CHUNK_ALONE as i64 - 2;
    for i in 0..rows {
        append_call(&w, i).await;
    }
    // Hold the writer inside an append job until the timer's request and a call are queued
    // behind it, so that its next turn takes both.
    let (started, running) = std::sync::mpsc::channel::<()>();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let w2 = w.clone();
    let blocker = tokio::spawn(async move {
        w2.append(move |_| {
            let _ = started.send(());
            let _ = held.recv();
            Ok(())
        })
        .await
    });
    tokio::task::spawn_blocking(move || running.recv())
        .await
        .unwrap()
        .unwrap();
    w.tx.send(Msg::FoldDue).await.unwrap();
    let w2 = w.clone();
    let call = tokio::spawn(async move { w2.append(waiting).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.queue_depth() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never queued"
        );
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    // The call ran with the rows still waiting: the fold had not run before it.
    assert_eq!(call.await.unwrap().unwrap(), rows);
    // An append does not fold; once it is answered, the writer's earlier turn (the timer's
    // fold) is over, and only its own row waits.
    append_call(&w, rows).await;
    let c = Connection::open(dir.path().join("j.db")).unwrap();
    assert_eq!(waiting(&c).unwrap(), 1);
    assert!(w.stats.folded_rows.load(Ordering::Relaxed) >= rows as u64);
    w.shutdown().await.unwrap();
}
