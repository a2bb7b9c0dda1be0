//! The profiler's settings and their bounds.

use super::*;

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

pub(super) fn check_duration(d: Duration) -> Result<(), String> {
    if d < MIN_DURATION || d > MAX_DURATION {
        Err(format!("{d:?} is out of range; use 1 s to 600 s"))
    } else {
        Ok(())
    }
}
