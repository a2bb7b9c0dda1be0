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

use super::checkpoint::Checkpointer;
use super::{StoreError, journal, pragmas};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

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
/// Prepared statements the writer's connection keeps.
const STATEMENTS: usize = 128;
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
    /// A journal append: runs without folding the journal first.
    fn appends(&self) -> bool;
    fn run(&mut self, conn: &Connection) -> Ran;
    /// The job cannot run (the fold before it failed): `finish` answers with `e`.
    fn refuse(&mut self, e: StoreError);
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

type Job = Box<dyn WriteJob>;

/// Where a job's answer goes: an async caller, or a thread that may be an async worker
/// ([`Writer::fold_blocking`]), which must not use tokio's blocking receive.
enum Reply<T> {
    Async(oneshot::Sender<Result<T, StoreError>>),
    Sync(std::sync::mpsc::SyncSender<Result<T, StoreError>>),
}

struct TypedJob<T, F> {
    f: Option<F>,
    appends: bool,
    result: Option<Result<T, StoreError>>,
    done: Reply<T>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn appends(&self) -> bool {
        self.appends
    }

    fn refuse(&mut self, e: StoreError) {
        self.f = None;
        self.result = Some(Err(e));
    }

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
        match self.done {
            Reply::Async(tx) => {
                let _ = tx.send(out);
            }
            Reply::Sync(tx) => {
                let _ = tx.send(out);
            }
        }
    }
}

fn typed_job<T, F>(f: F, appends: bool) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (done, rx) = oneshot::channel();
    let job = TypedJob {
        f: Some(f),
        appends,
        result: None,
        done: Reply::Async(done),
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
    /// Journal appends run so far, and how many of them the last committed fold had seen:
    /// rows may be waiting while the two differ. Both only grow; a rolled-back append
    /// counts too, which at worst asks for a fold that finds nothing.
    pub journal_appended: AtomicU64,
    pub journal_folded: AtomicU64,
    /// Folds committed that moved rows, and the rows they moved.
    pub folds: AtomicU64,
    pub folded_rows: AtomicU64,
    /// Batches that waited for more appends before committing (see [`LINGER_GAP`]).
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

/// How often rows waiting in the journal are folded when nothing else folds them first.
const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks for a fold every [`FOLD_EVERY`] while rows wait; ends when the writer has stopped.
/// It holds only a weak sender, so it never keeps the writer's queue open.
fn fold_timer(tx: &mpsc::WeakSender<Msg>, stats: &WriterStats) {
    loop {
        std::thread::sleep(FOLD_EVERY);
        let Some(tx) = tx.upgrade() else { return };
        if tx.is_closed() {
            return;
        }
        if stats.journal_waiting() {
            let (job, _answer_unread) = typed_job(|_| Ok(()), false);
            // A full queue folds soon anyway: every non-append job folds first.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::Job(job)) {
                return;
            }
        }
    }
}

/// The writer thread's own state across batches.
#[derive(Default)]
struct Folds {
    /// The last fold failed: the next success is logged, the failures between are not.
    failing: bool,
    /// Rows in the journal after the last commit; `None` after a failed commit, until counted.
    rows: Option<u64>,
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<WriterStats>,
    checkpoints: Option<Checkpointer>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut stop: Option<oneshot::Sender<Result<(), StoreError>>> = None;
    let mut folds = Folds::default();
    // Appends the last batch carried: more than one says calls arrive side by side.
    let mut last_appends = 0usize;
    while stop.is_none() {
        match rx.blocking_recv() {
            Some(Msg::Job(j)) => batch.push(j),
            Some(Msg::Stop(s)) => stop = Some(s),
            None => break,
        }
        let first = std::time::Instant::now();
        take_waiting(&mut rx, &mut batch, &mut stop);
        if last_appends > 1 && stop.is_none() && batch.iter().all(|j| j.appends()) {
            stats.lingered.fetch_add(1, Ordering::Relaxed);
            linger(&mut rx, &mut batch, &mut stop, first);
        }
        last_appends = batch.iter().filter(|j| j.appends()).count();
        let folds_before = stats.folds.load(Ordering::Relaxed);
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, &stats, &mut folds);
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
    while let Ok(Msg::Job(j)) = rx.try_recv() {
        batch.push(j);
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
) -> usize {
    let mut n = 0;
    while batch.len() < MAX_BATCH && stop.is_none() {
        match rx.try_recv() {
            Ok(Msg::Job(j)) => {
                batch.push(j);
                n += 1;
            }
            Ok(Msg::Stop(s)) => *stop = Some(s),
            Err(_) => break,
        }
    }
    n
}

/// Waits for more appends to join an all-append batch (see [`LINGER_GAP`]). There is no event
/// for "a call is about to append", so this polls the queue at a fraction of the gap, bounded by
/// `LINGER_MAX` from the batch's first job. Polling is on purpose: a condition variable that
/// each sender signalled woke the writer at once for every append, a cross-thread wake-up per
/// call on sluice's one core, and streamed calls at 32 connections fell from ~8,200 to ~7,400/s
/// (two A/B pairs, shared machine); the poll takes whatever arrived in 100 µs with one wake.
fn linger(
    rx: &mut mpsc::Receiver<Msg>,
    batch: &mut Vec<Job>,
    stop: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
    first: std::time::Instant,
) {
    let poll = LINGER_GAP / 5;
    let mut last_arrival = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        if now.duration_since(last_arrival) >= LINGER_GAP
            || now.duration_since(first) >= LINGER_MAX
            || batch.len() >= LINGER_APPENDS.min(MAX_BATCH)
            || stop.is_some()
            || batch.iter().any(|j| !j.appends())
        {
            return;
        }
        std::thread::sleep(poll);
        if take_waiting(rx, batch, stop) > 0 {
            last_arrival = std::time::Instant::now();
        }
    }
}

/// Folds the journal (the oldest `limit` rows, or all) in a savepoint of its own; returns how
/// many rows moved. A failure rolls the savepoint back, leaving the journal rows where they were.
fn fold_in_savepoint(
    conn: &Connection,
    limit: Option<u64>,
    stats: &WriterStats,
    folds: &mut Folds,
) -> Result<u64, StoreError> {
    let started = std::time::Instant::now();
    control(conn, "SAVEPOINT fold")?;
    let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
    match journal::fold_oldest(conn, limit) {
        Ok(n) => {
            control(conn, "RELEASE fold")?;
            if n > 0 {
                stats.fold_latency.observe(started.elapsed());
            }
            if folds.failing {
                log::info!("the log journal folds again");
                folds.failing = false;
            }
            if n > 0 {
                stats.folds.fetch_add(1, Ordering::Relaxed);
                stats.folded_rows.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(n as u64)
        }
        Err(e) => {
            let _ = control(conn, "ROLLBACK TO fold");
            let _ = control(conn, "RELEASE fold");
            if !folds.failing {
                log::error!(
                    "folding the log journal failed: {e}; its rows stay (every charge is in \
                     them and in the balances in memory), and writes and reads that need them \
                     fail until a fold succeeds"
                );
                folds.failing = true;
            }
            Err(e)
        }
    }
}

/// Folds the oldest `chunk` of the `rows` waiting, in its own transaction.
fn fold_chunk(conn: &Connection, rows: u64, chunk: u64, stats: &WriterStats, folds: &mut Folds) {
    // Every append counted so far is committed, so in the journal.
    let mark = stats.journal_appended.load(Ordering::Acquire);
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        log::error!("cannot begin a write transaction to fold the journal: {e}");
        return;
    }
    let Ok(moved) = fold_in_savepoint(conn, Some(chunk), stats, folds) else {
        let _ = control(conn, "ROLLBACK");
        return;
    };
    match control(conn, "COMMIT") {
        Ok(()) => {
            let left = rows.saturating_sub(moved);
            folds.rows = Some(left);
            if left == 0 {
                stats.journal_folded.fetch_max(mark, Ordering::AcqRel);
            }
        }
        Err(e) => {
            log::error!("commit of a journal fold failed: {e}");
            let _ = control(conn, "ROLLBACK");
            // Counted again by the next batch.
            folds.rows = None;
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>, stats: &WriterStats, folds: &mut Folds) {
    let started = std::time::Instant::now();
    let n = batch.len();
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        log::error!("cannot begin a write transaction: {e}");
        stats.commit_failed();
        for job in batch.drain(..) {
            job.finish(Err(format!("cannot begin a write transaction: {e}")));
        }
        return;
    }
    let mut storage_failed = false;
    // Rows in the journal as this transaction goes (counted again after a failed commit).
    let mut rows = match folds.rows {
        Some(r) => r,
        None => journal::waiting(conn).map_or(0, |r| r.max(0) as u64),
    };
    // Once the journal is empty, the appends run so far are all folded: published when the
    // transaction commits.
    let mut folded_mark: Option<u64> = None;
    let mut fold_failed = false;
    for job in batch.iter_mut() {
        if !job.appends() && rows > 0 {
            if fold_failed {
                job.refuse(StoreError::Commit(
                    "the log journal could not be folded".into(),
                ));
                continue;
            }
            // Read before folding: appends are only made on this thread, so every one
            // counted here is in the rows the fold moves.
            let mark = stats.journal_appended.load(Ordering::Acquire);
            match fold_in_savepoint(conn, None, stats, folds) {
                Ok(_) => {
                    rows = 0;
                    folded_mark = Some(mark);
                }
                Err(e) => {
                    storage_failed |= e.is_storage_failure();
                    fold_failed = true;
                    job.refuse(e);
                    continue;
                }
            }
        } else if !job.appends() && folded_mark.is_none() && stats.journal_waiting() {
            // Nothing in the journal though appends were counted (some were rolled back):
            // the counters catch up.
            folded_mark = Some(stats.journal_appended.load(Ordering::Acquire));
        }
        if let Err(e) = control(conn, "SAVEPOINT job") {
            log::error!("cannot open a savepoint: {e}");
            continue;
        }
        let ran = job.run(conn);
        if ran != Ran::Ok {
            // Undo only this job's writes; the rest of the batch commits.
            let _ = control(conn, "ROLLBACK TO job");
        } else if job.appends() {
            stats.journal_appended.fetch_add(1, Ordering::AcqRel);
            rows += 1;
        }
        storage_failed |= ran == Ran::StorageFailed;
        let _ = control(conn, "RELEASE job");
    }
    let result = match control(conn, "COMMIT") {
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
            let _ = control(conn, "ROLLBACK");
            stats.commit_failed();
            Err(e.to_string())
        }
    };
    folds.rows = result.is_ok().then_some(rows);
    if result.is_ok()
        && let Some(mark) = folded_mark
    {
        stats.journal_folded.fetch_max(mark, Ordering::AcqRel);
    }
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(n as u64, Ordering::Relaxed);
    let took = started.elapsed();
    stats
        .last_commit_micros
        .store(took.as_micros() as u64, Ordering::Relaxed);
    stats.commit_latency.observe(took);
    let committed = result.is_ok();
    let appends = batch.iter().filter(|j| j.appends()).count();
    for job in batch.drain(..) {
        job.finish(result.clone());
    }
    // Under load appends alone fill batch after batch: fold the oldest chunk once a chunk
    // waits, in a transaction of its own after the batch's callers have their answers (inside
    // the batch's transaction, every call in it waited for the fold: the slowest calls of a
    // single connection, issue 15). The next call still waits for that fold, so a caller
    // alone gets small folds (see `journal::FOLD_CHUNK_ALONE`).
    let chunk = if appends > 1 {
        journal::FOLD_CHUNK
    } else {
        journal::FOLD_CHUNK_ALONE
    };
    if committed && rows >= chunk && !fold_failed {
        fold_chunk(conn, rows, chunk, stats, folds);
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
        let checkpoints = Checkpointer::start_with(&path, 64).unwrap();
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
}
