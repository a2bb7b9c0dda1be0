//! Automatic CPU profiling.
//!
//! A monitor task samples **this process's** CPU use every `interval` (CPU-time delta over wall
//! time, read with sysinfo) and compares it with `threshold_percent` of the cores this process
//! may run on (sched affinity / cgroup quota, as `std::thread::available_parallelism` reports).
//! At or above the threshold it records a CPU profile for `duration` with `pprof`, writes
//! `cpu-YYYYMMDD-HHMMSS.pb` (pprof protobuf, uncompressed) and `cpu-YYYYMMDD-HHMMSS.svg` (a flame
//! graph) plus a small `.json` sidecar into `dir`, keeps the newest `keep` profiles, then rests
//! for `cooldown`. Admins can also record one on demand ([`Profiler::profile_now`]).
//!
//! It watches the process's CPU, not the machine's; a failed sample is logged and skipped,
//! never fatal; old profiles are pruned; there is no debug port — the files are served
//! by the admin API. Timestamps in file names are UTC.
//!
//! `pprof` is process-global (one SIGPROF timer), so only one profile is recorded at a time in the
//! whole process; a second request gets [`ProfileError::Busy`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

mod config;
mod files;
mod record;
mod sampler;
mod symbols;
#[cfg(test)]
mod tests;

pub use config::*;
use files::*;
use record::*;
use sampler::*;

/// What went wrong with a profile request.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A profile is already being recorded in this process.
    #[error("a CPU profile is already being recorded; try again when it finishes")]
    Busy,
    /// No profile file by that name.
    #[error("no such profile")]
    NotFound,
    /// A bad name, kind or duration.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Reading or writing profile files failed.
    #[error("profile file I/O: {0}")]
    Io(#[from] io::Error),
    /// The profiler itself failed (start, report, encoding).
    #[error("CPU profiler: {0}")]
    Pprof(String),
}

/// The two files of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// pprof protobuf (`.pb`), for `go tool pprof` and friends.
    Pb,
    /// Flame graph (`.svg`).
    Svg,
}

impl FileKind {
    /// The file extension, without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            FileKind::Pb => "pb",
            FileKind::Svg => "svg",
        }
    }

    /// The `Content-Type` to serve the file with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Pb => "application/octet-stream",
            FileKind::Svg => "image/svg+xml",
        }
    }

    /// Splits a file name such as `cpu-20261126-143318.svg` into the profile name and its kind.
    /// Refuses anything that is not exactly our pattern with `.pb` or `.svg`.
    pub fn split_file_name(file: &str) -> Result<(&str, FileKind), ProfileError> {
        let (name, ext) = file.rsplit_once('.').ok_or_else(|| {
            ProfileError::Invalid("expected cpu-YYYYMMDD-HHMMSS.pb or .svg".into())
        })?;
        let kind = match ext {
            "pb" => FileKind::Pb,
            "svg" => FileKind::Svg,
            _ => {
                return Err(ProfileError::Invalid(
                    "the extension must be .pb or .svg".into(),
                ));
            }
        };
        check_name(name)?;
        Ok((name, kind))
    }
}

/// What started a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The monitor saw CPU use at or above the threshold.
    Auto,
    /// An admin asked for it.
    Manual,
}

/// One profile on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileInfo {
    /// `cpu-YYYYMMDD-HHMMSS` (UTC start time); the files are `<name>.pb` and `<name>.svg`.
    pub name: String,
    /// Start time, Unix seconds.
    pub created: i64,
    /// Size of the `.pb` file.
    pub pb_bytes: u64,
    /// Size of the `.svg` file (0 if it is missing).
    pub svg_bytes: u64,
    /// `auto` or `manual` (read from the `.json` sidecar; `manual` if that is missing).
    pub trigger: Trigger,
}

/// The profiler's state, for the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilerStatus {
    /// The automatic monitor is configured on.
    pub enabled: bool,
    /// The monitor task is running.
    pub monitoring: bool,
    /// A profile is being recorded right now (by anyone in this process).
    pub running: bool,
    /// Cores this process may use (the base of the percentages).
    pub cores: usize,
    /// Trigger level, percent of `cores`.
    pub threshold_percent: f64,
    /// Last CPU sample, percent of `cores`.
    pub last_sample_percent: Option<f64>,
    /// When it was taken, Unix seconds.
    pub last_sample_at: Option<i64>,
    /// Name of the last profile written by this profiler.
    pub last_profile: Option<String>,
    /// When it started, Unix seconds.
    pub last_profile_at: Option<i64>,
    /// The last sampling or profiling failure, if the latest attempt failed.
    pub last_error: Option<String>,
}

/// Sidecar `<name>.json`, written before the `.pb`.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    trigger: Trigger,
    duration_ms: u64,
    frequency_hz: i32,
    samples: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu_percent: Option<f64>,
}

#[derive(Debug, Default)]
struct State {
    monitoring: bool,
    last_sample_percent: Option<f64>,
    last_sample_at: Option<i64>,
    last_profile: Option<String>,
    last_profile_at: Option<i64>,
    last_error: Option<String>,
}

struct Inner {
    /// Swapped whole when an admin changes the `profiler.*` options; read afresh each tick.
    config: arc_swap::ArcSwap<ProfilerConfig>,
    cores: usize,
    state: Mutex<State>,
    written: watch::Sender<Option<ProfileInfo>>,
}

/// The CPU profiler: cheap to clone (one `Arc` inside); also fine behind an `Arc`.
#[derive(Clone)]
pub struct Profiler {
    inner: Arc<Inner>,
}

/// pprof has one global profiler per process: this flag says it is in use.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Holds [`RECORDING`] until dropped.
struct RecordingGuard;

impl RecordingGuard {
    fn acquire() -> Result<Self, ProfileError> {
        RECORDING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| RecordingGuard)
            .map_err(|_| ProfileError::Busy)
    }
}

impl Drop for RecordingGuard {
    fn drop(&mut self) {
        RECORDING.store(false, Ordering::Release);
    }
}

impl Profiler {
    /// A profiler for `config` (validated here: `Invalid` carries the `validate` message).
    /// Creates no files; the directory is made on the first profile.
    pub fn new(config: ProfilerConfig) -> Result<Self, ProfileError> {
        config.validate().map_err(ProfileError::Invalid)?;
        let (written, _) = watch::channel(None);
        Ok(Self {
            inner: Arc::new(Inner {
                config: arc_swap::ArcSwap::from_pointee(config),
                cores: allowed_cores(),
                state: Mutex::new(State::default()),
                written,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ProfilerConfig> {
        self.inner.config.load_full()
    }

    /// Applies new settings (validated here); the monitor picks them up at its next tick.
    pub fn set_config(&self, config: ProfilerConfig) -> Result<(), ProfileError> {
        config.validate().map_err(ProfileError::Invalid)?;
        self.inner.config.store(Arc::new(config));
        Ok(())
    }

    /// Receives the info of every profile this profiler writes (automatic or on demand).
    pub fn subscribe(&self) -> watch::Receiver<Option<ProfileInfo>> {
        self.inner.written.subscribe()
    }

    /// Spawns the monitor on the current tokio runtime. It samples only while `enabled` (an
    /// option that can change at run time). It stops when `shutdown` becomes `true` or its
    /// sender is dropped; a profile in progress is then cut short and still written. Returns
    /// `None` (and logs) when already running or called outside a tokio runtime.
    pub fn start_monitor(
        self: &Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let handle = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(e) => {
                log::warn!("CPU profiler: monitor not started (no tokio runtime: {e})");
                return None;
            }
        };
        {
            let mut st = self.inner.state.lock();
            if st.monitoring {
                log::warn!("CPU profiler: monitor already running; not starting another");
                return None;
            }
            st.monitoring = true;
        }
        let me = Arc::clone(self);
        Some(handle.spawn(async move {
            me.monitor(shutdown).await;
            me.inner.state.lock().monitoring = false;
        }))
    }

    /// Records a profile of `duration` (1–600 s) now. `Busy` if one is already being recorded.
    pub async fn profile_now(&self, duration: Duration) -> Result<ProfileInfo, ProfileError> {
        self.record(duration, Trigger::Manual, None).await
    }

    /// The profiles on disk, newest first. An absent directory is an empty list.
    pub fn list(&self) -> Result<Vec<ProfileInfo>, ProfileError> {
        list_dir(&self.inner.config.load().dir)
    }

    /// The path of one file of a profile, after checking the name strictly
    /// (`cpu-YYYYMMDD-HHMMSS`, nothing else). `NotFound` unless it is a regular file.
    pub fn file_path(&self, name: &str, kind: FileKind) -> Result<PathBuf, ProfileError> {
        check_name(name)?;
        let path = self
            .inner
            .config
            .load()
            .dir
            .join(format!("{name}.{}", kind.ext()));
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => Ok(path),
            Ok(_) => Err(ProfileError::NotFound),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ProfileError::NotFound),
            Err(e) => Err(ProfileError::Io(e)),
        }
    }

    /// The profiler's state.
    pub fn status(&self) -> ProfilerStatus {
        let s = self.inner.state.lock();
        let cfg = self.inner.config.load();
        ProfilerStatus {
            enabled: cfg.enabled,
            monitoring: s.monitoring,
            running: RECORDING.load(Ordering::Acquire),
            cores: self.inner.cores,
            threshold_percent: cfg.threshold_percent,
            last_sample_percent: s.last_sample_percent,
            last_sample_at: s.last_sample_at,
            last_profile: s.last_profile.clone(),
            last_profile_at: s.last_profile_at,
            last_error: s.last_error.clone(),
        }
    }

    async fn monitor(&self, mut shutdown: watch::Receiver<bool>) {
        let cfg = self.inner.config.load_full();
        let cores = self.inner.cores;
        log::info!(
            "CPU profiler: sampling this process every {:?}; profiling for {:?} at {}% of {} core(s), into {}",
            cfg.interval,
            cfg.duration,
            cfg.threshold_percent,
            cores,
            cfg.dir.display()
        );
        if !cfg.enabled {
            log::info!("CPU profiler: automatic profiling is off (option profiler.enabled)");
        }
        let mut sampler: Option<CpuSampler> = None;
        loop {
            let enabled = self.inner.config.load().enabled;
            if !enabled {
                // Off (an option): keep ticking so turning it on takes effect without a restart.
                sampler = None;
            } else if sampler.is_none() {
                match CpuSampler::new() {
                    Ok(s) => sampler = Some(s),
                    Err(e) => self.sample_failed(&e),
                }
            }
            let interval = self.inner.config.load().interval;
            if !sleep_or_shutdown(interval, &mut shutdown).await {
                break;
            }
            let cfg = self.inner.config.load_full();
            if !cfg.enabled {
                continue;
            }
            let Some(s) = sampler.as_mut() else { continue };
            let one_core_percent = match s.sample() {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    self.sample_failed(&e);
                    sampler = None;
                    continue;
                }
            };
            let percent = one_core_percent / cores as f64;
            {
                let mut st = self.inner.state.lock();
                st.last_sample_percent = Some(percent);
                st.last_sample_at = Some(chrono::Utc::now().timestamp());
            }
            log::debug!("CPU profiler: process CPU {percent:.1}% of {cores} core(s)");
            if percent < cfg.threshold_percent {
                continue;
            }
            log::info!(
                "CPU profiler: process CPU {percent:.1}% of {cores} core(s) ≥ {}%: recording {:?}",
                cfg.threshold_percent,
                cfg.duration
            );
            let outcome = tokio::select! {
                r = self.record(cfg.duration, Trigger::Auto, Some(percent)) => Some(r),
                () = shutdown_signalled(&mut shutdown) => None,
            };
            match outcome {
                None => break,
                Some(Ok(info)) => log::info!("CPU profiler: wrote {}", info.name),
                Some(Err(ProfileError::Busy)) => {
                    log::info!("CPU profiler: another profile is being recorded; skipped");
                }
                Some(Err(e)) => log::warn!("CPU profiler: automatic profile failed: {e}"),
            }
            if !sleep_or_shutdown(cfg.cooldown, &mut shutdown).await {
                break;
            }
            // Measure afresh after the cooldown.
            if let Some(s) = sampler.as_mut() {
                s.reset();
            }
        }
        log::info!("CPU profiler: monitor stopped");
    }

    fn sample_failed(&self, e: &str) {
        log::warn!("CPU profiler: cannot sample process CPU: {e}");
        self.inner.state.lock().last_error = Some(format!("sampling: {e}"));
    }

    async fn record(
        &self,
        duration: Duration,
        trigger: Trigger,
        cpu_percent: Option<f64>,
    ) -> Result<ProfileInfo, ProfileError> {
        check_duration(duration).map_err(ProfileError::Invalid)?;
        let busy = RecordingGuard::acquire()?;
        // Dropping `_stop` (this future cancelled) ends the recording early; it is still written.
        let (_stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("sluice-pprof".into())
            .spawn(move || {
                let cfg = inner.config.load_full();
                let job = Job {
                    dir: &cfg.dir,
                    keep: cfg.keep,
                    frequency_hz: cfg.frequency_hz,
                    duration,
                    trigger,
                    cpu_percent,
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    record_blocking(&job, &stop_rx)
                }))
                .unwrap_or_else(|_| {
                    Err(ProfileError::Pprof("the recording thread panicked".into()))
                });
                // The sample table, the report and the symbol tables are dropped by now: give
                // their pages back, or they stay in this thread's malloc arena (issue 15).
                pprof::release_memory();
                drop(busy);
                {
                    let mut st = inner.state.lock();
                    match &result {
                        Ok(info) => {
                            st.last_profile = Some(info.name.clone());
                            st.last_profile_at = Some(info.created);
                            st.last_error = None;
                        }
                        Err(e) => st.last_error = Some(format!("profile: {e}")),
                    }
                }
                if let Ok(info) = &result {
                    inner.written.send_replace(Some(info.clone()));
                }
                let _ = done_tx.send(result);
            })?;
        done_rx.await.map_err(|_| {
            ProfileError::Pprof("the recording thread ended without a result".into())
        })?
    }
}

/// Waits `d`; false if shutdown came first.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = shutdown_signalled(shutdown) => false,
    }
}

/// Resolves once the shutdown flag is true or its sender is gone.
async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
