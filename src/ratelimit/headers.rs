//! What a client is told: the `x-ratelimit-*` headers OpenAI sends, and its duration format.

use http::{HeaderMap, HeaderName, HeaderValue};

/// One dimension (requests or tokens) of the tightest limit that applied to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trio {
    pub limit: u64,
    pub remaining: u64,
    /// Nanoseconds until the bucket is full again.
    pub reset_ns: u64,
}

impl Trio {
    /// The tighter of two: fewer remaining, then the longer reset.
    pub fn tighter(a: Option<Trio>, b: Option<Trio>) -> Option<Trio> {
        match (a, b) {
            (Some(a), Some(b)) => Some(
                if (b.remaining, std::cmp::Reverse(b.reset_ns))
                    < (a.remaining, std::cmp::Reverse(a.reset_ns))
                {
                    b
                } else {
                    a
                },
            ),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

/// The headers for a call: present for each dimension in which some limit applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<Trio>,
    pub tokens: Option<Trio>,
}

impl RateHeaders {
    pub fn is_empty(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none()
    }

    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
    pub fn pairs(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(6);
        for (suffix, trio) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(t) = trio else { continue };
            let values = [
                ("limit", t.limit.to_string()),
                ("remaining", t.remaining.to_string()),
                ("reset", duration(t.reset_ns)),
            ];
            for (what, v) in values {
                let name = format!("x-ratelimit-{what}-{suffix}");
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    out.push((n, v));
                }
            }
        }
        out
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for (n, v) in self.pairs() {
            headers.insert(n, v);
        }
    }
}

/// OpenAI's (Go's) duration format: `120ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`. Below a second
/// the value is rounded up to whole milliseconds, so a client never waits too little.
pub fn duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let ms_total = ns.div_ceil(1_000_000);
    if ms_total < 1000 {
        return format!("{ms_total}ms");
    }
    let (h, rest) = (ms_total / 3_600_000, ms_total % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    let secs = if ms == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{ms:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000).max(1)
}
