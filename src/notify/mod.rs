//! Notifications: quota warnings (and later other events) to each user's chosen receiver.
//!
//! - [`receiver`]: a user's kind, threshold and per-kind fields; validation; the masked view.
//! - [`warnings`]: when a balance warrants a warning (once per crossing, N per window), in memory.
//! - [`ssrf`]: the guard every user-set URL passes, at save time and at send time.
//! - [`outbound`]: one HTTP call pinned to the checked addresses (ureq, no redirects).
//! - [`email`], [`webhook`], [`bark`], [`gotify`]: one sender each.
//! - [`delivery`]: retries with backoff and a delivery-log row per attempt.
//! - [`policy`]: the admin's inputs (thresholds, limits, allow-list, SMTP).
//! - `workers`: the threads that send queued warnings and write warning state.
//!
//! [`Notifier`] ties them together: the request path calls [`Notifier::notify_quota`], which
//! decides in memory and hands work to a bounded queue without ever waiting; a small pool of
//! worker threads sends. Warning-state changes are written by one more thread through the
//! store's writer. Nothing here runs on an async worker thread.

pub mod bark;
pub mod delivery;
pub mod email;
pub mod gotify;
pub mod message;
pub mod outbound;
pub mod policy;
pub mod receiver;
pub mod ssrf;
pub mod warnings;
pub mod webhook;
mod workers;

pub use message::Message;
pub use policy::{NotifyConfig, NotifyPolicy, SmtpSecurity, SmtpSettings};
pub use receiver::{Kind, Settings, Target};
pub use warnings::{Decision, Subject};

use crate::store::notify::WarningRow;
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};
use warnings::{Limits, Prefs, QuotaWarnings, WarnKind};

/// Deliveries waiting for a worker; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;
/// Warning-state writes waiting for the state thread.
const STATE_QUEUE: usize = 4096;
/// Worker threads sending notifications.
const WORKERS: usize = 2;

/// A balance after a settled charge, as the settle path reports it.
#[derive(Debug, Clone)]
pub struct QuotaEvent {
    /// Whose balance: the user's, or a limited key's own quota.
    pub subject: Subject,
    /// The user whose settings apply and who is told (the key's owner for a key).
    pub owner: i64,
    pub username: String,
    /// The key's name when `subject` is a key.
    pub key_name: Option<String>,
    pub balance: i64,
    pub request_id: Option<String>,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct NotifyStats {
    pub queued: AtomicU64,
    /// Deliveries refused because the queue was full.
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    /// Warning-state writes refused because their queue was full.
    pub state_dropped: AtomicU64,
}

/// What the test send reports.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub ok: bool,
    pub kind: Kind,
    /// `host[:port]` of the receiver.
    pub target: String,
    pub outcome: &'static str,
    /// The receiver's HTTP status or SMTP reply code.
    pub status: Option<u16>,
    /// The start of the receiver's answer.
    pub answer: Option<String>,
    pub reason: String,
}

struct Job {
    user_id: i64,
    message: Message,
    request_id: Option<String>,
}

/// A count of queued-or-running work that can be waited on.
#[derive(Default)]
struct Pending {
    n: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.n.lock() += 1;
    }
    fn done(&self) {
        let mut n = self.n.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.idle.notify_all();
        }
    }
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.n.lock();
        while *n > 0 {
            if self.idle.wait_until(&mut n, deadline).timed_out() {
                return *n == 0;
            }
        }
        true
    }
}

/// Set at shutdown; wakes workers sleeping between retries.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Sleeps `d`; false when stopping (now or during the sleep).
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut s = self.stopped.lock();
        while !*s {
            if self.wake.wait_until(&mut s, deadline).timed_out() {
                return !*s;
            }
        }
        false
    }
    fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }
}

struct Inner {
    store: Store,
    config: ArcSwap<NotifyConfig>,
    warnings: QuotaWarnings,
    jobs: RwLock<Option<SyncSender<Job>>>,
    /// The workers' end of the queue, also held here so the queue is open whatever the
    /// number of workers.
    _queue: Arc<Mutex<Receiver<Job>>>,
    states: RwLock<Option<SyncSender<WarningRow>>>,
    pending: Pending,
    stop: Stop,
    stats: NotifyStats,
}

/// Cheap to clone; every clone drives the same queue and workers.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl Notifier {
    /// Loads the warning state and users' thresholds, and starts the threads. Blocking (reads
    /// the database): call it at start-up, off the async threads.
    pub fn start(store: Store, config: NotifyConfig) -> Result<Notifier, StoreError> {
        Notifier::start_sized(store, config, WORKERS, QUEUE)
    }

    fn start_sized(
        store: Store,
        config: NotifyConfig,
        workers: usize,
        queue: usize,
    ) -> Result<Notifier, StoreError> {
        let (rows, settings) = store.read_blocking(|c| {
            Ok((
                crate::store::notify::warnings(c)?,
                crate::store::notify::all(c)?,
            ))
        })?;
        let prefs = settings.into_iter().map(|r| {
            let s = Settings::from_row(r);
            (s.user_id, prefs_of(&s))
        });
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(queue);
        let (state_tx, state_rx) = sync_channel::<WarningRow>(STATE_QUEUE);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let inner = Arc::new(Inner {
            store,
            config: ArcSwap::from_pointee(config),
            warnings: QuotaWarnings::load(rows, prefs),
            jobs: RwLock::new(Some(jobs_tx)),
            _queue: jobs_rx.clone(),
            states: RwLock::new(Some(state_tx)),
            pending: Pending::default(),
            stop: Stop::default(),
            stats: NotifyStats::default(),
        });
        for i in 0..workers {
            let (inner, rx) = (inner.clone(), jobs_rx.clone());
            std::thread::Builder::new()
                .name(format!("notify-{i}"))
                .spawn(move || workers::worker(&inner, &rx))?;
        }
        let i2 = inner.clone();
        std::thread::Builder::new()
            .name("notify-state".into())
            .spawn(move || workers::state_writer(&i2, &state_rx))?;
        Ok(Notifier { inner })
    }

    /// Replaces the policy and SMTP settings (the option registry calls this on a change).
    pub fn configure(&self, config: NotifyConfig) {
        self.inner.config.store(Arc::new(config));
    }

    pub fn config(&self) -> Arc<NotifyConfig> {
        self.inner.config.load_full()
    }

    pub fn stats(&self) -> &NotifyStats {
        &self.inner.stats
    }

    /// Tells the in-memory warning state about saved settings (after the commit).
    pub fn settings_saved(&self, s: &Settings) {
        self.inner.warnings.set_prefs(s.user_id, prefs_of(s));
    }

    /// Whether `user_id` has chosen a notification kind: without one no balance of theirs is
    /// tracked, and a caller can skip building the event.
    pub fn watches(&self, user_id: i64) -> bool {
        self.inner.warnings.prefs(user_id).is_some_and(|p| p.active)
    }

    /// A balance after a charge. Decides in memory and queues the warning and the state
    /// change; never blocks and never reads SQLite, so the settle path can call it directly.
    pub fn notify_quota(&self, ev: QuotaEvent) -> Decision {
        let limits = self.limits();
        let now = crate::util::now_secs();
        let (decision, change) = self.inner.warnings.observe(
            ev.subject,
            ev.owner,
            WarnKind::Quota,
            ev.balance,
            limits,
            now,
        );
        if let Decision::Fire { threshold } = decision {
            let message = Message::quota_warning(
                &ev.username,
                ev.key_name.as_deref(),
                ev.balance,
                threshold,
                now,
            );
            let job = Job {
                user_id: ev.owner,
                message,
                request_id: ev.request_id,
            };
            if !self.enqueue(job) {
                // Not sent, so the crossing is not spent: a later charge tries again.
                if let Some(c) = &change {
                    self.inner.warnings.undo(c);
                }
                return Decision::Dropped;
            }
        }
        if let Some(c) = change {
            self.persist(c.row);
        }
        decision
    }

    /// An admin set a balance (a top-up): one at or above the threshold re-arms the warning,
    /// so the next crossing is reported even if no charge saw the balance high.
    pub fn balance_set(&self, subject: Subject, owner: i64, balance: i64) {
        let change = self.inner.warnings.rearm(
            subject,
            owner,
            WarnKind::Quota,
            balance,
            self.limits(),
            crate::util::now_secs(),
        );
        if let Some(c) = change {
            self.persist(c.row);
        }
    }

    fn limits(&self) -> Limits {
        let policy = &self.inner.config.load().policy;
        Limits {
            default_threshold: policy.default_threshold,
            max_per_window: policy.max_per_window,
            window_secs: policy.window_secs,
        }
    }

    /// Queues `message` to the user's configured receiver (nothing is sent when the user has
    /// chosen no kind). Never blocks; false when the queue is full or shut down.
    pub fn notify_user(&self, user_id: i64, message: Message, request_id: Option<String>) -> bool {
        self.enqueue(Job {
            user_id,
            message,
            request_id,
        })
    }

    fn enqueue(&self, job: Job) -> bool {
        let guard = self.inner.jobs.read();
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        self.inner.pending.add();
        match tx.try_send(job) {
            Ok(()) => {
                self.inner.stats.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.inner.pending.done();
                let n = self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    log::warn!("notification queue full: {n} notifications dropped so far");
                }
                false
            }
        }
    }

    fn persist(&self, row: WarningRow) {
        let guard = self.inner.states.read();
        let Some(tx) = guard.as_ref() else { return };
        self.inner.pending.add();
        if tx.try_send(row).is_err() {
            self.inner.pending.done();
            self.inner
                .stats
                .state_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a test notification to the user's receiver now, once (no retries), and reports
    /// the answer. Blocking, bounded by the policy timeout: call it on a blocking thread.
    pub fn send_test(
        &self,
        user_id: i64,
        username: &str,
        request_id: Option<String>,
    ) -> Result<TestReport, TestError> {
        let settings = load_settings(&self.inner.store, user_id).map_err(TestError::Store)?;
        let target = settings.target().ok_or(TestError::NoKind)?;
        let config = self.config();
        let message = Message::test(username, crate::util::now_secs());
        let meta = delivery::Meta {
            user_id: Some(user_id),
            request_id,
        };
        let a = delivery::deliver(
            &self.inner.store,
            &config,
            &target,
            &message,
            &meta,
            1,
            &|_| false,
        );
        Ok(TestReport {
            ok: a.outcome == outbound::Outcome::Sent,
            kind: target.kind(),
            target: a.target,
            outcome: a.outcome.as_str(),
            status: a.status,
            answer: a.answer,
            reason: a.reason,
        })
    }

    /// Waits until every queued delivery and state write is done; false on timeout.
    /// Blocking.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.inner.pending.wait(timeout)
    }

    /// Stops taking work, ends retry waits, and gives queued work up to `grace` to finish
    /// (state writes first: they are quick). Blocking: call it before the writer shuts down.
    pub fn shutdown(&self, grace: Duration) {
        self.inner.stop.stop();
        self.inner.jobs.write().take();
        self.inner.states.write().take();
        if !self.inner.pending.wait(grace) {
            log::warn!("notifications still pending at shutdown were abandoned");
        }
    }
}

fn prefs_of(s: &Settings) -> Prefs {
    Prefs {
        threshold: s.threshold,
        active: s.target().is_some(),
    }
}

fn load_settings(store: &Store, user_id: i64) -> Result<Settings, StoreError> {
    let row = store.read_blocking(|c| crate::store::notify::get(c, user_id))?;
    Ok(row.map_or_else(|| Settings::empty(user_id), Settings::from_row))
}

/// Why a test notification could not be sent at all.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("no notification kind is set: choose one with PUT /api/me/notify first")]
    NoKind,
    #[error("cannot read the notification settings: {0}")]
    Store(crate::store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subject: Subject, balance: i64) -> QuotaEvent {
        QuotaEvent {
            subject,
            owner: 1,
            username: "ann".into(),
            key_name: None,
            balance,
            request_id: None,
        }
    }

    /// No worker takes from a queue of one: the second warning finds it full.
    #[test]
    fn a_full_queue_drops_counts_and_keeps_the_crossing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.db")).unwrap();
        let n = Notifier::start_sized(store, NotifyConfig::default(), 0, 1).unwrap();
        let mut s = Settings::empty(1);
        s.kind = Some(Kind::Webhook);
        s.webhook_url = Some("https://hooks.example.com/x".into());
        n.settings_saved(&s);
        let fired = n.notify_quota(event(Subject::User(1), 0));
        assert!(
            matches!(fired, Decision::Fire { threshold: 1000 }),
            "{fired:?}"
        );
        assert_eq!(n.notify_quota(event(Subject::Key(5), 0)), Decision::Dropped);
        assert_eq!(n.stats().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(n.stats().queued.load(Ordering::Relaxed), 1);
        // The dropped crossing is not spent: the next charge tries again.
        assert_eq!(n.notify_quota(event(Subject::Key(5), 0)), Decision::Dropped);
        assert_eq!(
            n.notify_quota(event(Subject::User(1), 0)),
            Decision::AlreadyWarned
        );
    }
}
