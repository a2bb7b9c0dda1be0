//! Leveled logging through fern.
//!
//! Line shape: `[INFO] 2026/11/26 - 14:33:18 | <request id or SYSTEM> | message`.
//! INFO goes to stdout, WARN/ERR/DEBUG to stderr. Lines are formatted on the calling thread and
//! handed to a dedicated writer thread over a channel, so no async worker ever blocks on a pipe.
//! The request id comes from a tokio task-local set by the server for each request (and carried
//! into the tasks a request spawns), so every line a request causes carries its id.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock, mpsc};
use std::time::Duration;

/// A line that asks a sink to flush and report back (never written).
const FLUSH_MARK: &str = "\u{0}flush\u{0}";

struct Sinks {
    senders: [mpsc::Sender<String>; 2],
    flushed: Arc<(Mutex<u64>, Condvar)>,
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

/// Installs the global logger. Call once, from `main`.
pub fn init(debug: bool) -> Result<(), log::SetLoggerError> {
    let (out_tx, out_rx) = mpsc::channel::<String>();
    let (err_tx, err_rx) = mpsc::channel::<String>();
    let flushed = Arc::new((Mutex::new(0u64), Condvar::new()));
    spawn_sink(
        "log-stdout",
        out_rx,
        || Box::new(std::io::stdout()),
        flushed.clone(),
    );
    spawn_sink(
        "log-stderr",
        err_rx,
        || Box::new(std::io::stderr()),
        flushed.clone(),
    );
    let _ = SINKS.set(Sinks {
        senders: [out_tx.clone(), err_tx.clone()],
        flushed,
    });

    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    fern::Dispatch::new()
        .format(|out, message, record| {
            let rid = REQUEST_ID.try_with(|id| id.clone());
            let rid = rid.as_deref().unwrap_or("SYSTEM");
            out.finish(format_args!(
                "[{}] {} | {} | {}",
                level_name(record.level()),
                chrono::Local::now().format("%Y/%m/%d - %H:%M:%S"),
                rid,
                message
            ))
        })
        .level(level)
        // Dependencies are noisy at DEBUG; keep their INFO+ only.
        .level_for("hyper", log::LevelFilter::Info)
        .level_for("hyper_util", log::LevelFilter::Info)
        .level_for("rustls", log::LevelFilter::Warn)
        .level_for("refinery_core", log::LevelFilter::Warn)
        .chain(
            fern::Dispatch::new()
                .filter(|m| m.level() == log::Level::Info)
                .chain(out_tx),
        )
        .chain(
            fern::Dispatch::new()
                .filter(|m| m.level() != log::Level::Info)
                .chain(err_tx),
        )
        .apply()
}

/// Writes lines as they come; flushes whenever the queue runs dry, so lines appear promptly
/// without a syscall per line under load.
fn spawn_sink(
    name: &str,
    rx: mpsc::Receiver<String>,
    open: fn() -> Box<dyn Write + Send>,
    flushed: Arc<(Mutex<u64>, Condvar)>,
) {
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, open());
            while let Ok(first) = rx.recv() {
                let mut acks = 0u64;
                for line in std::iter::once(first).chain(rx.try_iter().take(4096)) {
                    if line == FLUSH_MARK {
                        acks += 1;
                    } else {
                        // fern's sender output appends the newline itself.
                        let _ = w.write_all(line.as_bytes());
                    }
                }
                let _ = w.flush();
                if acks > 0 {
                    let (count, cv) = &*flushed;
                    if let Ok(mut c) = count.lock() {
                        *c += acks;
                        cv.notify_all();
                    }
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("cannot start the {name} thread: {e}");
    }
}

/// Waits (at most a second) until both sinks have written every line queued before this call.
pub fn flush() {
    let Some(sinks) = SINKS.get() else { return };
    let (count, cv) = &*sinks.flushed;
    let Ok(guard) = count.lock() else { return };
    let target = *guard + sinks.senders.len() as u64;
    for tx in &sinks.senders {
        let _ = tx.send(FLUSH_MARK.to_string());
    }
    let _ = cv.wait_timeout_while(guard, Duration::from_secs(1), |c| *c < target);
}
