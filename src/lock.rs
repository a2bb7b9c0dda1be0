//! The data directory lock: `<data>/sluice.lock`, held exclusively by the server for its whole
//! life and by `sluice restore` while it swaps the database. It keeps two servers off one
//! database and a restore away from a running server. The kernel drops the lock when the
//! process exits, however it exits, so a crash never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "sluice.lock";

/// Held until dropped.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another sluice process{holder} is using {dir} (it holds {path}); stop it first (e.g. `systemctl stop sluice`)"
    )]
    Held {
        dir: String,
        path: String,
        holder: String,
    },
    #[error("cannot lock {path}: {source}; check that the data directory is writable by this user")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DataLock {
    /// Takes the lock without waiting, creating the directory and the file if needed, and
    /// writes this process id into it (for the message another process shows).
    pub fn acquire(data_dir: &Path) -> Result<DataLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: data_dir.display().to_string(),
                    path: path.display().to_string(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // The pid is only a hint for the message above; failing to write it is harmless.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(DataLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        let first = DataLock::acquire(&d).unwrap();
        let err = DataLock::acquire(&d).unwrap_err().to_string();
        assert!(err.contains("stop it first"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(DataLock::acquire(&d).is_ok());
    }
}
