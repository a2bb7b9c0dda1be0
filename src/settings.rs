//! Run-time settings kept in the `options` table (changed through the admin API, applied live).
//!
//! For now: the price tables. Each is stored as JSON under its name; a missing one takes its
//! default, so a new install prices common models out of the box.

use crate::billing::Pricing;
use crate::store::{StoreError, options};
use rusqlite::Connection;
use serde_json::Value;

pub const PRICING_KEYS: &[&str] = &[
    "model_ratio",
    "completion_ratio",
    "group_ratio",
    "model_price",
    "allow_unpriced_models",
];

/// The stored price tables over the defaults.
pub fn load_pricing(conn: &Connection) -> Result<Pricing, StoreError> {
    let mut doc = match serde_json::to_value(Pricing::default()) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (key, value) in options::all(conn)? {
        if PRICING_KEYS.contains(&key.as_str()) {
            match serde_json::from_str::<Value>(&value) {
                Ok(v) => {
                    doc.insert(key, v);
                }
                Err(e) => log::warn!("option {key} is not valid JSON ({e}); using its default"),
            }
        }
    }
    Ok(
        serde_json::from_value(Value::Object(doc)).unwrap_or_else(|e| {
            log::warn!("stored price tables are not valid ({e}); using the defaults");
            Pricing::default()
        }),
    )
}

/// Applies `changes` (option name → new value) to `current`, validating the result.
/// Returns the new tables and the (name, JSON text) pairs to store.
pub fn merge_pricing(
    current: &Pricing,
    changes: &serde_json::Map<String, Value>,
) -> Result<(Pricing, Vec<(String, String)>), String> {
    let mut doc = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => return Err("cannot read the current price tables".into()),
    };
    let mut rows = Vec::new();
    for (k, v) in changes {
        if !PRICING_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "unknown option {k:?}; known options: {}",
                PRICING_KEYS.join(", ")
            ));
        }
        doc.insert(k.clone(), v.clone());
        rows.push((k.clone(), v.to_string()));
    }
    let merged: Pricing = serde_json::from_value(Value::Object(doc))
        .map_err(|e| format!("invalid option value: {e}"))?;
    merged.validate().map_err(|e| e.to_string())?;
    Ok((merged, rows))
}
