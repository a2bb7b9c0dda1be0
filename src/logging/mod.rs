//! Leveled logging through fern, to stdout/stderr and a rotating log file.
//!
//! Line shape: `[INFO] 2026/11/26 - 14:33:18 | <request id or SYSTEM> | message`.
//! INFO goes to stdout, WARN/ERR/DEBUG to stderr, and every line also to the log file
//! (`<dir>/sluice-YYYYMMDD-HHMMSS.log`, see [`mod@file`]) when one is configured. System lines
//! (`[SYS] <time> | message`: start-up, config summary, shutdown) go to stdout and the file;
//! `[FATAL] <time> | message` goes to stderr and the file, then the process exits with 1.
//!
//! Lines are formatted on the calling thread and handed over a channel to one writer thread per
//! destination, so no async worker ever blocks on a pipe or a disk. A line is always one physical
//! line: newlines inside a message are written as `\n`.
//!
//! The request id comes from a tokio task-local set by the server for each request (and carried
//! into the tasks a request spawns), so every line a request causes carries its id — panics too,
//! once [`install_panic_hook`] has run.
//!
//! DEBUG lines can be switched on and off at run time with [`set_debug`]; the dispatch is always
//! built at DEBUG and gated by `log::set_max_level`.

pub mod file;
mod file_out;

pub use file::{FileSink, Limits};
use file_out::FileOut;
pub use file_out::{FILE_STATS, FileStats};

use std::any::Any;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// What a writer thread receives.
pub(crate) enum Msg {
    /// One whole line, without its newline.
    Line(String),
    /// Write out everything received before, then answer.
    Flush(mpsc::SyncSender<()>),
    /// Close the file and start a new one (no-op for stdout/stderr).
    Reopen,
}

struct Sinks {
    out: mpsc::Sender<Msg>,
    err: mpsc::Sender<Msg>,
    file: Option<mpsc::Sender<Msg>>,
}

static SINKS: OnceLock<Sinks> = OnceLock::new();

tokio::task_local! {
    /// The ULID of the request the current task works for.
    pub static REQUEST_ID: String;
}

/// The current task's request id, or `SYSTEM` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "SYSTEM".to_string())
}

fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "ERR",
        log::Level::Warn => "WARN",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
}

pub(crate) fn now_stamp() -> impl std::fmt::Display {
    chrono::Local::now().format("%Y/%m/%d - %H:%M:%S")
}

/// Keeps a line one physical line: CR and LF inside it are written as `\r` and `\n`.
fn one_line(line: String) -> String {
    if line.contains(['\n', '\r']) {
        line.replace('\r', "\\r").replace('\n', "\\n")
    } else {
        line
    }
}

/// How to log: DEBUG or not, and where the log files go (`dir: None`: no files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    pub debug: bool,
    pub dir: Option<PathBuf>,
    pub max_lines: u64,
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for LogOptions {
    /// stdout/stderr only, INFO and up; the file limits are the configuration defaults.
    fn default() -> Self {
        LogOptions {
            debug: false,
            dir: None,
            max_lines: 1_000_000,
            max_bytes: 100 * 1024 * 1024,
            keep: 10,
        }
    }
}

impl LogOptions {
    /// The options the configuration asks for (`log` section, `debug`).
    pub fn from_config(c: &crate::config::Config) -> Self {
        LogOptions {
            debug: c.debug,
            dir: c.log_dir(),
            max_lines: c.log.max_lines,
            max_bytes: c.log.max_bytes,
            keep: c.log.keep,
        }
    }
}

/// `init(debug)`: stdout/stderr only (the former signature).
impl From<bool> for LogOptions {
    fn from(debug: bool) -> Self {
        LogOptions {
            debug,
            ..LogOptions::default()
        }
    }
}

impl From<&LogOptions> for LogOptions {
    fn from(o: &LogOptions) -> Self {
        o.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("logging is already initialised")]
    AlreadyInitialised,
    #[error(
        "cannot open a log file in {}: {source}; set log.dir (SLUICE_LOG_DIR) to a writable directory, or turn log files off with log.files = false (SLUICE_LOG_FILES=false)",
        dir.display()
    )]
    LogDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start a logging thread: {0}")]
    Thread(std::io::Error),
}

/// Installs the global logger. Call once, from `main`. Takes `&LogOptions` (or a `bool`: DEBUG
/// on/off, no files). The first log file is opened here, so a bad directory fails start-up.
pub fn init(opts: impl Into<LogOptions>) -> Result<(), InitError> {
    let opts: LogOptions = opts.into();
    if SINKS.get().is_some() {
        return Err(InitError::AlreadyInitialised);
    }
    let file_sink = match &opts.dir {
        None => None,
        Some(dir) => {
            let limits = Limits {
                max_lines: opts.max_lines,
                max_bytes: opts.max_bytes,
                keep: opts.keep,
            };
            Some(
                FileSink::open(dir, limits).map_err(|source| InitError::LogDir {
                    dir: dir.clone(),
                    source,
                })?,
            )
        }
    };
    let (out_tx, out_rx) = mpsc::channel::<Msg>();
    let (err_tx, err_rx) = mpsc::channel::<Msg>();
    spawn_sink("log-stdout", out_rx, Stdio::new(std::io::stdout())).map_err(InitError::Thread)?;
    spawn_sink("log-stderr", err_rx, Stdio::new(std::io::stderr())).map_err(InitError::Thread)?;
    let file_tx = match file_sink {
        None => None,
        Some(sink) => {
            let (tx, rx) = mpsc::channel::<Msg>();
            let out = FileOut {
                sink,
                failing: false,
                report: err_tx.clone(),
            };
            spawn_sink("log-file", rx, out).map_err(InitError::Thread)?;
            Some(tx)
        }
    };
    let router = Router {
        out: out_tx.clone(),
        err: err_tx.clone(),
        file: file_tx.clone(),
    };
    if SINKS
        .set(Sinks {
            out: out_tx,
            err: err_tx,
            file: file_tx,
        })
        .is_err()
    {
        return Err(InitError::AlreadyInitialised);
    }

    fern::Dispatch::new()
        .format(|out, message, record| {
            let rid = REQUEST_ID.try_with(|id| id.clone());
            let rid = rid.as_deref().unwrap_or("SYSTEM");
            out.finish(format_args!(
                "[{}] {} | {} | {}",
                level_name(record.level()),
                now_stamp(),
                rid,
                message
            ))
        })
        // Built at DEBUG; what passes is decided by `log::set_max_level` (see `set_debug`).
        .level(log::LevelFilter::Debug)
        // Dependencies are noisy at DEBUG; keep their INFO+ only.
        .level_for("hyper", log::LevelFilter::Info)
        .level_for("hyper_util", log::LevelFilter::Info)
        .level_for("rustls", log::LevelFilter::Warn)
        .level_for("refinery_core", log::LevelFilter::Warn)
        .chain(Box::new(router) as Box<dyn log::Log>)
        .apply()
        .map_err(|_| InitError::AlreadyInitialised)?;
    set_debug(opts.debug);
    Ok(())
}

/// Turns DEBUG lines on or off, effective at once on every thread.
pub fn set_debug(on: bool) {
    log::set_max_level(if on {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

/// Whether DEBUG lines are written now.
pub fn debug_enabled() -> bool {
    log::max_level() >= log::LevelFilter::Debug
}

/// Sends each formatted record to stdout (INFO) or stderr (the rest), and to the file.
struct Router {
    out: mpsc::Sender<Msg>,
    err: mpsc::Sender<Msg>,
    file: Option<mpsc::Sender<Msg>>,
}

fn send_line(to: &mpsc::Sender<Msg>, file: Option<&mpsc::Sender<Msg>>, line: String) {
    if let Some(f) = file {
        let _ = f.send(Msg::Line(line.clone()));
    }
    let _ = to.send(Msg::Line(line));
}

impl log::Log for Router {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let line = one_line(record.args().to_string());
        let to = if record.level() == log::Level::Info {
            &self.out
        } else {
            &self.err
        };
        send_line(to, self.file.as_ref(), line);
    }
    fn flush(&self) {}
}

/// Writes `[LEVEL] <time> | message` (no request id) to stdout or stderr, and the file.
fn emit_system(level: &str, msg: &str, stdout: bool) {
    let line = one_line(format!("[{level}] {} | {msg}", now_stamp()));
    match SINKS.get() {
        Some(s) => send_line(if stdout { &s.out } else { &s.err }, s.file.as_ref(), line),
        None if stdout => println!("{line}"),
        None => eprintln!("{line}"),
    }
}

/// A `[SYS]` line (start-up, config summary, shutdown): stdout and the log file.
pub fn sys(msg: &str) {
    emit_system("SYS", msg, true);
}

/// A `[FATAL]` line to stderr and the log file; then every sink is flushed and the process
/// exits with status 1.
pub fn fatal(msg: &str) -> ! {
    emit_system("FATAL", msg, false);
    flush();
    std::process::exit(1)
}

/// Closes the log file and starts a new one (for SIGHUP / logrotate). Callable from any thread,
/// async ones included: it only sends a message to the file's writer thread.
pub fn reopen() {
    if let Some(f) = SINKS.get().and_then(|s| s.file.as_ref()) {
        let _ = f.send(Msg::Reopen);
    }
}

/// Waits (at most a second) until every sink has written every line queued before this call.
pub fn flush() {
    let Some(sinks) = SINKS.get() else { return };
    let (tx, rx) = mpsc::sync_channel::<()>(3);
    let mut asked = 0;
    for s in [Some(&sinks.out), Some(&sinks.err), sinks.file.as_ref()]
        .into_iter()
        .flatten()
    {
        if s.send(Msg::Flush(tx.clone())).is_ok() {
            asked += 1;
        }
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(1);
    for _ in 0..asked {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            break;
        }
    }
}

/// Logs a panic as an ERR line (with the request id of the task it happened in, its location and
/// message) instead of the default stderr text. The process keeps running: tokio catches a panic
/// in a spawned task, and a panicking connection task just closes that connection. Panics in the
/// log writer threads themselves, or before `init`, go to the previous hook.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name();
        if SINKS.get().is_none() || name.is_some_and(|n| n.starts_with("log-")) {
            previous(info);
            return;
        }
        log::error!("{}", panic_message(name, info.location(), info.payload()));
    }));
}

/// `panic in thread 'NAME' at FILE:LINE:COL: MESSAGE`.
pub(crate) fn panic_message(
    thread: Option<&str>,
    location: Option<&std::panic::Location<'_>>,
    payload: &(dyn Any + Send),
) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string payload)");
    let at = location.map_or_else(|| "an unknown place".to_string(), |l| l.to_string());
    format!(
        "panic in thread '{}' at {at}: {msg}",
        thread.unwrap_or("<unnamed>")
    )
}

/// A destination a writer thread owns.
pub(crate) trait Sink: Send + 'static {
    fn line(&mut self, line: &str);
    fn flush(&mut self);
    fn reopen(&mut self) {}
}

struct Stdio<W: Write + Send + 'static>(std::io::BufWriter<W>);

impl<W: Write + Send + 'static> Stdio<W> {
    fn new(w: W) -> Self {
        Stdio(std::io::BufWriter::with_capacity(64 * 1024, w))
    }
}

impl<W: Write + Send + 'static> Sink for Stdio<W> {
    fn line(&mut self, line: &str) {
        let _ = self.0.write_all(line.as_bytes());
        let _ = self.0.write_all(b"\n");
    }
    fn flush(&mut self) {
        let _ = self.0.flush();
    }
}

/// Writes lines as they come and flushes whenever the queue runs dry. After each batch it
/// rests for [`BATCH_PAUSE`]: under load a wake-up (a context switch on the server's cores)
/// per line would cost more than the line itself, and a line still appears within about a
/// millisecond. Ends when every sender is gone.
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

fn spawn_sink<S: Sink>(
    name: &str,
    rx: mpsc::Receiver<Msg>,
    mut sink: S,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut acks = Vec::new();
                for msg in std::iter::once(first).chain(rx.try_iter().take(4096)) {
                    match msg {
                        Msg::Line(l) => sink.line(&l),
                        Msg::Flush(ack) => acks.push(ack),
                        Msg::Reopen => sink.reopen(),
                    }
                }
                sink.flush();
                for ack in acks {
                    let _ = ack.send(());
                }
                std::thread::sleep(BATCH_PAUSE);
            }
            sink.flush();
        })
}

#[cfg(test)]
mod tests;
