//! SSE pass-through. Events are forwarded as they arrive (never the whole answer buffered),
//! usage and text are read on the way, and `data: [DONE]` is held back until the charge has
//! committed, so a client that saw the end of the stream has been billed.
//!
//! Policy when things go wrong (written down because billing depends on it):
//! - client disconnects: keep reading upstream (each silence bounded by the idle timeout) to
//!   its usage event, then charge; without one, charge the tokens counted locally;
//! - upstream closes or goes silent mid-stream: charge what was generated (counted locally
//!   unless upstream reported usage), then send the client an error event and end;
//! - a line over the limit: the same, with the error saying so;
//! - the server stops and the grace period ends first: the same (charge what was generated and
//!   sent on), the row noting the cut, the client an error event; upstream is not read further.

use super::convert::Lane;
use super::settle::{self, Answer, Call};
use super::sse_in::{Seen, on_line};
use crate::billing::Usage;
use crate::formats::Format;
use crate::formats::convert::StreamConverter;
use crate::ledger::Reservation;
use crate::logging::REQUEST_ID;
use crate::tasks::until_cut;
use crate::upstream::providers::Provider;
use crate::upstream::sse::LineSplitter;
use crate::web::{ChannelBody, Resp};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;
use std::task::Poll;

/// The row's note for a client that hung up before `data: [DONE]` (see docs/api.md).
const LEFT: &str = "client disconnected before the end of the stream";
/// Most bytes gathered from ready frames into one write to the client.
const COALESCE_BYTES: usize = 64 * 1024;
/// Events buffered towards a slow client before the relay waits for it.
const CLIENT_QUEUE: usize = 64;

pub fn start(
    call: Call,
    answer: Answer,
    resp: http::Response<Incoming>,
    reservation: Reservation,
    client_wants_usage: bool,
    provider: &'static dyn Provider,
    lane: Lane,
) -> Resp {
    let converter = match lane {
        Lane::Pass => None,
        Lane::Convert { upstream, info } => {
            Some(Box::new(StreamConverter::new(upstream, call.format, &info)))
        }
    };
    let seen = Seen::new(converter, client_wants_usage);
    let (tx, rx) = tokio::sync::mpsc::channel(CLIENT_QUEUE);
    let rid = call.request_id.clone();
    let ttfb_header = call
        .playground
        .then(|| HeaderValue::from_str(&answer.ttfb.as_millis().to_string()).ok())
        .flatten();
    tokio::spawn(REQUEST_ID.scope(
        rid,
        pump(
            call,
            answer,
            resp.into_body(),
            reservation,
            tx,
            provider,
            seen,
        ),
    ));
    let mut out = http::Response::new(http_body_util::BodyExt::boxed(ChannelBody::new(rx)));
    *out.status_mut() = StatusCode::OK;
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(v) = ttfb_header {
        h.insert("x-sluice-ttfb-ms", v);
    }
    out
}

enum End {
    Clean,
    UpstreamClosed,
    Idle,
    LineTooLong,
    /// The server's shutdown grace period ran out.
    Cut,
    /// Upstream reported an error in the stream (Anthropic's `event: error`).
    UpstreamError,
}

impl End {
    fn message(&self) -> Option<&'static str> {
        match self {
            End::Clean => None,
            End::UpstreamClosed => Some("the upstream closed the stream before it finished"),
            End::Idle => Some("the upstream went silent mid-stream (idle timeout)"),
            End::LineTooLong => {
                Some("the upstream sent an event larger than the relay's line limit")
            }
            End::Cut => Some(CUT_MESSAGE),
            End::UpstreamError => Some("the upstream reported an error mid-stream"),
        }
    }

    /// The row's status and the error event's type and code.
    fn failure(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            End::Cut => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "shutting_down",
            ),
            End::Clean
            | End::UpstreamClosed
            | End::Idle
            | End::LineTooLong
            | End::UpstreamError => (StatusCode::BAD_GATEWAY, "upstream_error", "upstream_error"),
        }
    }
}

/// What a stream cut by the shutdown tells the client, and its row says.
pub(super) const CUT_MESSAGE: &str =
    "cut by shutdown: the gateway stopped before the stream finished; billed for what was sent";

async fn pump(
    call: Call,
    answer: Answer,
    mut body: Incoming,
    reservation: Reservation,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    provider: &'static dyn Provider,
    mut seen: Seen,
) {
    let _in_flight = call.state.relays.enter();
    let _stream = crate::metrics::GaugeGuard::new(&call.state.metrics.streams_in_flight);
    let opts = call.state.catalog.options();
    let cfg = &opts.relay;
    let idle = cfg.idle_timeout();
    let mut lines = LineSplitter::new(cfg.max_sse_line_bytes);
    let mut client_gone = false;
    let mut cut = call.state.cut.subscribe();
    // An end or error found while gathering ready frames, handled at the top of the next turn.
    let mut ended: Option<Option<hyper::Error>> = None;
    let end = loop {
        let next = match ended.take() {
            Some(None) => None,
            Some(Some(e)) => Some(Err(e)),
            None => {
                // While upstream is silent, watch for the shutdown's cut and for a client that
                // leaves (a client gone after the last content event would never fail a send).
                let wait = tokio::time::timeout(idle, body.frame());
                tokio::pin!(wait);
                let got = loop {
                    tokio::select! {
                        biased;
                        () = until_cut(&mut cut) => break None,
                        got = &mut wait => break Some(got),
                        () = tx.closed(), if !client_gone => {
                            client_gone = true;
                            log::info!("client disconnected mid-stream; reading upstream to the end to bill it");
                        }
                    }
                };
                match got {
                    None => break End::Cut,
                    Some(Err(_)) => break End::Idle,
                    Some(Ok(f)) => f,
                }
            }
        };
        let frame = match next {
            None => {
                break if seen.converter.as_ref().is_some_and(|c| c.error.is_some()) {
                    End::UpstreamError
                } else if seen.done || seen.converter.as_ref().is_some_and(|c| c.done) {
                    End::Clean
                } else {
                    End::UpstreamClosed
                };
            }
            Some(Err(e)) => {
                log::warn!("upstream stream broke: {e}");
                break End::UpstreamClosed;
            }
            Some(Ok(f)) => f,
        };
        let mut out = BytesMut::new();
        let mut pushed = Ok(());
        let mut frame = Some(frame);
        // Gather the events that have already arrived into one write to the client: one yield
        // lets the upstream connection hand over what it has read; nothing waits for time.
        while let Some(f) = frame.take() {
            if let Some(data) = f.data_ref() {
                pushed = lines.push(data, |line| {
                    on_line(line, &mut seen, &mut out, &call, provider)
                });
            }
            if pushed.is_err() || out.len() >= COALESCE_BYTES {
                break;
            }
            tokio::task::yield_now().await;
            match ready_frame(&mut body) {
                Poll::Ready(Some(Ok(f))) => frame = Some(f),
                Poll::Ready(Some(Err(e))) => ended = Some(Some(e)),
                Poll::Ready(None) => ended = Some(None),
                Poll::Pending => {}
            }
        }
        if !out.is_empty() && !client_gone && tx.send(out.freeze()).await.is_err() {
            client_gone = true;
            log::info!("client disconnected mid-stream; reading upstream to the end to bill it");
        }
        if pushed.is_err() {
            break End::LineTooLong;
        }
    };
    // Gone while the last events were on their way (no send failed yet).
    client_gone |= tx.is_closed();
    if let Some(c) = &seen.converter {
        seen.usage = c.usage;
    }
    let usage = match seen.usage {
        Some(u) => (u, settle::Source::Upstream),
        None => {
            let (text, scale) = seen.text(provider, &call);
            settle::count_locally(&call, &answer, text, scale).await
        }
    };
    let note = match (&end, client_gone) {
        (End::Clean, false) => None,
        (End::Clean, true) => Some(format!("{LEFT}; billed to the end of upstream's answer")),
        (e, gone) => Some(format!(
            "{}{}",
            e.message().unwrap_or(""),
            if gone {
                format!("; {LEFT}")
            } else {
                String::new()
            }
        )),
    };
    let (failed_status, kind, code) = end.failure();
    let status = if matches!(end, End::Clean) {
        StatusCode::OK
    } else {
        failed_status
    };
    let counted = usage.0;
    if let Some(id) = &seen.response_id {
        super::remember_response(&call, answer.channel_id, id);
    }
    let charged = settle::charge(&call, &answer, reservation, usage, status, note.as_deref()).await;
    if client_gone {
        return;
    }
    // Upstream's own error event already went through to a client of its format.
    if matches!(end, End::UpstreamClosed) && seen.upstream_error {
        return;
    }
    let detail;
    let why = match (&end, seen.converter.as_ref().and_then(|c| c.error.as_ref())) {
        (End::UpstreamError, Some((_, m))) => {
            detail = format!("the upstream reported an error mid-stream: {m}");
            Some(detail.as_str())
        }
        _ => end.message(),
    };
    let tail = match (&charged, why, seen.converter.as_mut()) {
        (Ok(ch), None, Some(c)) if call.playground => {
            let cost = cost_event(&call, &answer, ch.quota, counted);
            let mut tail = cost.into_bytes();
            tail.extend_from_slice(&c.tail(&counted));
            Bytes::from(tail)
        }
        (Ok(_), None, Some(c)) => c.tail(&counted),
        (Ok(_), Some(why), Some(c)) => c.error_tail(why, kind, code),
        (Err(e), _, Some(c)) => c.error_tail(&e.client_message(), "server_error", "server_error"),
        (Ok(c), None, None) if call.playground => {
            let cost = cost_event(&call, &answer, c.quota, counted);
            Bytes::from(format!("{cost}data: [DONE]\n\n"))
        }
        (Ok(_), None, None) => match call.format {
            Format::OpenAiChat | Format::Gemini => Bytes::from_static(b"data: [DONE]\n\n"),
            Format::Anthropic => Bytes::from_static(MESSAGE_STOP),
            Format::Responses => Bytes::from(seen.held.take().unwrap_or_default()),
        },
        (Ok(_), Some(why), None) => error_event(call.format, why, kind, code),
        (Err(e), _, None) => error_event(
            call.format,
            &e.client_message(),
            "server_error",
            "server_error",
        ),
    };
    let _ = tx.send(tail).await;
}

/// The next frame if upstream's bytes are already here; never waits (a `Pending` leaves no
/// waker that matters: the loop's next `frame().await` registers the real one).
fn ready_frame(body: &mut Incoming) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
    use http_body::Body as _;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(body).poll_frame(&mut cx)
}

/// The playground's last event: what the call cost and how long it took.
fn cost_event(call: &Call, answer: &Answer, quota: i64, usage: Usage) -> String {
    let v = json!({
        "quota": quota,
        "cost": crate::billing::display::show(quota, &call.state.catalog.options().display),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "ttfb_ms": answer.ttfb.as_millis() as u64,
        "latency_ms": call.started.elapsed().as_millis() as u64,
    });
    format!("event: sluice.cost\ndata: {v}\n\n")
}

/// Anthropic's last event, held back until the charge commits.
const MESSAGE_STOP: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn error_event(format: Format, message: &str, kind: &str, code: &str) -> Bytes {
    match format {
        // Gemini is never a client's format.
        Format::OpenAiChat | Format::Gemini => {
            let v = json!({"error": {"message": message, "type": kind, "code": code}});
            Bytes::from(format!("data: {v}\n\n"))
        }
        Format::Anthropic => {
            let mut out = Vec::new();
            let t = if code == "shutting_down" {
                "overloaded_error"
            } else {
                "api_error"
            };
            crate::formats::anthropic::client_answer::error_event(message, t, &mut out);
            Bytes::from(out)
        }
        Format::Responses => {
            let mut out = Vec::new();
            crate::formats::responses::client_stream::error_event(message, code, &mut out);
            Bytes::from(out)
        }
    }
}
