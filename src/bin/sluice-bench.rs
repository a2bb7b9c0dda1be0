//! `sluice-bench`: the project's benchmark (`make bench`).
//!
//! It starts `sluice-mock` (pinned to CPU 1), nginx as a bare reverse proxy and a fresh
//! `sluice serve` (both pinned to CPU 0), sets the gateway up through its admin API, then drives
//! `POST /v1/chat/completions` from this process (pinned to CPU 1, next to the mock) directly
//! against the mock, through nginx and through sluice, non-stream and streamed, at 1, 32 and 128
//! connections: the difference to direct is what the gateway adds, the ratio to nginx what it
//! costs beyond a bare proxy. Then an open loop at a fixed rate, a long run at one connection for
//! the rare stalls, and a CPU profile under load for the memory it takes. See docs/performance.md
//! for the method and the targets.

#[path = "sluice-bench/accounting.rs"]
mod accounting;
#[path = "sluice-bench/client.rs"]
mod client;
#[path = "sluice-bench/formats.rs"]
mod formats;
#[path = "sluice-bench/load.rs"]
mod load;
#[path = "sluice-bench/nginx.rs"]
mod nginx;
#[path = "sluice-bench/open_loop.rs"]
mod open_loop;
#[path = "sluice-bench/procs.rs"]
mod procs;
#[path = "sluice-bench/report.rs"]
mod report;
#[path = "sluice-bench/runs.rs"]
mod runs;
#[path = "sluice-bench/tables.rs"]
mod tables;

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use http::HeaderValue;
use serde_json::json;

use crate::procs::{Proc, TempDir};
use crate::report::{Report, Scenario};

/// CPU for sluice; the mock and the load generator share the other one.
const SLUICE_CPU: usize = 0;
const LOAD_CPU: usize = 1;

#[derive(Parser)]
#[command(about = "Benchmark sluice against the mock upstream (see docs/performance.md)")]
struct Args {
    /// Seconds each scenario is measured [default: 10, or 2 with --quick].
    #[arg(long)]
    duration: Option<f64>,
    /// A quick run: 2 seconds per scenario.
    #[arg(long)]
    quick: bool,
    /// Connection counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,128")]
    connections: Vec<usize>,
    /// Do not update docs/performance.md.
    #[arg(long)]
    no_write: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The document whose `<!-- bench:begin -->` … `<!-- bench:end -->` block is replaced.
    #[arg(long, default_value = "docs/performance.md")]
    doc: PathBuf,
    /// Only the scenarios against the mock (no sluice).
    #[arg(long)]
    direct_only: bool,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// The sluice binary (default: next to this one, else target/release/sluice).
    #[arg(long)]
    sluice_bin: Option<PathBuf>,
    /// The sluice-mock binary (default: next to this one, else target/release/sluice-mock).
    #[arg(long)]
    mock_bin: Option<PathBuf>,
    /// Bench a running gateway instead of starting one (needs --key and --mock-url).
    #[arg(long, requires_all = ["key", "mock_url"])]
    sluice_url: Option<String>,
    /// API key (`sk-…`) for --sluice-url.
    #[arg(long)]
    key: Option<String>,
    /// Use a running mock upstream instead of starting one.
    #[arg(long)]
    mock_url: Option<String>,
    /// A note added to the summary line of the results (e.g. which sluice build was measured).
    #[arg(long)]
    note: Option<String>,
    /// With --sluice-url: the gateway's pid, for CPU time and peak RSS.
    #[arg(long)]
    sluice_pid: Option<u32>,
    /// Leave out nginx (by default it runs when `/usr/sbin/nginx` or an nginx on PATH exists).
    #[arg(long)]
    no_nginx: bool,
    /// The nginx binary [default: /usr/sbin/nginx, else PATH].
    #[arg(long)]
    nginx_bin: Option<PathBuf>,
    /// Seconds of the tail run (non-stream, 1 connection, through sluice) [default: 60, or the
    /// scenario length with --quick]; 0 leaves it out.
    #[arg(long)]
    tail_seconds: Option<f64>,
    /// Print each call of the tail run slower than this many ms, with when it started
    /// (`CLOCK_MONOTONIC`), to stderr: to match against `perf sched record -k CLOCK_MONOTONIC`.
    #[arg(long)]
    slow_ms: Option<f64>,
    /// The open loop's rate as a share of sluice's closed-loop req/s at 32 connections; 0 leaves
    /// it out.
    #[arg(long, default_value_t = 0.7)]
    open_share: f64,
    /// Workers (connections) of the open loop: the most calls it has in flight.
    #[arg(long, default_value_t = 200)]
    open_workers: usize,
    /// Leave out the CPU profile under load.
    #[arg(long)]
    no_profile: bool,
    /// Only the stream rows through sluice: native passthrough and Anthropic in → OpenAI out
    /// (no non-stream rows, open loop, tail or profile): the conversion's cost alone.
    #[arg(long)]
    formats_only: bool,
}

fn main() -> ExitCode {
    match bench(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sluice-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: Args) -> anyhow::Result<()> {
    let seconds = args.duration.unwrap_or(if args.quick { 2.0 } else { 10.0 });
    if !(seconds > 0.0 && seconds <= 600.0) {
        bail!("--duration must be more than 0 and at most 600 seconds");
    }
    let background = procs::machine_busy_percent(Duration::from_millis(500));
    if let Some(busy) = background.filter(|&b| b > report::BUSY_PERCENT) {
        eprintln!("warning: other processes use {busy:.0}% of a CPU; the results will be noisy");
    }
    let pinned = !args.no_pin && pin();
    // One thread: the load generator shares its CPU with the mock, so more threads would only
    // compete with each other.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run(&args, seconds, pinned) => result.map(|mut r| { r.background_cpu_percent = background; r }),
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // The child processes were stopped when `run` returned (or was dropped).
    let report = outcome?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the results")?
        );
    } else {
        print!("{}", report.text());
    }
    if args.no_write || args.direct_only || args.sluice_url.is_some() {
        eprintln!("not writing {}", args.doc.display());
    } else {
        report::write_block(&args.doc, &report.markdown())?;
        eprintln!("wrote the results into {}", args.doc.display());
    }
    // A missed target fails the run (and `make bench`), after the figures are out.
    let missed = report.missed();
    if !missed.is_empty() {
        let names: Vec<&str> = missed.iter().map(|c| c.target.as_str()).collect();
        bail!("{} target(s) missed: {}", missed.len(), names.join("; "));
    }
    Ok(())
}

/// Pin this process to LOAD_CPU; false (with a warning) when that is not possible.
fn pin() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("warning: fewer than 2 CPUs available; running unpinned");
        return false;
    }
    if !procs::have_taskset() {
        eprintln!("warning: taskset not found (util-linux); running unpinned");
        return false;
    }
    match procs::pin_self(LOAD_CPU) {
        Ok(()) => true,
        Err(err) => {
            eprintln!("warning: {err:#}; running unpinned");
            false
        }
    }
}

/// The binary `name`: next to this executable, else under target/release.
fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release").join(name))
}

/// `http://host:port[/…]` → the first address it resolves to.
fn url_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url}: only http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .to_socket_addrs()
        .with_context(|| format!("{url}: cannot resolve {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{url}: {authority} resolves to no address"))
}

/// The started (or given) servers; dropping it stops what was started.
struct Servers {
    mock: SocketAddr,
    sluice: Option<SluiceInfo>,
    nginx: Option<nginx::Nginx>,
    mock_proc: Option<Proc>,
    _data_dir: Option<TempDir>,
}

struct SluiceInfo {
    addr: SocketAddr,
    key: String,
    /// Root's token, when the gateway was started (and set up) here.
    admin: Option<String>,
    pid: Option<u32>,
    startup_ms: Option<f64>,
    proc: Option<Proc>,
}

async fn start_servers(args: &Args, pinned: bool) -> anyhow::Result<Servers> {
    let cpu = |c| pinned.then_some(c);
    let (mock, mock_proc) = match &args.mock_url {
        Some(url) => (url_addr(url)?, None),
        None => {
            let bin = args
                .mock_bin
                .clone()
                .unwrap_or_else(|| sibling_binary("sluice-mock"));
            if !bin.exists() {
                bail!(
                    "{} not found; build it first (`cargo build --release --bin sluice-mock`) or pass --mock-bin",
                    bin.display()
                );
            }
            let mut p = Proc::spawn(
                "sluice-mock",
                &bin,
                &["--listen".into(), "127.0.0.1:0".into()],
                cpu(LOAD_CPU),
                &[],
            )?;
            let addr = p.wait_for_addr(Duration::from_secs(10))?;
            (addr, Some(p))
        }
    };
    if args.direct_only {
        return Ok(Servers {
            mock,
            sluice: None,
            nginx: None,
            mock_proc,
            _data_dir: None,
        });
    }
    let nginx = match (args.no_nginx, args.nginx_bin.clone().or_else(nginx::find)) {
        (true, _) => None,
        (false, Some(bin)) => Some(nginx::start(&bin, mock, cpu(SLUICE_CPU))?),
        (false, None) => {
            eprintln!(
                "warning: nginx not found (apt-get install nginx-light); the nginx row is left out"
            );
            None
        }
    };
    if let Some(url) = &args.sluice_url {
        let key = args
            .key
            .clone()
            .ok_or_else(|| anyhow!("--sluice-url needs --key"))?;
        let sluice = SluiceInfo {
            addr: url_addr(url)?,
            key,
            admin: None,
            pid: args.sluice_pid,
            startup_ms: None,
            proc: None,
        };
        return Ok(Servers {
            mock,
            sluice: Some(sluice),
            nginx,
            mock_proc,
            _data_dir: None,
        });
    }
    let data_dir = TempDir::new("sluice-bench")?;
    let bin = args
        .sluice_bin
        .clone()
        .unwrap_or_else(|| sibling_binary("sluice"));
    let serve_args = [
        "serve".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.path().display().to_string(),
    ];
    let env = [("SLUICE_ROOT_PASSWORD", client::ROOT_PASSWORD)];
    if !bin.exists() {
        bail!(
            "{} not found; build it first (`cargo build --release --bin sluice`) or pass --sluice-bin",
            bin.display()
        );
    }
    let mut p = Proc::spawn("sluice", &bin, &serve_args, cpu(SLUICE_CPU), &env)?;
    let addr = p.wait_for_addr(Duration::from_secs(10))?;
    let startup_ms = wait_for_status(&mut p, addr).await?;
    let gateway = client::set_up_gateway(addr, mock).await.map_err(|err| {
        anyhow!(
            "setting up sluice through its admin API failed: {err:#}{}",
            p.tail_text()
        )
    })?;
    let sluice = SluiceInfo {
        addr,
        key: gateway.key,
        admin: Some(gateway.admin),
        pid: Some(p.pid()),
        startup_ms: Some(startup_ms),
        proc: Some(p),
    };
    Ok(Servers {
        mock,
        sluice: Some(sluice),
        nginx,
        mock_proc,
        _data_dir: Some(data_dir),
    })
}

/// Poll `GET /api/status` every millisecond until it answers 200; the time since the spawn, in ms.
async fn wait_for_status(p: &mut Proc, addr: SocketAddr) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Some(last) = client::status_once(addr).await else {
            return Ok(p.spawned_at.elapsed().as_secs_f64() * 1e3);
        };
        p.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "GET /api/status did not answer 200 within 10 s (last: {last}){}",
                p.tail_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn request_body(stream: bool) -> serde_json::Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 16,
    });
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn header(value: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(value).context("the API key is not a valid header value")
}

async fn run(args: &Args, seconds: f64, pinned: bool) -> anyhow::Result<Report> {
    let mut servers = start_servers(args, pinned).await?;
    let duration = Duration::from_secs_f64(seconds);
    let warmup = (duration / 5).min(Duration::from_secs(1));
    let target = |addr, auth: &str| -> anyhow::Result<Arc<load::Target>> {
        Ok(Arc::new(load::Target {
            addr,
            path: "/v1/chat/completions".into(),
            authorization: header(auth)?,
        }))
    };
    let sluice = match &servers.sluice {
        Some(s) => {
            client::wait_until_relaying(s.addr, &s.key, &request_body(false)).await?;
            Some((target(s.addr, &format!("Bearer {}", s.key))?, s.pid))
        }
        None => None,
    };
    // The load side: this process and the mock (if started here).
    let mut load_pids = vec![std::process::id()];
    load_pids.extend(servers.mock_proc.as_ref().map(Proc::pid));
    let t = runs::Targets {
        direct: target(servers.mock, "Bearer sk-mock")?,
        nginx: match &servers.nginx {
            Some(n) => Some((target(n.addr, "Bearer sk-mock")?, n.proc.pid())),
            None => None,
        },
        sluice,
        load_pids,
        ticks: procs::clock_ticks(),
    };
    let pid = servers.sluice.as_ref().and_then(|s| s.pid);
    let mut scenarios = Vec::new();
    let modes: &[bool] = if args.formats_only {
        &[true]
    } else {
        &[false, true]
    };
    for &stream in modes {
        let body = Bytes::from(request_body(stream).to_string());
        for &connections in &args.connections {
            let shape = runs::Shape::Closed(load::Spec {
                connections,
                stream,
                warmup,
                duration,
                slow: None,
            });
            let mode = report::mode(stream);
            eprintln!("{mode}, {connections} connections: direct…");
            let direct = runs::measure(&t, &t.direct, None, &body, &shape).await;
            let nginx = match &t.nginx {
                Some((target, npid)) => {
                    eprintln!("{mode}, {connections} connections: through nginx…");
                    Some(runs::measure(&t, target, Some(*npid), &body, &shape).await)
                }
                None => None,
            };
            let through = match &t.sluice {
                Some((target, spid)) => {
                    check_alive(&mut servers)?;
                    eprintln!("{mode}, {connections} connections: through sluice…");
                    Some(runs::measure(&t, target, *spid, &body, &shape).await)
                }
                None => None,
            };
            let added =
                |f: fn(&load::Stats) -> f64| Some(f(&through.as_ref()?.stats) - f(&direct.stats));
            scenarios.push(Scenario {
                stream,
                anthropic_in: false,
                connections,
                added_p50_ms: added(|s| s.p50_ms),
                added_p99_ms: added(|s| s.p99_ms),
                sluice_peak_rss_mib: pid.and_then(procs::peak_rss_kib).map(|k| k as f64 / 1024.0),
                direct: Some(direct),
                nginx,
                sluice: through,
            });
        }
    }
    if let Some(key) = servers.sluice.as_ref().map(|s| s.key.clone()) {
        check_alive(&mut servers)?;
        let auth = header(&format!("Bearer {key}"))?;
        let rows = formats::anthropic_rows(&t, &auth, &args.connections, warmup, duration).await;
        scenarios.extend(rows);
    }
    let open_loop = if args.formats_only {
        Vec::new()
    } else {
        open_loop_runs(args, &t, &scenarios, warmup, duration).await
    };
    let tail_secs = if args.formats_only {
        0.0
    } else {
        args.tail_seconds
            .unwrap_or(if args.quick { seconds } else { 60.0 })
    };
    let tail = match &t.sluice {
        Some((target, spid)) if tail_secs > 0.0 => {
            check_alive(&mut servers)?;
            eprintln!("tail: non-stream, 1 connection, {tail_secs:.0} s through sluice…");
            let shape = runs::Shape::Closed(load::Spec {
                connections: 1,
                stream: false,
                warmup,
                duration: Duration::from_secs_f64(tail_secs),
                slow: args.slow_ms.map(|ms| Duration::from_secs_f64(ms / 1e3)),
            });
            let body = Bytes::from(request_body(false).to_string());
            let admin = servers
                .sluice
                .as_ref()
                .and_then(|s| Some((s.addr, s.admin.clone()?)));
            let stats = async || match &admin {
                Some((addr, token)) => client::admin_get(*addr, token, "/api/stats").await.ok(),
                None => None,
            };
            let before = stats().await;
            let sluice = runs::measure(&t, target, *spid, &body, &shape).await;
            let after = stats().await;
            Some(report::Tail {
                seconds: tail_secs,
                sluice,
                folds: before
                    .as_ref()
                    .zip(after.as_ref())
                    .and_then(|(b, a)| report::Folds::between(b, a)),
                wal_turns: before
                    .as_ref()
                    .zip(after.as_ref())
                    .and_then(|(b, a)| report::Folds::wal_turns_between(b, a)),
                direct_p999_ms: scenarios
                    .iter()
                    .find(|s| !s.stream && s.connections == 1)
                    .and_then(|s| Some(s.direct.as_ref()?.stats.p999_ms)),
            })
        }
        _ => None,
    };
    let profile = match servers
        .sluice
        .as_ref()
        .and_then(|s| Some((s.addr, s.admin.clone()?)))
    {
        Some((addr, admin)) if !args.no_profile && !args.formats_only => {
            check_alive(&mut servers)?;
            let secs = seconds.floor().max(1.0) as u64;
            eprintln!("a {secs} s CPU profile under load (non-stream, 32 connections)…");
            let shape = runs::Shape::Closed(load::Spec {
                connections: 32,
                stream: false,
                warmup,
                duration,
                slow: None,
            });
            let body = Bytes::from(request_body(false).to_string());
            runs::profile_under_load(&t, addr, &admin, &body, &shape, secs).await
        }
        _ => None,
    };
    let accounting = match servers
        .sluice
        .as_ref()
        .and_then(|s| Some((s.addr, s.admin.as_deref()?)))
    {
        Some((addr, admin)) => {
            // Calls answered through sluice: the one of wait_until_relaying, then every run's.
            let mut through: Vec<&runs::Run> =
                scenarios.iter().filter_map(|s| s.sluice.as_ref()).collect();
            through.extend(open_loop.iter().filter_map(|o| o.sluice.as_ref()));
            through.extend(tail.as_ref().map(|t| &t.sluice));
            through.extend(profile.as_ref().map(|p| &p.run));
            let answered = 1 + through.iter().map(|r| r.stats.answered).sum::<u64>();
            let failed = through.iter().map(|r| r.stats.failed).sum::<u64>();
            eprintln!("checking that every answered call was charged and logged…");
            Some(accounting::check(addr, admin, answered, failed).await?)
        }
        None => None,
    };
    let mut report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: git_commit(),
        machine: machine(),
        seconds_per_scenario: seconds,
        note: args.note.clone(),
        pinned,
        background_cpu_percent: None,
        startup_ms: servers.sluice.as_ref().and_then(|s| s.startup_ms),
        peak_rss_mib: pid.and_then(procs::peak_rss_kib).map(|k| k as f64 / 1024.0),
        scenarios,
        open_loop,
        tail,
        profile,
        accounting,
        targets: Vec::new(),
    };
    report.check_targets();
    check_alive(&mut servers).context("a server died during the benchmark")?;
    Ok(report)
}

/// Fails when sluice or nginx (if started here) has exited.
fn check_alive(servers: &mut Servers) -> anyhow::Result<()> {
    if let Some(p) = servers.sluice.as_mut().and_then(|s| s.proc.as_mut()) {
        p.check_alive()?;
    }
    if let Some(n) = servers.nginx.as_mut() {
        n.proc.check_alive()?;
    }
    Ok(())
}

/// The open loop, per mode, at `--open-share` of sluice's closed-loop req/s at 32 connections
/// (the most connections run when 32 was not), against each server at the same rate.
async fn open_loop_runs(
    args: &Args,
    t: &runs::Targets,
    scenarios: &[Scenario],
    warmup: Duration,
    duration: Duration,
) -> Vec<report::OpenScenario> {
    let mut out = Vec::new();
    if args.open_share <= 0.0 {
        return out;
    }
    for stream in [false, true] {
        let capacity = scenarios
            .iter()
            .filter(|s| s.stream == stream && !s.anthropic_in)
            .filter_map(|s| Some((s.connections, s.sluice.as_ref()?.stats.rps)))
            .min_by_key(|(c, _)| c.abs_diff(32))
            .map(|(_, rps)| rps);
        let Some(capacity) = capacity.filter(|&c| c > 0.0) else {
            continue;
        };
        let rate = capacity * args.open_share;
        let shape = runs::Shape::Open(open_loop::Spec {
            rate,
            stream,
            warmup,
            duration,
            workers: args.open_workers,
        });
        let body = Bytes::from(request_body(stream).to_string());
        let mode = report::mode(stream);
        eprintln!("{mode}, open loop at {rate:.0}/s: direct…");
        let direct = runs::measure(t, &t.direct, None, &body, &shape).await;
        let mut nginx = None;
        if let Some((target, npid)) = &t.nginx {
            eprintln!("{mode}, open loop at {rate:.0}/s: through nginx…");
            nginx = Some(runs::measure(t, target, Some(*npid), &body, &shape).await);
        }
        let mut sluice = None;
        let mut sluice_peak_rss_mib = None;
        if let Some((target, spid)) = &t.sluice {
            eprintln!("{mode}, open loop at {rate:.0}/s: through sluice…");
            sluice = Some(runs::measure(t, target, *spid, &body, &shape).await);
            sluice_peak_rss_mib = spid
                .and_then(procs::peak_rss_kib)
                .map(|k| k as f64 / 1024.0);
        }
        out.push(report::OpenScenario {
            stream,
            rate,
            share: args.open_share,
            direct: Some(direct),
            nginx,
            sluice,
            sluice_peak_rss_mib,
        });
    }
    out
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// "2 × <CPU model>".
fn machine() -> String {
    // Not available_parallelism(): this process is pinned to one CPU by now.
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim);
    format!("{cpus} × {model}")
}
