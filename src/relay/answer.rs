//! A whole (non-stream) answer: read it (bounded), settle, answer the client — upstream's bytes
//! as they came, or for a channel of another format the answer converted; and an upstream's
//! refusal passed on (in the client's shape).

use super::convert;
use super::settle::{self, Call};
use super::stream;
use crate::error::ApiError;
use crate::formats::Format;
use crate::ledger::Reservation;
use crate::store::channels::ChannelRow;
use crate::tasks::until_cut;
use crate::upstream::providers;
use crate::web::{self, Resp};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Largest non-stream answer read from upstream.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// A non-stream answer: read it whole (bounded, with the idle timeout between chunks), settle,
/// then answer the client.
pub(super) async fn whole(
    call: Call,
    ctx: settle::Answer,
    resp: http::Response<Incoming>,
    reservation: Reservation,
    provider: &'static dyn providers::Provider,
    mut cut: tokio::sync::watch::Receiver<bool>,
    lane: convert::Lane,
) -> Resp {
    let (parts, mut body) = resp.into_parts();
    let idle = call.state.catalog.options().relay.idle_timeout();
    let mut buf = bytes::BytesMut::new();
    let failure = loop {
        let next = tokio::select! {
            biased;
            () = until_cut(&mut cut) => break Some((ApiError::ShuttingDown, stream::CUT_MESSAGE)),
            next = tokio::time::timeout(idle, body.frame()) => next,
        };
        let why = match next {
            Err(_) => "upstream went silent mid-answer (idle timeout)",
            Ok(None) => break None,
            Ok(Some(Err(_))) => "upstream closed the connection mid-answer",
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    if buf.len() + d.len() > MAX_ANSWER_BYTES {
                        let why = "upstream answer is larger than the 64 MiB limit";
                        break Some((ApiError::UpstreamFailed(format!("{why}; try again")), why));
                    }
                    buf.extend_from_slice(d);
                }
                continue;
            }
        };
        break Some((ApiError::UpstreamFailed(format!("{why}; try again")), why));
    };
    if let Some((e, why)) = failure {
        // Nothing usable reached the client: no charge (upstream's partial answer is lost).
        let e = settle::fail(&call, reservation, Some(ctx.channel_id), e, why).await;
        return web::error_in(&e, call.format);
    }
    let body = buf.freeze();
    let mut text = String::new();
    // A converted answer is decoded once: its usage, text and the client's answer from it.
    let (reported, decoded) = match &lane {
        convert::Lane::Pass => (
            provider.read_response(call.endpoint, &body, &mut text),
            None,
        ),
        convert::Lane::Convert { upstream, info } => {
            match crate::formats::convert::decode_answer(*upstream, &body, info) {
                Some(r) => {
                    text = crate::formats::convert::answer_text(&r);
                    (r.usage, Some(r))
                }
                None => {
                    let why = "upstream's answer is not one of its format";
                    let e = ApiError::UpstreamFailed(format!("{why}; try again"));
                    let e = settle::fail(&call, reservation, Some(ctx.channel_id), e, why).await;
                    return web::error_in(&e, call.format);
                }
            }
        }
    };
    let usage = match reported {
        Some(u) => (u, settle::Source::Upstream),
        None => settle::count_locally(&call, &ctx, text, 1.0).await,
    };
    let left = call
        .client_left
        .load(std::sync::atomic::Ordering::Acquire)
        .then_some("client disconnected before the answer; billed to the end of upstream's answer");
    let charged_usage = usage.0;
    if matches!(lane, convert::Lane::Pass)
        && call.endpoint == crate::upstream::Endpoint::Responses
        && let Some(id) = crate::formats::responses::upstream_answer::response_id(&body)
    {
        super::remember_response(&call, ctx.channel_id, &id);
    }
    let charge = match settle::charge(&call, &ctx, reservation, usage, StatusCode::OK, left).await {
        Ok(c) => c,
        Err(e) => return web::error_in(&e, call.format),
    };
    let body = match (&lane, decoded) {
        (convert::Lane::Convert { info, .. }, Some(r)) => {
            crate::formats::convert::encode_answer(call.format, &r, info, &charged_usage)
        }
        _ => body,
    };
    let mut out = http::Response::new(web::full(body));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        out.headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.clone());
    }
    if call.playground {
        let shown =
            crate::billing::display::show(charge.quota, &call.state.catalog.options().display);
        let h = out.headers_mut();
        for (name, v) in [
            ("x-sluice-quota", charge.quota.to_string()),
            ("x-sluice-cost", shown.text),
            ("x-sluice-ttfb-ms", ctx.ttfb.as_millis().to_string()),
        ] {
            if let Ok(v) = http::HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
    }
    out
}

/// Upstream refused the request itself (a 4xx other than auth and rate limits): release the
/// reservation, log an error row and give the client upstream's status and error body.
pub(super) async fn pass_error(
    call: &Call,
    reservation: Reservation,
    channel: &ChannelRow,
    resp: http::Response<Incoming>,
    convert: Option<Format>,
) -> Resp {
    let status = resp.status();
    let ct = resp.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = tokio::time::timeout(
        call.state.catalog.options().relay.idle_timeout(),
        http_body_util::Limited::new(resp.into_body(), 1024 * 1024).collect(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|c| c.to_bytes())
    .unwrap_or_default();
    settle::log_error(
        call,
        Some(channel.id),
        status,
        &format!("upstream refused the request with {status}"),
    )
    .await;
    reservation.release();
    // An upstream of another format: its error in the client's shape.
    let body = match convert {
        Some(client) => crate::formats::convert::error_body(client, status.as_u16(), &body),
        None => body,
    };
    let mut out = http::Response::new(web::full(body));
    *out.status_mut() = status;
    if let Some(ct) = ct {
        out.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    out
}
