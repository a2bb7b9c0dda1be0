//! Notification receivers on loopback for the notify tests: an HTTP receiver that records
//! every request and answers from a script, and a small SMTP server that captures messages.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How long a test waits for a receiver to be reached.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: "",
        }
    }
    pub fn ok(body: &'static str) -> Reply {
        Reply {
            body,
            ..Reply::status(200)
        }
    }
    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Reply {
        self.headers.push((k, v.into()));
        self
    }
}

struct Shared {
    hits: Mutex<Vec<Captured>>,
    script: Mutex<Vec<Reply>>,
    arrived: Notify,
}

/// An HTTP receiver answering from `script` in order (the last answer repeats).
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            script: Mutex::new(script),
            arrived: Notify::new(),
        });
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Captured> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            if tokio::time::timeout_at(deadline, self.shared.arrived.notified())
                .await
                .is_err()
            {
                panic!("the receiver got {} requests, expected {n}", hits.len());
            }
        }
    }
}

async fn answer(
    s: Arc<Shared>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = {
        let mut script = s.script.lock().unwrap();
        if script.len() > 1 {
            script.remove(0)
        } else {
            script.first().cloned().unwrap_or_else(|| Reply::ok(""))
        }
    };
    s.hits.lock().unwrap().push(Captured {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    });
    s.arrived.notify_one();
    let mut resp = http::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v);
    }
    Ok(resp.body(Full::new(Bytes::from(reply.body))).unwrap())
}

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A plain SMTP server on loopback (no STARTTLS, no AUTH) that keeps every message.
pub struct SmtpCapture {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
}

impl SmtpCapture {
    pub async fn start() -> SmtpCapture {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (m, a) = (mails.clone(), arrived.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (m, a) = (m.clone(), a.clone());
                tokio::spawn(async move {
                    let _ = session(stream, m, a).await;
                });
            }
        });
        SmtpCapture {
            port,
            mails,
            arrived,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    w.write_all(b"220 capture.test ESMTP\r\n").await?;
    let mut mail = Mail::default();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250 capture.test\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail {
                from: cmd[10..].trim().to_string(),
                ..Mail::default()
            };
            w.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            w.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(&line);
            }
            mail.data = data;
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            arrived.notify_one();
            w.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            w.write_all(b"250 OK\r\n").await?;
        } else {
            w.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
