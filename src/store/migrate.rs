//! Schema migrations, embedded at compile time from `schema/` (append-only files).

use super::StoreError;
use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("schema");
}

/// Brings the database to the newest schema. Each migration runs in its own transaction, so a
/// failure leaves the database at the last good version.
pub fn run(conn: &mut Connection) -> Result<(), StoreError> {
    let report = embedded::migrations::runner()
        .run(conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    for m in report.applied_migrations() {
        log::info!("applied migration {}", m);
    }
    Ok(())
}

/// Brings the database to exactly `version` (tests use this to make an older database).
pub fn run_to(conn: &mut Connection, version: i32) -> Result<(), StoreError> {
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
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

/// The version recorded in the database (0 when none).
pub fn current_version(conn: &mut Connection) -> Result<i32, StoreError> {
    let last = embedded::migrations::runner()
        .get_last_applied_migration(conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(last.map(|m| m.version()).unwrap_or(0))
}
