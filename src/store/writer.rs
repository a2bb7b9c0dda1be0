//! The single writer: one thread owns the only writing connection.
//!
//! Jobs arrive over a bounded channel. The thread takes every job waiting (up to a batch
//! limit), runs them in one `BEGIN IMMEDIATE` transaction — each inside its own SAVEPOINT, so
//! one failing job rolls back alone — commits once, and only then answers each caller. That is
//! group commit: under load many requests share one commit, and a caller that got `Ok` knows its
//! rows are durable. Starting with `BEGIN IMMEDIATE` means a write lock is taken up front, so no
//! deferred read-to-write upgrade can fail with SQLITE_BUSY.

use super::checkpoint::Checkpointer;
use super::{StoreError, pragmas};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one transaction; bounds how long one commit holds the lock.
const MAX_BATCH: usize = 512;
/// Jobs queued before senders wait (back-pressure instead of unbounded memory).
const QUEUE: usize = 16_384;

/// How a job's own statements went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ran {
    Ok,
    /// The job's error: its savepoint is rolled back, the rest of the batch commits.
    Failed,
    /// SQLite could not write the file (disk full, I/O error): as good as a failed commit.
    StorageFailed,
}

/// A unit of work: `run` inside the transaction, then `finish` with the commit's outcome.
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> Ran;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

type Job = Box<dyn WriteJob>;

struct TypedJob<T, F> {
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    done: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Ran {
        let Some(f) = self.f.take() else {
            return Ran::Failed;
        };
        let r = f(conn);
        let ran = match &r {
            Ok(_) => Ran::Ok,
            Err(e) if e.is_storage_failure() => Ran::StorageFailed,
            Err(_) => Ran::Failed,
        };
        self.result = Some(r);
        ran
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(StoreError::Commit("the write was not run".into())),
            // The job's own error says more than the failed commit it caused.
            (Err(_), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(StoreError::Commit(e)),
        };
        let _ = self.done.send(out);
    }
}

fn typed_job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (done, rx) = oneshot::channel();
    let job = TypedJob {
        f: Some(f),
        result: None,
        done,
    };
    (Box::new(job), rx)
}

enum Msg {
    Job(Job),
    /// Finish queued jobs, checkpoint, close the connection, then answer.
    Stop(oneshot::Sender<Result<(), StoreError>>),
}

/// Counters the health and metrics endpoints read.
#[derive(Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
    pub failed_commits: AtomicU64,
    pub last_commit_micros: AtomicU64,
    pub commit_latency: crate::metrics::Histogram,
    /// The last transaction could not be written (a failed BEGIN or COMMIT, or a job that
    /// failed to write the file); cleared by the next commit that succeeds. While it is set
    /// the store cannot be trusted to record a charge, so relay calls are refused up front.
    pub failing: AtomicBool,
    /// Woken when a transaction fails to write, so the health pinger checks at once.
    pub failed: tokio::sync::Notify,
}

impl WriterStats {
    fn commit_failed(&self) {
        self.failed_commits.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        self.failed.notify_one();
    }
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<WriterStats>,
    thread: Arc<parking_lot::Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, with `checkpoints` (if any) running beside it
    /// until the writer stops.
    pub fn start(
        conn: Connection,
        checkpoints: Option<Checkpointer>,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, s, checkpoints))?;
        Ok(Writer {
            tx,
            stats,
            thread: Arc::new(parking_lot::Mutex::new(Some(handle))),
        })
    }

    /// Runs `f` inside the next transaction and returns its result once that transaction has committed.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, done_rx) = typed_job(f);
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        done_rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Same as [`Writer::exec`] from a thread that is not an async worker (CLI, start-up).
    pub fn exec_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, done_rx) = typed_job(f);
        self.tx
            .blocking_send(Msg::Job(job))
            .map_err(|_| StoreError::WriterGone)?;
        done_rx
            .blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Jobs waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        QUEUE - self.tx.capacity()
    }

    /// Drains the queue, checkpoints the WAL into the main file and stops the thread.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Stop(tx)).await.is_err() {
            return Ok(()); // already stopped
        }
        let result = rx.await.map_err(|_| StoreError::WriterGone)?;
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        result
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<WriterStats>,
    checkpoints: Option<Checkpointer>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut stop: Option<oneshot::Sender<Result<(), StoreError>>> = None;
    while stop.is_none() {
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::Stop(s)) => stop = Some(s),
            None => break,
        }
        while batch.len() < MAX_BATCH && stop.is_none() {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Stop(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &stats);
        }
    }
    // Stop: anything still queued behind the Stop message is refused by the closed channel.
    rx.close();
    while let Ok(Msg::Job(j)) = rx.try_recv() {
        batch.push(j);
    }
    if !batch.is_empty() {
        commit_batch(&conn, &mut batch, &stats);
    }
    // The final TRUNCATE checkpoint needs the WAL to itself.
    if let Some(mut c) = checkpoints {
        c.stop();
    }
    let result = pragmas::checkpoint_truncate(&conn).map_err(StoreError::from);
    if let Err(e) = &result {
        log::error!("WAL checkpoint at shutdown failed: {e}");
    }
    drop(conn);
    if let Some(s) = stop {
        let _ = s.send(result);
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>, stats: &WriterStats) {
    let started = std::time::Instant::now();
    let n = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        log::error!("cannot begin a write transaction: {e}");
        stats.commit_failed();
        for job in batch.drain(..) {
            job.finish(Err(format!("cannot begin a write transaction: {e}")));
        }
        return;
    }
    let mut storage_failed = false;
    for job in batch.iter_mut() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            log::error!("cannot open a savepoint: {e}");
            continue;
        }
        let ran = job.run(conn);
        if ran != Ran::Ok {
            // Undo only this job's writes; the rest of the batch commits.
            let _ = conn.execute_batch("ROLLBACK TO job");
        }
        storage_failed |= ran == Ran::StorageFailed;
        let _ = conn.execute_batch("RELEASE job");
    }
    let result = match conn.execute_batch("COMMIT") {
        Ok(()) if storage_failed => {
            stats.commit_failed();
            Ok(())
        }
        Ok(()) => {
            stats.failing.store(false, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            log::error!("commit of {n} writes failed: {e}");
            let _ = conn.execute_batch("ROLLBACK");
            stats.commit_failed();
            Err(e.to_string())
        }
    };
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(n as u64, Ordering::Relaxed);
    let took = started.elapsed();
    stats
        .last_commit_micros
        .store(took.as_micros() as u64, Ordering::Relaxed);
    stats.commit_latency.observe(took);
    for job in batch.drain(..) {
        job.finish(result.clone());
    }
}

#[cfg(test)]
mod tests {
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
}
