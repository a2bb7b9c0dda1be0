//! Scheduled tests: every `channel.test_interval_minutes` (0 = off), every channel an admin has
//! not turned off is tested, a few at a time. The interval is read again at least once a
//! minute, so a changed option applies without a restart. Shutdown cancels a run in progress:
//! a test charges nothing, so nothing is lost.

use super::Host;
use super::TestReport;
use crate::store::channels::{self, ChannelStatus};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Tests in flight at once: enough to get through many channels, few enough not to flood
/// upstreams or the shared pool.
const CONCURRENCY: usize = 4;
/// Longest sleep between two looks at the option.
const TICK: Duration = Duration::from_secs(60);

/// What one run over all channels found.
#[derive(Debug, Default, Serialize)]
pub struct RunReport {
    pub tested: usize,
    pub passed: usize,
    pub failed: usize,
    /// Channels turned off by this run.
    pub disabled: usize,
    /// Channels turned back on by this run.
    pub enabled: usize,
    pub results: Vec<TestReport>,
}

/// Tests every channel except those an admin turned off (they are off on purpose, and a test
/// could not turn them on). One run at a time: a second caller waits for the first.
pub async fn run_once<H: Host>(state: &Arc<H>) -> RunReport {
    let _one = state.channel_health().run_lock.lock().await;
    let rows = match state.store().read(channels::list).await {
        Ok(r) => r,
        Err(e) => {
            log::error!("scheduled channel tests: cannot list channels: {e}");
            return RunReport::default();
        }
    };
    let mut todo: Vec<(i64, ChannelStatus)> = rows
        .iter()
        .filter(|r| r.status() != ChannelStatus::Disabled)
        .map(|r| (r.id, r.status()))
        .rev()
        .collect();
    let mut report = RunReport::default();
    let mut running = JoinSet::new();
    loop {
        while running.len() < CONCURRENCY
            && let Some((id, before)) = todo.pop()
        {
            let state = state.clone();
            running.spawn(async move { (before, super::test_channel(&state, id, None).await) });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        match done {
            Ok((before, Ok(r))) => {
                report.tested += 1;
                if r.ok {
                    report.passed += 1;
                } else {
                    report.failed += 1;
                }
                match (before, r.channel_status) {
                    (ChannelStatus::Enabled, ChannelStatus::AutoDisabled) => report.disabled += 1,
                    (ChannelStatus::AutoDisabled, ChannelStatus::Enabled) => report.enabled += 1,
                    _ => {}
                }
                report.results.push(r);
            }
            // Deleted since the list was read, or the database is failing: logged, go on.
            Ok((_, Err(e))) => log::warn!("scheduled channel test: {e}"),
            Err(e) => log::error!("scheduled channel test task failed: {e}"),
        }
    }
    report.results.sort_by_key(|r| r.channel_id);
    if report.tested > 0 {
        log::info!(
            "channel tests: {} tested, {} passed, {} failed, {} turned off, {} turned back on",
            report.tested,
            report.passed,
            report.failed,
            report.disabled,
            report.enabled
        );
    }
    report
}

/// How long to sleep before looking again, `elapsed` after the last run (or the start); `None`
/// when a run is due. Never more than [`TICK`], so a changed interval applies within a minute.
fn next_wait(interval_minutes: u32, elapsed: Duration) -> Option<Duration> {
    if interval_minutes == 0 {
        return Some(TICK);
    }
    let every = Duration::from_secs(u64::from(interval_minutes) * 60);
    match every.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => Some(left.min(TICK)),
        _ => None,
    }
}

/// Runs the schedule until shutdown. Await the handle before closing the store.
pub fn spawn<H: Host>(state: Arc<H>) -> JoinHandle<()> {
    let mut shutdown = state.shutdown();
    tokio::spawn(async move {
        // The first run comes one interval after start, not at start: a restart loop must not
        // hammer every upstream.
        let mut last = Instant::now();
        loop {
            let minutes = state.catalog().options().channel.test_interval_minutes;
            match next_wait(minutes, last.elapsed()) {
                None => {
                    tokio::select! {
                        _ = run_once(&state) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    last = Instant::now();
                }
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_one_interval_apart_and_off_means_never() {
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(
            next_wait(0, min(10_000)),
            Some(TICK),
            "off: just look again later"
        );
        assert_eq!(next_wait(5, Duration::ZERO), Some(TICK), "capped at a tick");
        assert_eq!(
            next_wait(5, min(5) - Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(next_wait(5, min(5)), None, "due");
        assert_eq!(
            next_wait(5, min(50)),
            None,
            "overdue runs once, not ten times"
        );
    }
}
