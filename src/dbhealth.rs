//! Database health: a background pinger checks that a pooled read answers and that the writer
//! can commit a write, and keeps the verdict that `/readyz`, `/api/status`, the metrics, the
//! systemd watchdog and the relay's admission go by.

use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest a ping may take before it counts as failed.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Less free space than this on the database's file system counts as full. A commit may
/// still succeed there by reusing the WAL's own space, so a lone heartbeat can pass on a full
/// disk while a charge (new pages) fails; going by the free space as well keeps the verdict
/// from flapping back to ready between failed calls. A group commit of a few hundred charges
/// writes about a megabyte of WAL.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// Soonest a failed commit makes the pinger check again after its last ping.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// What the pinger reads and writes, implemented by the server's state: the store it pings,
/// the verdict it keeps, the counters it moves, and whether shutdown has begun.
pub trait Pinged: Send + Sync + 'static {
    fn store(&self) -> &Store;
    /// The last ping passed.
    fn verdict(&self) -> &AtomicBool;
    fn metrics(&self) -> &Metrics;
    /// Shutdown has begun: the pinger stops.
    fn draining(&self) -> bool;
}

/// So that callers holding the shared state pass it as it is.
impl<T: Pinged> Pinged for Arc<T> {
    fn store(&self) -> &Store {
        (**self).store()
    }
    fn verdict(&self) -> &AtomicBool {
        (**self).verdict()
    }
    fn metrics(&self) -> &Metrics {
        (**self).metrics()
    }
    fn draining(&self) -> bool {
        (**self).draining()
    }
}

/// One ping: `SELECT 1` on a pooled reader, then a heartbeat row rewritten through the writer
/// and the free space of the database's file system. The write proves more than a live writer
/// thread: its commit appends to the WAL like a charge's, so a read-only file or a full disk
/// fails it (an empty job commits nothing and passes); under `MIN_FREE_BYTES` free counts as
/// full too. Returns how long it all took.
pub async fn ping(store: &Store) -> Result<Duration, String> {
    let started = Instant::now();
    let read = store.read_as_is(crate::store::heartbeat::answer);
    match tokio::time::timeout(PING_TIMEOUT, read).await {
        Err(_) => return Err("a read did not answer within 5 s".into()),
        Ok(Err(e)) => return Err(format!("a read failed: {e}")),
        Ok(Ok(_)) => {}
    }
    let now = crate::util::now_secs();
    let path = store.path.clone();
    // statvfs in the writer's thread too: it is I/O, and never on an async worker.
    let write = store.writer.exec(move |c| {
        crate::store::heartbeat::beat(c, now)?;
        Ok(crate::store::heartbeat::free_bytes(&path))
    });
    match tokio::time::timeout(PING_TIMEOUT, write).await {
        Err(_) => Err(format!(
            "the writer did not answer within 5 s ({} writes queued)",
            store.writer.queue_depth()
        )),
        Ok(Err(e)) => Err(format!("the writer failed: {e}")),
        Ok(Ok(Some(free))) if free < MIN_FREE_BYTES => Err(format!(
            "the disk holding the database is full ({free} bytes free)"
        )),
        Ok(Ok(_)) => Ok(started.elapsed()),
    }
}

/// The store can record charges: the last ping passed and no commit has failed since. A failed
/// commit counts at once (the pinger then confirms or clears it within `RECHECK_AFTER`).
pub fn store_ready(state: &impl Pinged) -> bool {
    state.verdict().load(Ordering::Relaxed)
        && !state.store().writer.stats.failing.load(Ordering::Relaxed)
}

/// Records one ping's outcome; failures are logged as ERR, a recovery as INFO.
pub async fn check(state: &impl Pinged) -> bool {
    let m = state.metrics();
    match ping(state.store()).await {
        Ok(d) => {
            m.db_pings_ok.fetch_add(1, Ordering::Relaxed);
            m.db_ping_last_micros
                .store(d.as_micros() as u64, Ordering::Relaxed);
            if !state.verdict().swap(true, Ordering::Relaxed) {
                log::info!("database healthy again");
            }
            true
        }
        Err(e) => {
            m.db_pings_failed.fetch_add(1, Ordering::Relaxed);
            state.verdict().store(false, Ordering::Relaxed);
            log::error!("database ping failed: {e}");
            false
        }
    }
}

/// Pings every `interval`, and soon after any failed commit, until the state starts draining.
pub fn spawn_pinger(state: Arc<impl Pinged>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.store().writer.stats.failed.notified() => {
                    // A commit failed: find out now whether the store can write (a one-off
                    // failure clears at once, a full disk turns /readyz to 503), but ping at
                    // most once per RECHECK_AFTER while every commit keeps failing.
                    let wait = RECHECK_AFTER.saturating_sub(last.elapsed());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            if state.draining() {
                return;
            }
            check(&*state).await;
            last = Instant::now();
        }
    });
}

/// `sluice healthcheck`: asks a running server's `/readyz`. The address is the configured
/// listen address, with an unspecified IP (0.0.0.0, ::) replaced by loopback.
pub async fn ask_ready(mut addr: std::net::SocketAddr) -> Result<(), String> {
    use http_body_util::BodyExt;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: http::Uri = format!("http://{addr}/readyz")
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let req = http::Request::get(uri)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(PING_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("no answer from http://{addr}/readyz within 5 s"))?
        .map_err(|e| format!("cannot reach http://{addr}/readyz: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "not ready ({status}): {}",
            String::from_utf8_lossy(&body)
        ))
    }
}
