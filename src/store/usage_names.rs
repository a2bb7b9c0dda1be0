//! Names for the ids a usage series split by user, key or channel carries: one query per
//! series, bounded by the ids in its points (never a read of the whole table), so the console
//! names every series however many users, keys or channels there are.

use super::StoreError;
use super::log_query::{SplitBy, UsagePoint};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// Whose names may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An admin's series: any user, key or channel.
    All,
    /// A user's own series: only their account and their keys, never a channel (own routes
    /// show no channel details). A point naming anything else stays unnamed.
    Own(i64),
}

/// The ids of a series' points, once each; `0` (no user, key or channel) and non-numeric
/// values have no row to name.
fn ids(points: &[UsagePoint]) -> BTreeSet<i64> {
    points
        .iter()
        .filter_map(|p| p.of.as_deref()?.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .collect()
}

/// id → username, key name or channel name for the ids in `points`; deleted ones (and those
/// outside `scope`) are absent. Empty for a split by model or none.
pub fn names(
    conn: &Connection,
    split: SplitBy,
    points: &[UsagePoint],
    scope: Scope,
) -> Result<BTreeMap<i64, String>, StoreError> {
    let owner = match scope {
        Scope::All => None,
        Scope::Own(id) => Some(id),
    };
    // ?1 is the ids as one JSON array (one bound value however many there are; SQLite's
    // limit on bound parameters does not apply); ?2 the owner, NULL for an admin.
    let sql = match (split, scope) {
        (SplitBy::Nothing | SplitBy::Model, _) | (SplitBy::Channel, Scope::Own(_)) => {
            return Ok(BTreeMap::new());
        }
        (SplitBy::User, _) => {
            "SELECT id, username FROM users
              WHERE id IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR id = ?2)"
        }
        (SplitBy::Key, _) => {
            "SELECT id, name FROM api_keys
              WHERE id IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR user_id = ?2)"
        }
        (SplitBy::Channel, Scope::All) => {
            "SELECT id, name FROM channels
              WHERE id IN (SELECT value FROM json_each(?1)) AND ?2 IS NULL"
        }
    };
    let ids = ids(points);
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let list = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let out = conn
        .prepare_cached(sql)?
        .query_map(rusqlite::params![list, owner], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(of: &str) -> UsagePoint {
        UsagePoint {
            time: 0,
            of: Some(of.into()),
            requests: 1,
            errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            quota: 0,
        }
    }

    #[test]
    fn ids_skip_zero_and_text_and_repeat_once() {
        let pts = [
            point("3"),
            point("0"),
            point("gpt-4o"),
            point("3"),
            point("12"),
        ];
        assert_eq!(ids(&pts).into_iter().collect::<Vec<_>>(), vec![3, 12]);
    }
}
