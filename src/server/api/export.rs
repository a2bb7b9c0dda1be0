//! `GET /api/log/export`, `GET /api/log/self/export`: the rows of a log search as CSV, streamed.
//!
//! Rows are read in keyset batches (the search's own cursor), each batch on the read pool off
//! the async threads and encoded there, then handed to the response through a small bounded
//! channel: memory stays at a few batches whatever the row count, and a slow client slows the
//! reads rather than queueing rows.

use super::logs::{Params, Scope, filter, no_usage_params, parse_params, sort_order};
use crate::auth::Principal;
use crate::billing::display;
use crate::error::ApiError;
use crate::settings::modules::DisplayOptions;
use crate::state::AppState;
use crate::store::log_query::{self, Cursor, LogFilter, LogRow, PageRequest};
use crate::web::{ChannelBody, Resp};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Rows read and encoded per batch.
const BATCH: usize = 2_000;
/// Encoded batches waiting for the client.
const QUEUE: usize = 2;

/// The cache and reasoning columns come last, after `content`: they were added later, and a
/// reader that takes the columns by position keeps working.
const HEADER: [&str; 28] = [
    "id",
    "time",
    "created_at",
    "type",
    "request_id",
    "user_id",
    "username",
    "key_id",
    "key_name",
    "channel_id",
    "group",
    "model",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "quota",
    "cost",
    "currency",
    "latency_ms",
    "ttfb_ms",
    "is_stream",
    "status",
    "usage_source",
    "content",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
];

fn type_name(t: i64) -> &'static str {
    match t {
        1 => "topup",
        2 => "consume",
        3 => "manage",
        4 => "system",
        5 => "error",
        6 => "refund",
        _ => "unknown",
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// One batch as CSV bytes (with the header row first when `header`).
fn encode(
    rows: &[LogRow],
    header: bool,
    own: bool,
    money: &DisplayOptions,
) -> Result<Bytes, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
    let fail = |e: csv::Error| ApiError::Internal(format!("CSV encoding failed: {e}"));
    if header {
        w.write_record(HEADER).map_err(fail)?;
    }
    for r in rows {
        let shown = display::show(r.quota, money);
        let time = chrono::DateTime::from_timestamp(r.created_at, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let (channel, upstream) = if own {
            (String::new(), String::new())
        } else {
            (opt(&r.channel_id), opt(&r.upstream_model))
        };
        w.write_record([
            r.id.to_string(),
            time,
            r.created_at.to_string(),
            type_name(r.log_type).to_string(),
            r.request_id.clone(),
            opt(&r.user_id),
            opt(&r.username),
            opt(&r.key_id),
            opt(&r.key_name),
            channel,
            opt(&r.group),
            opt(&r.model),
            upstream,
            r.prompt_tokens.to_string(),
            r.completion_tokens.to_string(),
            r.quota.to_string(),
            shown.amount.to_string(),
            shown.currency.to_string(),
            opt(&r.latency_ms),
            opt(&r.ttfb_ms),
            r.is_stream.to_string(),
            opt(&r.status),
            opt(&r.usage_source),
            opt(&r.content),
            r.cache_read_tokens.to_string(),
            r.cache_write_tokens.to_string(),
            r.cache_write_1h_tokens.to_string(),
            r.reasoning_tokens.to_string(),
        ])
        .map_err(fail)?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("CSV encoding failed: {e}")))
}

/// One batch, read and encoded on the read pool.
async fn batch(
    state: &AppState,
    f: &LogFilter,
    page: PageRequest,
    own: bool,
) -> Result<(Bytes, Option<Cursor>), ApiError> {
    let f = f.clone();
    let money = state.catalog.options().display.clone();
    let header = page.after.is_none();
    // Read and encoded on the same blocking thread: the rows never cross threads.
    let (bytes, next) = state
        .store
        .read(move |c| {
            let (rows, next) = log_query::search(c, &f, &page)?;
            Ok((encode(&rows, header, own, &money), next))
        })
        .await?;
    Ok((bytes?, next))
}

pub async fn csv(
    state: &Arc<AppState>,
    p: &Principal,
    query: &str,
    own: bool,
) -> Result<Resp, ApiError> {
    let q: Params = parse_params(query)?;
    if q.cursor.is_some() || q.p.is_some() || q.page_size.is_some() {
        return Err(ApiError::BadRequest(
            "the export takes the filters and sort of /api/log, not cursor, p or page_size".into(),
        ));
    }
    no_usage_params(&q)?;
    let scope = if own {
        Scope::Own(p.user.id)
    } else {
        Scope::All
    };
    let f = filter(state, &q, scope).await?;
    let (sort, descending) = sort_order(&q)?;
    let mut page = PageRequest {
        sort,
        descending,
        limit: BATCH,
        after: None,
        offset: 0,
    };
    // The first batch is read before answering, so a failing database is a 503, not an
    // empty file.
    let (first, mut next) = batch(state, &f, page, own).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let task_state = state.clone();
    let rid = crate::logging::current_request_id();
    tokio::spawn(crate::logging::REQUEST_ID.scope(rid, async move {
        if tx.send(first).await.is_err() {
            return;
        }
        while let Some(after) = next {
            page.after = Some(after);
            match batch(&task_state, &f, page, own).await {
                Ok((bytes, n)) => {
                    next = n;
                    if tx.send(bytes).await.is_err() {
                        log::info!("log export: the client left before the end");
                        return;
                    }
                }
                Err(e) => {
                    // The status is sent; ending early is all that is left (the log says why).
                    log::error!("log export stopped early: {e}");
                    return;
                }
            }
        }
    }));
    let mut resp = http::Response::new(ChannelBody::new(rx).boxed());
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name = format!(
        "attachment; filename=\"sluice-logs-{}.csv\"",
        crate::util::now_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
