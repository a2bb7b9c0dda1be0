//! The composition root: everything a request handler can reach, built once at start-up.
//! Domain modules never see [`AppState`]: they take the narrow handle they use (the store,
//! the catalog, a watch channel, a small trait implemented here).

use crate::auth::LoginThrottle;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::store::Store;
use crate::tasks::InFlight;
use crate::upstream::Upstream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub mod responses;
pub use responses::{MAX_AGE, Owner, Responses};

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub catalog: Catalog,
    pub upstream: Upstream,
    pub throttle: LoginThrottle,
    pub started: Instant,
    /// Relay tasks and the tasks they spawn (an automatic channel disable, a token-audit
    /// count), in flight: shutdown waits for them.
    pub relays: Arc<InFlight>,
    /// Responses created by passthrough: who may read them back, through which channel.
    pub responses: Responses,
    pub metrics: crate::metrics::Metrics,
    pub profiler: Arc<crate::profiler::Profiler>,
    /// Sampled local token counts against upstream's (the anomaly report).
    pub token_audit: crate::anomaly::TokenAudit,
    /// Backups of the database; the scheduler and the API share its one-at-a-time flag.
    pub backups: Arc<crate::backup::Backups>,
    /// Notification queue, workers and the in-memory quota-warning state.
    pub notifier: crate::notify::Notifier,
    /// Channel tests and the in-memory error windows that turn failing channels off.
    pub channel_health: crate::channel_health::ChannelHealth,
    /// Flipped at shutdown; background monitors watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The database answered its last health ping (see `health`; readiness is
    /// [`crate::dbhealth::store_ready`], which also counts failed commits since).
    pub db_healthy: AtomicBool,
    /// Per-minute request and token counts (memory only; reset at restart).
    pub limiter: Arc<crate::ratelimit::Limiter>,
    /// Set when shutdown begins: new relays are refused with 503 while in-flight ones finish.
    pub draining: AtomicBool,
    /// The dashboard's anomaly count and when it was counted: the report reads a week of
    /// rollups, and its figures move by the hour, so the dashboard reuses it for a minute.
    pub anomaly_count: parking_lot::Mutex<Option<(Instant, usize)>>,
    /// Set when the shutdown grace period is over: relays still running end now (a stream
    /// with an error event), settled for what they delivered (see `until_cut`).
    pub cut: tokio::sync::watch::Sender<bool>,
    /// Client connections: caps, idle timeouts, the drain.
    pub connections: Arc<crate::web::conn::Connections>,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Result<Arc<AppState>, String> {
        Self::with_limiter(config, store, crate::ratelimit::Limiter::default())
    }

    /// As [`AppState::new`], with the rate limiter given (tests give one on a hand-moved clock).
    pub fn with_limiter(
        config: Config,
        store: Store,
        limiter: crate::ratelimit::Limiter,
    ) -> Result<Arc<AppState>, String> {
        let catalog =
            Catalog::load(store.clone()).map_err(|e| format!("cannot load the catalog: {e}"))?;
        let options = catalog.options();
        let upstream = Upstream::new(&options.relay)?;
        let profiler = Arc::new(
            crate::profiler::Profiler::new(options.profiler.to_config(config.profile_dir()))
                .map_err(|e| format!("profiler settings: {e}"))?,
        );
        // The schedule and keep-count are the backup.* options, read afresh by the scheduler.
        let cell = catalog.options_cell();
        let policy: crate::backup::PolicyFn = Arc::new(move || {
            let b = &cell.load().backup;
            crate::backup::BackupPolicy {
                every_secs: u64::from(b.interval_hours) * 3600,
                keep: b.keep as usize,
            }
        });
        let backups = Arc::new(crate::backup::Backups::new(
            store.clone(),
            &config.data_dir,
            policy,
        ));
        let notifier = crate::notify::Notifier::start(
            store.clone(),
            crate::settings::notify::to_config(&options.notify, &options.smtp),
        )
        .map_err(|e| format!("cannot start the notifier: {e}"))?;
        let (limits, lowered) =
            crate::web::conn::ConnLimits::new(&config, crate::os::open_file_limit());
        if let Some(configured) = lowered {
            log::warn!(
                "max_connections {configured} lowered to {}: the open-file limit is {} and every connection may need a second descriptor upstream; raise the limit (LimitNOFILE=, ulimit -n) to allow more",
                limits.max,
                crate::os::open_file_limit()
            );
        }
        Ok(Arc::new(AppState {
            cut: tokio::sync::watch::Sender::new(false),
            connections: Arc::new(crate::web::conn::Connections::new(limits)),
            backups,
            config,
            store,
            catalog,
            upstream,
            throttle: LoginThrottle::default(),
            started: Instant::now(),
            relays: Arc::new(InFlight::default()),
            responses: Default::default(),
            metrics: crate::metrics::Metrics::default(),
            profiler,
            token_audit: crate::anomaly::TokenAudit::default(),
            notifier,
            channel_health: crate::channel_health::ChannelHealth::default(),
            shutdown: tokio::sync::watch::Sender::new(false),
            db_healthy: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            limiter: Arc::new(limiter),
            anomaly_count: parking_lot::Mutex::new(None),
        }))
    }
}

impl AppState {
    /// Pushes the current options into the parts that keep their own copy (the profiler, the notifier);
    /// everything else reads `catalog.options()` per use.
    pub fn apply_options(&self) {
        let o = self.catalog.options();
        if let Err(e) = self
            .profiler
            .set_config(o.profiler.to_config(self.config.profile_dir()))
        {
            log::error!("profiler options not applied: {e}");
        }
        self.notifier
            .configure(crate::settings::notify::to_config(&o.notify, &o.smtp));
    }

    /// Values for the stats and metrics endpoints that live outside the counters.
    pub fn gauges(&self) -> crate::metrics::Gauges {
        crate::metrics::Gauges {
            relays_in_flight: self.relays.get(),
            writer_queue: self.store.writer.queue_depth(),
            commits: self.store.writer.stats.commits.load(Ordering::Relaxed),
            commit_latency: self.store.writer.stats.commit_latency.snapshot(),
            fold_latency: self.store.writer.stats.fold_latency.snapshot(),
            wal_turn_latency: self.store.writer.stats.wal_turn_latency.snapshot(),
            db_healthy: crate::dbhealth::store_ready(self),
            backups_ok: self.backups.stats.ok.load(Ordering::Relaxed),
            backups_failed: self.backups.stats.failed.load(Ordering::Relaxed),
            last_backup_at: self.backups.stats.last_ok_at.load(Ordering::Relaxed),
            uptime_secs: self.started.elapsed().as_secs(),
            channel_health: self.channel_health.gauges(&self.catalog),
        }
    }
}

impl crate::dbhealth::Pinged for AppState {
    fn store(&self) -> &Store {
        &self.store
    }
    fn verdict(&self) -> &AtomicBool {
        &self.db_healthy
    }
    fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }
    fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

impl crate::channel_health::Host for AppState {
    fn store(&self) -> &Store {
        &self.store
    }
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    fn upstream(&self) -> &Upstream {
        &self.upstream
    }
    fn notifier(&self) -> &crate::notify::Notifier {
        &self.notifier
    }
    fn channel_health(&self) -> &crate::channel_health::ChannelHealth {
        &self.channel_health
    }
    fn tasks(&self) -> &Arc<InFlight> {
        &self.relays
    }
    fn shutdown(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
