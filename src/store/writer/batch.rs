//! One batch: its jobs in one transaction, each in a savepoint, the journal folded before the
//! first job that is not an append, one commit, then every caller answered.

use super::fold::{fold_chunk, fold_in_savepoint};
use super::jobs::Ran;
use super::*;

pub(super) fn commit_batch(
    conn: &Connection,
    batch: &mut Vec<Job>,
    stats: &WriterStats,
    folds: &mut Folds,
) {
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
    let mut rows = folds.rows_waiting(conn);
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
