//! `/api/users`: accounts, roles and balances (admins only).

use super::listing::{ListParams, page_json};
use super::{Refresh, admin_change, commit_change_checked, manage_entry, refresh};
use crate::auth::{self, Principal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::users::{self, NewUser, Role, UserPatch};
use crate::store::{logs, sessions};
use crate::util;
use crate::web::{Resp, json, no_content, not_null, parse_json};
use http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Every account (no parameters), or one page of a search (see [`super::listing`]).
pub async fn list(state: &AppState, query: &str) -> Result<Resp, ApiError> {
    let lp = ListParams::parse(query)?;
    if lp.user_id.is_some() || lp.status.is_some() {
        return Err(ApiError::BadRequest(
            "users take q, p, page_size, sort and order".into(),
        ));
    }
    let Some(q) = lp.query(&users::LISTING)? else {
        let rows = state.store.read(users::list).await?;
        return Ok(json(StatusCode::OK, &money(state, &rows)));
    };
    let page = {
        let q = q.clone();
        state.store.read(move |c| users::search(c, &q)).await?
    };
    Ok(json(
        StatusCode::OK,
        &page_json(&page, &q, |u| money(state, u)),
    ))
}

pub async fn get(state: &AppState, id: i64) -> Result<Resp, ApiError> {
    let row = state.store.read(move |c| users::get(c, id)).await?;
    Ok(json(StatusCode::OK, &money(state, &row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    password: String,
    #[serde(default, deserialize_with = "not_null")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "not_null")]
    group: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    quota: Option<i64>,
}

/// New names and renames: ASCII letters and digits and `._-@` only, so no name can pass for
/// another with look-alike letters (Cyrillic "о" in "rооt"). Existing names are not checked
/// again: they still sign in.
fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(ApiError::BadRequest(
            "username must be 1–64 characters: ASCII letters (a–z, A–Z), digits, '.', '_', '-' or '@'".into(),
        ));
    }
    Ok(())
}

/// Refuses a name that differs from another account's only in letter case.
fn check_unlike_others(
    c: &rusqlite::Connection,
    name: &str,
    except: Option<i64>,
) -> Result<Result<(), ApiError>, crate::store::StoreError> {
    Ok(match users::name_taken_ignoring_case(c, name, except)? {
        Some(other) if other != name => Err(ApiError::Conflict(format!(
            "username {name:?} differs from the existing {other:?} only in letter case; choose another"
        ))),
        // The same name exactly: the UNIQUE constraint answers 409.
        _ => Ok(()),
    })
}

fn check_group(g: &str) -> Result<(), ApiError> {
    if g.is_empty() || g.len() > 64 {
        return Err(ApiError::BadRequest("group must be 1–64 characters".into()));
    }
    Ok(())
}

fn check_quota(q: i64) -> Result<(), ApiError> {
    if q < 0 {
        return Err(ApiError::BadRequest("quota cannot be negative".into()));
    }
    Ok(())
}

/// Only root makes admins; nobody makes another root; admins manage plain users.
fn may_assign(actor: &Principal, role: Role) -> Result<(), ApiError> {
    match (actor.user.role, role) {
        (_, Role::Root) => Err(ApiError::Forbidden("there is only one root account".into())),
        (Role::Root, _) | (Role::Admin, Role::User) => Ok(()),
        _ => Err(ApiError::Forbidden("only root can make admins".into())),
    }
}

/// May `actor` change or delete `target`? Root may change itself; others only those below them.
fn may_manage(actor: &Principal, target: &users::UserRow) -> Result<(), ApiError> {
    if actor.user.role == Role::Root || target.role < actor.user.role {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "you can only manage accounts below your own role".into(),
        ))
    }
}

pub async fn create(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: CreateBody = parse_json(parts, body)?;
    check_username(&b.username)?;
    auth::check_password_policy(&b.password)?;
    let role = b.role.unwrap_or(Role::User);
    may_assign(p, role)?;
    let group = b.group.unwrap_or_else(|| "default".into());
    check_group(&group)?;
    let quota = b.quota.unwrap_or(0);
    check_quota(quota)?;
    let password = b.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let log = manage_entry(
        &p.user,
        format!(
            "created user {:?} ({}) with quota {quota}",
            b.username,
            role.as_str()
        ),
    );
    let username = b.username;
    let by = log.clone();
    let row = commit_change_checked(state, log, move |c, _| {
        if let Err(e) = check_unlike_others(c, &username, None)? {
            return Ok(Err(e));
        }
        let id = users::insert(
            c,
            &NewUser {
                username: &username,
                password_hash: &hash,
                role,
                group: &group,
                quota,
                created_at: util::now_secs(),
            },
        )?;
        logs::record_topup(c, &by, id, None, quota)?;
        users::get(c, id).map(Ok)
    })
    .await?;
    refresh(state, Refresh::User(row.id)).await;
    Ok(json(StatusCode::CREATED, &money(state, &row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    username: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    password: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "not_null")]
    group: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "not_null")]
    quota: Option<i64>,
}

pub async fn patch(
    state: &Arc<AppState>,
    p: &Principal,
    id: i64,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: PatchBody = parse_json(parts, body)?;
    let target = state.store.read(move |c| users::get(c, id)).await?;
    may_manage(p, &target)?;
    if let Some(n) = &b.username {
        check_username(n)?;
    }
    if let Some(g) = &b.group {
        check_group(g)?;
    }
    if let Some(q) = b.quota {
        check_quota(q)?;
    }
    if let Some(r) = b.role {
        if target.role == Role::Root && r != Role::Root {
            return Err(ApiError::Forbidden("root's role cannot be changed".into()));
        }
        if r != target.role {
            may_assign(p, r)?;
        }
    }
    if b.enabled == Some(false) && target.id == p.user.id {
        return Err(ApiError::Forbidden(
            "you cannot disable your own account".into(),
        ));
    }
    let password_hash = match b.password {
        Some(pw) => {
            auth::check_password_policy(&pw)?;
            Some(
                tokio::task::spawn_blocking(move || auth::hash_password(&pw))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))??,
            )
        }
        None => None,
    };
    let password_changed = password_hash.is_some();
    let patch = UserPatch {
        username: b.username,
        password_hash,
        role: b.role,
        group: b.group,
        enabled: b.enabled,
    };
    let quota = b.quota;
    // A new password or a disable ends the account's sign-ins in the same transaction; an
    // admin changing their own password keeps the session they did it from.
    let end_sign_ins = patch.password_hash.is_some() || patch.enabled == Some(false);
    let keep = if id == p.user.id { p.session } else { None };
    // Built here, on the request's task, so the row carries its request id.
    let mut entry = manage_entry(&p.user, String::new());
    let target_name = target.username.clone();
    let (row, old_quota) = state
        .store
        .writer
        .exec(move |c| {
            if let Some(n) = &patch.username
                && let Err(e) = check_unlike_others(c, n, Some(id))?
            {
                return Ok(Err(e));
            }
            users::update(c, id, &patch)?;
            let ended = if end_sign_ins {
                Some(sessions::end_sign_ins(c, id, keep.as_ref())?)
            } else {
                None
            };
            let mut changes: Vec<String> = Vec::new();
            if patch.username.is_some() {
                changes.push("username".into());
            }
            if patch.password_hash.is_some() {
                changes.push("password".into());
            }
            if let Some(r) = patch.role {
                changes.push(format!("role={}", r.as_str()));
            }
            if let Some(g) = &patch.group {
                changes.push(format!("group={g}"));
            }
            if let Some(e) = patch.enabled {
                changes.push(format!("enabled={e}"));
            }
            let old_quota = match quota {
                Some(q) => {
                    let old = users::set_quota(c, id, q)?;
                    changes.push(format!("quota {old} → {q}"));
                    logs::record_topup(c, &entry, id, None, q - old)?;
                    Some(old)
                }
                None => None,
            };
            if let Some(e) = ended {
                changes.push(e.to_string());
            }
            if !changes.is_empty() {
                entry.content = Some(format!(
                    "updated user {target_name:?}: {}",
                    changes.join(", ")
                ));
                logs::insert(c, &entry)?;
            }
            Ok(Ok((users::get(c, id)?, old_quota)))
        })
        .await??;
    // The difference, read in the transaction that set the new balance (see the ledger).
    if let (Some(old), Some(new), Some(acct)) = (old_quota, quota, state.catalog.user_account(id)) {
        acct.adjust(new - old);
        state
            .notifier
            .balance_set(crate::notify::Subject::User(id), id, acct.balance());
    }
    refresh(state, Refresh::User(id)).await;
    if password_changed && target.role == Role::Root {
        super::password::forget_initial_root_password(state).await;
    }
    Ok(json(StatusCode::OK, &money(state, &row)))
}

pub async fn delete(state: &Arc<AppState>, p: &Principal, id: i64) -> Result<Resp, ApiError> {
    let target = state.store.read(move |c| users::get(c, id)).await?;
    if target.role == Role::Root {
        return Err(ApiError::Forbidden(
            "the root account cannot be deleted".into(),
        ));
    }
    if target.id == p.user.id {
        return Err(ApiError::Forbidden(
            "you cannot delete your own account".into(),
        ));
    }
    may_manage(p, &target)?;
    let log = manage_entry(&p.user, format!("deleted user {:?}", target.username));
    admin_change(state, log, move |c| {
        users::delete(c, id)?;
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// Rows with `quota_display` and `used_quota_display` beside the raw units.
fn money<T: serde::Serialize>(state: &AppState, v: &T) -> serde_json::Value {
    crate::billing::display::with_display(
        v,
        crate::billing::display::USER_FIELDS,
        &state.catalog.options().display,
    )
}
