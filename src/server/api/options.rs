//! `/api/options`: run-time settings (the price tables for now), applied live.

use super::super::auth::Principal;
use super::super::http::{Resp, json, parse_json};
use super::super::state::AppState;
use super::{admin_change, manage_entry};
use crate::error::ApiError;
use crate::store::options;
use crate::util;
use http::StatusCode;
use std::sync::Arc;

pub fn get(state: &AppState) -> Resp {
    json(StatusCode::OK, &*state.catalog.pricing())
}

pub async fn put(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let changes: serde_json::Map<String, serde_json::Value> = parse_json(parts, body)?;
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "no options given: send {\"name\": value, …}".into(),
        ));
    }
    let (merged, rows) = crate::settings::merge_pricing(&state.catalog.pricing(), &changes)
        .map_err(ApiError::BadRequest)?;
    let names: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    let log = manage_entry(&p.user, format!("changed options: {}", names.join(", ")));
    admin_change(state, log, move |c| {
        let now = util::now_secs();
        for (k, v) in &rows {
            options::set(c, k, v, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(json(StatusCode::OK, &merged))
}
