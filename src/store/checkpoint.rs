//! WAL checkpoints on a thread of their own, so no commit pays for one.
//!
//! With SQLite's automatic checkpoint, the commit that crosses the WAL size limit copies the
//! WAL into the main file and syncs it before it returns: every thousandth commit or so, a
//! caller waited milliseconds (the p99 of a single connection's requests). Here a second
//! connection runs a PASSIVE checkpoint twice a second, which never blocks the writer or the
//! readers; the writer keeps a large automatic limit only as a backstop should this thread
//! fall behind.

use super::{StoreError, pragmas};
use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(500);

pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    passes: Arc<Passes>,
}

/// Checkpoint attempts made so far, with a condition variable to wait on.
#[derive(Default)]
struct Passes {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        pragmas::apply(&conn)?;
        let (tx, rx) = mpsc::channel::<()>();
        let passes = Arc::new(Passes::default());
        let p = passes.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &rx, &p))?;
        Ok(Checkpointer {
            stop: Some(tx),
            thread: Some(thread),
            passes,
        })
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

fn run(conn: &Connection, stop: &mpsc::Receiver<()>, passes: &Passes) {
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(EVERY) {
        match pragmas::checkpoint_passive(conn) {
            Ok(()) if failing => {
                log::info!("WAL checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
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

    #[test]
    fn commits_reach_the_main_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let conn = Connection::open(&path).unwrap();
        pragmas::enable_wal(&conn).unwrap();
        // The writer's own automatic checkpoint cannot fire for this little WAL.
        pragmas::apply_writer(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")
            .unwrap();
        let c = Checkpointer::start(&path).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..50 {
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
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
