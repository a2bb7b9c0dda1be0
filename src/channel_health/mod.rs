//! Channel health: tests, automatic disable and re-enable, and who hears about it.
//!
//! - [`tracker`]: the in-memory error window per channel; decides when to turn one off.
//! - [`check`]: one test request to a channel (no billing).
//! - [`scheduler`]: tests every channel every `channel.test_interval_minutes`.
//! - this file: applying a change — the status and a manage log row in one transaction, the
//!   reload of the catalog's channels that makes routing see it, and a notification to root.
//!
//! The relay calls [`report`] for every upstream attempt: the decision is made in memory, and a
//! disable is written by a spawned task, so the request path never waits on SQLite. The admin's
//! switch and the automatic one are separate (see [`crate::store::channels::ChannelStatus`]):
//! a passing test turns back on only a channel the health checks turned off.

pub mod check;
pub mod keys;
pub mod scheduler;
pub mod tracker;

use crate::catalog::Catalog;
use crate::metrics::HealthGauges;
use crate::notify::{Message, Notifier};
use crate::store::Store;
use crate::store::channels::{self, ChannelRow, ChannelStatus, TestRecord};
use crate::store::logs::{LogEntry, LogType};
use crate::store::users::Role;
use crate::store::{StoreError, users};
use crate::tasks::{InFlight, TaskGuard};
use crate::upstream::Upstream;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
pub use tracker::{Outcome, Tracker, Trip};

/// What channel health uses of the server, implemented by its state: tests go out through
/// the upstream client, changes are written to the store and reloaded into the catalog, root
/// hears through the notifier, and a disable runs in a task shutdown waits for.
pub trait Host: Send + Sync + 'static {
    fn store(&self) -> &Store;
    fn catalog(&self) -> &Catalog;
    fn upstream(&self) -> &Upstream;
    fn notifier(&self) -> &Notifier;
    fn channel_health(&self) -> &ChannelHealth;
    fn tasks(&self) -> &Arc<InFlight>;
    /// Turns true at shutdown.
    fn shutdown(&self) -> tokio::sync::watch::Receiver<bool>;
}

/// Why a channel test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("no channel with id {0}")]
    NoSuchChannel(i64),
    #[error("the channel lists no model to test with")]
    NoModel,
    #[error("database error: {0}")]
    Store(StoreError),
}

/// Counters for the stats endpoint and tests.
#[derive(Debug, Default)]
pub struct HealthStats {
    pub tests_passed: AtomicU64,
    pub tests_failed: AtomicU64,
    pub auto_disabled: AtomicU64,
    pub auto_enabled: AtomicU64,
}

#[derive(Default)]
pub struct ChannelHealth {
    pub tracker: Tracker,
    pub stats: HealthStats,
    /// One run over all channels at a time (the schedule and the admin trigger share it).
    run_lock: tokio::sync::Mutex<()>,
}

/// A status change for [`apply`].
#[derive(Debug, Clone)]
enum Change {
    Disable { reason: String, status: Option<u16> },
    Enable { reason: String },
}

/// What `POST /api/channels/{id}/test` answers.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub channel_id: i64,
    pub model: String,
    pub ok: bool,
    /// Upstream's HTTP status; null when no answer came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The channel's status after the test (a test may have turned it off or back on).
    pub channel_status: ChannelStatus,
    /// Each key's result, by fingerprint, in the order of the channel's keys.
    pub keys: Vec<keys::KeyTest>,
}

/// The relay's report of one upstream attempt. Decides in memory; a disable is applied by a
/// spawned task that shutdown waits for.
pub fn report<H: Host>(state: &Arc<H>, channel_id: i64, outcome: Outcome) {
    let opts = state.catalog().options();
    let now = crate::util::now_secs();
    let Some(trip) =
        state
            .channel_health()
            .tracker
            .observe(channel_id, outcome, now, &opts.channel)
    else {
        return;
    };
    let guard = TaskGuard::new(state.tasks());
    let state = state.clone();
    let rid = crate::logging::current_request_id();
    tokio::spawn(crate::logging::REQUEST_ID.scope(rid, async move {
        let _guard = guard;
        let change = Change::Disable {
            reason: trip.reason,
            status: trip.status,
        };
        match apply(&*state, channel_id, Some(change), None, Default::default()).await {
            Ok(_) => {}
            // Deleted while its last requests were answered: nothing to turn off.
            Err(e) if e.is_not_found() => state.channel_health().tracker.reset(channel_id),
            Err(e) => {
                log::error!("channel {channel_id}: could not record the automatic disable: {e}");
                state.channel_health().tracker.reset(channel_id);
            }
        }
    }));
}

/// Tests one channel now, with each of its keys: records the result on it, turns a key off
/// (a listed status) or back on (a pass), and the channel off (no key left, or the error
/// rate) or back on (a pass, when it was turned off automatically) as the options say.
pub async fn test_channel<H: Host>(
    state: &Arc<H>,
    id: i64,
    model: Option<String>,
) -> Result<TestReport, TestError> {
    let row = state
        .store()
        .read(move |c| channels::get(c, id))
        .await
        .map_err(|e| not_found(e, id))?;
    let model = check::model_for(&row, model).ok_or(TestError::NoModel)?;
    let runs = check::run_keys(state, &row, &model).await;
    let h = state.channel_health();
    let opts = state.catalog().options().channel.clone();
    let now = crate::util::now_secs();
    let mut trip = None;
    for run in &runs {
        trip = trip.or(h.tracker.observe(id, run.outcome, now, &opts));
    }
    let tested = keys::tested(&row, &runs, &model, &opts, now);
    // The run that speaks for the channel: the first pass, else the last failure.
    let Some(run) = runs.iter().find(|r| r.ok).or(runs.last()).cloned() else {
        return Err(TestError::NoModel);
    };
    let change = if run.ok {
        h.stats.tests_passed.fetch_add(1, Relaxed);
        (row.status() == ChannelStatus::AutoDisabled && opts.auto_enable).then(|| Change::Enable {
            reason: format!("a test with {model} passed in {} ms", run.latency_ms),
        })
    } else {
        h.stats.tests_failed.fetch_add(1, Relaxed);
        let by_keys = tested.every_key_off.clone().map(|r| (r, run.http_status()));
        let by_rate = trip.as_ref().map(|t| (t.reason.clone(), t.status));
        by_keys.or(by_rate).map(|(reason, status)| Change::Disable {
            reason: format!("a test with {model} failed: {reason}"),
            status,
        })
    };
    let error = tested.error.clone().or(run.error.clone());
    let record = TestRecord {
        ok: run.ok,
        http_status: run.http_status(),
        latency_ms: run.latency_ms,
        tested_at: now,
        error: error.clone(),
    };
    let after = match apply(&**state, id, change, Some(record), tested.changes).await {
        Ok(r) => r,
        Err(e) => {
            h.tracker.reset(id);
            return Err(not_found(e, id));
        }
    };
    Ok(TestReport {
        channel_id: id,
        model,
        ok: run.ok,
        status: run.http_status(),
        latency_ms: run.latency_ms,
        error,
        channel_status: after.status(),
        keys: tested.views,
    })
}

fn not_found(e: StoreError, id: i64) -> TestError {
    if e.is_not_found() {
        TestError::NoSuchChannel(id)
    } else {
        TestError::Store(e)
    }
}

/// Commits the test record and the change (with its manage row) in one transaction; when the
/// status changed, reloads the catalog so routing sees it, and tells root. Returns the row
/// after the change.
async fn apply<H: Host>(
    state: &H,
    id: i64,
    change: Option<Change>,
    test: Option<TestRecord>,
    key_changes: keys::KeyChanges,
) -> Result<ChannelRow, StoreError> {
    let now = crate::util::now_secs();
    let request_id = crate::logging::current_request_id();
    let c2 = change.clone();
    let rid = request_id.clone();
    let (row, changed, keys_changed) = state
        .store()
        .writer
        .exec(move |c| {
            if let Some(t) = &test {
                channels::record_test(c, id, t)?;
            }
            let (changed, status, what) = match &c2 {
                None => (false, None, String::new()),
                Some(Change::Disable { reason, status }) => (
                    channels::set_auto_disabled(c, id, reason, now)?,
                    *status,
                    format!("auto-disabled: {reason}"),
                ),
                Some(Change::Enable { reason }) => (
                    channels::clear_auto_disabled(c, id)?,
                    None,
                    format!("re-enabled: {reason}"),
                ),
            };
            let name = channels::get(c, id)?.fields.name;
            // A key's own row only when the channel's status did not change with it: the
            // channel's row says it (a one-key channel's refusal is one disable, as before).
            let keys_changed = key_changes.apply(c, id, &name, &rid, now, !changed)?;
            let row = channels::get(c, id)?;
            if changed {
                crate::store::logs::insert(
                    c,
                    &LogEntry {
                        created_at: now,
                        log_type: LogType::Manage as i64,
                        request_id: rid,
                        channel_id: Some(id),
                        status: status.map(i64::from),
                        content: Some(format!("channel {:?} (id {id}) {what}", row.name)),
                        ..Default::default()
                    },
                )?;
            }
            Ok((row, changed, keys_changed))
        })
        .await?;
    let h = state.channel_health();
    if (changed || keys_changed)
        && let Err(e) = state.catalog().reload_channels().await
    {
        log::error!("reloading the channels after a channel status change failed: {e}");
    }
    if change.is_some() {
        // A fresh window either way: a disable was handled (or found the channel already off),
        // and a channel back on starts clean. After the reload, so requests still routed by
        // the old snapshot trip at most a no-op.
        h.tracker.reset(id);
    }
    let Some(change) = change.filter(|_| changed) else {
        return Ok(row);
    };
    let (status, reason) = match &change {
        Change::Disable { reason, .. } => {
            h.stats.auto_disabled.fetch_add(1, Relaxed);
            log::warn!("channel {id} ({}) turned off: {reason}", row.name);
            (ChannelStatus::AutoDisabled, reason)
        }
        Change::Enable { reason } => {
            h.stats.auto_enabled.fetch_add(1, Relaxed);
            log::info!("channel {id} ({}) turned back on: {reason}", row.name);
            (ChannelStatus::Enabled, reason)
        }
    };
    let message = Message::channel_status(id, &row.name, status.as_str(), reason, now);
    tell_root(state, message, request_id).await;
    Ok(row)
}

/// Queues the message to every root account's receiver (their own notification settings).
async fn tell_root<H: Host>(state: &H, message: Message, request_id: String) {
    let roots = match state.store().read(users::list).await {
        Ok(all) => all.into_iter().filter(|u| u.role == Role::Root),
        Err(e) => {
            log::error!("cannot find root to tell about a channel status change: {e}");
            return;
        }
    };
    for u in roots {
        if !state
            .notifier()
            .notify_user(u.id, message.clone(), Some(request_id.clone()))
        {
            log::warn!(
                "channel status notification to {} dropped: queue full",
                u.username
            );
        }
    }
}

impl ChannelHealth {
    /// The numbers for `/api/stats` and `/metrics`: channels by status from the catalog, and
    /// the counters.
    pub fn gauges(&self, catalog: &Catalog) -> HealthGauges {
        let mut g = HealthGauges::default();
        for c in catalog.channels().iter() {
            match c.status() {
                ChannelStatus::Enabled => g.enabled += 1,
                ChannelStatus::Disabled => g.disabled += 1,
                ChannelStatus::AutoDisabled => g.auto_disabled += 1,
            }
        }
        let s = &self.stats;
        g.tests_passed = s.tests_passed.load(Relaxed);
        g.tests_failed = s.tests_failed.load(Relaxed);
        g.auto_disabled_total = s.auto_disabled.load(Relaxed);
        g.auto_enabled_total = s.auto_enabled.load(Relaxed);
        g
    }
}
