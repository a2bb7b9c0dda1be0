//! Backups over the admin API: run one now, list, download, and a hot copy streamed straight
//! to the caller. Every action writes a manage row: a backup holds every secret the server
//! keeps (channel keys, password hashes), so who took one is part of the audit trail.

use super::manage_entry;
use crate::auth::Principal;
use crate::backup::BackupError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::download::attachment;
use crate::web::{Resp, json};
use http::StatusCode;

const SQLITE_TYPE: &str = "application/vnd.sqlite3";

fn backup_error(e: BackupError) -> ApiError {
    match e {
        BackupError::Busy => ApiError::Conflict(e.to_string()),
        BackupError::NotFound => ApiError::NotFound("no such backup".into()),
        BackupError::Integrity(_) => ApiError::Internal(e.to_string()),
        BackupError::Store(e) => ApiError::Store(e),
        BackupError::Io(e) => ApiError::Internal(format!("backup files: {e}")),
    }
}

fn join_error(e: tokio::task::JoinError) -> ApiError {
    ApiError::Internal(format!("the backup task failed: {e}"))
}

/// Records `what` as a manage row. No catalog reload: nothing the catalog holds changed.
async fn audit(state: &AppState, p: &Principal, what: String) -> Result<(), ApiError> {
    let entry = manage_entry(&p.user, what);
    state
        .store
        .writer
        .exec(move |c| crate::store::logs::insert(c, &entry).map(|_| ()))
        .await?;
    Ok(())
}

/// `POST /api/backups`: a backup now, with the same checks and pruning as the scheduled ones.
pub async fn create(state: &AppState, p: &Principal) -> Result<Resp, ApiError> {
    let b = state.backups.clone();
    let info = tokio::task::spawn_blocking(move || b.run())
        .await
        .map_err(join_error)?
        .map_err(backup_error)?;
    audit(
        state,
        p,
        format!("made backup {} (integrity {})", info.name, info.integrity),
    )
    .await?;
    Ok(json(StatusCode::CREATED, &info))
}

/// `GET /api/backups`: newest first.
pub async fn list(state: &AppState) -> Result<Resp, ApiError> {
    let b = state.backups.clone();
    let list = tokio::task::spawn_blocking(move || b.list())
        .await
        .map_err(join_error)?
        .map_err(backup_error)?;
    Ok(json(StatusCode::OK, &list))
}

/// `GET /api/backups/{name}`: only names the list produces; anything else is 404.
pub async fn download(state: &AppState, p: &Principal, name: &str) -> Result<Resp, ApiError> {
    let path = state.backups.path_of(name).map_err(backup_error)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::NotFound("no such backup".into()),
            _ => ApiError::Internal(format!("opening {}: {e}", path.display())),
        })?;
    // The length of the file we opened, not of whatever the path names later (pruning).
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("reading {}: {e}", path.display())))?
        .len();
    audit(state, p, format!("downloaded backup {name}")).await?;
    Ok(attachment(file, len, name, SQLITE_TYPE))
}

/// `GET /api/backup/hot-copy`: a checked snapshot of the live database, streamed. The copy is
/// made like a backup (one pass, integrity_check) while serving goes on, then streamed from a
/// file that no longer has a name.
pub async fn hot_copy(state: &AppState, p: &Principal) -> Result<Resp, ApiError> {
    let b = state.backups.clone();
    let hc = tokio::task::spawn_blocking(move || b.hot_copy())
        .await
        .map_err(join_error)?
        .map_err(backup_error)?;
    // Recorded once there is a copy to hand over; no row, no download.
    audit(
        state,
        p,
        format!("took a hot copy of the database ({} bytes)", hc.bytes),
    )
    .await?;
    let file = tokio::fs::File::from_std(hc.file);
    Ok(attachment(file, hc.bytes, &hc.name, SQLITE_TYPE))
}
