//! What sluice sets on its own process at start, however it was started (systemd, a shell, a
//! container): the file-creation mask and the open-file limit; and the lowest CPU priority for
//! background threads.

use std::path::Path;

/// Files sluice creates are its user's alone: the database holds the channel secrets and the
/// SMTP password, the logs name users and models, backups and profiles copy both. With 077 new
/// files are 0600 and new directories 0700, whatever umask the shell or supervisor passed on
/// (the systemd unit sets the same with `UMask=`; this covers every other way of starting).
pub const UMASK: u32 = 0o077;

/// Sets the process umask to [`UMASK`]; returns the one it replaces.
pub fn restrict_file_modes() -> u32 {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::from_raw_mode(UMASK)).as_raw_mode()
}

/// Allocations from this size up get a mapping of their own, returned to the kernel when freed
/// (see [`fix_malloc_thresholds`]). Few allocations are this large (argon2id's 19 MiB working
/// block, the tokenizer's tables, a large request body); a mapping costs them a system call and
/// fresh pages, while a block kept in an arena costs its size in resident memory for good.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Pins glibc's mmap threshold at [`MMAP_THRESHOLD`], and caps its malloc arenas at the cores
/// sluice may run on (unless `MALLOC_ARENA_MAX` is set: the operator's choice stands).
///
/// Left dynamic, glibc raises the threshold to the size of the largest mapped block freed (up to
/// 32 MiB), so after the first password hash every argon2id block came from a thread's malloc
/// arena and stayed resident: ~20 MiB per blocking thread that ever checked a password.
///
/// Arenas: glibc gives each thread that allocates an arena of its own until there are eight per
/// core, and memory freed in one serves only the threads that use it. After the 128-connection and
/// open-loop runs of `make bench` sluice held ~59 MiB, and a CPU profile's 8 MiB sample table
/// then went into a fresh arena: +10 MiB, a 69–71 MiB peak. With one arena per core the table
/// reuses the space the load freed: +2.4–3.6 MiB, a 62.5–62.9 MiB peak (issue 15; the figures
/// and the throughput A/B are in docs/performance.md). No more threads than cores run at once,
/// so no more arenas than cores are ever busy at once. Call first thing in `main`.
pub fn fix_malloc_thresholds() {
    let arenas = match std::env::var_os("MALLOC_ARENA_MAX") {
        Some(_) => None,
        None => Some(std::thread::available_parallelism().map_or(1, usize::from)),
    };
    pprof::fix_malloc_thresholds(MMAP_THRESHOLD, arenas);
}

/// The soft limit on open files (`RLIMIT_NOFILE`); `u64::MAX` when unlimited.
pub fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises the soft open-file limit to the hard one (the soft default, often 1024, is a relic of
/// `select()`; sluice uses epoll). Under systemd `LimitNOFILE=` sets both and the system-call
/// filter refuses the change, which is then not needed. Returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: now.maximum,
                maximum: now.maximum,
            },
        );
    }
    open_file_limit()
}

/// Makes existing files among `paths` 0600 when group or others could read or write them (a
/// database made by an older release, or copied in with a permissive umask; SQLite gives the
/// WAL and shared-memory files the database's own mode). Returns the files changed, with their
/// old modes, for a log line; missing files are skipped.
pub fn make_private(paths: &[&Path]) -> std::io::Result<Vec<(std::path::PathBuf, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut changed = Vec::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            changed.push((path.to_path_buf(), mode));
        }
    }
    Ok(changed)
}

/// The nice value of background threads that must never hold the core a request wants.
pub const BACKGROUND_NICE: i32 = 19;

/// How far [`lower_this_thread_priority`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowered {
    /// `SCHED_IDLE` (and nice 19): the thread runs only when no normal thread wants the core,
    /// and never preempts one.
    Idle,
    /// Nice 19 only (`SCHED_IDLE` refused, e.g. by a system-call filter).
    Nice,
}

/// Gives the calling thread the lowest CPU priority: `SCHED_IDLE`, else nice
/// [`BACKGROUND_NICE`]. Nice 19 alone is not enough on Linux 6.6+ (EEVDF): a nice-19 thread that
/// wakes with zero lag is placed ahead of a request thread that has run slightly more than its
/// share, whatever their weights, and holds the core until it blocks or the next tick (up to
/// 4 ms at 250 Hz); a `SCHED_IDLE` thread never preempts a normal one on waking. Both are a
/// thread's own, and lowering them needs no privilege.
pub fn lower_this_thread_priority() -> std::io::Result<Lowered> {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id, thread_schedule_policy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    // First: with the policy the crate also sets nice 0, which fails once nice is raised. Its
    // result is not the answer (the policy may be set and the nice refused); the policy is.
    let _ = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    );
    let is_idle = thread_schedule_policy().is_ok_and(|p| p == idle);
    let me = rustix::thread::gettid();
    let niced = rustix::process::setpriority_process(Some(me), BACKGROUND_NICE);
    match (is_idle, niced) {
        (true, _) => Ok(Lowered::Idle),
        (false, Ok(())) => Ok(Lowered::Nice),
        (false, Err(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_and_world_bits_are_removed_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (open, private) = (dir.path().join("a.db"), dir.path().join("b.db"));
        for (p, mode) in [(&open, 0o644), (&private, 0o600)] {
            std::fs::write(p, b"x").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let missing = dir.path().join("missing-wal");
        let changed = make_private(&[&open, &private, &missing]).unwrap();
        assert_eq!(changed, vec![(open.clone(), 0o644)]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&open), mode(&private)), (0o600, 0o600));
    }
}
