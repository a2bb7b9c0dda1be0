//! Folding the journal from the writer's thread: the timer that asks for it, a fold inside a
//! batch's savepoint, and the folds after a batch (a chunk, or all the timer found waiting).

use super::*;

/// How often rows waiting in the journal are folded when nothing else folds them first.
pub(super) const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks for a fold every [`FOLD_EVERY`] while rows wait; ends when the writer has stopped.
/// It holds only a weak sender, so it never keeps the writer's queue open.
pub(super) fn fold_timer(tx: &mpsc::WeakSender<Msg>, stats: &WriterStats) {
    loop {
        std::thread::sleep(FOLD_EVERY);
        let Some(tx) = tx.upgrade() else { return };
        if tx.is_closed() {
            return;
        }
        if stats.journal_waiting() {
            // A full queue folds soon anyway: a chunk waits, or a non-append job folds first.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::FoldDue) {
                return;
            }
        }
    }
}

/// The writer thread's own state across batches.
#[derive(Default)]
pub(super) struct Folds {
    /// The last fold failed: the next success is logged, the failures between are not.
    pub(super) failing: bool,
    /// Rows in the journal after the last commit; `None` after a failed commit, until counted.
    pub(super) rows: Option<u64>,
}

impl Folds {
    /// Rows in the journal now: as the last commit left them, or counted after a failed one.
    pub(super) fn rows_waiting(&self, conn: &Connection) -> u64 {
        match self.rows {
            Some(r) => r,
            None => journal::waiting(conn).map_or(0, |r| r.max(0) as u64),
        }
    }
}

/// Folds the journal (the oldest `limit` rows, or all) in a savepoint of its own; returns how
/// many rows moved. A failure rolls the savepoint back, leaving the journal rows where they were.
pub(super) fn fold_in_savepoint(
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

/// Folds every row waiting, in a transaction of its own (the timer's fold, after a batch).
pub(super) fn fold_waiting(conn: &Connection, stats: &WriterStats, folds: &mut Folds) {
    let rows = folds.rows_waiting(conn);
    if rows > 0 {
        fold_chunk(conn, rows, rows, stats, folds);
    } else if stats.journal_waiting() {
        // Nothing in the journal though appends were counted (some were rolled back): the
        // counters catch up.
        let mark = stats.journal_appended.load(Ordering::Acquire);
        stats.journal_folded.fetch_max(mark, Ordering::AcqRel);
    }
}

/// Folds the oldest `chunk` of the `rows` waiting, in its own transaction.
pub(super) fn fold_chunk(
    conn: &Connection,
    rows: u64,
    chunk: u64,
    stats: &WriterStats,
    folds: &mut Folds,
) {
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
