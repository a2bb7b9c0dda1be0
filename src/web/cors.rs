//! CORS for the relay routes only (`cors.*` options): browser chat front-ends call `/v1` with a
//! key of their own. Off by default. The admin API never answers cross-origin: its cookie
//! sessions must stay same-site, so `/api` responses never carry these headers.

use super::{Resp, empty};
use crate::settings::cors::CorsOptions;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// Headers a page may read from a relay answer (besides the CORS-safelisted ones).
const EXPOSE: &str = "x-request-id, retry-after, x-ratelimit-limit-requests, \
                      x-ratelimit-remaining-requests, x-ratelimit-reset-requests, \
                      x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, \
                      x-ratelimit-reset-tokens";

/// Request headers allowed when the preflight names none we can echo.
const DEFAULT_ALLOW_HEADERS: &str = "authorization, content-type, x-api-key";

/// The answer to `OPTIONS` on a relay path, when CORS is on and the request is a preflight
/// (`Origin` and `Access-Control-Request-Method`); `None` leaves it to the usual 405.
/// An origin that is not allowed gets 403 with no CORS headers, so the browser stops there.
pub fn preflight(opts: &CorsOptions, headers: &HeaderMap, methods: &str) -> Option<Resp> {
    if !opts.enabled() || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let Some(allowed) = opts.allow(origin) else {
        log::debug!("CORS preflight from {origin:?} refused: not in cors.allowed_origins");
        return Some(super::error(&crate::error::ApiError::Forbidden(
            "this origin may not call the relay from a browser (cors.allowed_origins)".into(),
        )));
    };
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    put(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    put(
        h,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        &format!("{methods}, OPTIONS"),
    );
    // The headers the page asked for: the origin is trusted, and SDKs send their own
    // (x-stainless-*, openai-organization …) that no fixed list keeps up with.
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_header_list(v));
    put(
        h,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        asked.unwrap_or(DEFAULT_ALLOW_HEADERS),
    );
    put(
        h,
        header::ACCESS_CONTROL_MAX_AGE,
        &opts.max_age_secs.to_string(),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    Some(r)
}

/// Adds the CORS headers to a relay answer (success or error) for an allowed `Origin`.
pub fn decorate(opts: &CorsOptions, origin: Option<&HeaderValue>, resp: &mut Resp) {
    let Some(origin) = origin.and_then(|o| o.to_str().ok()) else {
        return;
    };
    let Some(allowed) = opts.allow(origin) else {
        return;
    };
    let h = resp.headers_mut();
    put(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    put(h, header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn put(h: &mut HeaderMap, name: header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

/// `a, b-c, x_y`: header names only, so nothing else is echoed back.
fn is_header_list(v: &str) -> bool {
    v.len() <= 1024
        && v.split(',').all(|n| {
            let n = n.trim();
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
