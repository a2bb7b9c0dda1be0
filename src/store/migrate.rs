//! Schema migrations, embedded at compile time from `schema/` (append-only files).

use super::StoreError;
use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("schema");
}

/// Brings the database to the newest schema. All pending migrations run in one transaction, so
/// a failure leaves the database exactly as it was (the previous sluice version still runs on
/// it) and the error names the migration that failed.
pub fn run(conn: &mut Connection) -> Result<(), StoreError> {
    let from = current_version(conn)?;
    let report = match embedded::migrations::runner().set_grouped(true).run(conn) {
        Ok(r) => r,
        Err(e) => return Err(explain_failure(conn, from, &e)),
    };
    for m in report.applied_migrations() {
        log::info!("applied migration {}", m);
    }
    Ok(())
}

/// Turns a failed grouped run into an error that names the culprit. refinery reports only
/// "error applying migrations" for a group, so the pending migrations are replayed one by one
/// in a transaction that is always rolled back; the first that fails is the one to name.
fn explain_failure(conn: &mut Connection, from: i32, err: &refinery::Error) -> StoreError {
    let mut pending: Vec<_> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .filter(|m| m.version() > from)
        .cloned()
        .collect();
    pending.sort_by_key(|m| m.version());
    let culprit = conn.transaction().ok().and_then(|tx| {
        // Dropping `tx` rolls the replay back.
        pending.iter().find_map(|m| {
            let sql = m.sql()?;
            tx.execute_batch(sql)
                .err()
                .map(|e| (m.to_string(), sqlite_message(e)))
        })
    });
    let (migration, detail) = culprit.unwrap_or_else(|| {
        let names: Vec<String> = pending.iter().map(ToString::to_string).collect();
        (names.join(", "), format!("{err:#}"))
    });
    StoreError::MigrationFailed {
        at: from,
        migration,
        detail,
    }
}

/// SQLite's own words ("table x already exists"), without the whole migration's SQL that
/// rusqlite appends to a syntax-level error.
fn sqlite_message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, offset, .. } => format!("{msg} (at byte {offset})"),
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg,
        other => other.to_string(),
    }
}

/// Brings the database to exactly `version` (tests use this to make an older database).
pub fn run_to(conn: &mut Connection, version: i32) -> Result<(), StoreError> {
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .set_grouped(true)
        .run(conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(())
}

/// The newest schema version this binary knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// The version recorded in the database (0 when none: a new file, or not a sluice file).
pub fn current_version(conn: &mut Connection) -> Result<i32, StoreError> {
    // A new database has no history table yet, and refinery's query would fail on it.
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    if !has_history {
        return Ok(0);
    }
    let last = embedded::migrations::runner()
        .get_last_applied_migration(conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(last.map(|m| m.version()).unwrap_or(0))
}
