//! The `channels` table: upstream providers. The upstream secret is kept (it must be sent), but
//! never returned in full by the API nor written to a log.

use super::StoreError;
use super::channel_keys::{self, KeyDisable, KeyRing, KeyView};
pub use super::channel_settings::ChannelSettings;
use crate::secret::Secret;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stored channel: its settable fields plus what the store assigns.
#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub created_at: i64,
    pub fields: ChannelFields,
    /// What the health checks recorded; never set through the admin's create/update.
    pub health: Health,
    /// The keys of `fields.api_key` as the relay takes them (round robin; see
    /// [`channel_keys`]). Shared by clones, so every call sees the same turn.
    pub keys: Arc<KeyRing>,
}

/// Whether a channel is routed, and who turned it off. The admin's switch (`enabled`) and the
/// health checks' (`auto_disabled_at`) are separate columns, so a test can turn back on only
/// what a health check turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    Enabled,
    /// Turned off by an admin.
    Disabled,
    /// Turned off by the health checks (see `auto_disabled_reason`).
    AutoDisabled,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Enabled => "enabled",
            ChannelStatus::Disabled => "disabled",
            ChannelStatus::AutoDisabled => "auto_disabled",
        }
    }
}

/// The store-assigned health columns of a channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub auto_disabled_at: Option<i64>,
    pub auto_disabled_reason: Option<String>,
    /// The last test, manual or scheduled.
    pub last_test: Option<TestRecord>,
    /// Keys turned off because upstream refused them.
    pub key_disables: Vec<KeyDisable>,
}

/// One channel test's result, as recorded on the channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRecord {
    pub ok: bool,
    /// Upstream's HTTP status; `None` when no answer came (timeout, connection refused).
    pub http_status: Option<u16>,
    pub latency_ms: i64,
    pub tested_at: i64,
    pub error: Option<String>,
}

impl ChannelRow {
    pub fn new(id: i64, created_at: i64, fields: ChannelFields, health: Health) -> ChannelRow {
        let keys = Arc::new(KeyRing::new(&fields.api_key, &health.key_disables));
        ChannelRow {
            id,
            created_at,
            fields,
            health,
            keys,
        }
    }

    /// A manual disable wins over an automatic one: it is what the admin asked for.
    pub fn status(&self) -> ChannelStatus {
        if !self.enabled {
            ChannelStatus::Disabled
        } else if self.health.auto_disabled_at.is_some() {
            ChannelStatus::AutoDisabled
        } else {
            ChannelStatus::Enabled
        }
    }

    /// May the relay send requests to this channel?
    pub fn routable(&self) -> bool {
        self.status() == ChannelStatus::Enabled
    }
}

/// Read access to the fields as if they were the row's own (`row.models`).
impl std::ops::Deref for ChannelRow {
    type Target = ChannelFields;
    fn deref(&self) -> &ChannelFields {
        &self.fields
    }
}

/// What the API shows: the secret masked.
#[derive(Debug, Serialize)]
pub struct ChannelView<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub name: &'a str,
    pub base_url: &'a str,
    pub api_key: String,
    /// Every key by its fingerprint, and whether the health checks turned it off.
    pub keys: Vec<KeyView>,
    pub key_count: usize,
    pub keys_disabled: usize,
    pub settings: &'a ChannelSettings,
    pub models: &'a [String],
    pub model_mapping: &'a BTreeMap<String, String>,
    pub groups: &'a [String],
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    pub test_model: Option<&'a str>,
    pub created_at: i64,
    pub status: ChannelStatus,
    pub auto_disabled_at: Option<i64>,
    pub auto_disabled_reason: Option<&'a str>,
    /// `ok` or `error`; null before the first test.
    pub test_status: Option<&'static str>,
    pub test_http_status: Option<u16>,
    pub test_latency_ms: Option<i64>,
    pub tested_at: Option<i64>,
    pub test_error: Option<&'a str>,
}

impl ChannelRow {
    pub fn view(&self) -> ChannelView<'_> {
        let t = self.health.last_test.as_ref();
        let keys = channel_keys::views(&self.api_key, &self.health.key_disables);
        ChannelView {
            key_count: keys.len(),
            keys_disabled: keys.iter().filter(|k| !k.enabled).count(),
            keys,
            settings: &self.settings,
            id: self.id,
            kind: &self.kind,
            name: &self.name,
            base_url: &self.base_url,
            api_key: self.api_key.masked(),
            models: &self.models,
            model_mapping: &self.model_mapping,
            groups: &self.groups,
            priority: self.priority,
            weight: self.weight,
            enabled: self.enabled,
            test_model: self.test_model.as_deref(),
            created_at: self.created_at,
            status: self.status(),
            auto_disabled_at: self.health.auto_disabled_at,
            auto_disabled_reason: self.health.auto_disabled_reason.as_deref(),
            test_status: t.map(|t| if t.ok { "ok" } else { "error" }),
            test_http_status: t.and_then(|t| t.http_status),
            test_latency_ms: t.map(|t| t.latency_ms),
            tested_at: t.map(|t| t.tested_at),
            test_error: t.and_then(|t| t.error.as_deref()),
        }
    }
}

const COLUMNS: &str = "id, kind, name, base_url, api_key, models, model_mapping, groups, priority, weight, enabled, created_at,
    test_model, auto_disabled_at, auto_disabled_reason, test_status, test_http_status, test_latency_ms, tested_at, test_error,
    settings, key_disables";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let test_status: Option<String> = r.get(15)?;
    let last_test = match (test_status, r.get::<_, Option<i64>>(18)?) {
        (Some(s), Some(tested_at)) => Some(TestRecord {
            ok: s == "ok",
            http_status: r
                .get::<_, Option<i64>>(16)?
                .and_then(|n| u16::try_from(n).ok()),
            latency_ms: r.get::<_, Option<i64>>(17)?.unwrap_or(0),
            tested_at,
            error: r.get(19)?,
        }),
        _ => None,
    };
    let health = Health {
        auto_disabled_at: r.get(13)?,
        auto_disabled_reason: r.get(14)?,
        last_test,
        key_disables: channel_keys::parse_disables(&json(21)?),
    };
    Ok(ChannelRow::new(
        r.get(0)?,
        r.get(11)?,
        ChannelFields {
            kind: r.get(1)?,
            name: r.get(2)?,
            base_url: r.get(3)?,
            api_key: Secret::new(r.get::<_, String>(4)?),
            models: serde_json::from_str(&json(5)?).unwrap_or_default(),
            model_mapping: serde_json::from_str(&json(6)?).unwrap_or_default(),
            groups: serde_json::from_str(&json(7)?).unwrap_or_default(),
            priority: r.get(8)?,
            weight: r.get(9)?,
            enabled: r.get(10)?,
            test_model: r.get(12)?,
            settings: ChannelSettings::parse(&json(20)?),
        },
        health,
    ))
}

/// A new channel, already validated by the domain layer.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelFields {
    pub kind: String,
    pub name: String,
    pub base_url: String,
    pub api_key: Secret,
    pub models: Vec<String>,
    pub model_mapping: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    /// The model a channel test asks for; `None` = the first of `models`.
    pub test_model: Option<String>,
    /// What only some kinds take (an azure channel's API version and route).
    pub settings: ChannelSettings,
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn insert(conn: &Connection, c: &ChannelFields, now: i64) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO channels (kind, name, base_url, api_key, models, model_mapping, groups, priority, weight, enabled, created_at, test_model, settings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            c.kind,
            c.name,
            c.base_url,
            c.api_key.expose(),
            to_json(&c.models),
            to_json(&c.model_mapping),
            to_json(&c.groups),
            c.priority,
            c.weight,
            c.enabled,
            now,
            c.test_model,
            c.settings.to_json()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Replaces every field (the API merges a PATCH onto the current row first).
pub fn replace(conn: &Connection, id: i64, c: &ChannelFields) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE channels SET kind = ?2, name = ?3, base_url = ?4, api_key = ?5, models = ?6,
            model_mapping = ?7, groups = ?8, priority = ?9, weight = ?10, enabled = ?11,
            test_model = ?12, settings = ?13
         WHERE id = ?1",
        params![
            id,
            c.kind,
            c.name,
            c.base_url,
            c.api_key.expose(),
            to_json(&c.models),
            to_json(&c.model_mapping),
            to_json(&c.groups),
            c.priority,
            c.weight,
            c.enabled,
            c.test_model,
            c.settings.to_json()
        ],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    // A key no longer held forgets its disable: given again later, it starts on.
    channel_keys::prune(conn, id, &c.api_key)
}

pub fn get(conn: &Connection, id: i64) -> Result<ChannelRow, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM channels WHERE id = ?1"),
        [id],
        from_row,
    )?)
}

pub fn list(conn: &Connection) -> Result<Vec<ChannelRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM channels ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    let n = conn.execute("DELETE FROM channels WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// Marks an admin-enabled channel as turned off by the health checks. False when the channel
/// is already off (by an admin or an earlier trip), so each disable is recorded once.
pub fn set_auto_disabled(
    conn: &Connection,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE channels SET auto_disabled_at = ?2, auto_disabled_reason = ?3
         WHERE id = ?1 AND enabled = 1 AND auto_disabled_at IS NULL",
        params![id, now, reason],
    )?;
    Ok(n == 1)
}

/// Clears an automatic disable. Only where the admin's switch is on: a channel an admin turned
/// off stays off. False when there was nothing to clear.
pub fn clear_auto_disabled(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE channels SET auto_disabled_at = NULL, auto_disabled_reason = NULL
         WHERE id = ?1 AND enabled = 1 AND auto_disabled_at IS NOT NULL",
        [id],
    )?;
    Ok(n == 1)
}

/// Records a test's result on the channel.
pub fn record_test(conn: &Connection, id: i64, t: &TestRecord) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE channels SET test_status = ?2, test_http_status = ?3, test_latency_ms = ?4,
            tested_at = ?5, test_error = ?6
         WHERE id = ?1",
        params![
            id,
            if t.ok { "ok" } else { "error" },
            t.http_status,
            t.latency_ms,
            t.tested_at,
            t.error
        ],
    )?;
    if n == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// How `GET /api/channels` searches and sorts.
pub const LISTING: super::listing::Table = super::listing::Table {
    name: "channels",
    columns: COLUMNS,
    searched: &["name", "base_url"],
    sorts: &[
        ("id", "id"),
        ("name", "name COLLATE NOCASE"),
        ("priority", "priority"),
        ("weight", "weight"),
        ("created_at", "created_at"),
        ("tested_at", "COALESCE(tested_at, 0)"),
    ],
};

/// One page of channels matching the search, optionally only those in one state.
pub fn search(
    conn: &Connection,
    q: &super::listing::ListQuery,
    status: Option<ChannelStatus>,
) -> Result<super::listing::Page<ChannelRow>, StoreError> {
    // The same rule as `ChannelRow::status`.
    let cond = match status {
        None => None,
        Some(ChannelStatus::Enabled) => Some("enabled = 1 AND auto_disabled_at IS NULL"),
        Some(ChannelStatus::Disabled) => Some("enabled = 0"),
        Some(ChannelStatus::AutoDisabled) => Some("enabled = 1 AND auto_disabled_at IS NOT NULL"),
    };
    let extra: Vec<(&str, Option<rusqlite::types::Value>)> =
        cond.map(|c| (c, None)).into_iter().collect();
    super::listing::page(conn, &LISTING, q, &extra, from_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory database at the newest schema.
    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut c).unwrap();
        c
    }

    fn fields(enabled: bool) -> ChannelFields {
        ChannelFields {
            kind: "openai".into(),
            name: "c".into(),
            base_url: "http://x/v1".into(),
            api_key: Secret::new("k"),
            models: vec!["m".into()],
            model_mapping: BTreeMap::new(),
            groups: vec!["default".into()],
            priority: 0,
            weight: 1,
            enabled,
            test_model: None,
            settings: ChannelSettings::default(),
        }
    }

    #[test]
    fn a_manual_disable_is_never_cleared_by_the_health_checks() {
        let c = db();
        let on = insert(&c, &fields(true), 1).unwrap();
        let off = insert(&c, &fields(false), 1).unwrap();
        assert!(set_auto_disabled(&c, on, "401", 5).unwrap());
        assert!(
            !set_auto_disabled(&c, on, "again", 6).unwrap(),
            "recorded once"
        );
        assert!(!set_auto_disabled(&c, off, "401", 5).unwrap());
        let row = get(&c, on).unwrap();
        assert_eq!(row.status(), ChannelStatus::AutoDisabled);
        assert!(!row.routable());
        assert_eq!(row.health.auto_disabled_reason.as_deref(), Some("401"));
        assert_eq!(get(&c, off).unwrap().status(), ChannelStatus::Disabled);
        assert!(!clear_auto_disabled(&c, off).unwrap());
        assert!(clear_auto_disabled(&c, on).unwrap());
        assert!(get(&c, on).unwrap().routable());
        // An admin turning an auto-disabled channel off: it reads as disabled, and a passing
        // test cannot bring it back.
        set_auto_disabled(&c, on, "401", 7).unwrap();
        let mut f = fields(false);
        f.name = "c2".into();
        replace(&c, on, &f).unwrap();
        assert_eq!(get(&c, on).unwrap().status(), ChannelStatus::Disabled);
        assert!(!clear_auto_disabled(&c, on).unwrap());
    }

    #[test]
    fn test_results_round_trip() {
        let c = db();
        let id = insert(&c, &fields(true), 1).unwrap();
        assert_eq!(get(&c, id).unwrap().health.last_test, None);
        let t = TestRecord {
            ok: false,
            http_status: Some(401),
            latency_ms: 12,
            tested_at: 99,
            error: Some("bad key".into()),
        };
        record_test(&c, id, &t).unwrap();
        assert_eq!(get(&c, id).unwrap().health.last_test, Some(t));
        assert!(
            record_test(
                &c,
                999,
                &TestRecord {
                    ok: true,
                    http_status: Some(200),
                    latency_ms: 1,
                    tested_at: 1,
                    error: None
                }
            )
            .is_err()
        );
    }
}
