//! Reading upstream's SSE lines on the way to the client: usage picked out of the events that
//! mention it, the rest kept raw (bounded) for a local count, the final event (`[DONE]`,
//! Anthropic's `message_stop`) held back until the charge commits; or, across formats, every
//! `data:` payload handed to the call's converter, which writes the client's events.

use super::settle::Call;
use crate::billing::Usage;
use crate::formats::Format;
use crate::formats::convert::StreamConverter;
use crate::upstream::providers::Provider;
use bytes::BytesMut;

/// Text kept for local counting; beyond it the count is extrapolated by bytes.
const MAX_KEPT_TEXT: usize = 1024 * 1024;

/// What is learnt from the events as they pass. Events are not parsed on the way unless they
/// mention `"usage"`: the others are kept raw (bounded) and parsed only if upstream never
/// reports usage and the text must be counted here.
pub(super) struct Seen {
    /// The client asked for the usage chunk (else upstream's, asked for by the relay, is hidden).
    client_wants_usage: bool,
    pub(super) usage: Option<Usage>,
    /// `data:` payloads kept for a local count, newline-separated.
    raw: Vec<u8>,
    /// Payload bytes kept, and seen in all: the ratio extrapolates a count past the kept part.
    raw_kept: usize,
    raw_total: usize,
    pub(super) done: bool,
    /// The blank line ending a suppressed event is suppressed too.
    skip_blank: bool,
    /// An `event:` line waiting for its `data:` line (Anthropic's events name themselves),
    /// so the final `message_stop` can be held back whole.
    pending_event: Option<Vec<u8>>,
    /// Upstream sent its own error event (passed through): the client is not sent a second.
    pub(super) upstream_error: bool,
    /// A Responses stream's last event (`response.completed`), held back whole until the
    /// charge commits.
    pub(super) held: Option<Vec<u8>>,
    /// A passed-through Responses stream's response id (from `response.created`), remembered
    /// for `GET/DELETE /v1/responses/{id}`.
    pub(super) response_id: Option<String>,
    /// For a call across formats: the converter that reads upstream's events and writes the
    /// client's (then `usage`, `done` and the text are its).
    pub(super) converter: Option<Box<StreamConverter>>,
    /// What the converter wrote for one line (reused: no allocation per event).
    scratch: Vec<u8>,
}

impl Seen {
    pub(super) fn new(converter: Option<Box<StreamConverter>>, client_wants_usage: bool) -> Seen {
        Seen {
            client_wants_usage,
            usage: None,
            raw: Vec::new(),
            raw_kept: 0,
            raw_total: 0,
            done: false,
            skip_blank: false,
            pending_event: None,
            upstream_error: false,
            held: None,
            response_id: None,
            converter,
            scratch: Vec::new(),
        }
    }

    fn keep(&mut self, payload: &[u8]) {
        self.raw_total += payload.len();
        if self.raw.len() + payload.len() < MAX_KEPT_TEXT {
            self.raw.extend_from_slice(payload);
            self.raw.push(b'\n');
            self.raw_kept += payload.len();
        }
    }

    /// The generated text of the kept events, and the share of all events they are.
    pub(super) fn text(&self, provider: &dyn Provider, call: &Call) -> (String, f64) {
        if let Some(c) = &self.converter {
            return c.text();
        }
        let mut text = String::new();
        for payload in self.raw.split(|b| *b == b'\n').filter(|p| !p.is_empty()) {
            provider.read_event(call.endpoint, payload, &mut text);
        }
        let scale = if self.raw_kept == 0 {
            1.0
        } else {
            self.raw_total as f64 / self.raw_kept as f64
        };
        (text, scale.max(1.0))
    }
}

/// Anthropic's final event (`{"type":"message_stop"}`), for a client of that format.
fn is_message_stop(format: Format, payload: &[u8]) -> bool {
    format == Format::Anthropic
        && payload.len() < 64
        && payload.windows(14).any(|w| w == b"\"message_stop\"")
}

fn mentions_usage(payload: &[u8]) -> bool {
    payload.windows(7).any(|w| w == b"\"usage\"")
}

/// A passed-through Responses stream: notes the response id (from `response.created`), and
/// holds back the final event (`response.completed` / `.incomplete`: name, data, blank line)
/// to send after the charge commits, reading the call's usage from it. True when held.
fn responses_final(
    seen: &mut Seen,
    line: &[u8],
    payload: &[u8],
    call: &Call,
    provider: &dyn Provider,
) -> bool {
    use crate::formats::responses::upstream_answer::{created_id, is_final};
    if seen.response_id.is_none() {
        seen.response_id = created_id(payload);
    }
    if !is_final(payload) {
        return false;
    }
    let mut text = String::new();
    if let Some(u) = provider.read_event(call.endpoint, payload, &mut text).usage {
        match &mut seen.usage {
            Some(have) => have.merge(u),
            None => seen.usage = Some(u),
        }
    }
    let mut held = seen.pending_event.take().unwrap_or_default();
    if !held.is_empty() {
        held.push(b'\n');
    }
    held.extend_from_slice(line);
    held.extend_from_slice(b"\n\n");
    seen.held = Some(held);
    seen.done = true;
    seen.skip_blank = true;
    true
}

pub(super) fn on_line(
    line: &[u8],
    seen: &mut Seen,
    out: &mut BytesMut,
    call: &Call,
    provider: &dyn Provider,
) {
    if let Some(conv) = seen.converter.as_mut() {
        // Across formats the converter writes the client's events whole; upstream's framing
        // (event names, blank lines, comments) stays behind.
        if let Some(payload) = line.strip_prefix(b"data:") {
            let payload = payload.strip_prefix(b" ").unwrap_or(payload);
            seen.scratch.clear();
            conv.push(payload, &mut seen.scratch);
            out.extend_from_slice(&seen.scratch);
        }
        return;
    }
    if line.is_empty() {
        if !std::mem::take(&mut seen.skip_blank) {
            out.extend_from_slice(b"\n");
        }
        return;
    }
    // Anthropic's and the Responses API's events name themselves: the name waits for its data.
    if matches!(call.format, Format::Anthropic | Format::Responses) && line.starts_with(b"event:") {
        seen.pending_event = Some(line.to_vec());
        return;
    }
    if let Some(payload) = line.strip_prefix(b"data:") {
        let payload = payload.strip_prefix(b" ").unwrap_or(payload);
        if call.format == Format::Responses && responses_final(seen, line, payload, call, provider)
        {
            return;
        }
        if payload == b"[DONE]" || is_message_stop(call.format, payload) {
            // Held back: sent after the charge commits.
            seen.done = true;
            seen.skip_blank = true;
            seen.pending_event = None;
            return;
        }
        if let Some(ev) = seen.pending_event.take() {
            if ev.ends_with(b"error") || ev.ends_with(b"response.failed") {
                seen.upstream_error = true;
            }
            out.extend_from_slice(&ev);
            out.extend_from_slice(b"\n");
        }
        if mentions_usage(payload) {
            let mut text = String::new();
            let info = provider.read_event(call.endpoint, payload, &mut text);
            match info.usage {
                // Cumulative figures (Anthropic sends two parts): the larger of each stands.
                Some(u) => match &mut seen.usage {
                    Some(have) => have.merge(u),
                    None => seen.usage = Some(u),
                },
                None => seen.keep(payload),
            }
            if info.usage_only && !seen.client_wants_usage {
                seen.skip_blank = true;
                return;
            }
        } else {
            seen.keep(payload);
        }
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\n");
}
