//! One channel's keys, each turned off on its own: a status in `channel.disable_statuses`
//! (401 and 403 by default: upstream refused the key) turns off the key that got it, and the
//! channel only once every key is off. A passing test turns a key back on (with
//! `channel.auto_enable`), as it does the channel.
//!
//! The relay decides in memory ([`key_refused`] marks the key in the catalog's ring at once,
//! so concurrent calls skip it) and a spawned task writes it, as for a channel's disable.

use super::{Change, Host, apply};
use crate::store::StoreError;
use crate::store::channel_keys::{self, KeyDisable};
use crate::store::channels::ChannelRow;
use crate::store::logs::{LogEntry, LogType};
use crate::tasks::TaskGuard;
use std::sync::Arc;

/// One key turned off.
#[derive(Debug, Clone)]
pub struct KeyOff {
    pub disable: KeyDisable,
    pub fingerprint: String,
}

/// One key turned back on.
#[derive(Debug, Clone)]
pub struct KeyOn {
    pub digest: String,
    pub fingerprint: String,
    pub reason: String,
}

/// Key changes committed with a channel's (see `apply`).
#[derive(Debug, Clone, Default)]
pub struct KeyChanges {
    pub off: Vec<KeyOff>,
    pub on: Vec<KeyOn>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.off.is_empty() && self.on.is_empty()
    }

    /// Writes the changes; with `log`, a manage row for each key whose state changed. True
    /// when any did.
    pub(super) fn apply(
        &self,
        c: &rusqlite::Connection,
        id: i64,
        name: &str,
        request_id: &str,
        now: i64,
        log: bool,
    ) -> Result<bool, StoreError> {
        let mut any = false;
        for k in &self.off {
            if channel_keys::disable(c, id, k.disable.clone())? {
                any = true;
                if log {
                    let what = format!("turned off: {}", k.disable.reason);
                    manage_row(
                        c,
                        id,
                        name,
                        &k.fingerprint,
                        &what,
                        k.disable.status,
                        request_id,
                        now,
                    )?;
                }
            }
        }
        for k in &self.on {
            if channel_keys::enable(c, id, &k.digest)? {
                any = true;
                if log {
                    let what = format!("turned back on: {}", k.reason);
                    manage_row(c, id, name, &k.fingerprint, &what, None, request_id, now)?;
                }
            }
        }
        Ok(any)
    }
}

#[allow(clippy::too_many_arguments, reason = "one log row's fields")]
fn manage_row(
    c: &rusqlite::Connection,
    id: i64,
    name: &str,
    fingerprint: &str,
    what: &str,
    status: Option<u16>,
    request_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    crate::store::logs::insert(
        c,
        &LogEntry {
            created_at: now,
            log_type: LogType::Manage as i64,
            request_id: request_id.to_string(),
            channel_id: Some(id),
            status: status.map(i64::from),
            content: Some(format!(
                "channel {name:?} (id {id}) key {fingerprint} {what}"
            )),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Should `status` turn off the key that got it (the options say so)?
pub fn refuses(opts: &crate::settings::channel::ChannelOptions, status: u16) -> bool {
    opts.auto_disable && opts.disable_statuses.contains(&status)
}

/// The relay's report that upstream refused key `index` of `channel` with `status`. Marks it
/// off in memory at once; writes it (and the channel's disable, when no key is left) in a
/// spawned task that shutdown waits for. Never blocks.
pub fn key_refused<H: Host>(state: &Arc<H>, channel: &ChannelRow, index: usize, status: u16) {
    if !refuses(&state.catalog().options().channel, status) || !channel.keys.mark_down(index) {
        return;
    }
    let (Some(digest), Some(fingerprint)) =
        (channel.keys.digest(index), channel.keys.fingerprint(index))
    else {
        return;
    };
    let reason = format!(
        "upstream answered {}",
        super::tracker::describe_status(status)
    );
    let off = KeyOff {
        disable: KeyDisable {
            digest: digest.to_string(),
            at: crate::util::now_secs(),
            reason: reason.clone(),
            status: Some(status),
        },
        fingerprint: fingerprint.to_string(),
    };
    let change = channel.keys.all_down().then(|| Change::Disable {
        reason: every_key_reason(channel.keys.len(), &reason),
        status: Some(status),
    });
    let id = channel.id;
    log::warn!(
        "channel {id} ({}): key {fingerprint} turned off: {reason}",
        channel.name
    );
    let guard = TaskGuard::new(state.tasks());
    let state = state.clone();
    let rid = crate::logging::current_request_id();
    tokio::spawn(crate::logging::REQUEST_ID.scope(rid, async move {
        let _guard = guard;
        let changes = KeyChanges {
            off: vec![off],
            on: Vec::new(),
        };
        match apply(&*state, id, change, None, changes).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => log::error!("channel {id}: could not record a key's disable: {e}"),
        }
    }));
}

/// Why a channel went off when its last key did: as before for a one-key channel.
pub fn every_key_reason(keys: usize, reason: &str) -> String {
    if keys <= 1 {
        reason.to_string()
    } else {
        format!("every one of its {keys} keys is off; the last: {reason}")
    }
}

/// One key's test result, as `POST /api/channels/{id}/test` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyTest {
    pub fingerprint: String,
    pub ok: bool,
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the key is on after the test.
    pub enabled: bool,
}

/// What a test of every key comes to.
pub(super) struct Tested {
    pub changes: KeyChanges,
    pub views: Vec<KeyTest>,
    /// Set when the test leaves no key on and turned one off: why the channel goes off.
    pub every_key_off: Option<String>,
    /// With several keys, the failing ones by fingerprint (the channel may still pass).
    pub error: Option<String>,
}

/// Each key's run (`runs[i]` is key `i`) → the keys to turn off and on.
pub(super) fn tested(
    row: &ChannelRow,
    runs: &[super::check::TestRun],
    model: &str,
    opts: &crate::settings::channel::ChannelOptions,
    now: i64,
) -> Tested {
    let mut changes = KeyChanges::default();
    let mut views = Vec::with_capacity(runs.len());
    let mut failures = Vec::new();
    let mut last_off = None;
    let mut on_after = 0;
    for (i, run) in runs.iter().enumerate() {
        let (Some(digest), Some(fp)) = (row.keys.digest(i), row.keys.fingerprint(i)) else {
            continue;
        };
        let was_down = row.keys.is_down(i);
        let mut down = was_down;
        if run.ok && was_down && opts.auto_enable {
            changes.on.push(KeyOn {
                digest: digest.to_string(),
                fingerprint: fp.to_string(),
                reason: format!("a test with {model} passed in {} ms", run.latency_ms),
            });
            down = false;
        }
        if let Some(s) = run.http_status().filter(|s| !run.ok && refuses(opts, *s)) {
            let reason = format!("upstream answered {}", super::tracker::describe_status(s));
            changes.off.push(KeyOff {
                disable: KeyDisable {
                    digest: digest.to_string(),
                    at: now,
                    reason: format!("a test with {model} failed: {reason}"),
                    status: Some(s),
                },
                fingerprint: fp.to_string(),
            });
            last_off = Some(reason);
            down = true;
        }
        if !run.ok {
            failures.push(format!(
                "key {fp}: {}",
                run.error.as_deref().unwrap_or("failed")
            ));
        }
        on_after += usize::from(!down);
        views.push(KeyTest {
            fingerprint: fp.to_string(),
            ok: run.ok,
            status: run.http_status(),
            error: run.error.clone(),
            enabled: !down,
        });
    }
    let every_key_off = last_off
        .filter(|_| on_after == 0)
        .map(|r| every_key_reason(runs.len(), &r));
    let error = (runs.len() > 1 && !failures.is_empty()).then(|| failures.join("; "));
    Tested {
        changes,
        views,
        every_key_off,
        error,
    }
}
