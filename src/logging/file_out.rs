//! The log file's sink thread side: writes through [`FileSink`] and says when the file stops
//! (and starts again) being written, once each, counted in [`FILE_STATS`].

use super::{FileSink, Msg, Sink, now_stamp};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

/// The file sink plus its health: one line when writing starts failing, one when it works
/// again, whatever happens in between (a full disk drops lines for as long as it lasts, and
/// must not add a line per attempt to the journal). Counted in [`FILE_STATS`].
pub(crate) struct FileOut {
    pub(crate) sink: FileSink,
    pub(crate) failing: bool,
    pub(crate) report: mpsc::Sender<Msg>,
}

/// The log file's health, for `/metrics`.
pub struct FileStats {
    /// 1 while lines reach the file.
    pub writable: AtomicBool,
    /// Times writing started failing.
    pub failures: AtomicU64,
    /// Lines that did not reach the file.
    pub dropped: AtomicU64,
}

pub static FILE_STATS: FileStats = FileStats {
    writable: AtomicBool::new(true),
    failures: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

impl FileStats {
    /// The log file metrics in Prometheus text format.
    pub fn write_prometheus(&self, o: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            o,
            "# HELP sluice_log_file_writable 1 while log lines reach the log file (1 without log files).\n# TYPE sluice_log_file_writable gauge\nsluice_log_file_writable {}",
            u8::from(self.writable.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            o,
            "# HELP sluice_log_file_failures_total Times writing the log file started failing.\n# TYPE sluice_log_file_failures_total counter\nsluice_log_file_failures_total {}",
            self.failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP sluice_log_lines_dropped_total Log lines that could not be written to the log file.\n# TYPE sluice_log_lines_dropped_total counter\nsluice_log_lines_dropped_total {}",
            self.dropped.load(Ordering::Relaxed)
        );
    }

    /// The same as JSON, for `/api/stats`.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "writable": self.writable.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "lines_dropped": self.dropped.load(Ordering::Relaxed),
        })
    }
}

impl FileOut {
    /// After a batch: reports a change of health (only a change) on stderr, and at recovery in
    /// the file too.
    fn check_health(&mut self, stats: &FileStats) {
        let ok = self.sink.healthy();
        stats
            .dropped
            .store(self.sink.dropped_total(), Ordering::Relaxed);
        stats.writable.store(ok, Ordering::Relaxed);
        match (self.failing, ok) {
            (false, false) => {
                self.failing = true;
                stats.failures.fetch_add(1, Ordering::Relaxed);
                let why = self
                    .sink
                    .last_error()
                    .unwrap_or("unknown error")
                    .to_string();
                let _ = self.report.send(Msg::Line(format!(
                    "[ERR] {} | SYSTEM | log file in {} cannot be written ({why}); log lines are dropped (and counted in sluice_log_lines_dropped_total) until it can be written again",
                    now_stamp(),
                    self.sink.dir().display()
                )));
            }
            (true, true) => {
                self.failing = false;
                let (n, why) = self.sink.take_dropped();
                let line = format!(
                    "[WARN] {} | SYSTEM | log file in {} is written again; {n} lines were dropped ({})",
                    now_stamp(),
                    self.sink.dir().display(),
                    why.unwrap_or_default()
                );
                let _ = self.sink.write_line(&line);
                let _ = self.sink.flush();
                let _ = self.report.send(Msg::Line(line));
            }
            _ => {}
        }
    }
}

impl Sink for FileOut {
    fn line(&mut self, line: &str) {
        // Failures are counted by the sink and reported by `check_health` after the batch.
        let _ = self.sink.write_line(line);
    }
    fn flush(&mut self) {
        let _ = self.sink.flush();
        self.check_health(&FILE_STATS);
    }
    fn reopen(&mut self) {
        let _ = self.sink.reopen();
    }
}
