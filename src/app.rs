//! Start-up and shutdown, shared by `main` and the integration tests: open the store, make
//! the root account on first start, serve on a given listener, and stop cleanly.

use crate::config::Config;
use crate::server;
use crate::state::AppState;
use crate::store::users::{NewUser, Role};
use crate::store::{Store, users};
use crate::systemd::Notifier;
use crate::util;
use anyhow::Context;
use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Opens (creating) the data directory and the database, running migrations.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}: create it or point data_dir / SLUICE_DATA_DIR at a writable one",
            config.data_dir.display()
        )
    })?;
    let path = config.database_path();
    tighten_database_modes(&path);
    Store::open(&path).with_context(|| format!("cannot open the database {}", path.display()))
}

/// A database readable by others (made by an older release or copied in under a permissive
/// umask) is made 0600 with its WAL and shared-memory files before it is opened: it holds the
/// channel secrets. Failing to is logged, not fatal (the file may belong to another user who
/// runs sluice read-only, e.g. `sluice reconcile` by an operator).
fn tighten_database_modes(db: &Path) {
    let side = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let (wal, shm) = (side("-wal"), side("-shm"));
    match crate::os::make_private(&[db, &wal, &shm]) {
        Ok(changed) => {
            for (p, mode) in changed {
                log::warn!(
                    "{} was readable by others (mode {mode:o}); made it 0600",
                    p.display()
                );
            }
        }
        Err(e) => log::warn!("cannot make {} private: {e}", db.display()),
    }
}

/// Creates the root account when the database has no users. The password is the configured
/// one, or a generated one that is printed once (only to a terminal) and written to `<data>/initial-root-password`
/// (mode 0600). Never logged. Blocking: call it outside the async runtime.
pub fn ensure_root(store: &Store, config: &Config) -> anyhow::Result<()> {
    if store.read_blocking(users::count)? > 0 {
        return Ok(());
    }
    let generated = config.root_password.is_empty();
    let password = if generated {
        util::random_token(24)
    } else {
        config.root_password.expose().to_string()
    };
    let hash = crate::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = util::now_secs();
    store.writer.exec_blocking(move |c| {
        users::insert(
            c,
            &NewUser {
                username: "root",
                password_hash: &hash,
                role: Role::Root,
                group: "default",
                quota: 0,
                created_at: now,
            },
        )
    })?;
    if generated {
        let file = config
            .data_dir
            .join(crate::auth::INITIAL_ROOT_PASSWORD_FILE);
        write_private(&file, &format!("{password}\n"))
            .with_context(|| format!("cannot write {}", file.display()))?;
        // On a terminal the operator sees the password once. Otherwise stdout is a journal or a
        // log file, where a password must never land: only the file's path is logged.
        if std::io::stdout().is_terminal() {
            println!(
                "Created the root account. Sign in as 'root' with password: {password}\n(also written to {}, which is deleted when you change the password)",
                file.display()
            );
        }
        log::info!(
            "created the root account; its password is in {}",
            file.display()
        );
    } else {
        log::info!("created the root account with the configured password");
    }
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Serves on `listener` until `shutdown` resolves; then drains requests, flushes the writer
/// and checkpoints the WAL, so the database file alone is a complete copy.
pub async fn serve(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    systemd: Notifier,
) -> anyhow::Result<()> {
    let state = build_state(config, store).await?;
    run(state, listener, shutdown, systemd).await
}

/// Builds the state, loading the in-memory catalog off the async threads. The tokenizers are
/// not loaded here: tiktoken-rs loads each on its first exact count (a settle whose upstream
/// reported no usage, a token-audit sample), which runs off the async threads.
pub async fn build_state(config: Config, store: Store) -> anyhow::Result<Arc<AppState>> {
    build_state_with(config, store, crate::ratelimit::Limiter::default()).await
}

/// As [`build_state`], with the rate limiter given (tests give one on a hand-moved clock).
pub async fn build_state_with(
    config: Config,
    store: Store,
    limiter: crate::ratelimit::Limiter,
) -> anyhow::Result<Arc<AppState>> {
    let state = tokio::task::spawn_blocking(move || AppState::with_limiter(config, store, limiter))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(state)
}

/// How long, once requests are done, the background jobs get together: queued notifications
/// (their warning-state writes go through the writer), a scheduled backup in progress (it holds
/// a read transaction the final checkpoint needs gone), the channel test schedule. All three
/// were told to stop when the drain began.
const AFTER_BUDGET: Duration = Duration::from_secs(5);
/// How long the writer gets to commit what is queued and checkpoint the WAL. Past it the
/// process exits anyway: every commit is already durable, and the WAL is replayed at the
/// next start.
const FLUSH_BUDGET: Duration = Duration::from_secs(5);

/// The longest a stop can take with `grace` (`shutdown_grace_secs`): every phase is bounded.
/// It must fit the unit's `TimeoutStopSec=` (a test checks that it does for the default) or
/// systemd kills the process mid-flush; sluice also tells systemd this figure when it starts
/// to stop (`EXTEND_TIMEOUT_USEC=`), so a longer configured grace is waited for.
pub fn stop_budget(grace: Duration) -> Duration {
    grace + server::CUT_BUDGET + server::KILL_BUDGET + AFTER_BUDGET + FLUSH_BUDGET
}

/// Serves `state` on `listener` until `shutdown`, then stops the store cleanly. `systemd`
/// tells systemd when the server is ready, feeds its watchdog and says when it stops.
pub async fn run(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    systemd: Notifier,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // A first ping before the first request, so /readyz tells the truth from the start.
    crate::dbhealth::check(&state).await;
    let interval = Duration::from_secs(state.config.db_ping_interval_secs);
    crate::dbhealth::spawn_pinger(state.clone(), interval);
    state.profiler.start_monitor(state.shutdown.subscribe());
    let options = state.catalog.options_cell();
    crate::retention::spawn(
        state.store.clone(),
        move || options.load().log.retention_days,
        state.shutdown.subscribe(),
    );
    let scheduler =
        crate::backup::spawn_scheduler(state.backups.clone(), state.shutdown.subscribe());
    let store = state.store.clone();
    systemd.spawn_watchdog(move || {
        let store = store.clone();
        async move { crate::dbhealth::ping(&store).await }
    });
    let channel_tests = crate::channel_health::scheduler::spawn(state.clone());
    log::info!("listening on http://{addr}");
    // Ready only now: migrations ran before the state was built, the listener is bound and the
    // first database ping is in; connections made from here on wait in the accept backlog.
    systemd.ready(&format!("serving on http://{addr}"));
    let store = state.store.clone();
    let budget = stop_budget(Duration::from_secs(state.config.shutdown_grace_secs));
    let notifier = state.notifier.clone();
    let shutdown = async move {
        shutdown.await;
        systemd.stopping(budget);
    };
    server::run(listener, state, shutdown).await;
    let notified = tokio::task::spawn_blocking(move || notifier.shutdown(AFTER_BUDGET));
    let (_, backup, tests) = tokio::join!(
        notified,
        tokio::time::timeout(AFTER_BUDGET, scheduler),
        tokio::time::timeout(AFTER_BUDGET, channel_tests),
    );
    if backup.is_err() {
        log::warn!("a scheduled backup was still running at shutdown");
    }
    if tests.is_err() {
        log::warn!("the channel test schedule did not stop in time");
    }
    match tokio::time::timeout(FLUSH_BUDGET, store.writer.shutdown()).await {
        Ok(r) => r.context("flushing the database at shutdown")?,
        Err(_) => {
            log::error!(
                "the final commit and checkpoint did not finish within {} s; stopping anyway (the WAL is replayed at the next start)",
                FLUSH_BUDGET.as_secs()
            );
            return Ok(());
        }
    }
    log::info!("stopped; the database is checkpointed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stop with the shipped configuration fits the shipped unit's `TimeoutStopSec=` with
    /// room to spare, so systemd never kills sluice mid-flush (it did: 30 s waited twice, past
    /// 45). Driven by the files themselves, so changing either without the other fails here.
    #[test]
    fn the_packaged_stop_fits_the_units_stop_timeout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = crate::config::Config::load(
            Some(&root.join("packaging/sluice.toml")),
            Vec::new(),
            &crate::config::Overrides::default(),
        )
        .unwrap();
        let unit = std::fs::read_to_string(root.join("systemd/sluice.service")).unwrap();
        let timeout: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .unwrap()
            .parse()
            .unwrap();
        let budget = stop_budget(Duration::from_secs(config.shutdown_grace_secs));
        assert_eq!(budget, Duration::from_secs(44));
        assert!(
            budget + Duration::from_secs(10) <= Duration::from_secs(timeout),
            "a stop may take {budget:?}; TimeoutStopSec={timeout}"
        );
    }
}
