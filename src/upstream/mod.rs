//! Talking to upstream providers: the pooled HTTP client (hyper-util with hyper-rustls and
//! bundled web-pki roots; HTTP/1.1 and HTTP/2 by ALPN), the relayed [`Endpoint`]s, the
//! provider kinds ([`providers`]: building a request, reading usage) and SSE line splitting
//! ([`sse`]). Used by the relay, the channel tests and `sluice probe`; knows nothing of keys,
//! quotas or HTTP handlers.

pub mod providers;
pub mod sse;

use crate::settings::modules::RelayOptions;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// The relayed endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// OpenAI Responses, passed through to a channel that has that API (a converted call
    /// goes to `Chat`).
    Responses,
}

impl Endpoint {
    /// Appended to the channel's base URL (which, like the SDKs' `base_url`, ends in `/v1`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
        }
    }
}

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
    /// Rebuilt (dropping idle connections) when the connect timeout option changes, since
    /// the connector fixes it at construction.
    pool: ArcSwap<Pool>,
}

struct Pool {
    connect_timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Pool {
    fn new(connect_timeout: Duration) -> Result<Pool, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = https_connector(http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Pool {
            connect_timeout,
            client,
        })
    }
}

impl Upstream {
    /// Fails only when the TLS provider cannot be set up (a build problem, reported at start).
    pub fn new(opts: &RelayOptions) -> Result<Upstream, String> {
        Ok(Upstream {
            pool: ArcSwap::from_pointee(Pool::new(opts.connect_timeout())?),
        })
    }

    fn pool(&self, connect_timeout: Duration) -> Arc<Pool> {
        let current = self.pool.load_full();
        if current.connect_timeout == connect_timeout {
            return current;
        }
        match Pool::new(connect_timeout) {
            Ok(p) => {
                let p = Arc::new(p);
                self.pool.store(p.clone());
                p
            }
            Err(e) => {
                log::error!("cannot rebuild the upstream client ({e}); keeping the old one");
                current
            }
        }
    }

    /// Sends a request and waits for the response headers, bounded by the first-byte timeout.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
        opts: &RelayOptions,
    ) -> Result<http::Response<Incoming>, SendError> {
        let pool = self.pool(opts.connect_timeout());
        match tokio::time::timeout(opts.first_byte_timeout(), pool.client.request(req)).await {
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
