//! `sluice backup [--out FILE]`, `sluice restore FILE [--yes]` and `sluice compact`.

use super::{compact, files, restore};
use crate::config::Config;
use crate::lock::DataLock;
use crate::store::online_copy::{self as copy, BackupInfo};
use anyhow::{Context, bail};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Copies the database, which a running server may be writing, into `out` or the backups
/// directory. Fails when the copy fails its integrity check (the copy is kept for inspection).
pub fn backup(config: &Config, out: Option<&Path>, stdout: &mut impl Write) -> anyhow::Result<()> {
    let db = config.database_path();
    if !db.is_file() {
        bail!(
            "no database at {}: point --data-dir or --database at the server's",
            db.display()
        );
    }
    let src = copy::open_source(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let at = chrono::Utc::now();
    let (path, info) = match out {
        Some(out) => {
            let dir = out
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut snap =
                copy::snapshot(&src, dir).with_context(|| format!("copying {}", db.display()))?;
            drop(src);
            snap.install(out).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                    "{} already exists: remove it or choose another --out",
                    out.display()
                ),
                _ => anyhow::anyhow!("cannot write {}: {e}", out.display()),
            })?;
            let info = BackupInfo {
                name: out.display().to_string(),
                bytes: snap.bytes,
                created_at: at.timestamp(),
                integrity: snap.integrity.clone(),
                schema_version: snap.schema_version,
            };
            (out.to_path_buf(), info)
        }
        None => {
            let dir = super::backups_dir(&config.data_dir);
            let snap =
                copy::snapshot(&src, &dir).with_context(|| format!("copying {}", db.display()))?;
            drop(src);
            let info = files::install(snap, &dir, at)
                .with_context(|| format!("writing into {}", dir.display()))?;
            (dir.join(&info.name), info)
        }
    };
    writeln!(
        stdout,
        "backup: {}\nbytes: {}\nintegrity: {}\nschema version: {}",
        path.display(),
        info.bytes,
        info.integrity,
        info.schema_version
    )?;
    if info.integrity != "ok" {
        bail!(
            "the copy {} failed its integrity check (kept for inspection); the live database may be damaged",
            path.display()
        );
    }
    Ok(())
}

/// Restores `file` as the database. Refuses while a server holds the data directory; asks
/// before replacing anything unless `yes`.
pub fn restore(
    config: &Config,
    file: &Path,
    yes: bool,
    stdin: &mut impl BufRead,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    let _lock = DataLock::acquire(&config.data_dir)?;
    let db = config.database_path();
    let prepared = restore::prepare(file, &db)?;
    writeln!(
        stdout,
        "checked {}: integrity ok, schema version {} (this sluice knows {}), {} bytes",
        file.display(),
        prepared.schema_version,
        crate::store::migrate::latest_version(),
        prepared.bytes
    )?;
    if !yes {
        write!(
            stdout,
            "replace {} with it? The current database is moved aside, not deleted. [y/N] ",
            db.display()
        )?;
        stdout.flush()?;
        let mut answer = String::new();
        stdin.read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            bail!("restore cancelled; nothing was changed");
        }
    }
    let done = prepared.install(chrono::Utc::now())?;
    match done.moved_aside.split_first() {
        Some((main, rest)) => {
            let extra: Vec<String> = rest.iter().map(|p| display_name(p)).collect();
            writeln!(
                stdout,
                "moved the previous database aside to {}{}",
                main.display(),
                if extra.is_empty() {
                    String::new()
                } else {
                    format!(" (with {})", extra.join(", "))
                }
            )?;
        }
        None => writeln!(stdout, "there was no database at {}", db.display())?,
    }
    writeln!(
        stdout,
        "restored {} as {}; start sluice to serve it{}",
        file.display(),
        done.database.display(),
        if done.schema_version < crate::store::migrate::latest_version() {
            " (its schema is older: migrations run at start)"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// Rewrites the database in sluice's page size (see [`compact`]). Refuses while a server holds
/// the data directory.
pub fn compact(config: &Config, stdout: &mut impl Write) -> anyhow::Result<()> {
    let _lock = DataLock::acquire(&config.data_dir)?;
    let db = config.database_path();
    let done = compact::compact(&db, chrono::Utc::now())?;
    writeln!(
        stdout,
        "compacted {}: {}-byte pages, {} bytes (was {}-byte pages, {} bytes)",
        db.display(),
        done.page_size_after,
        done.bytes_after,
        done.page_size_before,
        done.bytes_before
    )?;
    if let Some(old) = done.moved_aside.first() {
        writeln!(
            stdout,
            "the previous database is at {}; delete it once sluice runs well on the new one",
            old.display()
        )?;
    }
    Ok(())
}

fn display_name(p: &Path) -> String {
    p.file_name()
        .map(PathBuf::from)
        .unwrap_or_default()
        .display()
        .to_string()
}
