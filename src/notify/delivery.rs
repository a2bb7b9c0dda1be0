//! Delivering one message to one target: an attempt through the right sender, retries with
//! backoff on transient failures, and a delivery-log row per attempt. Runs on a worker
//! thread (or a blocking task for the test send), never on an async thread.

use super::message::Message;
use super::outbound::{self, Attempt, Outcome};
use super::policy::NotifyConfig;
use super::receiver::Target;
use super::ssrf::AllowList;
use super::{bark, email, gotify, webhook};
use crate::store::Store;
use crate::store::deliveries::{self, DeliveryRow};
use std::time::Duration;

/// First wait before a retry; doubled each time, at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Longest reason kept in the delivery log.
const MAX_REASON: usize = 500;

/// Sends once through the sender for the target's kind.
pub fn attempt(target: &Target, msg: &Message, config: &NotifyConfig, now: i64) -> Attempt {
    let policy = &config.policy;
    let allow = AllowList::lenient(&policy.ssrf_allow_hosts);
    let timeout = policy.timeout();
    match target {
        Target::Email { to } => match &config.smtp {
            Some(smtp) => email::send(smtp, to, msg, timeout),
            None => Attempt::failed(
                String::new(),
                Outcome::Final,
                "email is not set up: an admin has to configure the SMTP server".into(),
            ),
        },
        Target::Webhook { url, secret } => outbound::call(
            &webhook::request(url, secret.as_ref(), msg, now),
            &allow,
            timeout,
        ),
        Target::Bark { template } => outbound::call(&bark::request(template, msg), &allow, timeout),
        Target::Gotify {
            url,
            token,
            priority,
        } => match gotify::request(url, token, *priority, msg) {
            Ok(req) => outbound::call(&req, &allow, timeout),
            Err(reason) => Attempt::failed(String::new(), Outcome::Final, reason),
        },
    }
}

/// Who and what a delivery is for, for the log.
pub struct Meta {
    pub user_id: Option<i64>,
    pub request_id: Option<String>,
}

/// Sends with up to `attempts` tries, recording each. `wait` sleeps between tries and returns
/// false when the notifier is stopping (no further tries then).
pub fn deliver(
    store: &Store,
    config: &NotifyConfig,
    target: &Target,
    msg: &Message,
    meta: &Meta,
    attempts: u32,
    wait: &dyn Fn(Duration) -> bool,
) -> Attempt {
    let mut n = 1;
    loop {
        let mut a = attempt(target, msg, config, crate::util::now_secs());
        let last = n >= attempts.max(1);
        if a.outcome == Outcome::Transient && last {
            // Out of tries: the final row says failed, with the last reason.
            a.outcome = Outcome::Final;
        }
        record(store, target, msg, meta, n, &a, attempts);
        if a.outcome != Outcome::Transient {
            return a;
        }
        let backoff = a.retry_after.unwrap_or_else(|| backoff(n));
        if !wait(backoff) {
            return a;
        }
        n += 1;
    }
}

fn backoff(attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(5);
    (FIRST_BACKOFF * factor).min(MAX_BACKOFF)
}

/// Writes the attempt's row and logs a failure. A log that cannot be written is itself
/// logged: the delivery already happened (or not) either way.
pub fn record(
    store: &Store,
    target: &Target,
    msg: &Message,
    meta: &Meta,
    n: u32,
    a: &Attempt,
    of: u32,
) {
    let kind = target.kind().as_str();
    if a.outcome != Outcome::Sent {
        log::warn!(
            "notification {} for user {} via {kind} to {}: attempt {n}/{of} {}: {}",
            msg.event,
            meta.user_id.map_or_else(|| "-".into(), |u| u.to_string()),
            if a.target.is_empty() { "-" } else { &a.target },
            a.outcome.as_str(),
            a.reason
        );
    }
    let row = DeliveryRow {
        id: 0,
        created_at: crate::util::now_secs(),
        user_id: meta.user_id,
        kind: kind.into(),
        event: msg.event.clone(),
        target_host: Some(a.target.clone()).filter(|t| !t.is_empty()),
        attempt: i64::from(n),
        outcome: a.outcome.as_str().into(),
        status: a.status.map(i64::from),
        reason: Some(a.reason.chars().take(MAX_REASON).collect()),
        request_id: meta.request_id.clone(),
    };
    if let Err(e) = store
        .writer
        .exec_blocking(move |c| deliveries::insert(c, &row))
    {
        log::error!("could not write a notification delivery row: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b: Vec<u128> = (1..=7).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(b, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }
}
