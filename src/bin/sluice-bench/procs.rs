//! Child processes (pinned with `taskset`, stopped on drop), CPU pinning of the bench itself, and
//! the `/proc` figures the report needs.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use parking_lot::Mutex;

/// Whether `taskset` can be run.
pub fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pin every thread of this process to `cpu`. Call before starting any runtime so that all later
/// threads inherit it.
pub fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("cannot run taskset")?;
    if !status.success() {
        bail!("taskset -p -c {cpu} failed ({status})");
    }
    Ok(())
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 3 s) when dropped, with the last
/// lines of its output kept for error messages.
pub struct Proc {
    name: &'static str,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
    addr: mpsc::Receiver<SocketAddr>,
    pub spawned_at: Instant,
}

const TAIL_LINES: usize = 30;

impl Proc {
    /// Spawn `program args…`, under `taskset -c CPU` when `cpu` is given. Its stdout and stderr are
    /// drained in threads (so it never blocks on a full pipe), watching for `listening on http://`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        cpu: Option<usize>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Proc> {
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {}; build it with `cargo build --release`",
                program.display()
            )
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, addr) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            drain(out, tail.clone(), tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, tail.clone(), tx);
        }
        Ok(Proc {
            name,
            child,
            tail,
            addr,
            spawned_at,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the `listening on http://ADDR` line.
    pub fn wait_for_addr(&mut self, timeout: Duration) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.addr.recv_timeout(Duration::from_millis(20)) {
                Ok(addr) => return Ok(addr),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!(
                        "{} closed its output without printing `listening on http://…`{}",
                        self.name,
                        self.tail_text()
                    )
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before listening{}",
                    self.name,
                    self.tail_text()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print `listening on http://…` within {timeout:?}{}",
                    self.name,
                    self.tail_text()
                );
            }
        }
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{} exited ({status}){}", self.name, self.tail_text());
        }
        Ok(())
    }

    /// The last lines the process printed, for an error message.
    pub fn tail_text(&self) -> String {
        let tail = self.tail.lock();
        if tail.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!("; its last output:\n  {}", lines.join("\n  "))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(
    out: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
    addr: mpsc::Sender<SocketAddr>,
) {
    std::thread::spawn(move || {
        let mut found = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if !found && let Some(a) = parse_listening(&line) {
                found = true;
                let _ = addr.send(a);
            }
            let mut tail = tail.lock();
            if tail.len() >= TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
}

/// The address in a `… listening on http://127.0.0.1:PORT …` line (a log prefix is allowed).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let at = line.find("listening on http://")? + "listening on http://".len();
    let rest = &line[at..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == ',')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU time (user + system) of a process, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32, ticks_per_sec: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_micros(
        ticks * 1_000_000 / ticks_per_sec.max(1),
    ))
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set size now (`VmRSS`) in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes the process caused to be written to storage (`write_bytes` of `/proc/PID/io`): what
/// reaches the disk, page-cache writes included when they are dirtied, not what `write(2)` was
/// asked for (a rewrite of a cached page before writeback counts again).
pub fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A free TCP port on 127.0.0.1 (for a server that cannot be told to pick one and print it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr().context("local address")?.port())
}

/// CPU used by the whole machine over `window` (`/proc/stat`), in % of one CPU. Called before
/// anything is started, it tells whether other processes would disturb the run.
pub fn machine_busy_percent(window: Duration) -> Option<f64> {
    fn sample() -> Option<(u64, u64, usize)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut lines = stat.lines();
        // "cpu  user nice system idle iowait irq softirq steal …"
        let fields: Vec<u64> = lines
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        let cpus = lines
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        Some((total, idle, cpus))
    }
    let (total0, idle0, cpus) = sample()?;
    std::thread::sleep(window);
    let (total1, idle1, _) = sample()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    let idle = idle1.saturating_sub(idle0).min(total);
    Some((total - idle) as f64 / total as f64 * cpus as f64 * 100.0)
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_behind_a_log_prefix() {
        let want: SocketAddr = "127.0.0.1:4000".parse().expect("valid");
        assert_eq!(
            parse_listening("listening on http://127.0.0.1:4000"),
            Some(want)
        );
        assert_eq!(
            parse_listening(
                "2026-01-01T00:00:00Z INFO sluice::server: listening on http://127.0.0.1:4000 (h1+h2c)"
            ),
            Some(want)
        );
        assert_eq!(
            parse_listening("listening on http://127.0.0.1:4000/"),
            Some(want)
        );
        assert_eq!(parse_listening("starting"), None);
    }

    #[test]
    fn reads_own_cpu_time_and_rss() {
        let pid = std::process::id();
        assert!(cpu_time(pid, clock_ticks()).is_some());
        assert!(peak_rss_kib(pid).is_some_and(|k| k > 0));
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
        assert!(write_bytes(pid).is_some());
    }
}
