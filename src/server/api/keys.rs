//! `/api/keys`: API keys. Users manage their own; admins manage everyone's.
//! The full key is returned once, at creation; only its digest is stored.

use super::listing::{ListParams, page_json};
use super::{Refresh, commit_change, commit_change_checked, key_locks, manage_entry, refresh};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::keys::{self, KeyPatch, KeyRow, Locks, NewKey};
use crate::store::logs;
use crate::util;
use crate::web::{Resp, json, no_content, not_null, parse_json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Random characters after `sk-`.
const KEY_CHARS: usize = 48;

/// The caller's keys (every key for an admin, or one user's with `user_id`), whole or one page
/// of a search (see [`super::listing`]).
pub async fn list(state: &AppState, p: &Principal, query: &str) -> Result<Resp, ApiError> {
    let lp = ListParams::parse(query)?;
    if lp.status.is_some() {
        return Err(ApiError::BadRequest(
            "keys take user_id, q, p, page_size, sort and order".into(),
        ));
    }
    let filter = super::params::id("user_id", lp.user_id)?;
    let user_filter = if p.is_admin() {
        filter
    } else {
        Some(p.user.id)
    };
    let Some(q) = lp.query(&keys::LISTING)? else {
        let rows = state
            .store
            .read(move |c| keys::list(c, user_filter))
            .await?;
        return Ok(json(StatusCode::OK, &money(state, &rows)));
    };
    let page = {
        let q = q.clone();
        state
            .store
            .read(move |c| keys::search(c, &q, user_filter))
            .await?
    };
    Ok(json(
        StatusCode::OK,
        &page_json(&page, &q, |k| money(state, k)),
    ))
}

/// The key, if the caller may see and change it; 404 otherwise, so ids of others' keys leak nothing.
async fn owned(state: &AppState, p: &Principal, id: i64) -> Result<KeyRow, ApiError> {
    let row = state.store.read(move |c| keys::get(c, id)).await?;
    if row.user_id != p.user.id {
        if !p.is_admin() {
            return Err(ApiError::NotFound("no such key".into()));
        }
        may_manage_keys_of(state, p, row.user_id).await?;
    }
    Ok(row)
}

/// Admins manage the keys of accounts below their role; root manages everyone's.
async fn may_manage_keys_of(state: &AppState, p: &Principal, owner: i64) -> Result<(), ApiError> {
    let owner_row = state
        .store
        .read(move |c| crate::store::users::get(c, owner))
        .await
        .map_err(|_| ApiError::NotFound(format!("user {owner} does not exist")))?;
    if p.user.role == crate::store::users::Role::Root || owner_row.role < p.user.role {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "you can only manage keys of accounts below your own role".into(),
        ))
    }
}

pub async fn get(state: &AppState, p: &Principal, id: i64) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &money(state, &owned(state, p, id).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    quota: Option<i64>,
    #[serde(default)]
    unlimited: bool,
    /// null = no expiry, as when left out.
    #[serde(default)]
    expires_at: Option<i64>,
    /// null = every model, as when left out.
    #[serde(default)]
    models: Option<Vec<String>>,
    /// Admins may create a key for another user.
    #[serde(default, deserialize_with = "not_null")]
    user_id: Option<i64>,
    /// Requests per minute (0 = unlimited); absent or null = the `ratelimit.key_rpm` option.
    #[serde(default)]
    rpm_limit: Option<i64>,
    /// Tokens per minute (0 = unlimited); absent or null = the `ratelimit.key_tpm` option.
    #[serde(default)]
    tpm_limit: Option<i64>,
}

fn check_limit(name: &str, v: Option<i64>) -> Result<(), ApiError> {
    match v {
        Some(n) if !(0..=crate::settings::ratelimit::MAX_LIMIT as i64).contains(&n) => {
            Err(ApiError::BadRequest(format!(
                "{name} is {n}; use 0 (unlimited) to {}, or null for the default",
                crate::settings::ratelimit::MAX_LIMIT
            )))
        }
        _ => Ok(()),
    }
}

fn check_name(n: &str) -> Result<(), ApiError> {
    if n.trim().is_empty() || n.chars().count() > 64 {
        return Err(ApiError::BadRequest("name must be 1–64 characters".into()));
    }
    Ok(())
}

fn check_models(m: &Option<Vec<String>>) -> Result<(), ApiError> {
    if let Some(list) = m {
        if list.is_empty() {
            return Err(ApiError::BadRequest(
                "models must name at least one model; omit it (or send null) to allow every model"
                    .into(),
            ));
        }
        if list.iter().any(|s| s.trim().is_empty() || s.len() > 128) {
            return Err(ApiError::BadRequest(
                "models must be non-empty names of at most 128 characters".into(),
            ));
        }
    }
    Ok(())
}

pub async fn create(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: CreateBody = parse_json(parts, body)?;
    check_name(&b.name)?;
    check_models(&b.models)?;
    check_limit("rpm_limit", b.rpm_limit)?;
    check_limit("tpm_limit", b.tpm_limit)?;
    let quota = match (b.quota, b.unlimited) {
        (_, true) => b.quota.unwrap_or(0),
        (Some(q), false) => q,
        (None, false) => {
            return Err(ApiError::BadRequest(
                "give the key a quota (\"quota\": N) or make it unlimited (\"unlimited\": true)"
                    .into(),
            ));
        }
    };
    if quota < 0 {
        return Err(ApiError::BadRequest("quota cannot be negative".into()));
    }
    // A time already past is allowed: the key is created expired (as PATCH expires one now).
    if let Some(t) = b.expires_at {
        super::params::in_range("expires_at", t, 0, super::params::MAX_TIME)?;
    }
    let now = util::now_secs();
    let owner = match b.user_id {
        Some(uid) if uid != p.user.id => {
            if !p.is_admin() {
                return Err(ApiError::Forbidden(
                    "only admins can create keys for other users".into(),
                ));
            }
            may_manage_keys_of(state, p, uid).await?;
            uid
        }
        _ => p.user.id,
    };
    // What an admin sets on someone else's key, its owner cannot undo.
    let locks = if owner == p.user.id {
        Locks::new()
    } else {
        key_locks::on_create(
            b.models.is_some(),
            b.expires_at.is_some(),
            b.rpm_limit.is_some(),
            b.tpm_limit.is_some(),
        )
    };
    let secret = format!("sk-{}", util::random_token(KEY_CHARS));
    let digest = util::digest(&secret);
    let prefix: String = secret.chars().take(8).collect();
    let mut what = format!("created key {:?} for user {owner}", b.name);
    if !locks.is_empty() {
        what.push_str(&format!(
            "; locked for the owner: {}",
            key_locks::describe(&locks)
        ));
    }
    let log = manage_entry(&p.user, what);
    let by = log.clone();
    let cap = state.catalog.options().keys.max_per_user;
    let row = commit_change_checked(state, log, move |c, _| {
        // Counted in the transaction that inserts, so concurrent creates stop exactly at it.
        if cap > 0 && keys::count_of_user(c, owner)? >= i64::from(cap) {
            return Ok(Err(ApiError::Forbidden(format!(
                "user {owner} already has {cap} API keys, the most one account may have (option keys.max_per_user): delete one first"
            ))));
        }
        let id = keys::insert(
            c,
            &NewKey {
                user_id: owner,
                name: &b.name,
                digest,
                prefix: &prefix,
                unlimited: b.unlimited,
                remain_quota: quota,
                expires_at: b.expires_at,
                models: b.models.as_deref(),
                created_at: now,
                rpm_limit: b.rpm_limit,
                tpm_limit: b.tpm_limit,
                admin_locked: &locks,
            },
        )?;
        if !b.unlimited {
            logs::record_topup(c, &by, owner, Some(id), quota)?;
        }
        keys::get(c, id).map(Ok)
    })
    .await?;
    refresh(state, Refresh::Key(row.id)).await;
    let mut v = money(state, &row);
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), json!(secret));
    }
    Ok(json(StatusCode::CREATED, &v))
}

#[derive(Deserialize)]
struct PatchBody {
    #[serde(flatten)]
    fields: KeyPatch,
    #[serde(default, deserialize_with = "not_null")]
    quota: Option<i64>,
    /// Admins only, on another account's key: the settings locked against the owner, replacing
    /// the set (`[]` hands them all back).
    #[serde(default, deserialize_with = "not_null")]
    admin_locked: Option<Locks>,
}

pub async fn patch(
    state: &Arc<AppState>,
    p: &Principal,
    id: i64,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: PatchBody = parse_json(parts, body)?;
    let current = owned(state, p, id).await?;
    if let Some(n) = &b.fields.name {
        check_name(n)?;
    }
    if let Some(m) = &b.fields.models {
        check_models(m)?;
    }
    check_limit("rpm_limit", b.fields.rpm_limit.flatten())?;
    check_limit("tpm_limit", b.fields.tpm_limit.flatten())?;
    if b.quota.is_some_and(|q| q < 0) {
        return Err(ApiError::BadRequest("quota cannot be negative".into()));
    }
    // A time already past expires the key now.
    if let Some(t) = b.fields.expires_at.flatten() {
        super::params::in_range("expires_at", t, 0, super::params::MAX_TIME)?;
    }
    // `owned` let a caller who is not the owner through only as an admin over the owner.
    let as_admin = current.user_id != p.user.id;
    if !as_admin && b.admin_locked.is_some() {
        return Err(ApiError::Forbidden(
            "admin_locked is set by an admin, on another account's key".into(),
        ));
    }
    let quota = b.quota;
    let explicit_locks = b.admin_locked;
    let mut fields = b.fields;
    let log = manage_entry(&p.user, format!("updated key {:?} (id {id})", current.name));
    let by = log.clone();
    let owner = current.user_id;
    let (row, old) = commit_change_checked(state, log, move |c, log| {
        // The locks as committed now, so an owner's change cannot slip past one an admin set
        // after this request read the key.
        let locked = keys::get(c, id)?.admin_locked;
        if as_admin {
            let locks = key_locks::after_admin_change(&locked, &fields, quota, explicit_locks);
            if locks != locked {
                log.content = log
                    .content
                    .take()
                    .map(|t| format!("{t}; locked for the owner: {}", key_locks::describe(&locks)));
                fields.admin_locked = Some(locks);
            }
        } else if let Err(e) = key_locks::check_owner_change(&locked, &fields, quota) {
            return Ok(Err(e));
        }
        keys::update(c, id, &fields)?;
        let old = match quota {
            Some(q) => {
                let old = keys::set_quota(c, id, q)?;
                logs::record_topup(c, &by, owner, Some(id), q - old)?;
                Some(old)
            }
            None => None,
        };
        Ok(Ok((keys::get(c, id)?, old)))
    })
    .await?;
    refresh(state, Refresh::Key(id)).await;
    // The difference, read in the transaction that set the new balance (see the ledger).
    if let (Some(old), Some(new), Some(acct)) = (old, quota, state.catalog.key_account(id)) {
        acct.adjust(new - old);
        state
            .notifier
            .balance_set(crate::notify::Subject::Key(id), owner, acct.balance());
    }
    Ok(json(StatusCode::OK, &money(state, &row)))
}

pub async fn delete(state: &Arc<AppState>, p: &Principal, id: i64) -> Result<Resp, ApiError> {
    let current = owned(state, p, id).await?;
    let log = manage_entry(&p.user, format!("deleted key {:?} (id {id})", current.name));
    commit_change(state, log, move |c| keys::delete(c, id)).await?;
    refresh(state, Refresh::Key(id)).await;
    Ok(no_content())
}

/// Rows with `remain_quota_display` and `used_quota_display` beside the raw units.
fn money<T: serde::Serialize>(state: &AppState, v: &T) -> serde_json::Value {
    crate::billing::display::with_display(
        v,
        crate::billing::display::KEY_FIELDS,
        &state.catalog.options().display,
    )
}
