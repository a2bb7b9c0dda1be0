//! `/api/log…` and `/api/usage…`: log search, totals with RPM/TPM, usage series, clean-up.
//! Admins see every row; `/self` routes see the caller's own rows, without channel details.

use super::{commit_change, manage_entry, params};
use crate::auth::Principal;
use crate::billing::display;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::log_query::{self, Bucket, Cursor, LogFilter, PageRequest, SortKey, SplitBy};
use crate::store::logs::LogType;
use crate::store::usage::{self, Zone};
use crate::store::usage_names;
use crate::util;
use crate::web::{Resp, json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = params::MAX_PAGE_SIZE;

/// Query parameters of the log routes (`token_name`, `model_name`, `start_timestamp`…, the
/// names existing log scripts send); unknown names are refused, so a typo is not silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    #[serde(rename = "type")]
    pub(super) log_type: Option<String>,
    #[serde(alias = "start")]
    pub(super) start_timestamp: Option<i64>,
    #[serde(alias = "end")]
    pub(super) end_timestamp: Option<i64>,
    pub(super) user_id: Option<i64>,
    pub(super) username: Option<String>,
    pub(super) key_id: Option<i64>,
    #[serde(alias = "key_name")]
    pub(super) token_name: Option<String>,
    #[serde(alias = "model")]
    pub(super) model_name: Option<String>,
    #[serde(alias = "channel_id")]
    pub(super) channel: Option<i64>,
    pub(super) group: Option<String>,
    pub(super) request_id: Option<String>,
    pub(super) status: Option<i64>,
    pub(super) sort: Option<String>,
    pub(super) order: Option<String>,
    pub(super) cursor: Option<String>,
    pub(super) page_size: Option<usize>,
    pub(super) p: Option<usize>,
    /// Usage series only: `hour` or `day`.
    pub(super) bucket: Option<String>,
    /// Usage series only: split by `model`, `user`, `key` or `channel`.
    pub(super) by: Option<String>,
    /// Usage series only: the zone of day buckets (IANA name or offset minutes).
    pub(super) tz: Option<String>,
}

/// Parses and range-checks the parameters (every number against the bounds the OpenAPI
/// document states).
pub(super) fn parse_params(query: &str) -> Result<Params, ApiError> {
    let q: Params = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {e}")))?;
    params::time("start_timestamp", q.start_timestamp)?;
    params::time("end_timestamp", q.end_timestamp)?;
    params::id("user_id", q.user_id)?;
    params::id("key_id", q.key_id)?;
    params::id("channel", q.channel)?;
    if let Some(s) = q.status {
        params::in_range("status", s, 0, 999)?;
    }
    if let Some(n) = q.page_size {
        params::in_range("page_size", n, 1, MAX_PAGE)?;
    }
    if let Some(n) = q.p {
        params::in_range("p", n, 1, params::MAX_PAGE_NUMBER)?;
    }
    Ok(q)
}

/// `consume,error` (names or 1–6, comma-separated, no spaces); empty = every type.
fn parse_types(s: &str) -> Result<Vec<i64>, ApiError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|t| {
            Ok(match t {
                "topup" | "1" => LogType::Topup,
                "consume" | "2" => LogType::Consume,
                "manage" | "3" => LogType::Manage,
                "system" | "4" => LogType::System,
                "error" | "5" => LogType::Error,
                "refund" | "6" => LogType::Refund,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown log type {other:?}: use topup, consume, manage, system, error or refund (or 1–6), comma-separated"
                    )));
                }
            } as i64)
        })
        .collect()
}

/// Whose rows a request may see.
#[derive(Clone, Copy)]
pub(super) enum Scope {
    All,
    Own(i64),
}

/// Builds the row filter, resolving user and key names to ids (falling back to the name
/// recorded in the rows, for accounts since deleted).
pub(super) async fn filter(
    state: &AppState,
    q: &Params,
    scope: Scope,
) -> Result<LogFilter, ApiError> {
    let mut f = LogFilter {
        types: match &q.log_type {
            Some(t) => parse_types(t)?,
            None => Vec::new(),
        },
        start: q.start_timestamp,
        end: q.end_timestamp,
        model: q.model_name.clone(),
        group: q.group.clone(),
        request_id: q.request_id.clone(),
        status: q.status,
        ..Default::default()
    };
    // [start, end) with start ≥ end is a valid, empty range: it reads no rows.
    match scope {
        Scope::Own(uid) => {
            if q.user_id.is_some() || q.username.is_some() || q.channel.is_some() {
                return Err(ApiError::BadRequest(
                    "user_id, username and channel are not filters of your own logs".into(),
                ));
            }
            f.user_ids = Some(vec![uid]);
        }
        Scope::All => {
            f.channel_id = q.channel;
            if let Some(id) = q.user_id {
                f.user_ids = Some(vec![id]);
            }
            if let Some(name) = q.username.clone() {
                let ids = {
                    let name = name.clone();
                    state
                        .store
                        .read(move |c| log_query::user_ids_named(c, &name))
                        .await?
                };
                if ids.is_empty() {
                    f.username = Some(name);
                } else {
                    let ids = intersect(f.user_ids.take(), ids);
                    f.user_ids = Some(ids);
                }
            }
        }
    }
    if let Some(id) = q.key_id {
        f.key_ids = Some(vec![id]);
    }
    if let Some(name) = q.token_name.clone() {
        let owner = match scope {
            Scope::Own(uid) => Some(uid),
            Scope::All => None,
        };
        let ids = {
            let name = name.clone();
            state
                .store
                .read(move |c| log_query::key_ids_named(c, &name, owner))
                .await?
        };
        if ids.is_empty() {
            f.key_name = Some(name);
        } else {
            let ids = intersect(f.key_ids.take(), ids);
            f.key_ids = Some(ids);
        }
    }
    Ok(f)
}

fn intersect(given: Option<Vec<i64>>, found: Vec<i64>) -> Vec<i64> {
    match given {
        Some(g) => found.into_iter().filter(|id| g.contains(id)).collect(),
        None => found,
    }
}

/// `GET /api/log`, `GET /api/log/self`: newest first by default; `cursor` pages are stable
/// while rows arrive; `p` pages (1-based, by offset) serve scripts that page by number.
pub async fn search(
    state: &AppState,
    p: &Principal,
    query: &str,
    own: bool,
) -> Result<Resp, ApiError> {
    let q = parse_params(query)?;
    no_usage_params(&q)?;
    let scope = if own {
        Scope::Own(p.user.id)
    } else {
        Scope::All
    };
    let f = filter(state, &q, scope).await?;
    let (sort, descending) = sort_order(&q)?;
    let limit = q.page_size.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "page_size must be 1 to {MAX_PAGE}"
        )));
    }
    let after =
        match &q.cursor {
            None => None,
            Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
                ApiError::BadRequest("cursor is not one this API gave out".into())
            })?),
        };
    // With a cursor, `p` counts pages after it (offset paging from the cursor's row).
    let offset = q.p.unwrap_or(1).saturating_sub(1).saturating_mul(limit);
    let page = PageRequest {
        sort,
        descending,
        limit,
        after,
        offset,
    };
    let (mut rows, next) = state
        .store
        .read(move |c| log_query::search(c, &f, &page))
        .await?;
    if own {
        for r in &mut rows {
            r.channel_id = None;
            r.upstream_model = None;
        }
    }
    let display = &state.catalog.options().display;
    Ok(json(
        StatusCode::OK,
        &json!({
            "items": display::with_display(&rows, &["quota"], display),
            "next_cursor": next.map(|c| c.encode()),
        }),
    ))
}

/// Refuses the usage-only parameters on a search, total or export.
pub(super) fn no_usage_params(q: &Params) -> Result<(), ApiError> {
    if q.bucket.is_some() || q.by.is_some() || q.tz.is_some() {
        return Err(ApiError::BadRequest(
            "bucket, by and tz belong to /api/usage".into(),
        ));
    }
    Ok(())
}

/// The sort column and direction of a log search (newest first by default).
pub(super) fn sort_order(q: &Params) -> Result<(SortKey, bool), ApiError> {
    let sort = match q.sort.as_deref() {
        None => SortKey::CreatedAt,
        Some(s) => SortKey::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!("sort must be one of {}", SortKey::NAMES.join(", ")))
        })?,
    };
    let descending = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::BadRequest("order must be asc or desc".into())),
    };
    Ok((sort, descending))
}

/// `GET /api/log/stat`, `GET /api/log/self/stat`: totals over the filters and time range
/// (consume rows unless `type` says otherwise), plus requests and tokens in the last 60 s of
/// the range (RPM, TPM).
pub async fn stat(
    state: &AppState,
    p: &Principal,
    query: &str,
    own: bool,
) -> Result<Resp, ApiError> {
    let q = parse_params(query)?;
    no_usage_params(&q)?;
    if q.sort.is_some()
        || q.order.is_some()
        || q.cursor.is_some()
        || q.p.is_some()
        || q.page_size.is_some()
    {
        return Err(ApiError::BadRequest(
            "totals take the filters of /api/log, not sort, order, cursor, p or page_size".into(),
        ));
    }
    let scope = if own {
        Scope::Own(p.user.id)
    } else {
        Scope::All
    };
    let mut f = filter(state, &q, scope).await?;
    if f.types.is_empty() {
        f.types = vec![LogType::Consume as i64];
    }
    let now = util::now_secs();
    let window_end = f.end.map_or(now + 1, |e| e.min(now + 1));
    let window_start = f.start.map_or(window_end - 60, |s| s.max(window_end - 60));
    let (totals, minute) = state
        .store
        .read(move |c| {
            let totals = log_query::totals(c, &f)?;
            let minute = log_query::totals_from_rows(c, &f, Some(window_start), Some(window_end))?;
            Ok((totals, minute))
        })
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "requests": totals.requests,
            "quota": totals.quota,
            "quota_display": display::show(totals.quota, &state.catalog.options().display),
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "tokens": totals.tokens(),
            "rpm": minute.requests,
            "tpm": minute.tokens(),
        }),
    ))
}

/// `GET /api/usage`, `GET /api/usage/self`: requests, errors, tokens and quota per hour or
/// day from the rollups (which outlive deleted rows), optionally split by one dimension.
pub async fn usage(
    state: &AppState,
    p: &Principal,
    query: &str,
    own: bool,
) -> Result<Resp, ApiError> {
    let q = parse_params(query)?;
    if q.log_type.is_some()
        || q.request_id.is_some()
        || q.sort.is_some()
        || q.order.is_some()
        || q.cursor.is_some()
        || q.p.is_some()
        || q.page_size.is_some()
    {
        return Err(ApiError::BadRequest(
            "usage takes start, end, bucket, by and the user, key, model, channel, group and status filters".into(),
        ));
    }
    let bucket = match q.bucket.as_deref() {
        None | Some("hour") => Bucket::Hour,
        Some("day") => Bucket::Day,
        Some(_) => return Err(ApiError::BadRequest("bucket must be hour or day".into())),
    };
    let split = match q.by.as_deref() {
        None => SplitBy::Nothing,
        Some(s) => SplitBy::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!("by must be one of {}", SplitBy::NAMES.join(", ")))
        })?,
    };
    if own && matches!(split, SplitBy::User | SplitBy::Channel) {
        return Err(ApiError::BadRequest(
            "your own usage splits by model or key".into(),
        ));
    }
    let scope = if own {
        Scope::Own(p.user.id)
    } else {
        Scope::All
    };
    let zone = match q.tz.as_deref() {
        None => Zone::Utc,
        Some(z) => Zone::parse(z).map_err(ApiError::BadRequest)?,
    };
    let f = filter(state, &q, scope).await?;
    let now = util::now_secs();
    let span = match bucket {
        Bucket::Hour => 24 * 3600,
        Bucket::Day => 30 * 86_400,
    };
    let start = f.start.unwrap_or(now - span);
    let end = f.end;
    let exact = zone.exact_over(start, end.unwrap_or(now).max(start));
    let named = matches!(split, SplitBy::User | SplitBy::Key | SplitBy::Channel);
    let answer = |points: Value, names: BTreeMap<String, String>| {
        let mut a = json!({
            "points": points,
            "tz": zone.label(),
            "tz_exact": exact,
            "bucket": match bucket { Bucket::Hour => "hour", Bucket::Day => "day" },
            "start": start,
            "end": end,
        });
        if named {
            a["names"] = json!(names);
        }
        a
    };
    if f.username.is_some() || f.key_name.is_some() {
        // Names of deleted accounts are not in the rollups: nothing to show.
        return Ok(json(StatusCode::OK, &answer(json!([]), BTreeMap::new())));
    }
    let z = zone.clone();
    // The names are read with the series, for exactly the ids its points carry; an own series
    // reads only the caller's account and keys, whatever ids its points hold.
    let who = if own {
        usage_names::Scope::Own(p.user.id)
    } else {
        usage_names::Scope::All
    };
    let (points, ids) = state
        .store
        .read(move |c| {
            let points = usage::series(c, &f, start, end, bucket, split, &z)?;
            let names = usage_names::names(c, split, &points, who)?;
            Ok((points, names))
        })
        .await?;
    let mut names: BTreeMap<String, String> =
        ids.into_iter().map(|(id, n)| (id.to_string(), n)).collect();
    if split == SplitBy::Key && points.iter().any(|p| p.of.as_deref() == Some("0")) {
        // The playground's calls have no key; their rows carry this name (see relay).
        names.insert("0".into(), crate::relay::PLAYGROUND_KEY_NAME.into());
    }
    let points = display::with_display(&points, &["quota"], &state.catalog.options().display);
    Ok(json(StatusCode::OK, &answer(points, names)))
}

/// `DELETE /api/log?before=<unix>`: deletes consume, error and system rows created before
/// the time, in batches (each its own short transaction), keeping their charges in the
/// purged totals and their hours in the rollups. Returns how many went.
pub async fn delete(state: &Arc<AppState>, p: &Principal, query: &str) -> Result<Resp, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        #[serde(alias = "target_timestamp")]
        before: i64,
    }
    let q: Q = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::BadRequest("give the cut-off as ?before=<unix seconds>".into()))?;
    params::in_range("before", q.before, 1, params::MAX_TIME)?;
    let deleted = crate::retention::purge(&state.store, q.before).await?;
    let log = manage_entry(
        &p.user,
        format!("deleted {deleted} log rows created before {}", q.before),
    );
    commit_change(state, log, |_| Ok(())).await?;
    Ok(json(StatusCode::OK, &json!({ "deleted": deleted })))
}
