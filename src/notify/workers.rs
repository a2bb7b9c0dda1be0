//! The notifier's threads: a pool of workers that each take one queued warning at a time and
//! deliver it, and the one thread that writes warning-state changes through the store's
//! writer. Plain threads, so nothing here blocks an async worker.

use super::{Inner, Job, delivery, load_settings, outbound};
use crate::store::notify::WarningRow;
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

pub(super) fn worker(inner: &Inner, rx: &Mutex<Receiver<Job>>) {
    loop {
        // One worker waits on the queue at a time; the lock is released before sending.
        let job = rx.lock().recv();
        let Ok(job) = job else { return };
        let id = job.request_id.clone().unwrap_or_else(|| "SYSTEM".into());
        crate::logging::REQUEST_ID.sync_scope(id, || run(inner, job));
        inner.pending.done();
    }
}

fn run(inner: &Inner, job: Job) {
    let settings = match load_settings(&inner.store, job.user_id) {
        Ok(s) => s,
        Err(e) => {
            log::error!(
                "notification for user {}: cannot read settings: {e}",
                job.user_id
            );
            inner.stats.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    // Settings may have changed since the warning was queued.
    let Some(target) = settings.target() else {
        log::debug!(
            "user {} has no notification kind now; not sent",
            job.user_id
        );
        return;
    };
    let config = inner.config.load_full();
    let meta = delivery::Meta {
        user_id: Some(job.user_id),
        request_id: job.request_id.clone(),
    };
    let a = delivery::deliver(
        &inner.store,
        &config,
        &target,
        &job.message,
        &meta,
        config.policy.attempts(),
        &|d| inner.stop.sleep(d),
    );
    let counter = if a.outcome == outbound::Outcome::Sent {
        &inner.stats.sent
    } else {
        &inner.stats.failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn state_writer(inner: &Inner, rx: &Receiver<WarningRow>) {
    while let Ok(row) = rx.recv() {
        let now = crate::util::now_secs();
        if let Err(e) = inner
            .store
            .writer
            .exec_blocking(move |c| crate::store::notify::save_warning(c, &row, now))
        {
            log::error!("could not save quota-warning state: {e}");
        }
        inner.pending.done();
    }
}
