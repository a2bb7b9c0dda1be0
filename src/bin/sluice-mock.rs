//! `sluice-mock`: the mock OpenAI-compatible upstream as a process, for the benchmark and for
//! trying the gateway by hand. See `sluice::mock` for what it answers.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser;
use sluice::mock::MockUpstream;

#[derive(Parser)]
#[command(
    about = "A mock OpenAI-compatible upstream (deterministic answers, behaviour by model name)"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Worker threads; 1 runs everything on the current thread (fastest when pinned to one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pass a free address with --listen",
                args.listen
            )
        })?;
    let mock = MockUpstream::start(listener);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{}", mock.addr()).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    mock.shutdown();
    Ok(())
}
