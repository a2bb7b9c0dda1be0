//! Everything a request handler can reach.

use crate::catalog::Catalog;
use crate::config::Config;
use crate::relay::upstream::Upstream;
use crate::server::auth::LoginThrottle;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub catalog: Catalog,
    pub upstream: Upstream,
    pub throttle: LoginThrottle,
    pub started: Instant,
    /// Relay tasks in flight (shutdown waits for them).
    pub relays: InFlight,
    pub metrics: crate::metrics::Metrics,
    pub profiler: Arc<crate::profiler::Profiler>,
    /// Notification queue, workers and the in-memory quota-warning state.
    pub notifier: crate::notify::Notifier,
    /// Flipped at shutdown; background monitors watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The database answered its last health ping (see `health`).
    pub db_healthy: AtomicBool,
    /// Set when shutdown begins: new relays are refused with 503 while in-flight ones finish.
    pub draining: AtomicBool,
}

/// Counts relay tasks, which may outlive their connection (a disconnected client's stream is
/// drained for its usage); shutdown waits for the count to reach zero.
#[derive(Default)]
pub struct InFlight {
    count: AtomicU64,
    idle: tokio::sync::Notify,
}

/// Held by a relay task for its whole life.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }
    pub fn get(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.get() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Result<Arc<AppState>, String> {
        let catalog =
            Catalog::load(store.clone()).map_err(|e| format!("cannot load the catalog: {e}"))?;
        let upstream = Upstream::new(&config.relay)?;
        let profiler = Arc::new(
            crate::profiler::Profiler::new(config.profiler_config())
                .map_err(|e| format!("profiler settings: {e}"))?,
        );
        let notifier =
            crate::notify::Notifier::start(store.clone(), crate::notify::NotifyConfig::default())
                .map_err(|e| format!("cannot start the notifier: {e}"))?;
        Ok(Arc::new(AppState {
            config,
            store,
            catalog,
            upstream,
            throttle: LoginThrottle::default(),
            started: Instant::now(),
            relays: InFlight::default(),
            metrics: crate::metrics::Metrics::default(),
            profiler,
            notifier,
            shutdown: tokio::sync::watch::Sender::new(false),
            db_healthy: AtomicBool::new(true),
            draining: AtomicBool::new(false),
        }))
    }
}

impl AppState {
    /// Values for the stats and metrics endpoints that live outside the counters.
    pub fn gauges(&self) -> crate::metrics::Gauges {
        crate::metrics::Gauges {
            relays_in_flight: self.relays.get(),
            writer_queue: self.store.writer.queue_depth(),
            commits: self.store.writer.stats.commits.load(Ordering::Relaxed),
            commit_latency: self.store.writer.stats.commit_latency.snapshot(),
            db_healthy: self.db_healthy.load(Ordering::Relaxed),
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }
}
