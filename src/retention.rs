//! The log retention task: deletes consume, error and system rows older than the
//! `log.retention_days` option, in small batches, so the log table stays bounded (a busy
//! gateway writes millions of rows a month). Rollups and purged totals keep what the rows
//! said; the SQL is in [`crate::store::log_purge`].

use crate::store::{Store, StoreError, log_purge};
use std::time::Duration;

/// Rows deleted per writer transaction: small enough that requests queued behind a batch wait
/// only milliseconds.
const BATCH: usize = 5_000;
/// How often the task looks for rows past retention.
const EVERY: Duration = Duration::from_secs(600);

/// Deletes purgeable rows created before `before`, batch by batch; returns how many went.
pub async fn purge(store: &Store, before: i64) -> Result<usize, StoreError> {
    purge_in_batches(store, before, BATCH).await
}

/// [`purge`] with `batch` rows per writer transaction (tests use small ones to run many).
pub async fn purge_in_batches(
    store: &Store,
    before: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let n = store
            .writer
            .exec(move |c| log_purge::purge_batch(c, before, batch))
            .await?;
        total += n;
        if n < batch {
            return Ok(total);
        }
        // Let request writes in between batches.
        tokio::task::yield_now().await;
    }
}

/// One pass keeping `days` days of rows (the `log.retention_days` option; 0 keeps all).
/// Returns rows deleted.
pub async fn run_once(store: &Store, days: u32) -> Result<usize, StoreError> {
    if days == 0 {
        return Ok(0);
    }
    let before = crate::util::now_secs() - i64::from(days) * 86_400;
    let n = purge(store, before).await?;
    if n > 0 {
        log::info!("retention: deleted {n} log rows older than {days} days");
    }
    Ok(n)
}

/// Runs [`run_once`] now and every ten minutes until `shutdown` turns true, with the days
/// `days` gives at each pass (the current option).
pub fn spawn(
    store: Store,
    days: impl Fn() -> u32 + Send + 'static,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_once(&store, days()).await {
                log::error!("retention: deleting old log rows failed: {e}");
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
}
