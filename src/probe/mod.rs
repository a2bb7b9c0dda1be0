//! `sluice probe`: a latency probe for an OpenAI-compatible endpoint (any, not only sluice;
//! not the channel tests of `channel_health`, which test one configured channel).
//!
//! It sends N small chat completions (`"ping"`, `max_tokens: 1`), C at a time, times each one
//! (and, with `--stream`, the time to the first event carrying content), and prints a line per
//! request and a summary: successes, failures by HTTP status and by transport error kind,
//! mean ± standard deviation, nearest-rank p50/p90/p99, min/max. `--json` prints one JSON
//! document instead. See docs/probe.md.
//!
//! - [`stats`]: pure statistics (mean, sample standard deviation, nearest-rank percentiles);
//! - [`report`]: the results as text or JSON, and the exit code;
//! - `client`: the pooled hyper-util client, one timed request, SSE scanning.

mod client;
pub mod report;
pub mod stats;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use self::report::{Report, RunInfo};

/// Default number of requests.
pub const DEFAULT_REQUESTS: usize = 10;
/// Default model.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Default per-request timeout in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;
/// The most requests one run sends.
pub const MAX_REQUESTS: usize = 1_000_000;
/// The most requests in flight at a time.
pub const MAX_CONCURRENCY: usize = 10_000;

/// Exit code: every request succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one request failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad arguments.
pub const EXIT_USAGE: i32 = 2;

/// Options of `sluice probe`.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Probe options")]
pub struct ProbeArgs {
    /// Base URL of the gateway (or any OpenAI-compatible server), e.g. http://127.0.0.1:3000;
    /// a trailing `/` or `/v1` is fine. Requests go to `<URL>/v1/chat/completions`.
    #[arg(long)]
    pub url: String,
    /// API key, sent as `Authorization: Bearer <KEY>`.
    #[arg(long, env = "SLUICE_PROBE_KEY", hide_env_values = true)]
    pub key: String,
    /// Model to ask for.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Number of requests to send.
    #[arg(short = 'n', long = "requests", value_name = "N", default_value_t = DEFAULT_REQUESTS)]
    pub requests: usize,
    /// Requests in flight at a time.
    #[arg(short = 'c', long, value_name = "C", default_value_t = 1)]
    pub concurrency: usize,
    /// Stream the responses (`"stream": true`) and report the time to first token too.
    #[arg(long)]
    pub stream: bool,
    /// Print one JSON document instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Per-request timeout in seconds (connect, response, and the whole body).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: f64,
}

impl ProbeArgs {
    /// The options with their command-line defaults.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> ProbeArgs {
        ProbeArgs {
            url: url.into(),
            key: key.into(),
            model: DEFAULT_MODEL.to_string(),
            requests: DEFAULT_REQUESTS,
            concurrency: 1,
            stream: false,
            json: false,
            timeout: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct Plan {
    pub endpoint: http::Uri,
    pub authorization: HeaderValue,
    pub body: Bytes,
    pub model: String,
    pub stream: bool,
    pub json: bool,
    pub requests: usize,
    /// At most `requests`.
    pub concurrency: usize,
    pub timeout: Duration,
}

impl Plan {
    /// Checks the arguments; the error is a one-line message for the user.
    pub fn from_args(args: &ProbeArgs) -> Result<Plan, String> {
        let endpoint = endpoint(&args.url)?;
        if args.key.trim().is_empty() {
            return Err("--key is empty".into());
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", args.key.trim()))
            .map_err(|_| "--key contains characters not allowed in an HTTP header".to_string())?;
        authorization.set_sensitive(true);
        let model = args.model.trim();
        if model.is_empty() {
            return Err("--model is empty".into());
        }
        if args.requests == 0 {
            return Err("-n must be at least 1".into());
        }
        if args.requests > MAX_REQUESTS {
            return Err(format!("-n must be at most {MAX_REQUESTS}"));
        }
        if args.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if args.concurrency > MAX_CONCURRENCY {
            return Err(format!("--concurrency must be at most {MAX_CONCURRENCY}"));
        }
        let timeout = Some(args.timeout)
            .filter(|t| *t > 0.0)
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .ok_or_else(|| {
                format!(
                    "--timeout must be a positive number of seconds, not {}",
                    args.timeout
                )
            })?;
        let mut body = json!({
            "model": model,
            "messages": [{"role": "user", "content": "ping"}],
            "max_tokens": 1,
        });
        if args.stream
            && let Some(o) = body.as_object_mut()
        {
            o.insert("stream".into(), true.into());
        }
        Ok(Plan {
            endpoint,
            authorization,
            body: Bytes::from(body.to_string()),
            model: model.to_string(),
            stream: args.stream,
            json: args.json,
            requests: args.requests,
            concurrency: args.concurrency.min(args.requests),
            timeout,
        })
    }

    fn info(&self) -> RunInfo {
        RunInfo {
            url: self.endpoint.to_string(),
            model: self.model.clone(),
            stream: self.stream,
            requests: self.requests,
            concurrency: self.concurrency,
            timeout_secs: self.timeout.as_secs_f64(),
        }
    }
}

/// `<base>/v1/chat/completions` from a base URL: http or https, with a host, no query; a trailing
/// `/`, `/v1` or `/v1/chat/completions` is dropped first; another path prefix is kept (a gateway
/// behind a reverse proxy at `/llm` is `https://host/llm`).
pub fn endpoint(url: &str) -> Result<http::Uri, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("--url is empty".into());
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("cannot parse --url {url:?}: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => "http",
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        Some(s) => return Err(format!("--url {url:?}: scheme {s} is not http or https")),
        None => {
            return Err(format!(
                "--url {url:?} needs a scheme, e.g. http://{}",
                url.trim_start_matches('/')
            ));
        }
    };
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| format!("--url {url:?} has no host"))?;
    if uri.query().is_some() {
        return Err(format!("--url {url:?}: a query string is not allowed"));
    }
    let mut path = uri.path().trim_end_matches('/');
    for suffix in ["/v1/chat/completions", "/v1"] {
        if let Some(p) = path.strip_suffix(suffix) {
            path = p.trim_end_matches('/');
            break;
        }
    }
    format!("{scheme}://{authority}{path}/v1/chat/completions")
        .parse()
        .map_err(|e| format!("cannot parse --url {url:?}: {e}"))
}

/// Runs the probe and writes the report to `out`; returns the exit code (0 all succeeded,
/// 1 any failed, 2 bad arguments).
pub async fn run(args: &ProbeArgs, out: &mut dyn Write) -> i32 {
    let plan = match Plan::from_args(args) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "sluice probe: {e}");
            return EXIT_USAGE;
        }
    };
    let job = match client::build(plan.concurrency) {
        Ok(client) => Arc::new(client::Job {
            client,
            endpoint: plan.endpoint.clone(),
            authorization: plan.authorization.clone(),
            body: plan.body.clone(),
            stream: plan.stream,
            timeout: plan.timeout,
        }),
        Err(e) => {
            let _ = writeln!(out, "sluice probe: {e}");
            return EXIT_FAILED;
        }
    };
    let info = plan.info();
    if !plan.json {
        let _ = report::write_header(&info, out);
        let _ = out.flush();
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Dropping the set (e.g. when this future is dropped) aborts the workers.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        let (job, next, tx, n) = (job.clone(), next.clone(), tx.clone(), plan.requests);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let result = job.one(i + 1).await;
                if tx.send(result).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut results = Vec::with_capacity(plan.requests);
    while let Some(r) = rx.recv().await {
        if !plan.json {
            let _ = report::write_line(&r, plan.requests, out);
            let _ = out.flush();
        }
        results.push(r);
    }
    let wall_ms = client::millis(started.elapsed());
    while workers.join_next().await.is_some() {}
    let report = Report::new(info, results, wall_ms);
    if plan.json {
        let doc = serde_json::to_string_pretty(&report.json())
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        let _ = writeln!(out, "{doc}");
    } else {
        let _ = report.write_summary(out);
    }
    let _ = out.flush();
    report.exit_code
}

#[cfg(test)]
mod tests;
