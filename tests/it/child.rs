//! Waiting on child processes with a deadline: a child that does not exit in time is killed
//! and the test fails with what it printed, instead of hanging CI.
//!
//! std has no wait with a timeout. A scoped thread blocks in `wait()` (woken by the child's
//! exit, no polling) and hands the status over a channel that the test reads with
//! `recv_timeout`; past the deadline the child gets SIGKILL, which ends that `wait()`.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child that was told to stop (or a one-shot command) may take.
pub const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// Why a wait ended without an exit status.
#[derive(Debug)]
pub struct TimedOut(pub Duration);

/// Waits up to `within` for `child` to exit. On time-out the child is killed (SIGKILL) and
/// reaped, and `Err` says how long was waited.
pub fn wait_within(child: &mut Child, within: Duration) -> Result<ExitStatus, TimedOut> {
    let pid = child.id();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(within) {
            Ok(status) => Ok(status.expect("wait() on the child failed")),
            Err(_) => {
                kill_pid(pid, "-KILL");
                // The scoped thread's wait() returns once the kill lands; the scope joins it.
                Err(TimedOut(within))
            }
        }
    })
}

/// [`wait_within`] that fails the test on time-out.
pub fn wait_or_fail(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    match wait_within(child, within) {
        Ok(s) => s,
        Err(TimedOut(d)) => panic!("{what} did not exit within {d:?}; it was killed"),
    }
}

/// Runs `cmd` to completion with `stdin` fed to it, collecting stdout and stderr, bounded by
/// `within` (then the child is killed and the test fails).
pub fn output_within(cmd: &mut Command, stdin: Option<&[u8]>, within: Duration) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // A child that does not read its input must not block the test: write from a thread.
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ]
    .into_iter()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    })
    .collect();
    let status = wait_within(&mut child, within);
    let mut outs = readers.into_iter().map(|r| r.join().unwrap_or_default());
    let (stdout, stderr) = (outs.next().unwrap(), outs.next().unwrap());
    match status {
        Ok(status) => Output {
            status,
            stdout,
            stderr,
        },
        Err(TimedOut(d)) => panic!(
            "{cmd:?} did not exit within {d:?}; it was killed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Sends `sig` (e.g. `-TERM`) to `pid` with kill(1).
pub fn kill_pid(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

#[test]
fn a_child_that_does_not_exit_in_time_is_killed_and_reported() {
    let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
    let started = std::time::Instant::now();
    let r = wait_within(&mut sleeper, Duration::from_millis(300));
    assert!(r.is_err(), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Reaped: the pid is gone, not a zombie left behind.
    assert!(sleeper.try_wait().unwrap().is_some());
    let out = output_within(
        Command::new("sh").args(["-c", "cat; echo err >&2"]),
        Some(b"in"),
        Duration::from_secs(10),
    );
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"in"[..], &b"err\n"[..])
    );
}
