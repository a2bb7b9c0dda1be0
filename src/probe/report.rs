//! The results: per-request lines and a summary as text, or one JSON document. Pure: built from
//! the collected results, no I/O beyond the writer it is given.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::stats::{Summary, round};

/// Why a request failed without (or after) an HTTP status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The per-request deadline passed (connecting, waiting, or reading).
    Timeout,
    /// No connection: refused, unreachable, DNS, TLS handshake.
    Connect,
    /// The request could not be sent or the connection broke before the response headers.
    Request,
    /// The response body broke off.
    Body,
    /// A 2xx stream that carried an error event or ended without `data: [DONE]`.
    Stream,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Request => "request",
            ErrorKind::Body => "body",
            ErrorKind::Stream => "stream",
        }
    }
}

/// One request's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestResult {
    /// 1-based, in the order the requests were started.
    pub index: usize,
    /// The HTTP status, when response headers arrived.
    pub status: Option<u16>,
    /// Start to the last byte of the response (or to the failure).
    pub ms: f64,
    /// Streams: start to the first event carrying content.
    pub ttft_ms: Option<f64>,
    /// A transport failure, if any.
    pub error: Option<ErrorKind>,
    /// The error body's message (non-2xx) or what went wrong (transport).
    pub message: Option<String>,
}

impl RequestResult {
    /// A 2xx status and the whole response read without a failure.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// A non-2xx status: the failure is counted under its status.
    fn failed_status(&self) -> Option<u16> {
        self.status.filter(|s| !(200..300).contains(s))
    }
}

/// What was asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The endpoint requested (`…/v1/chat/completions`).
    pub url: String,
    pub model: String,
    pub stream: bool,
    /// Requests asked for.
    pub requests: usize,
    /// Requests in flight at a time (at most `requests`).
    pub concurrency: usize,
    pub timeout_secs: f64,
}

/// Failures counted by HTTP status and by transport error kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failures {
    pub by_status: BTreeMap<String, usize>,
    pub by_error: BTreeMap<String, usize>,
}

/// The whole run, ready to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    /// Requests completed (equal to `requests` unless the run broke off).
    pub count: usize,
    pub ok: usize,
    pub failed: usize,
    pub failures: Failures,
    /// Total time of the successful requests; null when none succeeded.
    pub latency_ms: Option<Summary>,
    /// Streams: time to first token of the successful requests; null otherwise.
    pub ttft_ms: Option<Summary>,
    /// First request started to last one finished.
    pub wall_ms: f64,
    /// Completed requests per second of wall time.
    pub requests_per_sec: f64,
    pub results: Vec<RequestResult>,
    pub exit_code: i32,
}

impl Report {
    /// Builds the report; `results` in any order (sorted by index here).
    pub fn new(info: RunInfo, mut results: Vec<RequestResult>, wall_ms: f64) -> Report {
        results.sort_by_key(|r| r.index);
        let mut failures = Failures::default();
        for r in results.iter().filter(|r| !r.ok()) {
            let key = match (r.failed_status(), r.error) {
                (Some(s), _) => failures.by_status.entry(s.to_string()),
                (None, Some(e)) => failures.by_error.entry(e.as_str().to_string()),
                // Not reachable (not ok means a bad status or an error), but counted if it were.
                (None, None) => failures.by_error.entry("unknown".to_string()),
            };
            *key.or_default() += 1;
        }
        let good: Vec<&RequestResult> = results.iter().filter(|r| r.ok()).collect();
        let totals: Vec<f64> = good.iter().map(|r| r.ms).collect();
        let ttfts: Vec<f64> = good.iter().filter_map(|r| r.ttft_ms).collect();
        let count = results.len();
        let ok = good.len();
        let failed = count - ok;
        let exit_code = if failed == 0 && count == info.requests {
            0
        } else {
            1
        };
        let requests_per_sec = if wall_ms > 0.0 {
            count as f64 / (wall_ms / 1000.0)
        } else {
            0.0
        };
        let ttft_ms = if info.stream {
            Summary::of(&ttfts)
        } else {
            None
        };
        Report {
            info,
            count,
            ok,
            failed,
            failures,
            latency_ms: Summary::of(&totals),
            ttft_ms,
            wall_ms,
            requests_per_sec,
            results,
            exit_code,
        }
    }

    /// The JSON document (times rounded to microseconds).
    pub fn json(&self) -> serde_json::Value {
        let mut r = self.clone();
        r.latency_ms = r.latency_ms.map(|s| s.rounded(3));
        r.ttft_ms = r.ttft_ms.map(|s| s.rounded(3));
        r.wall_ms = round(r.wall_ms, 3);
        r.requests_per_sec = round(r.requests_per_sec, 2);
        for x in &mut r.results {
            x.ms = round(x.ms, 3);
            x.ttft_ms = x.ttft_ms.map(|t| round(t, 3));
        }
        let mut v = serde_json::to_value(&r)
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
        // Each result also says whether it counted as a success.
        if let Some(list) = v.get_mut("results").and_then(|l| l.as_array_mut()) {
            for (doc, res) in list.iter_mut().zip(&r.results) {
                if let Some(o) = doc.as_object_mut() {
                    o.insert("ok".into(), res.ok().into());
                }
            }
        }
        v
    }

    /// The summary after the per-request lines.
    pub fn write_summary(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let i = &self.info;
        writeln!(out)?;
        writeln!(
            out,
            "requests  {} sent, {} ok, {} failed",
            self.count, self.ok, self.failed
        )?;
        if self.failed > 0 {
            let parts: Vec<String> = self
                .failures
                .by_status
                .iter()
                .map(|(s, n)| format!("status {s}: {n}"))
                .chain(
                    self.failures
                        .by_error
                        .iter()
                        .map(|(k, n)| format!("{k}: {n}")),
                )
                .collect();
            writeln!(out, "failures  {}", parts.join(", "))?;
        }
        match &self.latency_ms {
            None => writeln!(out, "latency   no successful requests")?,
            Some(s) => {
                writeln!(
                    out,
                    "latency   mean {} ± {} ms over {} successful",
                    ms(s.mean),
                    ms(s.stddev),
                    s.count
                )?;
                writeln!(
                    out,
                    "          p50 {}  p90 {}  p99 {}  min {}  max {} ms",
                    ms(s.p50),
                    ms(s.p90),
                    ms(s.p99),
                    ms(s.min),
                    ms(s.max)
                )?;
            }
        }
        if i.stream {
            match &self.ttft_ms {
                None => writeln!(out, "ttft      no successful stream carried content")?,
                Some(s) => writeln!(
                    out,
                    "ttft      mean {}  p50 {}  p99 {} ms over {} streams",
                    ms(s.mean),
                    ms(s.p50),
                    ms(s.p99),
                    s.count
                )?,
            }
        }
        writeln!(
            out,
            "wall      {} ms at concurrency {} ({:.1} req/s)",
            ms(self.wall_ms),
            i.concurrency,
            self.requests_per_sec
        )?;
        Ok(())
    }
}

/// The line printed before the first request.
pub fn write_header(info: &RunInfo, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "probing {} with model {}: {} {} request{}, {} at a time, timeout {} s",
        info.url,
        info.model,
        info.requests,
        if info.stream {
            "streamed"
        } else {
            "non-stream"
        },
        if info.requests == 1 { "" } else { "s" },
        info.concurrency,
        info.timeout_secs
    )
}

/// One request's line: index, status (or error kind), time, TTFT for streams, message on failure.
pub fn write_line(r: &RequestResult, requests: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let width = requests.to_string().len();
    let status = match (r.status, r.error) {
        (Some(s), Some(e)) if (200..300).contains(&s) => format!("{s} {}", e.as_str()),
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.as_str().to_string(),
        (None, None) => "-".to_string(),
    };
    write!(
        out,
        "#{:<width$}  {status:<7}  {:>9} ms",
        r.index,
        ms(r.ms),
        width = width
    )?;
    if let Some(t) = r.ttft_ms {
        write!(out, "  ttft {} ms", ms(t))?;
    }
    if !r.ok()
        && let Some(m) = r.message.as_deref().filter(|m| !m.is_empty())
    {
        write!(out, "  {m}")?;
    }
    writeln!(out)
}

/// Milliseconds with two decimals.
fn ms(v: f64) -> String {
    format!("{v:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(stream: bool, requests: usize) -> RunInfo {
        RunInfo {
            url: "http://127.0.0.1:3000/v1/chat/completions".into(),
            model: "gpt-4o-mini".into(),
            stream,
            requests,
            concurrency: 1,
            timeout_secs: 60.0,
        }
    }

    fn res(index: usize, status: Option<u16>, ms: f64, error: Option<ErrorKind>) -> RequestResult {
        RequestResult {
            index,
            status,
            ms,
            ttft_ms: None,
            error,
            message: None,
        }
    }

    #[test]
    fn failures_are_counted_by_status_and_kind() {
        let results = vec![
            res(3, Some(401), 1.0, None),
            res(1, Some(200), 10.0, None),
            res(2, Some(200), 20.0, None),
            res(4, None, 60_000.0, Some(ErrorKind::Timeout)),
            res(5, Some(200), 5.0, Some(ErrorKind::Stream)),
            res(6, Some(401), 1.0, None),
            res(7, None, 1.0, Some(ErrorKind::Connect)),
        ];
        let r = Report::new(info(false, 7), results, 100.0);
        assert_eq!((r.count, r.ok, r.failed, r.exit_code), (7, 2, 5, 1));
        assert_eq!(r.failures.by_status["401"], 2);
        assert_eq!(r.failures.by_error["timeout"], 1);
        assert_eq!(r.failures.by_error["stream"], 1);
        assert_eq!(r.failures.by_error["connect"], 1);
        let l = r.latency_ms.unwrap();
        assert_eq!((l.count, l.min, l.max, l.p50), (2, 10.0, 20.0, 10.0));
        assert_eq!(r.results[0].index, 1, "sorted by index");
        assert_eq!(r.ttft_ms, None);
        assert!((r.requests_per_sec - 70.0).abs() < 1e-9);
        let mut text = Vec::new();
        r.write_summary(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("7 sent, 2 ok, 5 failed"), "{text}");
        assert!(
            text.contains("status 401: 2, connect: 1, stream: 1, timeout: 1"),
            "{text}"
        );
    }

    #[test]
    fn all_ok_exits_zero_and_json_has_the_fields() {
        let mut a = res(1, Some(200), 12.345_678, None);
        a.ttft_ms = Some(3.0);
        let r = Report::new(info(true, 1), vec![a], 12.5);
        assert_eq!(r.exit_code, 0);
        let v = r.json();
        for f in [
            "url",
            "model",
            "stream",
            "requests",
            "concurrency",
            "timeout_secs",
            "count",
            "ok",
            "failed",
            "failures",
            "latency_ms",
            "ttft_ms",
            "wall_ms",
            "requests_per_sec",
            "results",
            "exit_code",
        ] {
            assert!(v.get(f).is_some(), "missing {f}: {v}");
        }
        assert_eq!(v["results"][0]["ms"], 12.346);
        assert_eq!(v["results"][0]["error"], serde_json::Value::Null);
        assert_eq!(v["results"][0]["ok"], true);
        assert_eq!(v["ttft_ms"]["p50"], 3.0);
        let mut line = Vec::new();
        write_line(&r.results[0], 1, &mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "#1  200          12.35 ms  ttft 3.00 ms\n"
        );
    }

    #[test]
    fn a_short_run_is_a_failure() {
        let r = Report::new(info(false, 3), vec![res(1, Some(200), 1.0, None)], 1.0);
        assert_eq!(r.exit_code, 1);
        let r = Report::new(info(false, 1), vec![], 1.0);
        assert_eq!((r.latency_ms, r.exit_code), (None, 1));
    }
}
