//! One-shot HTTP calls and the admin-API set-up of a fresh gateway.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The root password the bench starts a fresh gateway with.
pub const ROOT_PASSWORD: &str = "bench-root-password";

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(400).collect()
    }
}

/// One request on a fresh HTTP/1.1 connection, bounded by `timeout`.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    tokio::time::timeout(timeout, call_inner(addr, method, path, headers, body))
        .await
        .map_err(|_| anyhow!("no answer from {addr}{path} within {timeout:?}"))?
}

async fn call_inner(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let req = req.body(Full::new(body)).context("building the request")?;
    let res = send
        .send_request(req)
        .await
        .with_context(|| format!("{method} {path}"))?;
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .with_context(|| format!("{method} {path}: reading the body"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// One `GET /api/status`: Ok(None) when it answered 200, else what it answered or why not.
pub async fn status_once(addr: SocketAddr) -> Option<String> {
    match call(
        addr,
        Method::GET,
        "/api/status",
        &[],
        None,
        Duration::from_secs(2),
    )
    .await
    {
        Ok(reply) if reply.status == StatusCode::OK => None,
        Ok(reply) => Some(format!("status {}: {}", reply.status, reply.text())),
        Err(err) => Some(format!("{err:#}")),
    }
}

fn expect_2xx(what: &str, reply: &Reply) -> anyhow::Result<()> {
    if !reply.status.is_success() {
        bail!("{what} answered {}: {}", reply.status, reply.text());
    }
    Ok(())
}

/// A gateway set up for the load: the API key it is driven with and root's access token.
pub struct Gateway {
    /// `sk-…`
    pub key: String,
    /// `Bearer pat-…`, for the admin API.
    pub admin: String,
}

/// Log in as root, get an access token, lift root's quota, add a channel to the mock and create an
/// unlimited API key.
pub async fn set_up_gateway(sluice: SocketAddr, mock: SocketAddr) -> anyhow::Result<Gateway> {
    let t = Duration::from_secs(10);
    let login = call(
        sluice,
        Method::POST,
        "/api/auth/login",
        &[],
        Some(&json!({"username": "root", "password": ROOT_PASSWORD})),
        t,
    )
    .await?;
    expect_2xx("POST /api/auth/login", &login)?;
    let cookie = login
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sluice_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("POST /api/auth/login set no sluice_session cookie"))?;
    let csrf = login.json()["csrf_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow!(
                "POST /api/auth/login returned no csrf_token: {}",
                login.text()
            )
        })?;

    let token = call(
        sluice,
        Method::POST,
        "/api/me/access-token",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        Some(&json!({})),
        t,
    )
    .await?;
    expect_2xx("POST /api/me/access-token", &token)?;
    let token = token.json()["token"]
        .as_str()
        .map(|s| format!("Bearer {s}"))
        .ok_or_else(|| {
            anyhow!(
                "POST /api/me/access-token returned no token: {}",
                token.text()
            )
        })?;
    let auth = [("authorization", token.as_str())];

    let quota = call(
        sluice,
        Method::PATCH,
        "/api/users/1",
        &auth,
        Some(&json!({"quota": 1_000_000_000_000_000u64})),
        t,
    )
    .await?;
    expect_2xx("PATCH /api/users/1", &quota)?;
    let channel = json!({"name": "mock", "base_url": format!("http://{mock}/v1"), "api_key": "sk-mock", "models": ["gpt-4o-mini"]});
    let channel = call(
        sluice,
        Method::POST,
        "/api/channels",
        &auth,
        Some(&channel),
        t,
    )
    .await?;
    expect_2xx("POST /api/channels", &channel)?;
    let key = call(
        sluice,
        Method::POST,
        "/api/keys",
        &auth,
        Some(&json!({"name": "bench", "unlimited": true})),
        t,
    )
    .await?;
    expect_2xx("POST /api/keys", &key)?;
    let key = find_key(&key.json())
        .ok_or_else(|| anyhow!("POST /api/keys returned no \"key\": {}", key.text()))?;
    Ok(Gateway { key, admin: token })
}

/// `GET path` with the admin token; the JSON body of a 2xx answer.
pub async fn admin_get(sluice: SocketAddr, admin: &str, path: &str) -> anyhow::Result<Value> {
    let reply = call(
        sluice,
        Method::GET,
        path,
        &[("authorization", admin)],
        None,
        Duration::from_secs(30),
    )
    .await?;
    expect_2xx(&format!("GET {path}"), &reply)?;
    Ok(reply.json())
}

/// The `"key"` string of the answer, at the top or one level down (`{"data": {"key": …}}`).
fn find_key(v: &Value) -> Option<String> {
    if let Some(k) = v.get("key").and_then(Value::as_str) {
        return Some(k.to_owned());
    }
    v.as_object()?
        .values()
        .find_map(|inner| inner.get("key")?.as_str().map(str::to_owned))
}

/// Send the bench request until it succeeds (the gateway may load channels asynchronously).
pub async fn wait_until_relaying(
    sluice: SocketAddr,
    key: &str,
    body: &Value,
) -> anyhow::Result<()> {
    let auth = format!("Bearer {key}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = call(
            sluice,
            Method::POST,
            "/v1/chat/completions",
            &[("authorization", &auth)],
            Some(body),
            Duration::from_secs(5),
        )
        .await?;
        if reply.status.is_success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "POST /v1/chat/completions through sluice answered {}: {}",
                reply.status,
                reply.text()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
