//! Operator commands that work on the database file directly (`sluice reconcile`,
//! `sluice gen-logs`). The server need not be stopped for `reconcile`: it reads one snapshot
//! through a read-only connection, which WAL lets run beside the server's writer.

use crate::config::Config;
use crate::store::{self, Store, reconcile};
use rusqlite::{Connection, OpenFlags};

/// Opens the database read-only, refusing one older than this binary's schema (the server
/// migrates at start; `sluice migrate` does it by hand).
fn open_read_only(config: &Config) -> anyhow::Result<Connection> {
    let path = config.database_path();
    if !path.exists() {
        anyhow::bail!(
            "no database at {}; check --data-dir / --database",
            path.display()
        );
    }
    let mut conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (have, want) = (
        store::migrate::current_version(&mut conn)?,
        store::migrate::latest_version(),
    );
    if have < want {
        anyhow::bail!(
            "the database is at schema version {have}, this sluice expects {want}: run `sluice migrate` (or start the server) first"
        );
    }
    Ok(conn)
}

/// `sluice reconcile`: prints the report; `Ok(false)` when anything differs.
pub fn reconcile(config: &Config, as_json: bool) -> anyhow::Result<bool> {
    let conn = open_read_only(config)?;
    let report = reconcile::run(&conn)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} users and {} keys against the log rows",
            report.users_checked, report.keys_checked
        );
        if report.is_clean() {
            println!("clean: every balance and used quota matches its rows");
        }
        for d in &report.differences {
            println!(
                "DIFFERENCE {} {} ({:?}) {}: stored {} but the log rows give {} (off by {})",
                d.account,
                d.id,
                d.name,
                d.field,
                d.stored,
                d.from_logs,
                d.stored - d.from_logs
            );
        }
    }
    Ok(report.is_clean())
}

/// `sluice gen-logs`: synthetic rows for measuring log queries (see [`crate::store::synthetic`]).
pub fn gen_logs(config: &Config, spec: &crate::store::synthetic::Spec) -> anyhow::Result<()> {
    let store = Store::open(&config.database_path())?;
    // A fresh database gets its root account first, as `serve` would give it.
    crate::app::ensure_root(&store, config)?;
    let started = std::time::Instant::now();
    let mut next_report = 0;
    crate::store::synthetic::generate(&store, spec, |written| {
        if written >= next_report {
            eprintln!("gen-logs: {written} / {} rows", spec.rows);
            next_report = written + (spec.rows / 10).max(1);
        }
    })?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(store.writer.shutdown())?;
    println!(
        "wrote {} log rows over {} days into {} in {:.1} s",
        spec.rows,
        spec.days,
        config.database_path().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
