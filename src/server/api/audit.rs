//! `/api/reconcile` and `/api/anomalies`: is the money right, and does anything stand out.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::reconcile;
use crate::web::{Resp, json};
use http::StatusCode;
use std::sync::Arc;

/// Every balance and used-quota figure checked against the log rows. 200 either way; the
/// body's `clean` says whether anything differs, `differences` lists what and where.
pub async fn reconcile(state: &AppState) -> Result<Resp, ApiError> {
    let report = state.store.read(reconcile::run).await?;
    if !report.is_clean() {
        log::warn!(
            "reconcile: {} difference(s) between balances and log rows",
            report.differences.len()
        );
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "clean": report.is_clean(),
            "users_checked": report.users_checked,
            "keys_checked": report.keys_checked,
            "differences": report.differences,
        }),
    ))
}

pub async fn anomalies(state: &Arc<AppState>) -> Result<Resp, ApiError> {
    let opts = state.catalog.options().anomaly.clone();
    let st = state.clone();
    let undercounts = state.metrics.undercounts();
    let report = state
        .store
        .read(move |c| {
            crate::anomaly::report(
                c,
                &st.token_audit,
                undercounts,
                &opts,
                crate::util::now_secs(),
            )
        })
        .await?;
    Ok(json(StatusCode::OK, &report))
}
