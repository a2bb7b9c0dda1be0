//! The `sluice` binary: parse the command line, load the configuration, start logging, run.

use clap::{Parser, Subcommand};
use sluice::config::{Config, Overrides};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    if let Err(e) = sluice::logging::init(config.debug) {
        eprintln!("sluice: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Healthcheck => healthcheck(&config),
        Command::Migrate => sluice::app::open_store(&config).map(|store| {
            log::info!("database {} is at the newest schema", store.path.display());
        }),
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    };
    sluice::logging::flush();
    code
}

fn serve(config: Config) -> anyhow::Result<()> {
    let store = sluice::app::open_store(&config)?;
    sluice::app::ensure_root(&store, &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: {e}; pick another address with --listen or SLUICE_LISTEN",
                    config.listen
                )
            })?;
        sluice::app::serve(config, store, listener, shutdown_signal()).await
    })
}

fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(sluice::health::ask_ready(config.listen))
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("ready");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT received"),
    }
}
