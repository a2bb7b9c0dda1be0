//! `/api/me/notify`: one's own notification settings and a test send;
//! `/api/notify/deliveries`: the delivery log (admin).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::notify::TestError;
use crate::notify::receiver::Patch;
use crate::notify::ssrf::AllowList;
use crate::notify::{Kind, Settings};
use crate::state::AppState;
use crate::store::{deliveries, notify};
use crate::util;
use crate::web::{Resp, json, parse_json};
use http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// Most delivery rows per page.
const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 50;
/// Largest warning threshold typed in money (the OpenAPI document states it).
const MAX_AMOUNT: f64 = 1e12;

pub async fn get(state: &AppState, p: &Principal) -> Result<Resp, ApiError> {
    let uid = p.user.id;
    let row = state.store.read(move |c| notify::get(c, uid)).await?;
    let s = row.map_or_else(|| Settings::empty(uid), Settings::from_row);
    Ok(json(StatusCode::OK, &view(state, &s)))
}

/// The settings as shown, thresholds also in the display currency.
fn view(state: &AppState, s: &Settings) -> serde_json::Value {
    let mut v = s.view(state.notifier.config().policy.default_threshold);
    crate::billing::display::annotate(
        &mut v,
        &["quota_warning_threshold", "effective_threshold"],
        &state.catalog.options().display,
    );
    v
}

/// A threshold sent as money becomes quota units, at the display currency of the moment.
fn threshold_in_units(state: &AppState, patch: &mut Patch) -> Result<(), ApiError> {
    let Some(amount) = patch.quota_warning_threshold_amount.take() else {
        return Ok(());
    };
    if patch.quota_warning_threshold.is_some() {
        return Err(ApiError::BadRequest(
            "send quota_warning_threshold (quota units) or quota_warning_threshold_amount \
             (display currency), not both"
                .into(),
        ));
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::BadRequest(format!(
            "quota_warning_threshold_amount is {amount}; use 0 to {MAX_AMOUNT}"
        )));
    }
    let display = &state.catalog.options().display;
    let units = crate::billing::display::to_quota(amount, display).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "quota_warning_threshold_amount must be a number of 0 or more, not {amount}"
        ))
    })?;
    patch.quota_warning_threshold = Some(Some(units));
    Ok(())
}

pub async fn put(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let mut patch: Patch = parse_json(parts, body)?;
    if patch.is_empty() {
        return Err(ApiError::BadRequest(
            "nothing to change: send any of kind, quota_warning_threshold, \
             quota_warning_threshold_amount, email, webhook_url, webhook_secret, bark_url, gotify_url, gotify_token, gotify_priority"
                .into(),
        ));
    }
    threshold_in_units(state, &mut patch)?;
    patch.validate().map_err(ApiError::BadRequest)?;
    // The SSRF guard resolves host names: a blocking lookup, bounded by the policy timeout.
    let config = state.notifier.config();
    let patch = tokio::task::spawn_blocking(move || {
        let allow = AllowList::lenient(&config.policy.ssrf_allow_hosts);
        patch
            .check_addresses(&allow, config.policy.timeout())
            .map(|()| patch)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("address check failed: {e}")))?
    .map_err(ApiError::BadRequest)?;
    let uid = p.user.id;
    // Merged with the stored row inside the write, so two saves cannot lose each other's fields.
    let merged = state
        .store
        .writer
        .exec(move |c| {
            let current =
                notify::get(c, uid)?.map_or_else(|| Settings::empty(uid), Settings::from_row);
            let merged = patch.apply(current);
            if let Err(m) = merged.check_complete() {
                return Ok(Err(m));
            }
            notify::put(c, &merged.to_row(), util::now_secs())?;
            Ok(Ok(merged))
        })
        .await?
        .map_err(ApiError::BadRequest)?;
    state.notifier.settings_saved(&merged);
    Ok(json(StatusCode::OK, &view(state, &merged)))
}

pub async fn test(state: &Arc<AppState>, p: &Principal) -> Result<Resp, ApiError> {
    let notifier = state.notifier.clone();
    let (uid, name) = (p.user.id, p.user.username.clone());
    let request_id = Some(crate::logging::current_request_id());
    let report = tokio::task::spawn_blocking(move || notifier.send_test(uid, &name, request_id))
        .await
        .map_err(|e| ApiError::Internal(format!("the test send failed: {e}")))?
        .map_err(|e| match e {
            // A state of the account, not a bad request: nothing to send to yet.
            TestError::NoKind => ApiError::Conflict(e.to_string()),
            TestError::Store(e) => ApiError::Store(e),
        })?;
    Ok(json(StatusCode::OK, &report))
}

/// `GET /api/notify/deliveries` (admins, anyone's) and `GET /api/me/notify/deliveries`
/// (`own`: the caller's only; no `user_id` filter).
pub async fn deliveries(state: &AppState, query: &str, own: Option<i64>) -> Result<Resp, ApiError> {
    let mut f = deliveries::Filter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let number = |name: &str, v: &str| {
        v.parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a positive whole number")))
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "limit" => {
                f.limit = super::params::in_range("limit", number("limit", &v)?, 1, MAX_LIMIT)?
            }
            "cursor" => f.before = Some(number("cursor", &v)?),
            "user_id" if own.is_none() => f.user_id = Some(number("user_id", &v)?),
            "kind" => {
                let kind = Kind::parse(&v).ok_or_else(|| {
                    ApiError::BadRequest("kind must be email, webhook, bark or gotify".into())
                })?;
                f.kind = Some(kind.as_str().into());
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {other:?}; known: limit, cursor, user_id, kind"
                )));
            }
        }
    }
    if own.is_some() {
        f.user_id = own;
    }
    let limit = f.limit;
    let items = state.store.read(move |c| deliveries::list(c, &f)).await?;
    // A full page may have a next one; its cursor is the last id shown.
    let next = if items.len() as i64 == limit {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}
