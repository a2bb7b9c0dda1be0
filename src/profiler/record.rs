//! Recording one profile on the dedicated thread: profile, encode, write, prune.

use super::*;

pub(super) struct Job<'a> {
    pub(super) dir: &'a Path,
    pub(super) keep: usize,
    pub(super) frequency_hz: i32,
    pub(super) duration: Duration,
    pub(super) trigger: Trigger,
    pub(super) cpu_percent: Option<f64>,
}

pub(super) const NAME_FORMAT: &str = "%Y%m%d-%H%M%S";

/// Runs on the dedicated recording thread: profile, encode, write, prune.
pub(super) fn record_blocking(
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
    let unresolved = guard
        .report()
        .build_unresolved()
        .map_err(|e| ProfileError::Pprof(format!("report: {e}")));
    // Stops sampling and frees the sample table before symbolization needs memory.
    drop(guard);
    let report = symbols::resolve(unresolved?, trim_profiler_frames);
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
pub(super) fn trim_profiler_frames(frames: &mut pprof::Frames) {
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

pub(super) fn empty_svg(title: &str) -> String {
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
pub(super) fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{file}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, dir.join(file)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
