//! This process's CPU use, sampled by the monitor.

use super::*;

/// Cores this process may run on: sched affinity and cgroup CPU quota.
pub(super) fn allowed_cores() -> usize {
    match std::thread::available_parallelism() {
        Ok(n) => n.get(),
        Err(e) => {
            log::warn!("CPU profiler: cannot tell the usable cores ({e}); assuming 1");
            1
        }
    }
}

/// This process's CPU use from its accumulated CPU time between two reads.
pub(super) struct CpuSampler {
    pub(super) system: sysinfo::System,
    pub(super) pid: sysinfo::Pid,
    pub(super) last: Option<(Instant, u64)>,
}

impl CpuSampler {
    pub(super) fn new() -> Result<Self, String> {
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
    pub(super) fn reset(&mut self) {
        self.last = self.read().ok().map(|cpu_ms| (Instant::now(), cpu_ms));
    }

    /// Accumulated CPU time of this process, in ms.
    pub(super) fn read(&mut self) -> Result<u64, String> {
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
    pub(super) fn sample(&mut self) -> Result<Option<f64>, String> {
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
