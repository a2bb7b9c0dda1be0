//! Start-up and shutdown, shared by `main` and the integration tests: open the store, make
//! the root account on first start, serve on a given listener, and stop cleanly.

use crate::config::Config;
use crate::server::{self, state::AppState};
use crate::store::users::{NewUser, Role};
use crate::store::{Store, users};
use crate::systemd::Notifier;
use crate::util;
use anyhow::Context;
use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
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
    Store::open(&path).with_context(|| format!("cannot open the database {}", path.display()))
}

/// The file in the data directory that holds a generated root password until root changes it
/// (the password change deletes it; while it exists, `GET /api/me` says `must_change_password`).
pub const INITIAL_ROOT_PASSWORD_FILE: &str = "initial-root-password";

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
    let hash = server::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
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
        let file = config.data_dir.join(INITIAL_ROOT_PASSWORD_FILE);
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

/// Loads the in-memory catalog (off the async threads) and starts loading the tokenizers in
/// the background: they take a few hundred milliseconds, and only relay calls wait for them.
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

/// How long shutdown waits for queued notifications.
const NOTIFY_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
    crate::health::check(&state).await;
    let interval = std::time::Duration::from_secs(state.config.db_ping_interval_secs);
    crate::health::spawn_pinger(state.clone(), interval);
    state.profiler.start_monitor(state.shutdown.subscribe());
    crate::retention::spawn(state.clone());
    let scheduler =
        crate::backup::spawn_scheduler(state.backups.clone(), state.shutdown.subscribe());
    systemd.spawn_watchdog(state.clone());
    let channel_tests = crate::channel_health::scheduler::spawn(state.clone());
    log::info!("listening on http://{addr}");
    // Ready only now: migrations ran before the state was built, the listener is bound and the
    // first database ping is in; connections made from here on wait in the accept backlog.
    systemd.ready(&format!("serving on http://{addr}"));
    let store = state.store.clone();
    let grace = std::time::Duration::from_secs(state.config.shutdown_grace_secs);
    let notifier = state.notifier.clone();
    let shutdown = async move {
        shutdown.await;
        systemd.stopping();
    };
    server::run(listener, state, shutdown).await;
    // Queued warning-state writes (and deliveries, briefly) go through the writer: before it stops.
    let _ = tokio::task::spawn_blocking(move || notifier.shutdown(NOTIFY_GRACE)).await;
    // A scheduled backup in progress holds a read transaction: let it finish before the
    // final checkpoint, within the grace period.
    if tokio::time::timeout(grace, scheduler).await.is_err() {
        log::warn!("a scheduled backup was still running at shutdown");
    }
    // It stops at the shutdown signal (a run in progress is cancelled); its last writes are
    // queued before the writer flushes.
    if tokio::time::timeout(grace, channel_tests).await.is_err() {
        log::warn!("the channel test schedule did not stop in time");
    }
    store
        .writer
        .shutdown()
        .await
        .context("flushing the database at shutdown")?;
    log::info!("stopped; the database is checkpointed");
    Ok(())
}
