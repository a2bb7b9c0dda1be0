//! WAL checkpoints on a thread of their own, so no commit pays for one.
//!
//! With SQLite's automatic checkpoint, the commit that crosses the WAL size limit copies the
//! WAL into the main file and syncs it before it returns: every thousandth commit or so, a
//! caller waited milliseconds (the p99 of a single connection's requests). Here a second
//! connection runs a PASSIVE checkpoint twice a second, which never blocks the writer or the
//! readers; the writer keeps a large automatic limit only as a backstop should this thread
//! fall behind. The thread runs at the lowest CPU priority, `SCHED_IDLE` (see
//! `os::lower_this_thread_priority`): copying pages is never urgent, and at normal priority a
//! pass held the one core sluice may have for milliseconds while calls waited (the slowest calls
//! of a single connection, issue 15); at nice 19 a pass that woke still preempted a request
//! thread now and then and held the core for up to 1.8 ms.
//!
//! Copying is not enough for the WAL to start over: SQLite rewinds it only when a write
//! transaction begins with every frame already copied, and under steady writes the writer
//! always added frames while a pass ran. The WAL then grew to the writer's backstop, whose
//! checkpoint copied 64 MiB and synced twice inside one commit (6–8 ms the pair: the slowest call
//! of a single connection, every ~8 s). So the two take turns: once the WAL holds
//! [`TURN_AT_BYTES`] of frames, this thread copies it (off the writer's path) and a second
//! pass copies what came meanwhile, then asks the writer for its turn; between two batches the
//! writer copies the few frames left (short: little to copy and to sync), and its next
//! transaction starts the WAL over. The writer's automatic checkpoint stays as a backstop at
//! four times the turn's size (`pragmas::WAL_BACKSTOP_BYTES`); when it was 16,384 frames, 1 KiB
//! pages made it the turn's size and it fired first, every time.

use super::StoreError;
use super::pragmas;
use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);
/// The WAL's size from which the writer is asked to take its turn. Counted in bytes, not
/// frames: a turn costs the writer two syncs (~2 ms on a cloud disk), so its cadence should
/// follow what was written, whatever the page size (4,096 frames of 4 KiB pages; 16,384 of 1 KiB).
pub const TURN_AT_BYTES: i64 = 16 << 20;

pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    passes: Arc<Passes>,
    db_file: Arc<File>,
}

/// Checkpoint attempts made so far, with a condition variable to wait on.
#[derive(Default)]
struct Passes {
    count: Mutex<u64>,
    changed: Condvar,
    /// Set when the WAL is long and copied: the writer's turn (see the module's doc).
    writer_turn: AtomicBool,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        Self::start_with(path, None)
    }

    /// [`Checkpointer::start`] with the writer's turn asked for from `turn_at` frames
    /// (`None`: [`TURN_AT_BYTES`] in this database's pages).
    pub fn start_with(path: &Path, turn_at: Option<i64>) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        pragmas::apply(&conn)?;
        let turn_at = match turn_at {
            Some(frames) => frames,
            None => pragmas::wal_frames(&conn, TURN_AT_BYTES)?,
        };
        let db_file = Arc::new(File::open(path)?);
        let (tx, rx) = mpsc::channel::<()>();
        let passes = Arc::new(Passes::default());
        let (p, f) = (passes.clone(), db_file.clone());
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &rx, &p, turn_at, &f))?;
        Ok(Checkpointer {
            stop: Some(tx),
            thread: Some(thread),
            passes,
            db_file,
        })
    }

    /// The descriptor of the database file this thread syncs before the writer's turn. Closing
    /// any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    /// included (SQLite's own descriptors are closed only once no connection needs them): so
    /// each owner of connections to the file keeps a clone until its connections are closed,
    /// and the last of them closes it.
    pub fn db_file(&self) -> Arc<File> {
        self.db_file.clone()
    }

    /// True once after this thread asked for the writer's turn: the writer then checkpoints on
    /// its own connection between two batches, so its next transaction starts the WAL over.
    pub fn take_writer_turn(&self) -> bool {
        self.passes.writer_turn.swap(false, Ordering::AcqRel)
    }

    /// Waits until `n` more checkpoint attempts have finished, at most `timeout`; false if
    /// they did not.
    pub fn wait_for_passes(&self, n: u64, timeout: Duration) -> bool {
        let mut count = self.passes.count.lock();
        let target = *count + n;
        let deadline = std::time::Instant::now() + timeout;
        while *count < target {
            if self
                .passes
                .changed
                .wait_until(&mut count, deadline)
                .timed_out()
            {
                return *count >= target;
            }
        }
        true
    }

    /// Ends the thread (after the checkpoint in progress, if any).
    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    conn: &Connection,
    stop: &mpsc::Receiver<()>,
    passes: &Passes,
    turn_at: i64,
    db_file: &File,
) {
    // Said once at start: under the hardened unit both were refused until its system-call
    // filter let them through, and nothing showed it.
    match crate::os::lower_this_thread_priority() {
        Ok(crate::os::Lowered::Idle) => {}
        Ok(crate::os::Lowered::Nice) => log::info!(
            "WAL checkpoints run at nice 19 (SCHED_IDLE refused): a pass may still delay a call"
        ),
        Err(e) => {
            log::warn!("WAL checkpoints keep the normal CPU priority ({e}): a pass may delay calls")
        }
    }
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(EVERY) {
        let pass = pragmas::checkpoint_passive(conn).and_then(|f| {
            if f.logged < turn_at {
                return Ok(f);
            }
            // The writer's turn ends with a sync of the main file, which would write every
            // page the passes copied since the WAL last started over: this thread syncs them
            // first (the turn took 2.9–3.0 ms on average with 16 MiB of WAL in 1 KiB pages,
            // 0.9–1.1 ms after; docs/performance.md). A failure leaves it to the turn.
            if let Err(e) = db_file.sync_data() {
                log::debug!("syncing the database file before the writer's turn failed: {e}");
            }
            // The writer went on adding frames while this pass copied; a second pass copies
            // those, so the writer's turn has only what comes during this one.
            let again = pragmas::checkpoint_passive(conn)?;
            passes.writer_turn.store(true, Ordering::Release);
            Ok(again)
        });
        match pass {
            Ok(_) if failing => {
                log::info!("WAL checkpoints work again");
                failing = false;
            }
            Ok(_) => {}
            // Logged once per failing spell, not twice a second.
            Err(e) if !failing => {
                log::warn!("WAL checkpoint failed: {e}; the writer's own checkpoints take over");
                failing = true;
            }
            Err(_) => {}
        }
        *passes.count.lock() += 1;
        passes.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value and the scheduling policy of each thread of this process named `comm`.
    fn priority_of_threads(comm: &str) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let dir = task.path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if name.trim_end() != comm {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            // Fields after the command name's closing parenthesis (the 3rd on); nice is the
            // 19th field and the policy the 41st (proc_pid_stat(5)).
            let rest: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |r| r.1)
                .split_whitespace()
                .collect();
            let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse().ok());
            if let (Some(nice), Some(policy)) = (field(19), field(41)) {
                out.push((nice, policy));
            }
        }
        out
    }

    #[test]
    fn the_checkpoint_thread_runs_at_the_lowest_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.db");
        let conn = Connection::open(&path).unwrap();
        pragmas::enable_wal(&conn).unwrap();
        let c = Checkpointer::start(&path).unwrap();
        assert!(c.wait_for_passes(1, Duration::from_secs(10)), "no pass");
        // Thread names are cut to 15 bytes.
        let threads = priority_of_threads("sqlite-checkpoi");
        assert!(!threads.is_empty(), "no checkpoint thread found");
        // SCHED_IDLE is policy 5: at nice 19 alone a pass still preempted request threads.
        assert!(
            threads
                .iter()
                .all(|&t| t == (i64::from(crate::os::BACKGROUND_NICE), 5)),
            "(nice, policy) of each: {threads:?}"
        );
    }

    /// A writer's connection over a new file (in sluice's page size) with a table `t`.
    fn writer_over_a_new_file(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        pragmas::set_page_size(&conn).unwrap();
        pragmas::enable_wal(&conn).unwrap();
        pragmas::apply_writer(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")
            .unwrap();
        conn
    }

    /// Commits `rows` rows of 4,000 bytes in one transaction.
    fn commit_rows(conn: &Connection, rows: usize) {
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..rows {
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }

    /// The writer's automatic checkpoint is a backstop behind the writer's turn, in bytes: as
    /// 16,384 frames it fired at 16 MiB of 1 KiB pages, the turn's own size, so it came first
    /// every time and synced half a second of WAL inside a waiting call's commit (3.5–5.7 ms,
    /// every ~2.5 s at one connection; docs/performance.md).
    #[test]
    fn the_writer_leaves_a_wal_of_the_turns_size_to_the_turn_in_1_kib_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let conn = writer_over_a_new_file(&path);
        assert_eq!(pragmas::page_size(&conn).unwrap(), 1024);
        let db_before = std::fs::metadata(&path).unwrap().len();
        // 180 commits of 100 KB: 18 MB of rows, past the turn's 16 MiB of WAL.
        for _ in 0..180 {
            commit_rows(&conn, 25);
        }
        let wal = std::fs::metadata(dir.path().join("b.db-wal"))
            .unwrap()
            .len();
        assert!(wal > TURN_AT_BYTES as u64, "the WAL holds {wal} bytes");
        // No checkpoint copied anything into the main file: the turn is still to come.
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            db_before,
            "the writer's own checkpoint fired before the turn"
        );
    }

    #[test]
    fn commits_reach_the_main_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        // The writer's own automatic checkpoint cannot fire for this little WAL.
        let conn = writer_over_a_new_file(&path);
        let c = Checkpointer::start(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        commit_rows(&conn, 50);
        // Two passes: the first may have started before the commit.
        assert!(
            c.wait_for_passes(2, Duration::from_secs(10)),
            "no checkpoint ran"
        );
        assert!(
            std::fs::metadata(&path).unwrap().len() > before + 100_000,
            "the checkpoint did not copy the rows into the main file"
        );
    }
}
