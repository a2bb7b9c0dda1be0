//! Reserving the most a call can cost before anything is sent upstream, and fixing its
//! output limit to what was reserved (see [`super::limit`]).

use super::limit;
use super::prepare::Prepared;
use super::settle::{self, Call};
use crate::error::ApiError;
use crate::ledger::{self, Reservation, ReserveError};
use crate::ratelimit::Subject;
use crate::upstream::Endpoint;
use std::sync::atomic::Ordering;

/// Reserves the call's cost and writes its output limit into the request. With a limit from
/// the client, the cost at that limit is reserved or the call refused; without one, as much
/// as the model's limit needs and the balance holds, and the limit is what that covers.
pub async fn reserve(call: &Call, p: &mut Prepared) -> Result<Reservation, ApiError> {
    let opts = call.state.catalog.options();
    let key = call.key.account.as_ref();
    let user = &call.user.account;
    let (reserved, output) = if p.endpoint == Endpoint::Embeddings {
        let amount = p.cost(0);
        (
            ledger::reserve(key, user, amount).map_err(|e| (e, amount, true)),
            None,
        )
    } else if let Some(asked) = p.asked.max {
        let amount = p.cost(asked);
        (
            ledger::reserve(key, user, amount).map_err(|e| (e, amount, true)),
            Some(asked),
        )
    } else {
        let cap = limit::model_cap(p.endpoint, &p.model, &opts.relay);
        let least = p.cost(cap.min(1));
        match ledger::reserve_up_to(key, user, least, p.cost(cap)) {
            Ok(mut r) => {
                let output = limit::largest_within(&p.price, p.prompt, &p.asked, cap, r.amount());
                r.shrink_to(p.cost(output));
                (Ok(r), Some(output))
            }
            Err(e) => (Err((e, least, false)), None),
        }
    };
    let reservation = match reserved {
        Ok(r) => r,
        Err((e, amount, limit_asked)) => return Err(refused(call, e, amount, limit_asked).await),
    };
    if let Some(output) = output {
        // On an error here the reservation is dropped, which releases it.
        p.set_limit(output, &opts.relay)?;
    }
    Ok(reservation)
}

/// Counts a quota refusal and writes its error row (status 429, no charge) — at most one per
/// key or user per 10 s, noting the refusals folded into it, by the rule and clock the rate
/// limiter's refusals use — so admins can see who ran out without a client that keeps
/// calling flooding the log table.
async fn refused(call: &Call, e: ReserveError, amount: i64, limit_asked: bool) -> ApiError {
    call.state
        .metrics
        .quota_refused
        .fetch_add(1, Ordering::Relaxed);
    let err = short(e, amount, limit_asked);
    let (subject, id) = match e {
        ReserveError::KeyShort => (Subject::Key, call.key.id),
        ReserveError::UserShort => (Subject::User, call.user.id),
    };
    match call.state.limiter.quota_refusal_row(subject, id) {
        Some(0) => settle::log_error(call, None, err.status(), &err.to_string()).await,
        Some(n) => {
            let text = format!("{err} ({n} more refusals since the last row)");
            settle::log_error(call, None, err.status(), &text).await;
        }
        None => {}
    }
    err
}

/// The refusal: `amount` is what the call needed (its cost at the limit asked, or with no
/// limit asked, its prompt and one output token).
fn short(e: ReserveError, amount: i64, limit_asked: bool) -> ApiError {
    let (whose, fix) = match e {
        ReserveError::KeyShort => ("the API key's remaining quota", "raise the key's quota"),
        ReserveError::UserShort => ("your balance", "top up"),
    };
    ApiError::InsufficientQuota(if limit_asked {
        format!(
            "this request may cost up to {amount} quota units and {whose} is lower; {fix} or lower max_tokens"
        )
    } else {
        format!(
            "this request needs at least {amount} quota units (its prompt and one output token) and {whose} is lower; {fix}"
        )
    })
}
