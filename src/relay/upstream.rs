//! The pooled HTTP client that talks to upstream channels (hyper-util with hyper-rustls and
//! bundled web-pki roots; HTTP/1.1 and HTTP/2 by ALPN).

use crate::config::RelayConfig;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why an attempt at one channel failed before any byte reached the client.
#[derive(Debug)]
pub enum SendError {
    /// No response headers within the first-byte timeout.
    Timeout,
    /// Could not connect or the connection broke before the headers.
    Connect(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Timeout => f.write_str("no response within the first-byte timeout"),
            SendError::Connect(e) => write!(f, "connection failed: {e}"),
        }
    }
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    first_byte_timeout: Duration,
}

impl Upstream {
    /// Fails only when the TLS provider cannot be set up (a build problem, reported at start).
    pub fn new(cfg: &RelayConfig) -> Result<Upstream, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout()));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = https_connector(http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Upstream {
            client,
            first_byte_timeout: cfg.first_byte_timeout(),
        })
    }

    /// Sends a request and waits for the response headers, bounded by the first-byte timeout.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, SendError> {
        match tokio::time::timeout(self.first_byte_timeout, self.client.request(req)).await {
            Err(_) => Err(SendError::Timeout),
            Ok(Err(e)) => Err(SendError::Connect(describe(&e))),
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// http:// and https:// over `http` (rustls with ring and bundled web-pki roots; HTTP/1.1, or
/// HTTP/2 by ALPN). Fails only when the TLS provider cannot be set up (a build problem).
pub fn https_connector(http: HttpConnector) -> Result<HttpsConnector<HttpConnector>, String> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http))
}

/// The error and its causes in one line (hyper's top-level message alone says little).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
