//! The closed-loop load generator: N workers, each with one HTTP/1.1 keep-alive connection,
//! sending the same request back to back for a fixed window. `exchange`, `connect`, the
//! per-process sampling and the percentiles are shared with the open loop (`open_loop.rs`).

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

impl Target {
    /// The bench's POST with `body` (None when the path is not a valid URI).
    pub fn request(&self, body: &Bytes) -> Option<Request<Full<Bytes>>> {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.parse().ok()?;
        let headers = req.headers_mut();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&self.addr.to_string()).ok()?,
        );
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Some(req)
    }
}

pub struct Spec {
    pub connections: usize,
    pub stream: bool,
    /// Requests before the window are not counted (connections and caches warm up).
    pub warmup: Duration,
    pub duration: Duration,
    /// Calls in the window slower than this are printed to stderr with the time they started
    /// on `CLOCK_MONOTONIC`, the clock `perf record -k CLOCK_MONOTONIC` stamps events with: to
    /// find what held each one (docs/experiments/slow_calls.py).
    pub slow: Option<Duration>,
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
    pub p999_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Every 2xx answer with a complete body, warm-up and the calls that ended after the
    /// window included: the calls the gateway must have charged and logged.
    pub answered: u64,
    /// Every call that failed, warm-up included (charged or not, depending on where it broke).
    pub failed: u64,
}

/// What one observed process used during the window (None where `/proc` could not be read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu: Option<Duration>,
    /// Bytes it caused to be written to storage (`write_bytes`).
    pub written: Option<u64>,
}

/// Samples the processes in `observe` at `start` and at `end`; the differences, in the same order.
pub fn sample_window(
    observe: &[u32],
    start: Instant,
    end: Instant,
    ticks: u64,
) -> tokio::task::JoinHandle<Vec<Usage>> {
    let pids = observe.to_vec();
    tokio::spawn(async move {
        let sample = |pids: &[u32]| -> Vec<(Option<Duration>, Option<u64>)> {
            pids.iter()
                .map(|&pid| {
                    (
                        crate::procs::cpu_time(pid, ticks),
                        crate::procs::write_bytes(pid),
                    )
                })
                .collect()
        };
        tokio::time::sleep_until(start.into()).await;
        let before = sample(&pids);
        tokio::time::sleep_until(end.into()).await;
        let after = sample(&pids);
        before
            .into_iter()
            .zip(after)
            .map(|((c0, w0), (c1, w1))| Usage {
                cpu: c1.zip(c0).map(|(a, b)| a.saturating_sub(b)),
                written: w1.zip(w0).map(|(a, b)| a.saturating_sub(b)),
            })
            .collect::<Vec<_>>()
    })
}

/// Run the load. What each process in `observe` used in the window is returned in the same order.
pub async fn run(
    target: Arc<Target>,
    body: Bytes,
    spec: &Spec,
    observe: &[u32],
    ticks: u64,
) -> (Stats, Vec<Usage>) {
    let start = Instant::now() + spec.warmup;
    let end = start + spec.duration;
    let sampler = sample_window(observe, start, end, ticks);
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| {
            tokio::spawn(worker(
                target.clone(),
                body.clone(),
                spec.stream,
                (start, end),
                spec.slow,
            ))
        })
        .collect();
    let mut all = WorkerOut::default();
    for w in workers {
        match w.await {
            Ok(out) => all.absorb(out),
            Err(err) => all.error(true, || format!("worker panicked: {err}")),
        }
    }
    let usage = sampler
        .await
        .unwrap_or_else(|_| vec![Usage::default(); observe.len()]);
    (all.stats(spec.duration), usage)
}

/// The nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What workers measured: latencies in the window (ns) and the counts.
#[derive(Default)]
pub struct WorkerOut {
    pub latencies: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// All complete 2xx answers and all failures, in the window or not.
    pub answered: u64,
    pub failed: u64,
}

impl WorkerOut {
    pub fn error(&mut self, counted: bool, what: impl FnOnce() -> String) {
        self.failed += 1;
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(what());
            }
        }
    }

    /// Counts one exchange; a success that was `counted` keeps the latency `latency` gives (ns).
    pub fn record(
        &mut self,
        result: Result<Result<(), Failure>, tokio::time::error::Elapsed>,
        counted: bool,
        latency: impl FnOnce() -> Option<u64>,
    ) -> After {
        match result {
            Ok(Ok(())) => {
                self.answered += 1;
                if let Some(ns) = latency().filter(|_| counted) {
                    self.latencies.push(ns);
                }
                After::Next
            }
            Ok(Err(Failure::Answer(what))) => {
                self.error(counted, || what);
                After::Next
            }
            Ok(Err(Failure::Connection(what))) => {
                self.error(counted, || what);
                After::Reconnect
            }
            Err(_) => {
                self.error(counted, || "timed out".to_owned());
                After::Stop
            }
        }
    }

    pub fn absorb(&mut self, other: WorkerOut) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.answered += other.answered;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// The figures of a window `window` long.
    pub fn stats(mut self, window: Duration) -> Stats {
        self.latencies.sort_unstable();
        let l = &self.latencies;
        let ms = |nanos: u64| nanos as f64 / 1e6;
        Stats {
            requests: l.len() as u64,
            errors: self.errors,
            rps: l.len() as f64 / window.as_secs_f64(),
            p50_ms: ms(percentile(l, 0.50)),
            p99_ms: ms(percentile(l, 0.99)),
            p999_ms: ms(percentile(l, 0.999)),
            max_ms: ms(l.last().copied().unwrap_or(0)),
            first_error: self.first_error,
            answered: self.answered,
            failed: self.failed,
        }
    }
}

/// How one request failed.
pub enum Failure {
    /// Answered, but not as wanted; the connection is still usable.
    Answer(String),
    /// The connection is gone.
    Connection(String),
}

async fn worker(
    target: Arc<Target>,
    body: Bytes,
    stream: bool,
    (start, end): (Instant, Instant),
    slow: Option<Duration>,
) -> WorkerOut {
    let mut out = WorkerOut {
        latencies: Vec::with_capacity(4096),
        ..WorkerOut::default()
    };
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    // A request still running this long after the window is abandoned.
    let give_up = tokio::time::Instant::from_std(end + Duration::from_secs(10));
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let counted = t0 >= start;
        let mono = slow.map(|_| rustix::time::clock_gettime(rustix::time::ClockId::Monotonic));
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
        let Some(req) = target.request(&body) else {
            break;
        };
        let result = tokio::time::timeout_at(give_up, exchange(send, req, stream)).await;
        let t1 = Instant::now();
        if let (Some(slow), Some(at)) = (slow, mono)
            && counted
            && t1 - t0 > slow
        {
            eprintln!(
                "slow call: started at {}.{:09} s (CLOCK_MONOTONIC), took {:.3} ms",
                at.tv_sec,
                at.tv_nsec,
                (t1 - t0).as_secs_f64() * 1e3
            );
        }
        let latency = || (t1 <= end).then(|| (t1 - t0).as_nanos() as u64);
        match out.record(result, counted, latency) {
            After::Next => {}
            After::Reconnect => conn = None,
            After::Stop => break,
        }
    }
    out
}

/// What a worker does after an exchange.
pub enum After {
    Next,
    /// The connection is gone: open another for the next request.
    Reconnect,
    /// The request timed out past the window: the worker is done.
    Stop,
}

pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Send one request and read its whole body.
pub async fn exchange(
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
    // OpenAI's stream ends with `data: [DONE]`, Anthropic's with `message_stop`.
    let end = body.trim_ascii_end();
    if stream && !end.ends_with(b"[DONE]") && !end.ends_with(br#"{"type":"message_stop"}"#) {
        return Err(Failure::Answer(
            "stream ended without data: [DONE] or message_stop".to_owned(),
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
