//! The single writer: one thread owns the only writing connection.
//!
//! Jobs arrive over a bounded channel. The thread takes every job waiting (up to a batch
//! limit), runs them in one `BEGIN IMMEDIATE` transaction — each inside its own SAVEPOINT, so
//! one failing job rolls back alone — commits once, and only then answers each caller. That is
//! group commit: under load many requests share one commit, and a caller that got `Ok` knows its
//! rows are durable. Starting with `BEGIN IMMEDIATE` means a write lock is taken up front, so no
//! deferred read-to-write upgrade can fail with SQLITE_BUSY.
//!
//! Jobs are of two kinds. A journal append ([`Writer::append`]: a relayed call's row) only
//! appends to `log_journal`. Every other job runs after the journal is folded (see
//! `journal`), in its own savepoint, when rows are waiting: admin changes, manage rows and
//! reconcile see folded balances and rows, and log ids stay in commit order. A fold that fails
//! fails the job it came before (its error says why) and leaves the journal as it was.
//!
//! Here: the [`Writer`] handle, its [`WriterStats`] and the thread's loop (linger, the WAL's
//! turn). `jobs`: what a caller queues and how it is answered; `batch`: one transaction;
//! `fold`: the journal's folds from this thread (inside a batch, before a job that is not an
//! append; after a batch, a chunk or all that the once-a-second timer found waiting).

use super::checkpoint::Checkpointer;
use super::{StoreError, journal, pragmas};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

mod batch;
mod fold;
mod jobs;
#[cfg(test)]
mod tests;

use batch::commit_batch;
use fold::{Folds, fold_timer, fold_waiting};
use jobs::{Job, Msg, Reply, TypedJob, typed_job};

/// Most jobs in one transaction; bounds how long one commit holds the lock.
const MAX_BATCH: usize = 512;

/// Group commit under concurrency. Every commit rewrites at least the journal's last page
/// (4 KiB in the WAL, copied again at the checkpoint), however few rows it adds: at 32
/// connections the writer kept up so well that a commit carried about 2 calls, and the
/// commits alone wrote ~2.6 KiB per call (issue 15). So when the last batch carried more than
/// one append (calls are arriving side by side), a batch that starts with an append waits for
/// the appends that follow, while they keep coming: it commits once [`LINGER_GAP`] passes
/// without a new job, [`LINGER_MAX`] after its first job, at [`LINGER_APPENDS`] appends, or
/// when a job that is not an append arrives. A lone caller (the last batch had one append)
/// never waits. Under load the wait costs throughput nothing (the core keeps serving the calls
/// that will join the batch) and a call's latency at most `LINGER_MAX`; two or three callers
/// side by side pay up to one gap each. With a 250 µs gap, non-stream calls at 32 connections
/// still committed ~6 to a commit (2.2 KiB written per call); streamed ones 20–30 (1.7 KiB).
const LINGER_GAP: std::time::Duration = std::time::Duration::from_micros(500);
const LINGER_MAX: std::time::Duration = std::time::Duration::from_millis(2);
const LINGER_APPENDS: usize = 64;
/// The longest the linger sleeps between two looks at the queue. Each look is a wake-up of the
/// writer, which on sluice's one core preempts the thread serving calls: at 100 µs (a fifth of
/// the gap) the writer woke ~1,900 times a second with 128 streaming connections and the
/// request thread was switched out 3,500 times a second (`perf stat --per-thread`), twice as
/// often as at 32. Half the gap bounds how late a batch notices its gap has passed.
const LINGER_POLL: std::time::Duration = std::time::Duration::from_micros(250);
/// Prepared statements the writer's connection keeps.
const STATEMENTS: usize = 128;
/// Jobs queued before senders wait (back-pressure instead of unbounded memory).
const QUEUE: usize = 16_384;

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
    /// Journal appends run so far, and how many of them the last committed fold had seen:
    /// rows may be waiting while the two differ. Both only grow; a rolled-back append
    /// counts too, which at worst asks for a fold that finds nothing.
    pub journal_appended: AtomicU64,
    pub journal_folded: AtomicU64,
    /// Folds committed that moved rows, and the rows they moved.
    pub folds: AtomicU64,
    pub folded_rows: AtomicU64,
    /// Batches that waited for more appends before committing (see `LINGER_GAP`).
    pub lingered: AtomicU64,
    /// How long each fold held the writer: a call whose append arrives meanwhile waits that
    /// long, so at one connection this is the tail a client sees (issue 15).
    pub fold_latency: crate::metrics::Histogram,
    /// How long each of the writer's turns at the WAL held it (see `checkpoint`).
    pub wal_turn_latency: crate::metrics::Histogram,
    /// Woken after each of the writer's turns at the WAL (about one per 16 MiB written).
    pub wal_turned: tokio::sync::Notify,
}

impl WriterStats {
    /// True while journal rows may be waiting for a fold.
    pub fn journal_waiting(&self) -> bool {
        self.journal_appended.load(Ordering::Acquire) != self.journal_folded.load(Ordering::Acquire)
    }

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
    /// until the writer stops, and a timer that folds the journal while rows wait.
    pub fn start(
        conn: Connection,
        checkpoints: Option<Checkpointer>,
    ) -> Result<Writer, StoreError> {
        // The fold's statements, the append's, the transaction control's and the other jobs'
        // stay prepared (rusqlite keeps 16 by default, fewer than these).
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, s, checkpoints))?;
        let (weak, s) = (tx.downgrade(), stats.clone());
        std::thread::Builder::new()
            .name("journal-fold".into())
            .spawn(move || fold_timer(&weak, &s))?;
        Ok(Writer {
            tx,
            stats,
            thread: Arc::new(parking_lot::Mutex::new(Some(handle))),
        })
    }

    /// Runs `f` inside the next transaction and returns its result once that transaction has
    /// committed. The journal is folded before `f` runs.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(typed_job(f, false)).await
    }

    /// Like [`Writer::exec`] for a job that only appends to the journal (`journal::append`):
    /// it does not fold first, so a relayed call's commit writes its journal page only.
    pub async fn append<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(typed_job(f, true)).await
    }

    async fn send<T>(
        &self,
        (job, done_rx): (Job, oneshot::Receiver<Result<T, StoreError>>),
    ) -> Result<T, StoreError> {
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        done_rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Folds the journal if rows may be waiting; returns once the fold has committed.
    pub async fn fold(&self) -> Result<(), StoreError> {
        if !self.stats.journal_waiting() {
            return Ok(());
        }
        self.exec(|_| Ok(())).await
    }

    /// Same as [`Writer::fold`] from any thread, an async worker's included (a read helper
    /// called there blocks it for one commit, as a pooled read would).
    pub fn fold_blocking(&self) -> Result<(), StoreError> {
        if !self.stats.journal_waiting() {
            return Ok(());
        }
        let (done, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(TypedJob {
            f: Some(|_: &Connection| Ok::<(), StoreError>(())),
            appends: false,
            result: None,
            done: Reply::Sync(done),
        });
        match self.tx.try_send(Msg::Job(job)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::WriterGone),
            Err(mpsc::error::TrySendError::Full(m)) => {
                if tokio::runtime::Handle::try_current().is_ok() {
                    return Err(StoreError::Commit(
                        "the writer's queue is full; try again".into(),
                    ));
                }
                self.tx
                    .blocking_send(m)
                    .map_err(|_| StoreError::WriterGone)?;
            }
        }
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Same as [`Writer::exec`] from a thread that is not an async worker (CLI, start-up).
    pub fn exec_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, done_rx) = typed_job(f, false);
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
    let db_file = checkpoints.as_ref().map(Checkpointer::db_file);
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut stop: Option<oneshot::Sender<Result<(), StoreError>>> = None;
    let mut folds = Folds::default();
    // Appends the last batch carried: more than one says calls arrive side by side.
    let mut last_appends = 0usize;
    // The fold timer asked for a fold (see `Msg::FoldDue`).
    let mut fold_due = false;
    while stop.is_none() {
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::FoldDue) => fold_due = true,
            Some(Msg::Stop(s)) => stop = Some(s),
            None => break,
        }
        let first = std::time::Instant::now();
        take_waiting(&mut rx, &mut batch, &mut stop, &mut fold_due);
        if last_appends > 1
            && stop.is_none()
            && !batch.is_empty()
            && batch.iter().all(|j| j.appends())
        {
            stats.lingered.fetch_add(1, Ordering::Relaxed);
            linger(&mut rx, &mut batch, &mut stop, &mut fold_due, first);
        }
        last_appends = batch.iter().filter(|j| j.appends()).count();
        let folds_before = stats.folds.load(Ordering::Relaxed);
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &stats, &mut folds);
        }
        if std::mem::take(&mut fold_due) && stats.journal_waiting() {
            fold_waiting(&conn, &stats, &mut folds);
        }
        // Not right after a fold: a call arriving meanwhile would wait for both (the slowest
        // call of a single connection was such a pair). The turn waits for the next batch.
        let folded = stats.folds.load(Ordering::Relaxed) != folds_before;
        if !folded
            && checkpoints
                .as_ref()
                .is_some_and(Checkpointer::take_writer_turn)
        {
            take_wal_turn(&conn, &stats);
        }
    }
    // Stop: anything still queued behind the Stop message is refused by the closed channel.
    rx.close();
    while let Ok(m) = rx.try_recv() {
        if let Msg::Job(j) = m {
            batch.push(j);
        }
    }
    // A last fold, so the file left behind holds every row in `logs` and every charge in
    // the balances.
    let (last, _answer_unread) = typed_job(|_| Ok(()), false);
    batch.push(last);
    commit_batch(&conn, &mut batch, &stats, &mut folds);
    // The final TRUNCATE checkpoint needs the WAL to itself.
    if let Some(mut c) = checkpoints {
        c.stop();
    }
    let result = pragmas::checkpoint_truncate(&conn).map_err(StoreError::from);
    if let Err(e) = &result {
        log::error!("WAL checkpoint at shutdown failed: {e}");
    }
    drop(conn);
    // Closed only now that this thread's connection is (see `Checkpointer::db_file`).
    drop(db_file);
    if let Some(s) = stop {
        let _ = s.send(result);
    }
}

/// The writer's turn at the WAL (see `checkpoint`): between two batches, with no transaction
/// open, copies the frames the checkpoint thread has not, so the next transaction starts the
/// WAL over. A failure is left to the next turn and, behind it, the automatic checkpoint.
fn take_wal_turn(conn: &Connection, stats: &WriterStats) {
    let started = std::time::Instant::now();
    match pragmas::checkpoint_passive(conn) {
        Ok(_) => stats.wal_turn_latency.observe(started.elapsed()),
        Err(e) => log::debug!("the writer's WAL checkpoint failed: {e}"),
    }
    stats.wal_turned.notify_waiters();
}

/// Runs a transaction-control statement (`BEGIN IMMEDIATE`, `COMMIT`, a savepoint's) through the
/// statement cache: each batch runs four or more, and parsing them anew each time was ~2 % of
/// sluice's CPU at one connection (a batch per call; `perf`, issue 15).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Moves the jobs already queued into `batch` (up to [`MAX_BATCH`]); returns how many.
fn take_waiting(
    rx: &mut mpsc::Receiver<Msg>,
    batch: &mut Vec<Job>,
    stop: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
    fold_due: &mut bool,
) -> usize {
    let mut n = 0;
    while batch.len() < MAX_BATCH && stop.is_none() {
        match rx.try_recv() {
            Ok(Msg::Job(j)) => {
                batch.push(j);
                n += 1;
            }
            Ok(Msg::FoldDue) => *fold_due = true,
            Ok(Msg::Stop(s)) => *stop = Some(s),
            Err(_) => break,
        }
    }
    n
}

/// How long the linger sleeps before its next look at the queue: [`LINGER_POLL`], or less to
/// look when the gap or `LINGER_MAX` runs out.
fn until_next_look(
    now: std::time::Instant,
    gap_over: std::time::Instant,
    max_over: std::time::Instant,
) -> std::time::Duration {
    gap_over.min(max_over).min(now + LINGER_POLL) - now
}

/// Waits for more appends to join an all-append batch (see [`LINGER_GAP`]). There is no event
/// for "a call is about to append", so this polls the queue every [`LINGER_POLL`] (or at the
/// gap's or `LINGER_MAX`'s end, if sooner). Polling is on purpose: a condition variable that
/// each sender signalled woke the writer at once for every append, a cross-thread wake-up per
/// call on sluice's one core, and streamed calls at 32 connections fell from ~8,200 to ~7,400/s
/// (two A/B pairs, shared machine); the poll takes whatever arrived meanwhile with one wake.
fn linger(
    rx: &mut mpsc::Receiver<Msg>,
    batch: &mut Vec<Job>,
    stop: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
    fold_due: &mut bool,
    first: std::time::Instant,
) {
    let mut last_arrival = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        let (gap_over, max_over) = (last_arrival + LINGER_GAP, first + LINGER_MAX);
        if now >= gap_over
            || now >= max_over
            || batch.len() >= LINGER_APPENDS.min(MAX_BATCH)
            || stop.is_some()
            || batch.iter().any(|j| !j.appends())
        {
            return;
        }
        std::thread::sleep(until_next_look(now, gap_over, max_over));
        if take_waiting(rx, batch, stop, fold_due) > 0 {
            last_arrival = std::time::Instant::now();
        }
    }
}
