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

/// Shortest sampling interval `validate` accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest sampling interval `validate` accepts.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Shortest profile.
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// Longest profile.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Longest cooldown.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most profiles `keep` may ask for.
pub const MAX_KEEP: usize = 10_000;
/// Highest sampling frequency accepted (the kernel here ticks at 250 Hz; more buys nothing).
pub const MAX_FREQUENCY_HZ: i32 = 1000;

/// Configuration of the CPU profiler.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilerConfig {
    /// Run the automatic monitor. On-demand profiles ([`Profiler::profile_now`]) work either way.
    pub enabled: bool,
    /// How often this process's CPU use is sampled (default 30 s).
    pub interval: Duration,
    /// Trigger level, in percent of the cores this process may use (default 80).
    /// 0 records a profile at every sample.
    pub threshold_percent: f64,
    /// Length of one profile (default 10 s).
    pub duration: Duration,
    /// Rest after an automatic profile before sampling again (default 5 min).
    pub cooldown: Duration,
    /// Profiles kept on disk, newest first (default 20); older ones are deleted.
    pub keep: usize,
    /// Stack samples per second of CPU time (default 99; 99–250 is sensible here).
    pub frequency_hz: i32,
    /// Where profiles are written (default `./data/pprof`).
    pub dir: PathBuf,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(30),
            threshold_percent: 80.0,
            duration: Duration::from_secs(10),
            cooldown: Duration::from_secs(300),
            keep: 20,
            frequency_hz: 99,
            dir: PathBuf::from("./data/pprof"),
        }
    }
}

impl ProfilerConfig {
    /// Checks every field; the message names the field, the value and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < MIN_INTERVAL || self.interval > MAX_INTERVAL {
            return Err(format!(
                "profiler interval is {:?}; set it between 100 ms and 24 h (default 30 s)",
                self.interval
            ));
        }
        if !self.threshold_percent.is_finite() || !(0.0..=100.0).contains(&self.threshold_percent) {
            return Err(format!(
                "profiler threshold_percent is {}; set it between 0 and 100 (percent of the cores \
                 this process may use; default 80)",
                self.threshold_percent
            ));
        }
        check_duration(self.duration)
            .map_err(|e| format!("profiler duration: {e} (default 10 s)"))?;
        if self.cooldown > MAX_COOLDOWN {
            return Err(format!(
                "profiler cooldown is {:?}; set it to at most 7 days (default 5 min)",
                self.cooldown
            ));
        }
        if self.keep == 0 || self.keep > MAX_KEEP {
            return Err(format!(
                "profiler keep is {}; set it between 1 and {MAX_KEEP} (default 20)",
                self.keep
            ));
        }
        if self.frequency_hz < 1 || self.frequency_hz > MAX_FREQUENCY_HZ {
            return Err(format!(
                "profiler frequency_hz is {}; set it between 1 and {MAX_FREQUENCY_HZ} \
                 (99 to 250 is sensible: the kernel ticks at 250 Hz; default 99)",
                self.frequency_hz
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(
                "profiler dir is empty; set a directory for profiles (default ./data/pprof)".into(),
            );
        }
        Ok(())
    }
}

fn check_duration(d: Duration) -> Result<(), String> {
    if d < MIN_DURATION || d > MAX_DURATION {
        Err(format!("{d:?} is out of range; use 1 s to 600 s"))
    } else {
        Ok(())
    }
}

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

/// Cores this process may run on: sched affinity and cgroup CPU quota.
fn allowed_cores() -> usize {
    match std::thread::available_parallelism() {
        Ok(n) => n.get(),
        Err(e) => {
            log::warn!("CPU profiler: cannot tell the usable cores ({e}); assuming 1");
            1
        }
    }
}

/// This process's CPU use from its accumulated CPU time between two reads.
struct CpuSampler {
    system: sysinfo::System,
    pid: sysinfo::Pid,
    last: Option<(Instant, u64)>,
}

impl CpuSampler {
    fn new() -> Result<Self, String> {
        let pid = sysinfo::get_current_pid().map_err(|e| format!("current pid: {e}"))?;
        let system = sysinfo::System::new().map_err(|e| format!("sysinfo: {e}"))?;
        let mut s = Self {
            system,
            pid,
            last: None,
        };
        s.reset();
        Ok(s)
    }

    /// Takes a new baseline (failures only leave it empty: the next sample makes one).
    fn reset(&mut self) {
        self.last = self.read().ok().map(|cpu_ms| (Instant::now(), cpu_ms));
    }

    /// Accumulated CPU time of this process, in ms.
    fn read(&mut self) -> Result<u64, String> {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        self.system
            .process(self.pid)
            .map(sysinfo::Process::accumulated_cpu_time)
            .ok_or_else(|| format!("process {} not found", self.pid))
    }

    /// Percent of one core since the last call; `None` for the first one (a baseline).
    fn sample(&mut self) -> Result<Option<f64>, String> {
        let cpu_ms = self.read()?;
        let now = Instant::now();
        let out = self.last.and_then(|(then, last_ms)| {
            let wall_ms = now.duration_since(then).as_secs_f64() * 1000.0;
            (wall_ms > 0.0).then(|| cpu_ms.saturating_sub(last_ms) as f64 / wall_ms * 100.0)
        });
        self.last = Some((now, cpu_ms));
        Ok(out)
    }
}

struct Job<'a> {
    dir: &'a Path,
    keep: usize,
    frequency_hz: i32,
    duration: Duration,
    trigger: Trigger,
    cpu_percent: Option<f64>,
}

const NAME_FORMAT: &str = "%Y%m%d-%H%M%S";

/// Runs on the dedicated recording thread: profile, encode, write, prune.
fn record_blocking(
    job: &Job<'_>,
    stop: &std::sync::mpsc::Receiver<()>,
) -> Result<ProfileInfo, ProfileError> {
    use pprof::protos::Message as _;

    fs::create_dir_all(job.dir)?;
    let started = chrono::Utc::now();
    let builder = pprof::ProfilerGuardBuilder::default().frequency(job.frequency_hz);
    // Unwinding through these while they hold locks can deadlock (pprof's advice).
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    let builder = builder.blocklist(&["libc", "libgcc", "pthread", "vdso"]);
    let guard = builder
        .build()
        .map_err(|e| ProfileError::Pprof(format!("start: {e}")))?;
    // Returns at the timeout, or at once when the requester went away.
    let _ = stop.recv_timeout(job.duration);
    let report = guard
        .report()
        .frames_post_processor(trim_profiler_frames)
        .build()
        .map_err(|e| ProfileError::Pprof(format!("report: {e}")));
    drop(guard);
    let report = report?;
    let samples: i64 = report.data.values().map(|&n| n as i64).sum();

    let pb = report
        .pprof()
        .map_err(|e| ProfileError::Pprof(format!("protobuf: {e}")))?
        .write_to_bytes()
        .map_err(|e| ProfileError::Pprof(format!("protobuf encode: {e}")))?;

    let mut svg = Vec::new();
    let mut options = pprof::flamegraph::Options::default();
    let trigger = match job.trigger {
        Trigger::Auto => "automatic",
        Trigger::Manual => "on-demand",
    };
    options.title = format!(
        "sluice CPU, {} UTC, {:?}, {trigger}",
        started.format("%Y-%m-%d %H:%M:%S"),
        job.duration
    );
    report
        .flamegraph_with_options(&mut svg, &mut options)
        .map_err(|e| ProfileError::Pprof(format!("flame graph: {e}")))?;
    if svg.is_empty() {
        svg = empty_svg(&options.title).into_bytes();
    }

    let sidecar = serde_json::to_vec_pretty(&Sidecar {
        trigger: job.trigger,
        duration_ms: u64::try_from(job.duration.as_millis()).unwrap_or(u64::MAX),
        frequency_hz: job.frequency_hz,
        samples,
        cpu_percent: job.cpu_percent,
    })
    .map_err(|e| ProfileError::Pprof(format!("sidecar: {e}")))?;

    // One profile at a time and each lasts ≥ 1 s, so names rarely collide; if they do (clock
    // stepped back, another process on the same dir) take the next free second.
    let mut when = started;
    let name = loop {
        let candidate = format!("cpu-{}", when.format(NAME_FORMAT));
        let taken = ["pb", "svg", "json"]
            .iter()
            .any(|ext| job.dir.join(format!("{candidate}.{ext}")).exists());
        if !taken {
            break candidate;
        }
        if when > started + chrono::Duration::seconds(60) {
            return Err(ProfileError::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("profile files for {candidate} already exist"),
            )));
        }
        when += chrono::Duration::seconds(1);
    };

    // The `.pb` last: a listed profile is complete.
    write_atomic(job.dir, &format!("{name}.svg"), &svg)?;
    write_atomic(job.dir, &format!("{name}.json"), &sidecar)?;
    write_atomic(job.dir, &format!("{name}.pb"), &pb)?;

    if let Err(e) = prune(job.dir, job.keep) {
        log::warn!("CPU profiler: pruning {} failed: {e}", job.dir.display());
    }
    Ok(ProfileInfo {
        created: when.timestamp(),
        name,
        pb_bytes: pb.len() as u64,
        svg_bytes: svg.len() as u64,
        trigger: job.trigger,
    })
}

/// Drops the profiler's own unwinding frames from the leaf end of a stack (visible in debug
/// builds), so the hottest leaf is the program's code.
fn trim_profiler_frames(frames: &mut pprof::Frames) {
    let ours = |frame: &Vec<pprof::Symbol>| {
        frame.iter().any(|sym| {
            let name = sym.name();
            name.starts_with("backtrace::")
                || name.contains("pprof::")
                || name.contains("perf_signal_handler")
        })
    };
    let cut = frames.frames.iter().take(8).rposition(ours);
    if let Some(last) = cut {
        frames.frames.drain(..=last);
    }
}

fn empty_svg(title: &str) -> String {
    let title: String = title
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '\''))
        .collect();
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"60\">\
         <text x=\"10\" y=\"25\">{title}</text>\
         <text x=\"10\" y=\"45\">no samples recorded (the process was idle)</text></svg>\n"
    )
}

/// Writes through a hidden temporary file and a rename, so readers never see half a file.
fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, dir.join(file)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Checks a profile name: exactly `cpu-YYYYMMDD-HHMMSS`, a real date. Returns its Unix time.
fn check_name(name: &str) -> Result<i64, ProfileError> {
    parse_name(name).ok_or_else(|| {
        ProfileError::Invalid("a profile name looks like cpu-YYYYMMDD-HHMMSS".into())
    })
}

fn parse_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    let shape = b.len() == 19
        && name.starts_with("cpu-")
        && b[12] == b'-'
        && b[4..12].iter().all(u8::is_ascii_digit)
        && b[13..19].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(&name[4..], NAME_FORMAT)
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The profile file kinds we write and delete. `json` is the sidecar.
const OUR_EXTS: [&str; 3] = ["pb", "svg", "json"];

/// Our files in `dir`: (profile name, file name). Leftover temporaries come back with
/// `tmp == true`.
fn our_files(dir: &Path) -> io::Result<Vec<(String, String, bool)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        let (core, tmp) = match file.strip_prefix('.').and_then(|f| f.strip_suffix(".tmp")) {
            Some(core) => (core.to_string(), true),
            None => (file.clone(), false),
        };
        let Some((name, ext)) = core.rsplit_once('.') else {
            continue;
        };
        if OUR_EXTS.contains(&ext) && parse_name(name).is_some() {
            out.push((name.to_string(), file, tmp));
        }
    }
    Ok(out)
}

/// Keeps the newest `keep` profiles (by the time in their name; a profile = its `.pb`, `.svg`
/// and `.json`), deletes the rest and stale temporaries. Touches no other file. Returns how many
/// files it deleted.
fn prune(dir: &Path, keep: usize) -> io::Result<usize> {
    let files = our_files(dir)?;
    let mut names: Vec<&str> = files
        .iter()
        .filter(|f| !f.2)
        .map(|f| f.0.as_str())
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.dedup();
    let keep_names: Vec<&str> = names.into_iter().take(keep).collect();
    let mut deleted = 0;
    for (name, file, tmp) in &files {
        if *tmp || !keep_names.contains(&name.as_str()) {
            match fs::remove_file(dir.join(file)) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if deleted > 0 {
        log::info!(
            "CPU profiler: pruned {deleted} old profile file(s) in {}",
            dir.display()
        );
    }
    Ok(deleted)
}

fn list_dir(dir: &Path) -> Result<Vec<ProfileInfo>, ProfileError> {
    let files = match our_files(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let size = |name: &str, ext: &str| -> u64 {
        fs::metadata(dir.join(format!("{name}.{ext}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let mut out: Vec<ProfileInfo> = files
        .iter()
        .filter(|(_, file, tmp)| !tmp && file.ends_with(".pb"))
        .filter_map(|(name, _, _)| {
            let created = parse_name(name)?;
            let trigger = fs::read(dir.join(format!("{name}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
                .map_or(Trigger::Manual, |s| s.trigger);
            Some(ProfileInfo {
                name: name.clone(),
                created,
                pb_bytes: size(name, "pb"),
                svg_bytes: size(name, "svg"),
                trigger,
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pprof::protos::Message as _;

    /// pprof is process-global: tests that record take turns.
    static RECORD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn config(dir: &Path) -> ProfilerConfig {
        ProfilerConfig {
            enabled: true,
            interval: Duration::from_millis(100),
            threshold_percent: 0.0,
            duration: Duration::from_secs(1),
            cooldown: Duration::from_secs(3600),
            keep: 5,
            frequency_hz: 199,
            dir: dir.to_path_buf(),
        }
    }

    /// Burns one core until dropped.
    struct Burner {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<u64>>,
    }

    impl Burner {
        fn start() -> Self {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let thread = std::thread::spawn(move || {
                let mut x: u64 = 1;
                while !flag.load(Ordering::Relaxed) {
                    for i in 0..10_000u64 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(i),
                        );
                    }
                }
                x
            });
            Self {
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Burner {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    #[test]
    fn default_config_is_valid_and_bad_values_say_how_to_fix() {
        assert_eq!(ProfilerConfig::default().validate(), Ok(()));
        let bad = [
            ProfilerConfig {
                interval: Duration::ZERO,
                ..Default::default()
            },
            ProfilerConfig {
                threshold_percent: 120.0,
                ..Default::default()
            },
            ProfilerConfig {
                threshold_percent: f64::NAN,
                ..Default::default()
            },
            ProfilerConfig {
                duration: Duration::from_millis(10),
                ..Default::default()
            },
            ProfilerConfig {
                keep: 0,
                ..Default::default()
            },
            ProfilerConfig {
                frequency_hz: 0,
                ..Default::default()
            },
            ProfilerConfig {
                dir: PathBuf::new(),
                ..Default::default()
            },
        ];
        for c in bad {
            let e = c.validate().expect_err("should be refused");
            assert!(e.contains("set") || e.contains("use"), "{e}");
        }
        assert!(matches!(
            Profiler::new(ProfilerConfig {
                keep: 0,
                ..Default::default()
            }),
            Err(ProfileError::Invalid(_))
        ));
    }

    #[test]
    fn names_are_strict() {
        assert_eq!(parse_name("cpu-20261126-143318"), Some(1_795_703_598));
        for bad in [
            "../x",
            "cpu-..",
            "cpu-../../etc/passwd",
            "/etc/passwd",
            "/tmp/cpu-20261126-143318",
            "cpu-20261126-143318/",
            "cpu-20261126-143318.pb",
            "cpu-20261126-143318.txt",
            "cpu-20261326-143318", // month 13
            "cpu-2026112-6143318",
            "cpu-20261126-14331a",
            "cpu-+2026112-143318",
            "heap-20261126-14331",
            "",
            "cpu-20261126-143318\0",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            FileKind::split_file_name("cpu-20261126-143318.svg").ok(),
            Some(("cpu-20261126-143318", FileKind::Svg))
        );
        assert_eq!(
            FileKind::split_file_name("cpu-20261126-143318.pb").ok(),
            Some(("cpu-20261126-143318", FileKind::Pb))
        );
        for bad in [
            "cpu-20261126-143318.txt",
            "cpu-20261126-143318.json",
            "cpu-20261126-143318",
            "../cpu-20261126-143318.pb",
            "/cpu-20261126-143318.pb",
            "cpu-..pb",
            "cpu-20261126-143318.pb.svg",
        ] {
            assert!(FileKind::split_file_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn file_path_checks_name_and_existence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Profiler::new(config(dir.path())).expect("profiler");
        fs::write(dir.path().join("cpu-20261126-143318.pb"), b"x").expect("write");
        assert_eq!(
            p.file_path("cpu-20261126-143318", FileKind::Pb)
                .expect("found"),
            dir.path().join("cpu-20261126-143318.pb")
        );
        assert!(matches!(
            p.file_path("cpu-20261126-143318", FileKind::Svg),
            Err(ProfileError::NotFound)
        ));
        for bad in ["../x", "cpu-..", "/etc/passwd", "cpu-20261126-143318.pb"] {
            assert!(matches!(
                p.file_path(bad, FileKind::Pb),
                Err(ProfileError::Invalid(_))
            ));
        }
        // A directory under a valid name is not a profile.
        fs::create_dir(dir.path().join("cpu-20261126-143319.svg")).expect("mkdir");
        assert!(matches!(
            p.file_path("cpu-20261126-143319", FileKind::Svg),
            Err(ProfileError::NotFound)
        ));
    }

    #[test]
    fn prune_keeps_newest_pairs_and_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let names: Vec<String> = (10..18).map(|s| format!("cpu-20261126-1433{s}")).collect();
        for n in &names {
            for ext in ["pb", "svg", "json"] {
                fs::write(d.join(format!("{n}.{ext}")), b"x").expect("write");
            }
        }
        // An orphan svg older than everything, a stale temporary, and files that are not ours.
        fs::write(d.join("cpu-20261126-143300.svg"), b"x").expect("write");
        fs::write(d.join(".cpu-20261126-143301.pb.tmp"), b"x").expect("write");
        let others = [
            "notes.txt",
            "cpu-foo.pb",
            "heap-20261126-143310.pb",
            "cpu-20261126-143310.txt",
        ];
        for o in others {
            fs::write(d.join(o), b"x").expect("write");
        }

        let deleted = prune(d, 3).expect("prune");
        assert_eq!(deleted, 5 * 3 + 1 + 1);
        let mut left: Vec<String> = fs::read_dir(d)
            .expect("read_dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        for n in &names[5..] {
            for ext in ["json", "pb", "svg"] {
                want.push(format!("{n}.{ext}"));
            }
        }
        want.sort();
        assert_eq!(left, want);

        let p = Profiler::new(config(d)).expect("profiler");
        let listed: Vec<String> = p
            .list()
            .expect("list")
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(
            listed,
            vec![names[7].clone(), names[6].clone(), names[5].clone()]
        );
    }

    #[test]
    fn list_of_missing_dir_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Profiler::new(config(&dir.path().join("absent"))).expect("profiler");
        assert_eq!(p.list().expect("list"), Vec::new());
    }

    #[test]
    fn sampler_sees_this_process_burn() {
        let mut s = CpuSampler::new().expect("sampler");
        let _burn = Burner::start();
        s.reset();
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let p = s
            .sample()
            .expect("sample")
            .expect("a value after the baseline");
        // Two busy threads (this one and the burner); allow for a loaded machine.
        assert!(p > 20.0, "{p}% of one core");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn profile_now_writes_a_decodable_pb_and_an_svg() {
        let _turn = RECORD_LOCK.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Profiler::new(config(dir.path())).expect("profiler");
        let _burn = Burner::start();
        let info = p
            .profile_now(Duration::from_secs(1))
            .await
            .expect("profile");
        assert_eq!(info.trigger, Trigger::Manual);
        assert!(info.pb_bytes > 0 && info.svg_bytes > 0);

        let pb = fs::read(p.file_path(&info.name, FileKind::Pb).expect("pb")).expect("read pb");
        let profile = pprof::protos::Profile::parse_from_bytes(&pb).expect("decodes");
        assert!(!profile.sample.is_empty(), "no samples");
        assert!(
            profile.string_table.iter().any(|s| s.contains("Burner")),
            "no burner frame"
        );
        // The profiler's own unwinding frames are trimmed off the leaves.
        for sample in &profile.sample {
            let leaf = sample.location_id.first().and_then(|id| {
                let loc = profile.location.iter().find(|l| l.id == *id)?;
                loc.line.first().map(|l| l.function_id)
            });
            let name = leaf
                .and_then(|f| profile.function.iter().find(|x| x.id == f))
                .and_then(|f| profile.string_table.get(usize::try_from(f.name).ok()?));
            assert!(
                name.is_some_and(|n| !n.starts_with("backtrace::") && !n.contains("pprof::")),
                "leaf {name:?}"
            );
        }

        let svg = fs::read_to_string(p.file_path(&info.name, FileKind::Svg).expect("svg"))
            .expect("read svg");
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{}",
            &svg[..svg.len().min(80)]
        );

        assert_eq!(p.list().expect("list"), vec![info.clone()]);
        let st = p.status();
        assert_eq!(st.last_profile.as_deref(), Some(info.name.as_str()));
        assert!(!st.running);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_profile_at_once_is_busy() {
        let _turn = RECORD_LOCK.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Profiler::new(config(dir.path())).expect("profiler");
        let other = p.clone();
        let first = p.profile_now(Duration::from_secs(1));
        tokio::pin!(first);
        // `biased`: the first request is polled (and takes the profiler) before the second.
        let second = tokio::select! {
            biased;
            r = &mut first => panic!("first finished before the second was tried: {r:?}"),
            r = other.profile_now(Duration::from_secs(1)) => r,
        };
        assert!(matches!(second, Err(ProfileError::Busy)), "{second:?}");
        assert!(p.status().running);
        first.await.expect("first profile");
        assert!(!p.status().running);
        assert!(matches!(
            p.profile_now(Duration::from_millis(10)).await,
            Err(ProfileError::Invalid(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn monitor_at_zero_threshold_records_and_stops_on_shutdown() {
        let _turn = RECORD_LOCK.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Arc::new(Profiler::new(config(dir.path())).expect("profiler"));
        let mut written = p.subscribe();
        let (stop, stop_rx) = watch::channel(false);
        let task = p.start_monitor(stop_rx.clone()).expect("monitor started");
        assert!(p.start_monitor(stop_rx).is_none(), "a second monitor");

        tokio::time::timeout(Duration::from_secs(30), written.changed())
            .await
            .expect("a profile within 30 s")
            .expect("sender alive");
        let info = written.borrow_and_update().clone().expect("info");
        assert_eq!(info.trigger, Trigger::Auto);
        let listed = p.list().expect("list");
        assert_eq!(listed.first(), Some(&info));
        let st = p.status();
        assert!(st.monitoring && st.last_sample_percent.is_some());

        // In its cooldown now: shutdown ends it promptly.
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("monitor stops")
            .expect("monitor task did not panic");
        assert!(!p.status().monitoring);
    }

    #[tokio::test]
    async fn a_disabled_monitor_starts_profiling_when_enabled_at_run_time() {
        let _turn = RECORD_LOCK.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let on = ProfilerConfig {
            threshold_percent: 0.0,
            duration: Duration::from_secs(1),
            ..config(dir.path())
        };
        let p = Arc::new(
            Profiler::new(ProfilerConfig {
                enabled: false,
                ..on.clone()
            })
            .expect("profiler"),
        );
        let mut written = p.subscribe();
        let (stop, stop_rx) = watch::channel(false);
        let task = p
            .start_monitor(stop_rx)
            .expect("the monitor runs while disabled");
        p.set_config(ProfilerConfig {
            enabled: true,
            ..on
        })
        .expect("valid settings");
        tokio::time::timeout(Duration::from_secs(20), written.changed())
            .await
            .expect("a profile once enabled")
            .expect("profiler alive");
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("monitor stops")
            .expect("monitor task did not panic");
    }
}
