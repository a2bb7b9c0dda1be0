//! `sluice-logbench`: how fast log search and totals answer over a big log table
//! (`make bench-logs`).
//!
//! Fills a fresh database with N synthetic rows (`sluice gen-logs`, default 1,000,000 over 30
//! days), starts `sluice serve` on it (pinned to CPU 0 when taskset exists), signs in as root and
//! times each query over HTTP, one at a time, R times. Prints p50/p95/max per query and writes
//! them into docs/performance.md between `<!-- logbench:begin -->` and `<!-- logbench:end -->`.

#[path = "sluice-bench/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "sluice-bench/procs.rs"]
#[allow(dead_code)]
mod procs;

use anyhow::{Context as _, bail};
use clap::Parser;
use http::Method;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::procs::{Proc, TempDir};

#[derive(Parser)]
#[command(about = "Time log search and totals over N synthetic log rows (see docs/performance.md)")]
struct Args {
    /// Log rows to generate.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Times each query is run.
    #[arg(long, default_value_t = 40)]
    repeat: usize,
    /// Do not update docs/performance.md.
    #[arg(long)]
    no_write: bool,
    #[arg(long, default_value = "docs/performance.md")]
    doc: PathBuf,
    /// Reuse this data directory (generate only if it holds no database yet).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release").join(name))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sluice = sibling("sluice");
    if !sluice.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            sluice.display()
        );
    }
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = TempDir::new("sluice-logbench")?;
            temp.path().to_path_buf()
        }
    };
    let env = [("SLUICE_ROOT_PASSWORD", client::ROOT_PASSWORD)];
    if !dir.join("sluice.db").exists() {
        let started = Instant::now();
        let status = Command::new(&sluice)
            .args(["gen-logs", &args.rows.to_string(), "--data-dir"])
            .arg(&dir)
            .envs(env)
            .status()
            .context("running sluice gen-logs")?;
        if !status.success() {
            bail!("sluice gen-logs failed ({status})");
        }
        eprintln!(
            "generated {} rows in {:.1} s",
            args.rows,
            started.elapsed().as_secs_f64()
        );
    }
    let db_bytes = std::fs::metadata(dir.join("sluice.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let serve = [
        "serve".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        dir.display().to_string(),
    ];
    let cpu = procs::have_taskset().then_some(0);
    let mut p = Proc::spawn("sluice", &sluice, &serve, cpu, &env)?;
    let pid = p.pid();
    let addr = p.wait_for_addr(Duration::from_secs(30))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(async {
        let login = client::call(
            addr,
            Method::POST,
            "/api/auth/login",
            &[],
            Some(&json!({"username": "root", "password": client::ROOT_PASSWORD})),
            Duration::from_secs(10),
        )
        .await?;
        let token = client::call(
            addr,
            Method::POST,
            "/api/me/access-token",
            &[
                (
                    "cookie",
                    &login
                        .headers
                        .get_all("set-cookie")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .filter_map(|v| v.split(';').next())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                (
                    "x-csrf-token",
                    login.json()["csrf_token"].as_str().unwrap_or(""),
                ),
                ("origin", &format!("http://{addr}")),
            ],
            None,
            Duration::from_secs(10),
        )
        .await?;
        let token = token.json()["token"]
            .as_str()
            .context("no access token in the answer")?
            .to_string();
        let auth = format!("Bearer {token}");
        // A synthetic user's name (gen-logs tags them per run).
        let users = client::call(
            addr,
            Method::GET,
            "/api/users",
            &[("authorization", &auth)],
            None,
            Duration::from_secs(10),
        )
        .await?;
        let username = users
            .json()
            .as_array()
            .and_then(|a| {
                a.iter()
                    .filter_map(|u| u["username"].as_str())
                    .find(|n| n.ends_with("-user-7"))
                    .map(str::to_string)
            })
            .context("no synthetic user gen-…-user-7")?;
        let now = chrono::Utc::now().timestamp();
        let day = now - 86_400;
        let queries: Vec<(&str, String)> = vec![
            ("search, no filter", "/api/log".into()),
            ("search, type=error", "/api/log?type=error".into()),
            ("search, model", "/api/log?model_name=o3-mini".into()),
            ("search, username", format!("/api/log?username={username}")),
            ("search, key name", "/api/log?token_name=key-1".into()),
            ("search, channel", "/api/log?channel=5".into()),
            ("search, group", "/api/log?group=vip".into()),
            ("search, status=429", "/api/log?status=429".into()),
            (
                "search, last 24 h",
                format!("/api/log?start_timestamp={day}"),
            ),
            (
                "search, page 50 by cursor",
                "/api/log?type=consume&page_size=100".into(),
            ),
            (
                "search, sort by quota, last 24 h",
                format!("/api/log?sort=quota&start_timestamp={day}"),
            ),
            ("stat, all time", "/api/log/stat".into()),
            ("stat, type=error", "/api/log/stat?type=error".into()),
            ("stat, model", "/api/log/stat?model_name=o3-mini".into()),
            ("stat, user", "/api/log/stat?user_id=9".into()),
            ("stat, channel", "/api/log/stat?channel=5".into()),
            (
                "stat, unaligned 7 days",
                format!(
                    "/api/log/stat?start_timestamp={}&end_timestamp={}",
                    now - 7 * 86_400 - 1234,
                    now - 4321
                ),
            ),
            (
                "usage, by day and model",
                format!("/api/usage?bucket=day&by=model&start={}", now - 30 * 86_400),
            ),
            (
                "usage, by day and model, tz Asia/Shanghai",
                format!(
                    "/api/usage?bucket=day&by=model&start={}&tz=Asia/Shanghai",
                    now - 30 * 86_400 - 1234
                ),
            ),
            (
                "usage, by hour and user, last 24 h",
                format!("/api/usage?bucket=hour&by=user&start={day}"),
            ),
            ("dashboard, 24 h", "/api/dashboard".into()),
            (
                "dashboard, 30 d, tz Europe/Berlin",
                "/api/dashboard?range=30d&tz=Europe/Berlin".into(),
            ),
            (
                "users, search and page",
                "/api/users?q=user&sort=used_quota".into(),
            ),
            (
                "keys, sorted page",
                "/api/keys?sort=used_quota&page_size=50".into(),
            ),
            ("models and prices", "/api/models".into()),
            ("channel stats, 24 h", "/api/channels/stats".into()),
        ];
        let mut out = Vec::new();
        for (name, path) in queries {
            let mut times = Vec::with_capacity(args.repeat);
            let mut path = path;
            if name.starts_with("search, page 50") {
                // Walk 49 pages to find the cursor of page 50; time fetching page 50.
                for _ in 0..49 {
                    let r = client::call(
                        addr,
                        Method::GET,
                        &path,
                        &[("authorization", &auth)],
                        None,
                        Duration::from_secs(30),
                    )
                    .await?;
                    let c = r.json()["next_cursor"].as_str().unwrap_or("").to_string();
                    path = format!("/api/log?type=consume&page_size=100&cursor={c}");
                }
            }
            // What the query returned, so an empty answer cannot pass for a fast one.
            let mut answer = String::new();
            for _ in 0..args.repeat {
                let t = Instant::now();
                let r = client::call(
                    addr,
                    Method::GET,
                    &path,
                    &[("authorization", &auth)],
                    None,
                    Duration::from_secs(30),
                )
                .await?;
                times.push(t.elapsed());
                if !r.status.is_success() {
                    bail!("{path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
                }
                let v = r.json();
                answer = if let Some(total) = v["total"].as_i64() {
                    format!(
                        "{} of {total} rows",
                        v["items"].as_array().map_or(0, Vec::len)
                    )
                } else if let Some(items) = v["items"].as_array() {
                    format!("{} rows", items.len())
                } else if let Some(series) = v["series"].as_array() {
                    format!(
                        "{} points, {} requests",
                        series.len(),
                        v["totals"]["requests"]
                    )
                } else if let Some(points) = v["points"].as_array() {
                    format!("{} points", points.len())
                } else {
                    format!("{} requests", v["requests"])
                };
            }
            times.sort();
            let pick = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
            out.push((name, answer, pick(0.5), pick(0.95), times[times.len() - 1]));
        }
        // The CSV export of every row: streamed, so the server's peak memory should barely move.
        let hwm = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                })
                .unwrap_or(0)
        };
        let before = hwm();
        let mut times = Vec::new();
        let mut answer = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let r = client::call(
                addr,
                Method::GET,
                "/api/log/export",
                &[("authorization", &auth)],
                None,
                Duration::from_secs(600),
            )
            .await?;
            times.push(t.elapsed());
            if !r.status.is_success() {
                bail!("export: {}", r.status);
            }
            let lines = r.body.iter().filter(|b| **b == b'\n').count();
            answer = format!(
                "{} rows, {:.0} MiB; peak RSS {} → {} MiB",
                lines.saturating_sub(1),
                r.body.len() as f64 / 1048576.0,
                before / 1024,
                hwm() / 1024
            );
        }
        times.sort();
        out.push((
            "CSV export, every row",
            answer,
            times[1],
            times[2],
            times[2],
        ));
        anyhow::Ok(out)
    })?;
    drop(p);
    let mut table = format!(
        "{} rows over 30 days, database {:.0} MiB, {} runs per query, sluice pinned to one CPU, over loopback HTTP (release build).\n\n| query | answer | p50 ms | p95 ms | max ms |\n|---|---|---:|---:|---:|\n",
        args.rows,
        db_bytes as f64 / 1048576.0,
        args.repeat
    );
    for (name, answer, p50, p95, max) in &results {
        table.push_str(&format!(
            "| {name} | {answer} | {:.1} | {:.1} | {:.1} |\n",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        ));
    }
    println!("{table}");
    let worst = results.iter().map(|r| r.3).max().unwrap_or_default();
    println!("slowest p95: {:.1} ms", worst.as_secs_f64() * 1e3);
    if !args.no_write {
        let doc = std::fs::read_to_string(&args.doc).unwrap_or_default();
        let (begin, end) = ("<!-- logbench:begin -->", "<!-- logbench:end -->");
        let block = format!("{begin}\n{table}{end}");
        let new = match (doc.find(begin), doc.find(end)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{}{}", &doc[..b], block, &doc[e + end.len()..])
            }
            _ => format!("{doc}\n## Log queries (`make bench-logs`)\n\n{block}\n"),
        };
        std::fs::write(&args.doc, new)?;
    }
    Ok(())
}
