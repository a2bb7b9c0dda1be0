//! Reserving the most a call can cost before anything is sent upstream, and fixing its
//! output limit to what was reserved (see [`super::limit`]).

use super::Endpoint;
use super::limit;
use super::prepare::Prepared;
use super::settle::Call;
use crate::error::ApiError;
use crate::ledger::{self, Reservation, ReserveError};

/// Reserves the call's cost and writes its output limit into the request. With a limit from
/// the client, the cost at that limit is reserved or the call refused; without one, as much
/// as the model's limit needs and the balance holds, and the limit is what that covers.
pub fn reserve(call: &Call, p: &mut Prepared) -> Result<Reservation, ApiError> {
    let opts = call.state.catalog.options();
    let key = call.key.account.as_ref();
    let user = &call.user.account;
    if p.endpoint == Endpoint::Embeddings {
        let amount = p.cost(0);
        return ledger::reserve(key, user, amount).map_err(|e| short(e, amount, true));
    }
    let (reservation, output) = match p.asked.max {
        Some(asked) => {
            let amount = p.cost(asked);
            let r = ledger::reserve(key, user, amount).map_err(|e| short(e, amount, true))?;
            (r, asked)
        }
        None => {
            let cap = limit::model_cap(p.endpoint, &p.model, &opts.relay);
            let least = p.cost(cap.min(1));
            let mut r = ledger::reserve_up_to(key, user, least, p.cost(cap))
                .map_err(|e| short(e, least, false))?;
            let output = limit::largest_within(&p.price, p.prompt, &p.asked, cap, r.amount());
            r.shrink_to(p.cost(output));
            (r, output)
        }
    };
    // On an error here the reservation is dropped, which releases it.
    p.set_limit(output, &opts.relay)?;
    Ok(reservation)
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
