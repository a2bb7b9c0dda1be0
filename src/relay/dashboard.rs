//! `/v1/models` and the OpenAI-dashboard-compatible billing endpoints (key auth).

use crate::auth::KeyCaller;
use crate::billing::display;
use crate::error::ApiError;
use crate::settings::Currency;
use crate::settings::modules::DisplayOptions;
use crate::state::AppState;
use crate::store::keys;
use crate::web::{Resp, json};
use http::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;

/// Limits shown for unlimited keys: a large finite figure, since the OpenAI clients that read
/// these fields expect a number.
const UNLIMITED_USD: f64 = 100_000_000.0;

/// The models this key may use: served to the user's group, within the key's allow-list.
pub fn models(state: &AppState, caller: &KeyCaller) -> Resp {
    let channels = state.catalog.channels();
    let mut names = BTreeSet::new();
    for c in channels
        .iter()
        .filter(|c| c.routable() && c.groups.iter().any(|g| *g == caller.user.group))
    {
        names.extend(c.models.iter().cloned());
        names.extend(c.model_mapping.keys().cloned());
    }
    if let Some(allowed) = &caller.key.models {
        names.retain(|m| allowed.contains(m));
    }
    let data: Vec<_> = names
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "sluice"}))
        .collect();
    json(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// A quota in the unit the dashboard fields carry: the display currency's amount, or the
/// raw units for TOKENS. The field names say `usd` because the
/// OpenAI clients that read them expect those names; `currency` says what they hold.
fn amount(quota: i64, o: &DisplayOptions) -> f64 {
    match o.currency {
        Currency::Tokens => quota as f64,
        _ => display::show(quota, o).amount,
    }
}

pub async fn subscription(state: &AppState, caller: &KeyCaller) -> Result<Resp, ApiError> {
    let id = caller.key.id;
    let row = state.store.read(move |c| keys::get(c, id)).await?;
    let o = state.catalog.options();
    let total = row.remain_quota + row.used_quota;
    let limit = if row.unlimited {
        UNLIMITED_USD
    } else {
        amount(total, &o.display)
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "object": "billing_subscription",
            "has_payment_method": true,
            "soft_limit_usd": limit,
            "hard_limit_usd": limit,
            "system_hard_limit_usd": limit,
            "access_until": row.expires_at.unwrap_or(0),
            "currency": display::show(0, &o.display).currency,
            "unlimited": row.unlimited,
            "hard_limit_quota": (!row.unlimited).then_some(total),
            "hard_limit_display": (!row.unlimited).then(|| display::show(total, &o.display)),
        }),
    ))
}

pub async fn usage(state: &AppState, caller: &KeyCaller) -> Result<Resp, ApiError> {
    let id = caller.key.id;
    let row = state.store.read(move |c| keys::get(c, id)).await?;
    let o = state.catalog.options();
    // OpenAI reports hundredths of the unit (cents).
    Ok(json(
        StatusCode::OK,
        &json!({
            "object": "list",
            "total_usage": amount(row.used_quota, &o.display) * 100.0,
            "currency": display::show(0, &o.display).currency,
            "used_quota": row.used_quota,
            "used_display": display::show(row.used_quota, &o.display),
        }),
    ))
}
