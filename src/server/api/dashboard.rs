//! `GET /api/dashboard` (one request per view) and `GET /api/channels/stats`.
//!
//! Everyone sees their own figures; admins see everyone's, plus the health of the service.
//! Totals, series and rankings come from the usage engine (rollups plus ragged rows), so they
//! agree with the logs page for the same range.

use super::params;
use crate::auth::Principal;
use crate::billing::display;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::channel_stats::{self, ChannelStat};
use crate::store::channels::ChannelStatus;
use crate::store::log_query::{self, Bucket, LogFilter, SplitBy, UsagePoint};
use crate::store::logs::LogType;
use crate::store::usage::{self, Zone};
use crate::util;
use crate::web::{Resp, json};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const TOP: usize = 10;
/// How long the dashboard reuses an anomaly count (`/api/anomalies` always computes afresh).
const ANOMALY_REUSE: std::time::Duration = std::time::Duration::from_secs(60);
/// Channel figures on the dashboard cover the last hour.
const CHANNEL_WINDOW: i64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    range: Option<String>,
    tz: Option<String>,
}

/// (key, requests, quota, tokens), largest quota first.
fn rank(points: &[UsagePoint]) -> Vec<(String, i64, i64, i64)> {
    let mut by: HashMap<String, (i64, i64, i64)> = HashMap::new();
    for p in points {
        let e = by.entry(p.of.clone().unwrap_or_default()).or_default();
        e.0 += p.requests - p.errors;
        e.1 += p.quota;
        e.2 += p.prompt_tokens + p.completion_tokens;
    }
    let mut v: Vec<_> = by.into_iter().map(|(k, (r, q, t))| (k, r, q, t)).collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    v.truncate(TOP);
    v
}

pub async fn dashboard(
    state: &Arc<AppState>,
    p: &Principal,
    query: &str,
) -> Result<Resp, ApiError> {
    let q: Params = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {e}")))?;
    let (range, bucket, span) = match q.range.as_deref() {
        None | Some("24h") => ("24h", Bucket::Hour, 86_400),
        Some("30d") => ("30d", Bucket::Day, 30 * 86_400),
        Some(_) => return Err(ApiError::BadRequest("range must be 24h or 30d".into())),
    };
    let zone = match q.tz.as_deref() {
        None => Zone::Utc,
        Some(z) => Zone::parse(z).map_err(ApiError::BadRequest)?,
    };
    let admin = p.is_admin();
    let uid = p.user.id;
    let f = LogFilter {
        user_ids: (!admin).then(|| vec![uid]),
        ..Default::default()
    };
    let now = util::now_secs();
    let start = now - span;
    let z = zone.clone();
    let main = state.store.read(move |c| {
        let series = usage::series(c, &f, start, None, bucket, SplitBy::Model, &z)?;
        let keys = usage::series(c, &f, start, None, Bucket::Day, SplitBy::Key, &Zone::Utc)?;
        let consume = LogFilter {
            types: vec![LogType::Consume as i64],
            ..f.clone()
        };
        let minute = log_query::totals_from_rows(c, &consume, Some(now - 59), Some(now + 1))?;
        let me = crate::store::users::get(c, uid)?;
        let ids: Vec<i64> = rank(&keys)
            .iter()
            .filter_map(|k| k.0.parse().ok())
            .collect();
        let names = crate::store::keys::names(c, &ids)?;
        Ok((series, keys, minute, me, names))
    });
    // The admin part reads on another pooled connection at the same time.
    let health = async {
        if admin {
            admin_part(state, now).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (main, health) = tokio::join!(main, health);
    let (series, keys, minute, me, key_names) = main?;
    let health = health?;
    let money = state.catalog.options().display.clone();
    let show = |q: i64| display::show(q, &money);
    let sum = |f: fn(&UsagePoint) -> i64| series.iter().map(f).sum::<i64>();
    let (requests, errors) = (sum(|p| p.requests), sum(|p| p.errors));
    let quota = sum(|p| p.quota);
    let (pt, ct) = (sum(|p| p.prompt_tokens), sum(|p| p.completion_tokens));
    let ranked = |v: Vec<(String, i64, i64, i64)>, names: Option<&HashMap<i64, String>>| {
        v.into_iter()
            .map(|(of, r, q, t)| {
                let name = names.map(|n| match of.parse::<i64>() {
                    Ok(0) => Some(crate::relay::PLAYGROUND_KEY_NAME.to_string()),
                    Ok(id) => n.get(&id).cloned(),
                    Err(_) => None,
                });
                let mut v = json!({"of": of, "requests": r, "quota": q, "quota_display": show(q), "tokens": t});
                if let Some(name) = name {
                    v["name"] = json!(name);
                }
                v
            })
            .collect::<Vec<_>>()
    };
    let mut out = json!({
        "range": range,
        "bucket": match bucket { Bucket::Hour => "hour", Bucket::Day => "day" },
        "tz": zone.label(),
        "tz_exact": zone.exact_over(start, now),
        "start": start,
        "end": now,
        "scope": if admin { "all" } else { "self" },
        "balance": {
            "quota": me.quota,
            "quota_display": show(me.quota),
            "used_quota": me.used_quota,
            "used_quota_display": show(me.used_quota),
        },
        "totals": {
            "requests": requests - errors,
            "errors": errors,
            "quota": quota,
            "quota_display": show(quota),
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "tokens": pt + ct,
        },
        "now": {"rpm": minute.requests, "tpm": minute.tokens()},
        "series": display::with_display(&series, &["quota"], &money),
        "top_models": ranked(rank(&series), None),
        "top_keys": ranked(rank(&keys), Some(&key_names)),
    });
    if let Some(h) = health {
        out["admin"] = h;
    }
    Ok(json(StatusCode::OK, &out))
}

/// Names from the live channel list; `None` for channels since deleted.
fn named(state: &AppState, mut stats: Vec<ChannelStat>) -> Vec<ChannelStat> {
    let channels = state.catalog.channels();
    for s in &mut stats {
        s.name = channels
            .iter()
            .find(|c| c.id == s.channel_id)
            .map(|c| c.name.clone());
    }
    stats
}

async fn admin_part(state: &Arc<AppState>, now: i64) -> Result<Value, ApiError> {
    let stats = state
        .store
        .read(move |c| channel_stats::over(c, now - CHANNEL_WINDOW, now + 1))
        .await?;
    let channels = state.catalog.channels();
    let count = |s: ChannelStatus| channels.iter().filter(|c| c.status() == s).count();
    let cached = *state.anomaly_count.lock();
    let anomalies = match cached {
        Some((at, n)) if at.elapsed() < ANOMALY_REUSE => n,
        _ => {
            let opts = state.catalog.options().anomaly.clone();
            let st = state.clone();
            let undercounts = state.metrics.undercounts();
            let report = state
                .store
                .read(move |c| {
                    crate::anomaly::report(c, &st.token_audit, undercounts, &opts, util::now_secs())
                })
                .await?;
            let n = report.spenders.len()
                + report.token_divergence.len()
                + report.prompt_undercounts.len()
                + report.channels.len();
            *state.anomaly_count.lock() = Some((std::time::Instant::now(), n));
            n
        }
    };
    let g = state.gauges();
    Ok(json!({
        "channels": {
            "total": channels.len(),
            "enabled": count(ChannelStatus::Enabled),
            "disabled": count(ChannelStatus::Disabled),
            "auto_disabled": count(ChannelStatus::AutoDisabled),
        },
        "channel_stats": named(state, stats),
        "anomalies": anomalies,
        "database": {"healthy": g.db_healthy, "writer_queue": g.writer_queue},
        "in_flight": state.metrics.in_flight.load(Ordering::Relaxed),
        "streams_in_flight": state.metrics.streams_in_flight.load(Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": g.uptime_secs,
    }))
}

/// `GET /api/channels/stats?start=&end=`: the last 24 hours unless given.
pub async fn channel_stats(state: &AppState, query: &str) -> Result<Resp, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        start: Option<i64>,
        end: Option<i64>,
    }
    let q: Q = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::BadRequest(format!("bad query parameter: {e}")))?;
    let now = util::now_secs();
    let end = params::time("end", q.end)?.unwrap_or(now + 1);
    let start = params::time("start", q.start)?.unwrap_or(end - 86_400);
    let stats = state
        .store
        .read(move |c| channel_stats::over(c, start, end))
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"start": start, "end": end, "items": named(state, stats)}),
    ))
}
