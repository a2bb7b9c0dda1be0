//! The backup schedule: one backup every `every_secs`, counted from the newest backup in the
//! directory, so restarts neither skip nor repeat one.
//!
//! The policy is read again on every tick (at most a minute apart), so a changed option takes
//! effect without a restart. A failed attempt is retried after a pause instead of every tick.
//! The copy runs on a blocking thread; shutdown waits for a running copy to finish.

use super::{BackupError, BackupPolicy, Backups};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest sleep between two looks at the policy and the directory.
const TICK: Duration = Duration::from_secs(60);
/// With no backup yet, the first comes this long after start (or one period, if shorter): a
/// fresh install has nothing to save, and a server that keeps restarting still gets one.
const FIRST_DELAY_SECS: u64 = 600;
/// After a failure, the next attempt waits this long (or one period, if shorter).
const RETRY_SECS: u64 = 900;

/// When the next backup is due (Unix seconds), or `None` when the schedule is off.
pub fn due_at(
    policy: BackupPolicy,
    newest: Option<i64>,
    last_failure: Option<i64>,
    started: i64,
) -> Option<i64> {
    if policy.every_secs == 0 {
        return None;
    }
    let every = i64::try_from(policy.every_secs).unwrap_or(i64::MAX);
    let base = match newest {
        Some(t) => t.saturating_add(every),
        None => started.saturating_add(every.min(FIRST_DELAY_SECS as i64)),
    };
    let retry = last_failure.map(|t| t.saturating_add(every.min(RETRY_SECS as i64)));
    Some(retry.map_or(base, |r| r.max(base)))
}

/// Runs the schedule until `shutdown` turns true. Await the handle before closing the store.
pub fn spawn_scheduler(
    backups: Arc<Backups>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = crate::util::now_secs();
        let mut last_failure: Option<i64> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let b = backups.clone();
            let newest = tokio::task::spawn_blocking(move || b.list())
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|l| l.first().map(|i| i.created_at));
            let now = crate::util::now_secs();
            let wait = match due_at(backups.policy(), newest, last_failure, started) {
                Some(due) if due <= now => {
                    if !run_once(&backups).await {
                        last_failure = Some(crate::util::now_secs());
                    }
                    continue;
                }
                Some(due) => Duration::from_secs((due - now) as u64).min(TICK),
                None => TICK,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}

/// One scheduled backup; false when it failed (logged by [`Backups::run`]).
async fn run_once(backups: &Arc<Backups>) -> bool {
    log::info!("scheduled backup starting");
    let b = backups.clone();
    match tokio::task::spawn_blocking(move || b.run()).await {
        Ok(Ok(info)) => info.integrity == "ok",
        // An API backup or hot copy is running: that one counts; look again next tick.
        Ok(Err(BackupError::Busy)) => {
            log::info!("scheduled backup skipped: another backup is running");
            true
        }
        Ok(Err(_)) => false,
        Err(e) => {
            log::error!("scheduled backup task failed: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::sync::atomic::Ordering;

    fn every(s: u64) -> BackupPolicy {
        BackupPolicy {
            every_secs: s,
            keep: 7,
        }
    }

    #[test]
    fn due_times() {
        let day: i64 = 86_400;
        let every = |s: i64| every(s as u64);
        assert_eq!(due_at(every(0), Some(5), None, 0), None, "off");
        assert_eq!(
            due_at(every(day), None, None, 1000),
            Some(1600),
            "first after 10 min"
        );
        assert_eq!(
            due_at(every(60), None, None, 1000),
            Some(1060),
            "or one short period"
        );
        assert_eq!(due_at(every(day), Some(50), None, 1000), Some(50 + day));
        assert_eq!(
            due_at(every(day), Some(50), Some(2000), 1000),
            Some(50 + day),
            "a failure does not pull the next one forward"
        );
        assert_eq!(
            due_at(every(day), Some(-day), Some(2000), 1000),
            Some(2900),
            "overdue: retry 15 min after the failure"
        );
        assert_eq!(
            due_at(super::tests::every(u64::MAX), Some(1), None, 0),
            Some(i64::MAX)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scheduler_makes_backups_keeps_n_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sluice.db")).unwrap();
        let policy = Arc::new(|| BackupPolicy {
            every_secs: 1,
            keep: 2,
        });
        let backups = Arc::new(Backups::new(store, dir.path(), policy));
        let (tx, rx) = watch::channel(false);
        let task = spawn_scheduler(backups.clone(), rx);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while backups.stats.ok.load(Ordering::Relaxed) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "no third backup");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        let left = backups.list().unwrap();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|b| b.integrity == "ok"));
    }
}
