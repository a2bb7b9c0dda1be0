//! The `sluice` binary: parse the command line, load the configuration, start logging, run.

use clap::{Parser, Subcommand};
use sluice::config::{Config, Overrides};
use sluice::probe::ProbeArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// sluice: a self-hosted LLM API gateway in one binary and one SQLite file.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (see packaging/sluice.toml for every key).
    #[arg(long, global = true, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:3000).
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// Data directory (default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database file (default <data-dir>/sluice.db).
    #[arg(long, global = true)]
    database: Option<PathBuf>,
    /// Log DEBUG lines.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the server at the configured listen address is ready (GET /readyz), else 1.
    Healthcheck,
    /// Copy the database (safe while the server runs) into <data-dir>/backups, or FILE with --out.
    Backup {
        /// Write the copy here instead (refused if the file exists).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Install a backup as the database; the server must be stopped (see docs/operations.md).
    Restore {
        /// The backup file to restore.
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Rewrite the database in 1 KiB pages and without free space; the server must be stopped.
    Compact,
    /// Send a few small chat requests to a gateway and report their latency (see docs/probe.md).
    Probe(ProbeArgs),
    /// Check every balance and used quota against the log rows; exit 1 if any differs.
    Reconcile {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fill the database with N synthetic log rows (for measuring log queries; not for production).
    GenLogs {
        /// Rows to write.
        rows: u64,
        /// Spread them over this many days up to now.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Synthetic users to create.
        #[arg(long, default_value_t = 50)]
        users: u32,
        /// Keys per synthetic user.
        #[arg(long, default_value_t = 2)]
        keys_per_user: u32,
        /// Random seed (same seed, same rows).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    // Before anything allocates a large block: large blocks are mapped and returned when freed.
    sluice::os::fix_malloc_thresholds();
    // Before anything creates a file: the database, logs, backups and profiles are private.
    sluice::os::restrict_file_modes();
    let cli = Cli::parse();
    // The probe is a client: it needs no configuration, logging or database.
    if let Some(Command::Probe(args)) = &cli.command {
        return probe(args);
    }
    let flags = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
        database: cli.database.clone(),
        debug: cli.debug,
    };
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    // Log files only for the server: `sluice healthcheck` every few seconds must not open a
    // new file (and prune an old one) each time.
    let mut log_options = sluice::logging::LogOptions::from_config(&config);
    if !serving {
        log_options.dir = None;
    }
    if let Err(e) = sluice::logging::init(&log_options) {
        eprintln!("sluice: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    sluice::logging::install_panic_hook();
    if serving {
        sluice::logging::sys(&format!(
            "sluice {} starting (pid {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ));
        sluice::logging::sys(&format!("config: {}", config.summary()));
    }
    let result = match command {
        Command::Reconcile { json } => match sluice::cli::reconcile(&config, json) {
            Ok(true) => Ok(()),
            Ok(false) => {
                sluice::logging::flush();
                return ExitCode::FAILURE;
            }
            Err(e) => Err(e),
        },
        Command::GenLogs {
            rows,
            days,
            users,
            keys_per_user,
            seed,
        } => sluice::cli::gen_logs(
            &config,
            &sluice::store::synthetic::Spec {
                rows,
                days,
                users,
                keys_per_user,
                seed,
            },
        ),
        Command::Serve => serve(config),
        Command::Healthcheck => healthcheck(&config),
        Command::Probe(_) => Ok(()), // handled above
        Command::Backup { out } => {
            sluice::backup::cli::backup(&config, out.as_deref(), &mut std::io::stdout())
        }
        Command::Restore { file, yes } => sluice::backup::cli::restore(
            &config,
            &file,
            yes,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        ),
        Command::Compact => sluice::backup::cli::compact(&config, &mut std::io::stdout()),
        Command::Migrate => sluice::app::open_store(&config).map(|store| {
            log::info!("database {} is at the newest schema", store.path.display());
        }),
    };
    match result {
        Ok(()) => {
            if serving {
                sluice::logging::sys("sluice stopped");
            }
            sluice::logging::flush();
            ExitCode::SUCCESS
        }
        // [FATAL] to stderr and the file, every sink flushed, exit status 1.
        Err(e) if serving => sluice::logging::fatal(&format!("{e:#}")),
        Err(e) => {
            log::error!("{e:#}");
            sluice::logging::flush();
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    // Connections are capped below the open-file limit (see server::conn): make it the hard one.
    sluice::os::raise_open_file_limit();
    // Held until the process exits: no second server, and no restore, on this data directory.
    let _lock = sluice::lock::DataLock::acquire(&config.data_dir)?;
    // Under systemd (Type=notify) the start job waits for READY=1; the status lines say why.
    let systemd = sluice::systemd::Notifier::from_env();
    systemd.status("migrating the database");
    let store = sluice::app::open_store(&config).inspect_err(|e| {
        systemd.status(&format!("failed: {e:#}"));
    })?;
    sluice::app::ensure_root(&store, &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        // SIGHUP (logrotate): start a new log file. Registered before listening, so a HUP never
        // meets the default action (terminate).
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        log::info!("SIGHUP received: starting a new log file");
                        sluice::logging::reopen();
                    }
                });
            }
            Err(e) => log::warn!("cannot watch SIGHUP ({e}); log files are not reopened on SIGHUP"),
        }
        let stop = shutdown_signal();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: {e}; pick another address with --listen or SLUICE_LISTEN",
                    config.listen
                )
            })?;
        sluice::app::serve(config, store, listener, stop, systemd).await
    });
    // The stop is bounded (app::stop_budget); a blocking task still running (a download being
    // copied) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `sluice probe`: exit 0 when every request succeeded, 1 when any failed, 2 on bad arguments.
fn probe(args: &ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice probe: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(sluice::probe::run(args, &mut std::io::stdout()));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(sluice::dbhealth::ask_ready(config.listen))
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("ready");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed here, before the listener is
/// bound and readiness is announced: a SIGTERM that came between "listening" and the first
/// poll of a lazily made handler met the default action and killed the process undrained.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => log::info!("SIGTERM received"),
                    _ = int.recv() => log::info!("SIGINT received"),
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                log::error!("cannot watch SIGTERM/SIGINT: {e}; stop sluice with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}
