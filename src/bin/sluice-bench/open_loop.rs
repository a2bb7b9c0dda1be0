//! The open-loop load generator: requests go out on a fixed schedule (a fixed arrival rate)
//! whatever the server does, and each latency is measured from the time its request was
//! scheduled, not from when a worker got to send it. A closed loop hides a stall: its workers stop
//! sending while the server is stuck, so a 40 ms stall costs one slow request per connection. Here
//! every request scheduled during the stall waits, and each one shows it (no coordinated omission).
//!
//! The schedule is kept by tokio's timer, which fires on whole milliseconds: a request can leave
//! up to about 1 ms after its slot, and that wait is in every latency. It is the same for the
//! direct and the nginx runs, so the differences between them are the servers'.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;

use crate::load::{After, Stats, Target, Usage, WorkerOut, connect, exchange, sample_window};

pub struct Spec {
    /// Requests per second.
    pub rate: f64,
    pub stream: bool,
    pub warmup: Duration,
    pub duration: Duration,
    /// Workers, each with one keep-alive connection: the most requests in flight at once. While
    /// all are busy, the next request leaves late and its latency counts the wait.
    pub workers: usize,
}

/// Run the schedule; latencies of the requests scheduled inside the window (also those that end
/// after it). What each process in `observe` used in the window is returned in the same order.
pub async fn run(
    target: Arc<Target>,
    body: Bytes,
    spec: &Spec,
    observe: &[u32],
    ticks: u64,
) -> (Stats, Vec<Usage>) {
    let t0 = Instant::now();
    let start = t0 + spec.warmup;
    let end = start + spec.duration;
    let sampler = sample_window(observe, start, end, ticks);
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..spec.workers.max(1))
        .map(|_| {
            let slots = Slots {
                next: next.clone(),
                t0,
                start,
                end,
                rate: spec.rate.max(1.0),
            };
            tokio::spawn(worker(target.clone(), body.clone(), spec.stream, slots))
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

/// The shared schedule: slot `i` is due at `t0 + i / rate`.
struct Slots {
    next: Arc<AtomicU64>,
    t0: Instant,
    start: Instant,
    end: Instant,
    rate: f64,
}

impl Slots {
    /// The next slot's due time, None once the schedule has passed the window.
    fn take(&self) -> Option<Instant> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.t0 + Duration::from_secs_f64(i as f64 / self.rate);
        (due < self.end).then_some(due)
    }
}

async fn worker(target: Arc<Target>, body: Bytes, stream: bool, slots: Slots) -> WorkerOut {
    let mut out = WorkerOut::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    // A request still running this long after the window is abandoned.
    let give_up = tokio::time::Instant::from_std(slots.end + Duration::from_secs(10));
    while let Some(due) = slots.take() {
        tokio::time::sleep_until(due.into()).await;
        let counted = due >= slots.start;
        let send = match &mut conn {
            Some(send) => send,
            None => match tokio::time::timeout_at(give_up, connect(target.addr)).await {
                Ok(Ok(send)) => conn.insert(send),
                Ok(Err(err)) => {
                    out.error(counted, || format!("connect: {err}"));
                    continue;
                }
                Err(_) => break,
            },
        };
        let Some(req) = target.request(&body) else {
            break;
        };
        let result = tokio::time::timeout_at(give_up, exchange(send, req, stream)).await;
        match out.record(result, counted, || Some(due.elapsed().as_nanos() as u64)) {
            After::Next => {}
            After::Reconnect => conn = None,
            After::Stop => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_rate_and_end_with_the_window() {
        let t0 = Instant::now();
        let slots = Slots {
            next: Arc::new(AtomicU64::new(0)),
            t0,
            start: t0,
            end: t0 + Duration::from_millis(10),
            rate: 1000.0,
        };
        let due: Vec<Duration> = std::iter::from_fn(|| slots.take())
            .map(|d| d - t0)
            .collect();
        assert_eq!(due.len(), 10);
        assert_eq!(due[3], Duration::from_millis(3));
    }
}
