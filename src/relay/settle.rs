//! Settling a call: the charge and its log row in one transaction (a journal row, folded into
//! `logs` and the balances later: `store::journal`), or an error row and a full release.

use crate::billing::{Price, Usage, tokens};
use crate::catalog::{KeyEntry, UserEntry};
use crate::error::ApiError;
use crate::ledger::{Charge, Reservation};
use crate::notify::{QuotaEvent, Subject};
use crate::state::AppState;
use crate::store::journal;
use crate::store::logs::{LogEntry, LogType};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::upstream::Endpoint;

/// Who is calling what; lives for the whole call.
pub struct Call {
    pub state: Arc<AppState>,
    pub key: Arc<KeyEntry>,
    pub user: Arc<UserEntry>,
    pub endpoint: Endpoint,
    /// The client's format: its errors and stream ends are in this shape.
    pub format: crate::formats::Format,
    pub model: String,
    pub stream: bool,
    pub started: Instant,
    pub request_id: String,
    /// The call's hold on the tokens-per-minute limits, corrected when it is charged.
    pub permit: crate::ratelimit::Permit,
    /// Set when the client's request was dropped (it hung up) before the response was
    /// handed over; the detached relay task reads it when it charges.
    pub client_left: Arc<std::sync::atomic::AtomicBool>,
    /// From the console's playground: no key of the user's (the log row has no key id), and
    /// the cost is told to the client (headers, or a last `sluice.cost` event).
    pub playground: bool,
}

/// Held by the request handler while it waits for the relay task: dropped with the handler
/// (the client hung up) it marks the call's `client_left`; [`LeaveGuard::disarm`] once the
/// response is handed over.
pub struct LeaveGuard(Option<Arc<std::sync::atomic::AtomicBool>>);

impl LeaveGuard {
    pub fn new(flag: &Arc<std::sync::atomic::AtomicBool>) -> LeaveGuard {
        LeaveGuard(Some(flag.clone()))
    }
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for LeaveGuard {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Release);
        }
    }
}

/// The channel that answered, and what is needed to price its answer.
pub struct Answer {
    pub channel_id: i64,
    pub upstream_model: String,
    /// The client's request, for an exact prompt count when upstream reports no usage.
    pub request: Arc<serde_json::Map<String, serde_json::Value>>,
    pub price: Price,
    /// Prompt tokens no tokenizer can count fewer of: an upstream reporting fewer is wrong.
    pub prompt_floor: u64,
    pub ttfb: Duration,
}

/// Where a call's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upstream,
    Local,
}

/// Usage counted here, for an upstream that reported none: prompt tokens from the request and
/// completion tokens from the generated `text` (times `scale` when `text` is only the first
/// part of it), both with tiktoken, off the async threads (the first use loads its tables).
pub async fn count_locally(
    call: &Call,
    answer: &Answer,
    text: String,
    scale: f64,
) -> (Usage, Source) {
    let (endpoint, model, request) = (call.endpoint, call.model.clone(), answer.request.clone());
    // If the tokenizer itself fails, bill the estimate rather than nothing.
    let fallback = (
        super::prompt_tokens(endpoint, &model, &request, tokens::Mode::Estimate),
        tokens::estimate_text(&text),
    );
    let counted = tokio::task::spawn_blocking(move || {
        let prompt = super::prompt_tokens(endpoint, &model, &request, tokens::Mode::Exact);
        let completion = tokens::count_text(&model, &text);
        (prompt, completion)
    })
    .await;
    let (prompt, completion) = counted.unwrap_or_else(|e| {
        log::error!("token counting failed ({e}); billing the estimate");
        fallback
    });
    let completion = if scale > 1.0 {
        (completion as f64 * scale).ceil() as u64
    } else {
        completion
    };
    (Usage::new(prompt, completion), Source::Local)
}

fn base_entry(
    call: &Call,
    log_type: LogType,
    channel_id: Option<i64>,
    status: StatusCode,
) -> LogEntry {
    LogEntry {
        created_at: crate::util::now_secs(),
        log_type: log_type as i64,
        request_id: call.request_id.clone(),
        user_id: Some(call.user.id),
        username: Some(call.user.username.clone()),
        key_id: (!call.playground).then_some(call.key.id),
        key_name: Some(call.key.name.clone()),
        channel_id,
        group: Some(call.user.group.clone()),
        model: Some(call.model.clone()),
        latency_ms: Some(call.started.elapsed().as_millis() as i64),
        is_stream: call.stream,
        status: Some(i64::from(status.as_u16())),
        ..Default::default()
    }
}

/// Charges the call and commits the charge with its consume row. Returns the charge once it
/// is durable. When the commit fails the in-memory charge is given back and the call fails
/// closed (503): a charge never exists without its row.
pub async fn charge(
    call: &Call,
    answer: &Answer,
    reservation: Reservation,
    (usage, source): (Usage, Source),
    status: StatusCode,
    note: Option<&str>,
) -> Result<Charge, ApiError> {
    call.state
        .metrics
        .channel(answer.channel_id)
        .latency
        .observe(call.started.elapsed());
    let cost = answer.price.quota(usage);
    call.permit
        .settle(usage.prompt_tokens.saturating_add(usage.completion_tokens));
    let settled = reservation.settle(cost);
    let charge = settled.charge;
    let mut entry = base_entry(call, LogType::Consume, Some(answer.channel_id), status);
    entry.upstream_model = Some(answer.upstream_model.clone());
    entry.prompt_tokens = usage.prompt_tokens as i64;
    entry.completion_tokens = usage.completion_tokens as i64;
    entry.cache_read_tokens = usage.cache_read as i64;
    entry.cache_write_tokens = usage.cache_write_5m as i64;
    entry.cache_write_1h_tokens = usage.cache_write_1h as i64;
    entry.reasoning_tokens = usage.reasoning_tokens as i64;
    entry.quota = charge.quota;
    entry.ttfb_ms = Some(answer.ttfb.as_millis() as i64);
    entry.usage_source = Some(match source {
        Source::Upstream => "upstream".into(),
        Source::Local => "local".into(),
    });
    let mut notes: Vec<String> = note.map(str::to_string).into_iter().collect();
    if charge.capped {
        notes.push(format!("cost {cost} capped at the balance"));
    }
    if !notes.is_empty() {
        entry.content = Some(notes.join("; "));
    }
    let (user_id, key_id, limited, quota) = (
        call.user.id,
        call.key.id,
        call.key.account.is_some(),
        charge.quota,
    );
    let result = call
        .state
        .store
        .writer
        .append(move |c| {
            let charge = journal::Charge {
                user_id,
                key_id,
                key_limited: limited,
                quota,
            };
            journal::append(c, entry, Some(charge))
        })
        .await;
    match result {
        Ok(_) => {
            warn_low_balance(call);
            if source == Source::Upstream && usage.prompt_tokens < answer.prompt_floor {
                undercount(call, answer, usage.prompt_tokens);
            }
            if source == Source::Upstream
                && call
                    .state
                    .token_audit
                    .should_sample(&call.model, call.state.started.elapsed().as_millis() as u64)
            {
                audit_tokens(call, answer, usage.prompt_tokens);
            }
            call.state
                .metrics
                .quota_charged
                .fetch_add(quota.max(0) as u64, Ordering::Relaxed);
            log::debug!(
                "charged {quota} ({} prompt + {} completion tokens, {:?})",
                usage.prompt_tokens,
                usage.completion_tokens,
                source
            );
            Ok(charge)
        }
        Err(e) => {
            settled.refund();
            log::error!(
                "could not record a charge of {quota}: {e}; the call is not billed and fails"
            );
            Err(ApiError::Store(e))
        }
    }
}

/// Tells the notifier the balances this charge left (the user's, and the key's own when it is
/// limited). It decides in memory and queues; nothing here waits on a receiver or SQLite.
fn warn_low_balance(call: &Call) {
    let notifier = &call.state.notifier;
    // Most users choose no receiver: skip the events (two string copies each) for them.
    if !notifier.watches(call.user.id) {
        return;
    }
    notifier.notify_quota(QuotaEvent {
        subject: Subject::User(call.user.id),
        owner: call.user.id,
        username: call.user.username.clone(),
        key_name: None,
        balance: call.user.account.balance(),
        request_id: Some(call.request_id.clone()),
    });
    if let Some(account) = &call.key.account {
        notifier.notify_quota(QuotaEvent {
            subject: Subject::Key(call.key.id),
            owner: call.user.id,
            username: call.user.username.clone(),
            key_name: Some(call.key.name.clone()),
            balance: account.balance(),
            request_id: Some(call.request_id.clone()),
        });
    }
}

/// Upstream reported fewer prompt tokens than the prompt's length allows (a megabyte billed
/// as 7 tokens): a misconfigured or dishonest upstream. Recorded against the channel for the
/// anomaly report and the metrics; the charge stays what upstream reported.
fn undercount(call: &Call, answer: &Answer, reported: u64) {
    let n = call
        .state
        .metrics
        .channel(answer.channel_id)
        .record_undercount(crate::metrics::Undercount {
            at: crate::util::now_secs(),
            model: call.model.clone(),
            reported_prompt_tokens: reported,
            least_prompt_tokens: answer.prompt_floor,
            request_id: call.request_id.clone(),
        });
    // The first, then the 10th, 100th…: visible in the log without one line per call.
    if power_of_ten(n) {
        log::warn!(
            "channel {} reported {reported} prompt tokens for a prompt of at least {} ({n} such calls since start; see /api/anomalies)",
            answer.channel_id,
            answer.prompt_floor
        );
    }
}

fn power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

/// Counts the prompt here too, off the request path, and records it against upstream's
/// figure for the anomaly report.
fn audit_tokens(call: &Call, answer: &Answer, upstream: u64) {
    let guard = crate::tasks::TaskGuard::new(&call.state.relays);
    let state = call.state.clone();
    let (endpoint, model, request) = (call.endpoint, call.model.clone(), answer.request.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let m = model.clone();
        let counted = tokio::task::spawn_blocking(move || {
            super::prompt_tokens(endpoint, &m, &request, tokens::Mode::Exact)
        })
        .await;
        if let Ok(local) = counted {
            state
                .token_audit
                .record(crate::util::now_secs(), &model, local, upstream);
        }
    });
}

/// Writes an error row (no charge). A failure to write it is logged, not returned: the
/// client's error is already decided.
pub async fn log_error(call: &Call, channel_id: Option<i64>, status: StatusCode, detail: &str) {
    let mut entry = base_entry(call, LogType::Error, channel_id, status);
    entry.content = Some(detail.chars().take(2000).collect());
    if let Err(e) = call
        .state
        .store
        .writer
        .append(move |c| journal::append(c, entry, None))
        .await
    {
        log::error!("could not write the error log row: {e}");
    }
}

/// Checks the key's and the user's rate limits. Every refusal is counted in the metrics; it
/// is written as an error row (status 429, no charge) so operators can see who is held back,
/// but at most one row per key or user per 10 s, noting the refusals folded into it, so a
/// client hammering past its limit cannot flood the log table.
pub async fn admit(call: &Call, tokens: u64) -> Result<crate::ratelimit::Permit, ApiError> {
    let limits = crate::ratelimit::Limits::resolve(
        &call.key,
        &call.user.group,
        &call.state.catalog.options().ratelimit,
    );
    match call
        .state
        .limiter
        .admit(call.key.id, call.user.id, limits, tokens)
    {
        Ok(p) => Ok(p),
        Err(refusal) => {
            call.state
                .metrics
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            let row = refusal.log_row;
            let err = ApiError::RateLimited(refusal);
            match row {
                Some(0) => log_error(call, None, err.status(), &err.to_string()).await,
                Some(n) => {
                    let text = format!("{err} ({n} more refusals since the last row)");
                    log_error(call, None, err.status(), &text).await;
                }
                None => {}
            }
            Err(err)
        }
    }
}

/// Releases the whole reservation, writes the error row, and hands back the client's error.
pub async fn fail(
    call: &Call,
    reservation: Reservation,
    channel_id: Option<i64>,
    err: ApiError,
    detail: &str,
) -> ApiError {
    reservation.release();
    let text = if detail.is_empty() {
        err.to_string()
    } else {
        format!("{err} ({detail})")
    };
    log_error(call, channel_id, err.status(), &text).await;
    err
}
