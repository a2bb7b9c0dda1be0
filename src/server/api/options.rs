//! `/api/option`: the run-time settings registry (see [`crate::settings`]), applied live.

use super::{Refresh, commit_change, manage_entry, refresh};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings;
use crate::state::AppState;
use crate::store::options;
use crate::store::users::Role;
use crate::util;
use crate::web::{Resp, json, parse_json};
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Every option with its value (secrets masked), default and description.
pub fn get(state: &AppState) -> Resp {
    json(
        StatusCode::OK,
        &settings::describe(&state.catalog.options()),
    )
}

/// The flat `module.field → value` document. Secrets are masked unless root asks for them
/// with `?secrets=include`.
pub fn export(state: &AppState, p: &Principal, query: &str) -> Result<Resp, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        secrets: Option<String>,
    }
    let q: Q = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {e}")))?;
    let with_secrets = match q.secrets.as_deref() {
        None => false,
        Some("include") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "secrets must be include (or left out)".into(),
            ));
        }
    };
    if with_secrets && p.user.role != Role::Root {
        return Err(ApiError::Forbidden("only root may export secrets".into()));
    }
    Ok(json(
        StatusCode::OK,
        &settings::export(&state.catalog.options(), with_secrets),
    ))
}

/// Sets options from a `module.field → value` object (an export document is one): all are
/// validated before any is stored; one manage row lists the changed names (never values, as
/// some are secrets).
pub async fn put(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let mut changes: Map<String, Value> = parse_json(parts, body)?;
    // `4.0` is the integer 4 in JSON: integer options take it.
    changes.values_mut().for_each(|v| {
        crate::web::whole_numbers(v);
    });
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "no options given: send {\"module.field\": value, …}; GET /api/option lists them"
                .into(),
        ));
    }
    let merged = settings::merge(&state.catalog.options(), &changes).map_err(|r| {
        ApiError::InvalidFields {
            message: r.message,
            fields: r.fields,
        }
    })?;
    // The stored SMTP password was given for one mail server: moving mail to another would
    // send it there with the next message. Whoever moves it must know it (or give a new one),
    // as for a channel's base_url and its secret.
    let password_given = changes
        .get("smtp.password")
        .is_some_and(|v| v.as_str() != Some(settings::MASK));
    if !password_given
        && state
            .catalog
            .options()
            .smtp
            .moves_password(&merged.options.smtp)
    {
        let message = "smtp.host or smtp.port now names another mail server: send smtp.password with it, so the stored password is never sent to a server it was not given for";
        return Err(ApiError::InvalidFields {
            message: message.into(),
            fields: [("smtp.password".to_string(), message.to_string())].into(),
        });
    }
    let names: Vec<String> = merged.rows.iter().map(|(k, _)| k.clone()).collect();
    if !names.is_empty() {
        let log = manage_entry(&p.user, format!("changed options: {}", names.join(", ")));
        let rows = merged.rows;
        commit_change(state, log, move |c| {
            let now = util::now_secs();
            for (k, v) in &rows {
                options::set(c, k, v, now)?;
            }
            Ok(())
        })
        .await?;
        refresh(state, Refresh::Options).await;
        state.apply_options();
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "changed": names,
            "options": settings::export(&state.catalog.options(), false),
        }),
    ))
}
