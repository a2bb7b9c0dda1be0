//! Counting tasks that shutdown waits for, and the shutdown's cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Resolves when shutdown cuts the relays still running at the end of the grace period.
pub async fn until_cut(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|cut| *cut).await.is_err() {
        // The sender's owner is gone: nothing will cut.
        std::future::pending::<()>().await;
    }
}

/// Counts relay tasks, which may outlive their connection (a disconnected client's stream is
/// drained for its usage), and the tasks they spawn ([`TaskGuard`]); shutdown waits for the
/// count to reach zero.
#[derive(Default)]
pub struct InFlight {
    count: AtomicU64,
    idle: tokio::sync::Notify,
}

/// Held by a relay task for its whole life.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.get() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}

impl InFlight {
    fn exit(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Like [`InFlightGuard`] for a task spawned off a relay (which must own what it holds):
/// taken before the spawn, so shutdown and tests never see a gap.
pub struct TaskGuard(Arc<InFlight>);

impl TaskGuard {
    pub fn new(tasks: &Arc<InFlight>) -> TaskGuard {
        tasks.count.fetch_add(1, Ordering::SeqCst);
        TaskGuard(tasks.clone())
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.exit();
    }
}
