//! `notify_settings` and `notify_warnings`: a user's notification settings, and the
//! quota-warning de-duplication state. Plain rows; the `notify` module gives them meaning.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// One user's settings as stored. Secrets are plain here: the store hands them to the sender;
/// the API masks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsRow {
    pub user_id: i64,
    pub kind: Option<String>,
    pub threshold: Option<i64>,
    pub email: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub bark_url: Option<String>,
    pub gotify_url: Option<String>,
    pub gotify_token: Option<String>,
    pub gotify_priority: i64,
}

const COLUMNS: &str = "user_id, kind, threshold, email, webhook_url, webhook_secret, bark_url, \
                       gotify_url, gotify_token, gotify_priority";

fn settings_from(r: &Row) -> rusqlite::Result<SettingsRow> {
    Ok(SettingsRow {
        user_id: r.get(0)?,
        kind: r.get(1)?,
        threshold: r.get(2)?,
        email: r.get(3)?,
        webhook_url: r.get(4)?,
        webhook_secret: r.get(5)?,
        bark_url: r.get(6)?,
        gotify_url: r.get(7)?,
        gotify_token: r.get(8)?,
        gotify_priority: r.get(9)?,
    })
}

/// The user's settings, or `None` when they never saved any.
pub fn get(conn: &Connection, user_id: i64) -> Result<Option<SettingsRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM notify_settings WHERE user_id = ?1");
    Ok(conn.query_row(&sql, [user_id], settings_from).optional()?)
}

/// Every stored row (start-up: the in-memory thresholds).
pub fn all(conn: &Connection) -> Result<Vec<SettingsRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM notify_settings");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], settings_from)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Writes the whole row (the caller merged the change into the current row).
pub fn put(conn: &Connection, s: &SettingsRow, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO notify_settings (user_id, kind, threshold, email, webhook_url, webhook_secret,
                bark_url, gotify_url, gotify_token, gotify_priority, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (user_id) DO UPDATE SET
            kind = excluded.kind, threshold = excluded.threshold, email = excluded.email,
            webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
            bark_url = excluded.bark_url, gotify_url = excluded.gotify_url,
            gotify_token = excluded.gotify_token, gotify_priority = excluded.gotify_priority,
            updated_at = excluded.updated_at",
        params![
            s.user_id,
            s.kind,
            s.threshold,
            s.email,
            s.webhook_url,
            s.webhook_secret,
            s.bark_url,
            s.gotify_url,
            s.gotify_token,
            s.gotify_priority,
            now
        ],
    )?;
    Ok(())
}

/// The de-duplication state of one (subject, warning kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningRow {
    /// `user` or `key`.
    pub subject_type: String,
    pub subject_id: i64,
    pub kind: String,
    pub armed: bool,
    pub window_start: i64,
    pub sent_in_window: i64,
    pub last_sent_at: Option<i64>,
}

pub fn warnings(conn: &Connection) -> Result<Vec<WarningRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT subject_type, subject_id, kind, armed, window_start, sent_in_window, last_sent_at
         FROM notify_warnings",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(WarningRow {
                subject_type: r.get(0)?,
                subject_id: r.get(1)?,
                kind: r.get(2)?,
                armed: r.get(3)?,
                window_start: r.get(4)?,
                sent_in_window: r.get(5)?,
                last_sent_at: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn save_warning(conn: &Connection, w: &WarningRow, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO notify_warnings (subject_type, subject_id, kind, armed, window_start,
                sent_in_window, last_sent_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (subject_type, subject_id, kind) DO UPDATE SET
            armed = excluded.armed, window_start = excluded.window_start,
            sent_in_window = excluded.sent_in_window, last_sent_at = excluded.last_sent_at,
            updated_at = excluded.updated_at",
        params![
            w.subject_type,
            w.subject_id,
            w.kind,
            w.armed,
            w.window_start,
            w.sent_in_window,
            w.last_sent_at,
            now
        ],
    )?;
    Ok(())
}
