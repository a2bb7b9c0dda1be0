//! The backups directory: names, sidecars, listing and pruning.
//!
//! A backup is `sluice-YYYYMMDD-HHMMSS.db` (UTC, the time the copy began) with a sidecar
//! `sluice-YYYYMMDD-HHMMSS.json` holding the integrity result. When a second backup starts in
//! the same second it is `sluice-YYYYMMDD-HHMMSS-1.db`, then `-2`, and so on.

use crate::store::StoreError;
use crate::store::online_copy::{self, BackupInfo, Snapshot, TMP_PREFIX};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

const NAME_FORMAT: &str = "%Y%m%d-%H%M%S";
/// Same-second names tried before giving up (a name is taken only by a finished backup).
const MAX_SEQ: u32 = 999;
/// Temporary files older than this are leftovers of a crash, not a copy in progress.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

/// The file name for a backup begun at `at`, `seq`-th in its second (0 = first).
pub fn file_name(at: DateTime<Utc>, seq: u32) -> String {
    let stamp = at.format(NAME_FORMAT);
    if seq == 0 {
        format!("sluice-{stamp}.db")
    } else {
        format!("sluice-{stamp}-{seq}.db")
    }
}

/// Parses a name [`file_name`] makes: (Unix seconds, seq). Anything else is `None`, which is
/// how the download route refuses traversal and other files.
pub fn parse_name(name: &str) -> Option<(i64, u32)> {
    // ASCII only, so the byte slicing below is always on character boundaries.
    if !name.is_ascii() {
        return None;
    }
    let core = name.strip_prefix("sluice-")?.strip_suffix(".db")?;
    let (stamp, seq) = match core.len() {
        15 => (core, 0),
        n if n > 16 && core.as_bytes()[15] == b'-' => {
            let s = &core[16..];
            let canonical =
                s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
            if !canonical {
                return None;
            }
            (&core[..15], s.parse().ok()?)
        }
        _ => return None,
    };
    let b = stamp.as_bytes();
    let shape = b[8] == b'-'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(stamp, NAME_FORMAT).ok()?;
    Some((t.and_utc().timestamp(), seq))
}

fn sidecar_name(name: &str) -> String {
    format!("{}.json", name.trim_end_matches(".db"))
}

/// What the sidecar keeps: the results only known at backup time.
#[derive(Serialize, Deserialize)]
struct Sidecar {
    integrity: String,
    schema_version: i32,
    created_at: i64,
}

/// Installs `snap` in `dir` under the first free standard name for `at`, writes its sidecar
/// and returns what was made.
pub fn install(
    mut snap: Snapshot,
    dir: &Path,
    at: DateTime<Utc>,
) -> Result<BackupInfo, StoreError> {
    for seq in next_seq(dir, at.timestamp())?..=MAX_SEQ {
        let name = file_name(at, seq);
        match snap.install(&dir.join(&name)) {
            Ok(()) => {
                let info = BackupInfo {
                    name,
                    bytes: snap.bytes,
                    created_at: at.timestamp(),
                    integrity: snap.integrity.clone(),
                    schema_version: snap.schema_version,
                };
                write_sidecar(dir, &info)?;
                return Ok(info);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Io(io::Error::other(format!(
        "{} backups already exist for this second",
        MAX_SEQ + 1
    ))))
}

/// The first seq after every backup of second `t` in `dir`: a name freed by pruning is not
/// reused, or the newer backup would sort as the older one.
fn next_seq(dir: &Path, t: i64) -> io::Result<u32> {
    let mut next = 0;
    for entry in fs::read_dir(dir)? {
        if let Some((at, seq)) = entry?.file_name().to_str().and_then(parse_name)
            && at == t
        {
            next = next.max(seq + 1);
        }
    }
    Ok(next)
}

fn write_sidecar(dir: &Path, info: &BackupInfo) -> Result<(), StoreError> {
    let body = serde_json::to_vec(&Sidecar {
        integrity: info.integrity.clone(),
        schema_version: info.schema_version,
        created_at: info.created_at,
    })
    .map_err(io::Error::other)?;
    let name = sidecar_name(&info.name);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    fs::write(&tmp, body)?;
    fs::rename(&tmp, dir.join(&name)).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    online_copy::fsync_dir(dir)?;
    Ok(())
}

/// Backups in `dir`, newest first. A missing directory is an empty list; a backup without a
/// readable sidecar (copied in by hand) shows integrity `unknown`.
pub fn list(dir: &Path) -> io::Result<Vec<BackupInfo>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((created_at, seq)) = parse_name(&name) else {
            continue;
        };
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let side = fs::read(dir.join(sidecar_name(&name)))
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok());
        out.push((
            seq,
            BackupInfo {
                name,
                bytes: meta.len(),
                created_at,
                integrity: side
                    .as_ref()
                    .map_or_else(|| "unknown".into(), |s| s.integrity.clone()),
                schema_version: side.map_or(0, |s| s.schema_version),
            },
        ));
    }
    out.sort_unstable_by_key(|b| std::cmp::Reverse((b.1.created_at, b.0)));
    Ok(out.into_iter().map(|(_, i)| i).collect())
}

/// Keeps the newest `keep` backups (and their sidecars) and deletes the rest, with temporary
/// files a crash left behind. Touches no other file. Returns how many backups it deleted.
pub fn prune(dir: &Path, keep: usize) -> io::Result<usize> {
    let backups = list(dir)?;
    let mut deleted = 0;
    for old in backups.iter().skip(keep) {
        fs::remove_file(dir.join(&old.name))?;
        let _ = fs::remove_file(dir.join(sidecar_name(&old.name)));
        deleted += 1;
    }
    remove_stale_temps(dir)?;
    if deleted > 0 {
        online_copy::fsync_dir(dir)?;
        log::info!(
            "backups: pruned {deleted} old backup(s) in {}",
            dir.display()
        );
    }
    Ok(deleted)
}

fn remove_stale_temps(dir: &Path) -> io::Result<()> {
    let now = SystemTime::now();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let stale = entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP);
        if stale {
            log::info!(
                "backups: removing a stale temporary file {:?}",
                entry.file_name()
            );
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000 + s, 0).unwrap()
    }

    #[test]
    fn names_round_trip_and_are_strict() {
        for seq in [0, 1, 9, 10, 999] {
            let n = file_name(at(0), seq);
            assert_eq!(parse_name(&n), Some((at(0).timestamp(), seq)), "{n}");
        }
        assert_eq!(file_name(at(0), 0), "sluice-20261118-110640.db");
        for bad in [
            "",
            "sluice-20261117-202640",
            "sluice-20261117-202640.db.json",
            "sluice-20261117-202640.json",
            "sluice-20261117-202640-0.db",
            "sluice-20261117-202640-01.db",
            "sluice-20261117-202640-1000.db",
            "sluice-20261117-202640-.db",
            "sluice-20261117-202640-x.db",
            "sluice-20261317-202640.db",
            "sluice-20261117-252640.db",
            "sluice-2026111-2026401.db",
            "sluice-20261117+202640.db",
            "../sluice.db",
            "..%2Fsluice.db",
            "sluice-20261117-202640.db/../../x",
            "./sluice-20261117-202640.db",
            "sluice.db",
            "SLUICE-20261117-202640.db",
            "sluice-２0261117-202640.db",
        ] {
            assert!(parse_name(bad).is_none(), "{bad:?} accepted");
        }
    }

    fn fake(dir: &Path, name: &str, integrity: &str) {
        fs::write(dir.join(name), b"x").unwrap();
        let (t, _) = parse_name(name).unwrap();
        write_sidecar(
            dir,
            &BackupInfo {
                name: name.into(),
                bytes: 1,
                created_at: t,
                integrity: integrity.into(),
                schema_version: 2,
            },
        )
        .unwrap();
    }

    #[test]
    fn list_is_newest_first_with_same_second_order_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (s, seq) in [(0, 0), (5, 0), (5, 1), (5, 2), (9, 0)] {
            fake(d, &file_name(at(s), seq), "ok");
        }
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        fs::write(d.join(format!("{TMP_PREFIX}fresh.db")), b"in progress").unwrap();
        fs::write(d.join(file_name(at(1), 0)), b"no sidecar").unwrap();
        let names: Vec<String> = list(d).unwrap().into_iter().map(|b| b.name).collect();
        let want: Vec<String> = [(9, 0), (5, 2), (5, 1), (5, 0), (1, 0), (0, 0)]
            .iter()
            .map(|(s, q)| file_name(at(*s), *q))
            .collect();
        assert_eq!(names, want);
        assert_eq!(list(d).unwrap()[4].integrity, "unknown");
        assert_eq!(prune(d, 3).unwrap(), 3);
        let left: Vec<String> = list(d).unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(left, want[..3]);
        // sidecars of pruned backups go too; other files and fresh temporaries stay
        assert!(!d.join(sidecar_name(&want[3])).exists());
        assert!(d.join(sidecar_name(&want[0])).exists());
        assert!(d.join("notes.txt").exists());
        assert!(d.join(format!("{TMP_PREFIX}fresh.db")).exists());
    }

    #[test]
    fn list_of_a_missing_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("none")).unwrap().is_empty());
    }
}
