//! `POST /api/me/password`: a signed-in user changes their own password. The current one must
//! be given (a stolen session alone cannot take the account over); a wrong one counts as a
//! failed sign-in for the throttle. Every other session and the access token end with the
//! change; the session it was made from stays.

use super::manage_entry;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::users::Role;
use crate::store::{logs, sessions, users};
use crate::web::{Resp, json, parse_json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    current_password: String,
    new_password: String,
}

pub async fn change_own(
    state: &AppState,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
    ip: IpAddr,
) -> Result<Resp, ApiError> {
    let b: ChangeBody = parse_json(parts, body)?;
    let name = p.user.username.clone();
    if let Some(wait) = state.throttle.check(&name, ip, Instant::now()) {
        return Err(ApiError::Throttled { retry_after: wait });
    }
    auth::check_password_policy(&b.new_password)?;
    if b.new_password == b.current_password {
        return Err(ApiError::BadRequest(
            "the new password must differ from the current one".into(),
        ));
    }
    let uid = p.user.id;
    let stored = state
        .store
        .read(move |c| users::password_hash(c, uid))
        .await?;
    let expected = stored.clone();
    let (current, new) = (b.current_password, b.new_password);
    let new_hash = tokio::task::spawn_blocking(move || {
        if auth::verify_password(&current, &stored) {
            auth::hash_password(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let Some(new_hash) = new_hash else {
        state.throttle.record_failure(&name, ip, Instant::now());
        log::warn!("password change for {name:?} from {ip} refused: wrong current password");
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    };
    state.throttle.record_success(&name, ip);
    let keep = p.session;
    let mut entry = manage_entry(&p.user, String::new());
    state
        .store
        .writer
        .exec(move |c| {
            if !users::replace_password_hash(c, uid, &expected, &new_hash)? {
                return Ok(false);
            }
            let ended = sessions::end_sign_ins(c, uid, keep.as_ref())?;
            entry.content = Some(format!("changed own password; {ended}"));
            logs::insert(c, &entry)?;
            Ok(true)
        })
        .await?
        .then_some(())
        .ok_or_else(|| {
            ApiError::Conflict(
                "the password was changed by another request meanwhile; sign in again".into(),
            )
        })?;
    log::info!("{name} changed their password from {ip}");
    if p.user.role == Role::Root {
        forget_initial_root_password(state).await;
    }
    Ok(json(StatusCode::OK, &json!({"ok": true})))
}

/// The generated first root password, while it is still on disk.
fn initial_root_password_path(state: &AppState) -> std::path::PathBuf {
    state
        .config
        .data_dir
        .join(crate::auth::INITIAL_ROOT_PASSWORD_FILE)
}

/// True while root still has the generated first password (its file exists): the console then
/// asks root to change it.
pub async fn must_change(state: &AppState, p: &Principal) -> bool {
    p.user.role == Role::Root
        && tokio::fs::try_exists(initial_root_password_path(state))
            .await
            .unwrap_or(false)
}

/// Deletes the generated first root password once root has chosen another, so the file stops
/// asking for a change that was made.
pub async fn forget_initial_root_password(state: &AppState) {
    let path = initial_root_password_path(state);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => log::info!(
            "root changed the generated password; deleted {}",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("could not delete {}: {e}", path.display()),
    }
}
