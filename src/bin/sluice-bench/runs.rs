//! The runs that make up a benchmark, in order: closed-loop scenarios (direct, nginx, sluice) per
//! mode and connection count, the open loop at a fixed share of the measured capacity, the tail
//! run at one connection, and the profile under load. Each run is measured on its own server
//! process (CPU, bytes written) and on the load side (CPU).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::Serialize;
use serde_json::json;

use crate::load::{self, Stats, Target, Usage};
use crate::open_loop;
use crate::procs;

/// Where each run sends its load, and the processes whose use is measured.
pub struct Targets {
    pub direct: Arc<Target>,
    pub nginx: Option<(Arc<Target>, u32)>,
    pub sluice: Option<(Arc<Target>, Option<u32>)>,
    /// This process and the mock (when started here): the load side.
    pub load_pids: Vec<u32>,
    pub ticks: u64,
}

/// One server under one load.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub stats: Stats,
    /// The server's CPU time per request counted in the window, in µs.
    pub cpu_us_per_request: Option<f64>,
    /// Bytes the server caused to be written to storage per request counted in the window.
    pub written_per_request: Option<f64>,
    /// CPU used by the load side (this process and the mock) in % of one CPU: near 100 means the
    /// load side, not the server, was the limit.
    pub load_cpu_percent: Option<f64>,
}

/// How a run drives its load.
pub enum Shape {
    Closed(load::Spec),
    Open(open_loop::Spec),
}

impl Shape {
    fn duration(&self) -> Duration {
        match self {
            Shape::Closed(s) => s.duration,
            Shape::Open(s) => s.duration,
        }
    }
}

/// Drive `target` with `shape`, measuring `server` (a pid) and the load side.
pub async fn measure(
    t: &Targets,
    target: &Arc<Target>,
    server: Option<u32>,
    body: &Bytes,
    shape: &Shape,
) -> Run {
    let mut observe = t.load_pids.clone();
    observe.extend(server);
    let (stats, usage) = match shape {
        Shape::Closed(spec) => {
            load::run(target.clone(), body.clone(), spec, &observe, t.ticks).await
        }
        Shape::Open(spec) => {
            open_loop::run(target.clone(), body.clone(), spec, &observe, t.ticks).await
        }
    };
    let load_side = t.load_pids.len();
    let server_use: Option<Usage> = server.and_then(|_| usage.get(load_side).copied());
    let per_request = |total: f64| (stats.requests > 0).then(|| total / stats.requests as f64);
    let secs = shape.duration().as_secs_f64();
    Run {
        cpu_us_per_request: server_use
            .and_then(|u| u.cpu)
            .and_then(|c| per_request(c.as_secs_f64() * 1e6)),
        written_per_request: server_use
            .and_then(|u| u.written)
            .and_then(|w| per_request(w as f64)),
        load_cpu_percent: usage
            .get(..load_side)
            .and_then(|side| side.iter().map(|u| u.cpu).sum::<Option<Duration>>())
            .map(|busy| busy.as_secs_f64() * 100.0 / secs),
        stats,
    }
}

/// The gateway's memory around a CPU profile recorded under load.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileMemory {
    pub seconds: u64,
    /// The load while the profile recorded (non-stream, 32 connections).
    pub run: Run,
    /// Whether `POST /api/profiles` answered 201.
    pub recorded: bool,
    pub rss_before_mib: f64,
    /// The most `VmRSS` seen while recording (sampled every 20 ms).
    pub rss_max_mib: f64,
    /// `VmRSS` once the profile's answer came and the load stopped.
    pub rss_after_mib: f64,
}

/// Record a `seconds` long profile through the admin API while `shape` loads the gateway, and
/// watch the gateway's resident memory meanwhile.
pub async fn profile_under_load(
    t: &Targets,
    sluice: SocketAddr,
    admin: &str,
    body: &Bytes,
    shape: &Shape,
    seconds: u64,
) -> Option<ProfileMemory> {
    let (target, pid) = t.sluice.as_ref()?;
    let pid = (*pid)?;
    let mib = |k: u64| k as f64 / 1024.0;
    let before = mib(procs::rss_kib(pid)?);
    let admin = admin.to_owned();
    let profile = tokio::spawn(async move {
        let reply = crate::client::call(
            sluice,
            Method::POST,
            "/api/profiles",
            &[("authorization", &admin)],
            Some(&json!({ "seconds": seconds })),
            Duration::from_secs(seconds + 30),
        )
        .await;
        match reply {
            Ok(r) if r.status.as_u16() == 201 => true,
            Ok(r) => {
                eprintln!(
                    "POST /api/profiles answered {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
                false
            }
            Err(err) => {
                eprintln!("POST /api/profiles: {err:#}");
                false
            }
        }
    });
    let max = Arc::new(AtomicU64::new(0));
    let seen = max.clone();
    let watch = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            match procs::rss_kib(pid) {
                Some(k) => seen.fetch_max(k, Ordering::Relaxed),
                None => break,
            };
        }
    });
    let run = measure(t, target, Some(pid), body, shape).await;
    let recorded = profile.await.unwrap_or(false);
    watch.abort();
    let after = procs::rss_kib(pid)?;
    let max = max.load(Ordering::Relaxed).max(after);
    Some(ProfileMemory {
        seconds,
        run,
        recorded,
        rss_before_mib: before,
        rss_max_mib: mib(max),
        rss_after_mib: mib(after),
    })
}
