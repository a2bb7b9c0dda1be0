//! One outbound notification HTTP call with ureq (blocking: worker threads only).
//!
//! The URL is checked by the SSRF guard first, and the connection is pinned to the addresses
//! the guard checked: ureq is given a resolver that answers with exactly those, so a second
//! DNS lookup (rebinding) never happens. No redirect is followed (a 3xx is a failure), no
//! proxy from the environment is used, and connect and overall timeouts bound the call.

use super::ssrf::{self, AllowList};
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;
use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Connecting may take at most this long (or the overall timeout, if shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the receiver's answer is kept for the test report.
const ANSWER_BYTES: u64 = 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How an attempt ended, for the retry decision and the delivery log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth another try: connect error, timeout, 429, 5xx, a transient SMTP reply.
    Transient,
    /// Another try would fail the same way: other 4xx, a redirect, a TLS failure.
    Final,
    /// The SSRF guard refused the URL at send time.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Transient => "retry",
            Outcome::Final => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// The result of one attempt. `reason` never holds a secret, a token or a full URL.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `host[:port]` of the receiver.
    pub target: String,
    pub outcome: Outcome,
    /// HTTP status, or the SMTP reply code.
    pub status: Option<u16>,
    pub reason: String,
    /// The start of the receiver's answer.
    pub answer: Option<String>,
    /// The receiver asked us to wait this long before retrying.
    pub retry_after: Option<Duration>,
}

impl Attempt {
    pub fn failed(target: String, outcome: Outcome, reason: String) -> Attempt {
        Attempt {
            target,
            outcome,
            status: None,
            reason,
            answer: None,
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

/// Answers every lookup with the addresses the SSRF guard checked.
#[derive(Debug)]
struct Pinned(Vec<SocketAddr>);

impl Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for a in &self.0 {
            if out.try_push(*a).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// Sends `req` once.
pub fn call(req: &Request, allow: &AllowList, timeout: Duration) -> Attempt {
    let checked = match ssrf::check(&req.url, allow, timeout) {
        Ok(c) => c,
        Err(e) => {
            let target = ssrf::parse(&req.url)
                .map(|u| ssrf::target_of(&u))
                .unwrap_or_default();
            return Attempt::failed(target, Outcome::Refused, e.to_string());
        }
    };
    send_to(req, &checked, timeout)
}

/// Sends `req` to exactly the addresses in `checked`, whatever its host name resolves to now.
fn send_to(req: &Request, checked: &ssrf::Checked, timeout: Duration) -> Attempt {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT)))
        .user_agent(format!("sluice/{}", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = Agent::with_parts(
        config,
        DefaultConnector::default(),
        Pinned(checked.addrs.clone()),
    );
    let url = checked.url.as_str();
    let result = match (&req.method, &req.body) {
        (Method::Get, _) => {
            let mut b = agent.get(url);
            for (k, v) in &req.headers {
                b = b.header(*k, v);
            }
            b.call()
        }
        (Method::Post, body) => {
            let mut b = agent.post(url);
            for (k, v) in &req.headers {
                b = b.header(*k, v);
            }
            b.send(body.as_deref().unwrap_or_default())
        }
    };
    match result {
        Ok(resp) => answered(checked.target.clone(), &checked.url, resp),
        Err(e) => {
            let (outcome, reason) = describe(&e);
            Attempt::failed(checked.target.clone(), outcome, reason)
        }
    }
}

fn answered(target: String, url: &url::Url, mut resp: ureq::http::Response<ureq::Body>) -> Attempt {
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    let location = header("location");
    let mut buf = Vec::new();
    // A receiver that stalls its body is cut off by the overall timeout; the answer is a
    // courtesy, so a failure to read it does not change the outcome.
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ANSWER_BYTES)
        .read_to_end(&mut buf);
    let answer = Some(String::from_utf8_lossy(&buf).into_owned()).filter(|s| !s.is_empty());
    let (outcome, reason) = match status {
        200..=299 => (Outcome::Sent, format!("HTTP {status}")),
        300..=399 => {
            let to = location
                .and_then(|l| url.join(&l).ok())
                .map(|u| ssrf::target_of(&u))
                .unwrap_or_else(|| "an unknown place".into());
            (
                Outcome::Final,
                format!("HTTP {status}: a redirect to {to}, not followed (give the final URL)"),
            )
        }
        429 | 500..=599 => (Outcome::Transient, format!("HTTP {status}")),
        _ => (Outcome::Final, format!("HTTP {status}")),
    };
    Attempt {
        target,
        outcome,
        status: Some(status),
        reason,
        answer,
        retry_after,
    }
}

/// A transport error in words, and whether it is worth retrying.
fn describe(e: &ureq::Error) -> (Outcome, String) {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => (Outcome::Transient, format!("timed out ({t})")),
        E::Io(io) => (Outcome::Transient, format!("connection failed: {io}")),
        E::ConnectionFailed => (Outcome::Transient, "connection failed".into()),
        E::HostNotFound => (Outcome::Transient, "host not found".into()),
        E::Protocol(p) => (Outcome::Transient, format!("bad HTTP answer: {p}")),
        E::Tls(m) => (Outcome::Final, format!("TLS failed: {m}")),
        E::Rustls(r) => (Outcome::Final, format!("TLS failed: {r}")),
        // These two print the URL, which may hold a token: say what, not where.
        E::BadUri(_) => (Outcome::Final, "the HTTP client refused the URL".into()),
        E::Http(_) => (Outcome::Final, "the request could not be built".into()),
        other => (Outcome::Final, format!("request failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The connection goes to the checked address even though the URL's host name resolves
    /// to nothing at all: ureq does no lookup of its own, so DNS rebinding has no second
    /// lookup to change.
    #[test]
    fn the_connection_is_pinned_to_the_checked_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let url = format!("http://rebinding.invalid:{}/hook", addr.port());
        let checked = ssrf::Checked {
            url: url::Url::parse(&url).unwrap(),
            target: format!("rebinding.invalid:{}", addr.port()),
            addrs: vec![addr],
        };
        let req = Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            body: None,
        };
        let a = send_to(&req, &checked, Duration::from_secs(5));
        assert_eq!((a.outcome, a.status), (Outcome::Sent, Some(204)), "{a:?}");
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /hook HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("host: rebinding.invalid"),
            "{head}"
        );
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let url = url::Url::parse("http://h.example/").unwrap();
        let with = |status: u16| {
            let resp = ureq::http::Response::builder()
                .status(status)
                .body(ureq::Body::builder().data(""))
                .unwrap();
            answered(String::new(), &url, resp).outcome
        };
        assert_eq!(with(200), Outcome::Sent);
        assert_eq!(with(204), Outcome::Sent);
        assert_eq!(with(301), Outcome::Final);
        assert_eq!(with(400), Outcome::Final);
        assert_eq!(with(404), Outcome::Final);
        assert_eq!(with(429), Outcome::Transient);
        assert_eq!(with(500), Outcome::Transient);
        assert_eq!(with(503), Outcome::Transient);
    }
}
