//! The log file: `<dir>/sluice-YYYYMMDD-HHMMSS.log` (local time of opening), rotated between
//! lines after `max_lines` lines or `max_bytes` bytes, whichever comes first; the newest `keep`
//! files matching that pattern are kept and older ones deleted.
//!
//! A [`FileSink`] is owned by one thread (the file sink thread) and does blocking I/O; it never
//! runs on an async worker. It knows nothing of the global logger, so it is tested directly.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

const PREFIX: &str = "sluice-";
const SUFFIX: &str = ".log";
/// After a failed open, lines are dropped (and counted) for this long before the next attempt,
/// so a full disk costs one `open` per interval rather than one per line.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Rotation and retention limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_lines: u64,
    pub max_bytes: u64,
    pub keep: usize,
}

struct Current {
    path: PathBuf,
    w: BufWriter<File>,
    lines: u64,
    bytes: u64,
}

/// The rotating log file. Lines are written whole: rotation happens only between lines.
pub struct FileSink {
    dir: PathBuf,
    limits: Limits,
    current: Option<Current>,
    /// The name stamp (`YYYYMMDD-HHMMSS`); the local clock except in tests.
    clock: Box<dyn FnMut() -> String + Send>,
    /// Lines lost since the file was last written (see [`FileSink::take_dropped`]), and in all.
    dropped: u64,
    dropped_total: u64,
    last_error: Option<String>,
    retry_at: Option<Instant>,
    /// The stamp and suffix of the last file opened: a later file in the same second takes a
    /// higher suffix even when pruning freed a lower one, so names sort in opening order.
    last: Option<(String, u32)>,
    /// The file given up after a failed write. The next attempt appends to it again: on a full
    /// disk, opening succeeds and writing fails, so starting a new file each time would leave
    /// an empty file per attempt and prune real ones away.
    broken: Option<Broken>,
    /// The last flush reached the file.
    healthy: bool,
}

struct Broken {
    path: PathBuf,
    lines: u64,
}

fn local_stamp() -> String {
    chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()
}

impl FileSink {
    /// Creates the directory if needed, opens the first file and prunes old ones.
    pub fn open(dir: &Path, limits: Limits) -> io::Result<FileSink> {
        Self::open_with_clock(dir, limits, Box::new(local_stamp))
    }

    /// [`FileSink::open`] with a chosen name stamp source (tests use a fixed one).
    pub fn open_with_clock(
        dir: &Path,
        limits: Limits,
        clock: Box<dyn FnMut() -> String + Send>,
    ) -> io::Result<FileSink> {
        let limits = Limits {
            max_lines: limits.max_lines.max(1),
            max_bytes: limits.max_bytes.max(1),
            keep: limits.keep.max(1),
        };
        let mut sink = FileSink {
            dir: dir.to_path_buf(),
            limits,
            current: None,
            clock,
            dropped: 0,
            dropped_total: 0,
            last_error: None,
            retry_at: None,
            last: None,
            broken: None,
            healthy: true,
        };
        sink.start_file()?;
        Ok(sink)
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file lines currently go to (`None` after a failed open, until the next attempt).
    pub fn path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Writes one line (`line` holds no newline; one is added). Starts a new file first when this
    /// line would pass a limit. A line longer than `max_bytes` gets a file of its own.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        let full = self.current.as_ref().is_some_and(|c| {
            c.lines >= self.limits.max_lines
                || (c.bytes > 0 && c.bytes.saturating_add(len) > self.limits.max_bytes)
        });
        if full {
            // A failed close is recorded by `fail`; this line then waits for the retry like any other.
            let _ = self.close_current();
        }
        if self.current.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                self.drop_lines(1);
                return Err(io::Error::other("the log file is not open"));
            }
            if let Err(e) = self.resume() {
                self.drop_lines(1);
                return Err(e);
            }
        }
        let Some(cur) = self.current.as_mut() else {
            self.drop_lines(1);
            return Err(io::Error::other("the log file is not open"));
        };
        // One writer and a BufWriter: the two writes cannot interleave with anything.
        match cur
            .w
            .write_all(line.as_bytes())
            .and_then(|()| cur.w.write_all(b"\n"))
        {
            Ok(()) => {
                cur.lines += 1;
                cur.bytes += len;
                Ok(())
            }
            Err(e) => {
                self.drop_lines(1);
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// Pushes buffered lines to the file. An error when they did not get there, including when
    /// no file is open (lines are being dropped): `Ok` always means the file is being written.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(cur) = self.current.as_mut() else {
            return Err(io::Error::other(
                self.last_error
                    .clone()
                    .unwrap_or_else(|| "the log file is not open".into()),
            ));
        };
        if let Err(e) = cur.w.flush() {
            self.fail(&e);
            return Err(e);
        }
        self.healthy = true;
        Ok(())
    }

    /// False from a failed write until a flush reaches the file again.
    pub fn healthy(&self) -> bool {
        self.healthy && self.current.is_some()
    }

    /// Lines lost since the last call, and the error that lost them (for the line that says
    /// the file is written again).
    pub fn take_dropped(&mut self) -> (u64, Option<String>) {
        (std::mem::take(&mut self.dropped), self.last_error.take())
    }

    /// Why the last write or open failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Lines lost since the sink was opened.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    fn drop_lines(&mut self, n: u64) {
        self.dropped += n;
        self.dropped_total += n;
    }

    /// Closes the current file and starts a new one (SIGHUP, logrotate): whatever happened to the
    /// old path (moved, deleted, the directory recreated), lines from now on go to a fresh file.
    pub fn reopen(&mut self) -> io::Result<()> {
        let closed = self.close_current();
        self.retry_at = None;
        self.broken = None;
        self.start_file()?;
        closed
    }

    /// Flushes and closes the current file (its handle is dropped here).
    fn close_current(&mut self) -> io::Result<()> {
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        let r = cur.w.flush();
        drop(cur);
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }

    /// Notes a failure: the handle is given up (its unwritten lines counted as lost, not
    /// flushed again on drop), and the next attempt, a little later, appends to the same file.
    fn fail(&mut self, e: &io::Error) {
        if let Some(cur) = self.current.take() {
            let (_file, unwritten) = cur.w.into_parts();
            let lost = unwritten.map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64);
            self.drop_lines(lost);
            self.broken = Some(Broken {
                path: cur.path,
                lines: cur.lines.saturating_sub(lost),
            });
        }
        self.healthy = false;
        self.last_error = Some(e.to_string());
        self.retry_at = Some(Instant::now() + RETRY_AFTER);
    }

    /// After a failure: appends to the file given up, while it exists and has room, else
    /// starts a new one.
    fn resume(&mut self) -> io::Result<()> {
        let Some(b) = self.broken.take() else {
            return self.start_file();
        };
        match self.reopen_broken(&b) {
            Ok(Some(cur)) => {
                self.current = Some(cur);
                self.retry_at = None;
                Ok(())
            }
            // Gone (deleted to make room, rotated away) or full: a new file.
            Ok(None) => self.start_file(),
            Err(e) => {
                self.broken = Some(b);
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn reopen_broken(&self, b: &Broken) -> io::Result<Option<Current>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = match OpenOptions::new().read(true).append(true).open(&b.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = f.metadata()?.len();
        if b.lines >= self.limits.max_lines || bytes >= self.limits.max_bytes {
            return Ok(None);
        }
        // A write cut short by the full disk may have left half a line: end it, so the lines
        // after it start on their own.
        if bytes > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
                bytes += 1;
            }
        }
        Ok(Some(Current {
            path: b.path.clone(),
            w: BufWriter::with_capacity(64 * 1024, f),
            lines: b.lines,
            bytes,
        }))
    }

    /// Opens a new file under a name no file has (a `-N` suffix when the second is taken), then
    /// prunes.
    fn start_file(&mut self) -> io::Result<()> {
        let r = self.try_start_file();
        if let Err(e) = &r {
            self.fail(e);
            return r;
        }
        self.retry_at = None;
        self.broken = None;
        self.prune();
        Ok(())
    }

    fn try_start_file(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let stamp = (self.clock)();
        let mut n = match &self.last {
            Some((s, n)) if *s == stamp => n + 1,
            _ => 0,
        };
        loop {
            let name = if n == 0 {
                format!("{PREFIX}{stamp}{SUFFIX}")
            } else {
                format!("{PREFIX}{stamp}-{n}{SUFFIX}")
            };
            let path = self.dir.join(name);
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(f) => {
                    self.last = Some((stamp, n));
                    self.current = Some(Current {
                        path,
                        w: BufWriter::with_capacity(64 * 1024, f),
                        lines: 0,
                        bytes: 0,
                    });
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < u32::MAX => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes all but the newest `keep` files of ours (the current one always counts as kept).
    /// Newest by modification time, then by the name's stamp and suffix. Files whose name does
    /// not match `sluice-YYYYMMDD-HHMMSS[-N].log` are never touched.
    fn prune(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let current = self.current.as_ref().map(|c| c.path.clone());
        let mut ours: Vec<(SystemTime, (u64, u64, u64), PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let key = name_key(e.file_name().to_str()?)?;
                let meta = e.metadata().ok()?;
                if !meta.is_file() {
                    return None;
                }
                let path = e.path();
                if Some(&path) == current.as_ref() {
                    return None;
                }
                Some((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), key, path))
            })
            .collect();
        let others_kept = self
            .limits
            .keep
            .saturating_sub(usize::from(current.is_some()));
        if ours.len() <= others_kept {
            return;
        }
        ours.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
        for (_, _, path) in ours.into_iter().skip(others_kept) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        let _ = self.close_current();
    }
}

/// `sluice-YYYYMMDD-HHMMSS[-N].log` → (date, time, N); anything else → `None`.
pub(crate) fn name_key(name: &str) -> Option<(u64, u64, u64)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let digits = |s: &str, len: Option<usize>| {
        let ok = !s.is_empty()
            && s.len() <= 19
            && len.is_none_or(|l| s.len() == l)
            && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse::<u64>().ok()).flatten()
    };
    let mut parts = rest.split('-');
    let date = digits(parts.next()?, Some(8))?;
    let time = digits(parts.next()?, Some(6))?;
    let n = match parts.next() {
        None => 0,
        Some(s) => digits(s, None).filter(|n| *n >= 1)?,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((date, time, n))
}
