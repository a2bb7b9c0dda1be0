//! The load generator: N workers, each with one HTTP/1.1 keep-alive connection, sending the same
//! request back to back for a fixed window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// Where the load goes.
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub authorization: HeaderValue,
}

pub struct Spec {
    pub connections: usize,
    pub stream: bool,
    /// Requests before the window are not counted (connections and caches warm up).
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Requests that started and finished inside the window with a 2xx and a complete body.
    pub requests: u64,
    /// Requests started inside the window that failed: non-2xx, a cut body, a stream without
    /// `[DONE]`, a connection error or a timeout.
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Every 2xx answer with a complete body, warm-up and the calls that ended after the
    /// window included: the calls the gateway must have charged and logged.
    pub answered: u64,
    /// Every call that failed, warm-up included (charged or not, depending on where it broke).
    pub failed: u64,
}

/// Run the load. The CPU time of each process in `observe` is sampled at the window's edges and
/// returned in the same order (None where `/proc` could not be read).
pub async fn run(
    target: Arc<Target>,
    body: Bytes,
    spec: &Spec,
    observe: &[u32],
    ticks: u64,
) -> (Stats, Vec<Option<Duration>>) {
    let start = Instant::now() + spec.warmup;
    let end = start + spec.duration;
    let pids = observe.to_vec();
    let sampler = tokio::spawn(async move {
        let sample = |pids: &[u32]| -> Vec<Option<Duration>> {
            pids.iter()
                .map(|&pid| crate::procs::cpu_time(pid, ticks))
                .collect()
        };
        tokio::time::sleep_until(start.into()).await;
        let before = sample(&pids);
        tokio::time::sleep_until(end.into()).await;
        let after = sample(&pids);
        before
            .into_iter()
            .zip(after)
            .map(|(b, a)| Some(a?.saturating_sub(b?)))
            .collect::<Vec<_>>()
    });
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| {
            tokio::spawn(worker(
                target.clone(),
                body.clone(),
                spec.stream,
                start,
                end,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    let (mut answered, mut failed) = (0, 0);
    for w in workers {
        match w.await {
            Ok(out) => {
                latencies.extend(out.latencies);
                errors += out.errors;
                answered += out.answered;
                failed += out.failed;
                first_error = first_error.or(out.first_error);
            }
            Err(err) => {
                errors += 1;
                failed += 1;
                first_error = first_error.or(Some(format!("worker panicked: {err}")));
            }
        }
    }
    let cpu = sampler.await.unwrap_or_else(|_| vec![None; observe.len()]);
    latencies.sort_unstable();
    let ms = |nanos: u64| nanos as f64 / 1e6;
    let stats = Stats {
        requests: latencies.len() as u64,
        errors,
        rps: latencies.len() as f64 / spec.duration.as_secs_f64(),
        p50_ms: ms(percentile(&latencies, 0.50)),
        p99_ms: ms(percentile(&latencies, 0.99)),
        max_ms: ms(latencies.last().copied().unwrap_or(0)),
        first_error,
        answered,
        failed,
    };
    (stats, cpu)
}

/// The nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct WorkerOut {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// All complete 2xx answers and all failures, in the window or not.
    answered: u64,
    failed: u64,
}

impl WorkerOut {
    fn error(&mut self, counted: bool, what: impl FnOnce() -> String) {
        self.failed += 1;
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(what());
            }
        }
    }
}

/// How one request failed.
enum Failure {
    /// Answered, but not as wanted; the connection is still usable.
    Answer(String),
    /// The connection is gone.
    Connection(String),
}

async fn worker(
    target: Arc<Target>,
    body: Bytes,
    stream: bool,
    start: Instant,
    end: Instant,
) -> WorkerOut {
    let mut out = WorkerOut {
        latencies: Vec::with_capacity(4096),
        ..WorkerOut::default()
    };
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    // A request still running this long after the window is abandoned.
    let give_up = tokio::time::Instant::from_std(end + Duration::from_secs(10));
    let host = HeaderValue::from_str(&target.addr.to_string())
        .unwrap_or(HeaderValue::from_static("localhost"));
    let json = HeaderValue::from_static("application/json");
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let counted = t0 >= start;
        let send = match &mut conn {
            Some(send) => send,
            None => match tokio::time::timeout_at(give_up, connect(target.addr)).await {
                Ok(Ok(send)) => conn.insert(send),
                Ok(Err(err)) => {
                    out.error(counted, || format!("connect: {err}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => break,
            },
        };
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = match target.path.parse() {
            Ok(uri) => uri,
            Err(_) => break,
        };
        let headers = req.headers_mut();
        headers.insert(header::HOST, host.clone());
        headers.insert(header::AUTHORIZATION, target.authorization.clone());
        headers.insert(header::CONTENT_TYPE, json.clone());
        let result = tokio::time::timeout_at(give_up, exchange(send, req, stream)).await;
        let t1 = Instant::now();
        match result {
            Ok(Ok(())) => {
                out.answered += 1;
                if counted && t1 <= end {
                    out.latencies.push((t1 - t0).as_nanos() as u64);
                }
            }
            Ok(Err(Failure::Answer(what))) => out.error(counted, || what),
            Ok(Err(Failure::Connection(what))) => {
                out.error(counted, || what);
                conn = None;
            }
            Err(_) => {
                out.error(counted, || "timed out".to_owned());
                break;
            }
        }
    }
    out
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Send one request and read its whole body.
async fn exchange(
    send: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    stream: bool,
) -> Result<(), Failure> {
    send.ready()
        .await
        .map_err(|e| Failure::Connection(format!("connection: {e}")))?;
    let res = send
        .send_request(req)
        .await
        .map_err(|e| Failure::Connection(format!("request: {e}")))?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Connection(format!("body: {e}")))?
        .to_bytes();
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(Failure::Answer(format!("status {status}: {text}")));
    }
    if stream && !body.trim_ascii_end().ends_with(b"[DONE]") {
        return Err(Failure::Answer(
            "stream ended without data: [DONE]".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
