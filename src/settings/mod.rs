//! The option registry: every run-time setting, typed, with a default, validation and a
//! one-line description, stored in the `options` table as `<module>.<field>` → JSON text.
//!
//! - [`modules`]: the typed structs ([`Options`]) with defaults and validation.
//! - this file: the flat view (`pricing.model_ratio`, `log.retention_days`, …) the API,
//!   export and import use; loading stored rows over the defaults; merging a change.
//!
//! The start-up config file holds only what is needed before the database opens (listen
//! address, data and log directories, the first root password); everything else is here and
//! applies live: an admin change commits, the catalog re-reads the options, the next request
//! sees it.

pub mod channel;
pub mod cors;
mod descriptions;
pub mod meta;
pub mod modules;
pub mod notify;
pub mod ratelimit;

pub use descriptions::DESCRIPTIONS;
pub use modules::{Currency, Options};

use crate::store::{StoreError, options};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Options whose value is a secret: masked on read, left as they were when the mask comes back.
pub const SECRETS: &[&str] = &["smtp.password"];

/// What a masked secret reads as.
pub const MASK: &str = "********";

/// `module.field` → value, for every option.
pub fn flatten(o: &Options) -> Map<String, Value> {
    let mut out = Map::new();
    if let Ok(Value::Object(modules)) = serde_json::to_value(o) {
        for (module, fields) in modules {
            if let Value::Object(fields) = fields {
                for (field, v) in fields {
                    out.insert(format!("{module}.{field}"), v);
                }
            }
        }
    }
    out
}

/// Sets `name` in the nested document; false when no such option exists.
fn set_in(doc: &mut Value, name: &str, v: Value) -> bool {
    let Some((module, field)) = name.split_once('.') else {
        return false;
    };
    match doc.get_mut(module).and_then(|m| m.get_mut(field)) {
        Some(slot) => {
            *slot = v;
            true
        }
        None => false,
    }
}

fn parse(doc: Value) -> Result<Options, String> {
    let o: Options = serde_json::from_value(doc).map_err(|e| e.to_string())?;
    o.validate()?;
    Ok(o)
}

/// The stored options over the defaults. A stored value that no longer fits (say, written by
/// a newer version) is skipped with a warning rather than stopping the server.
pub fn load(conn: &Connection) -> Result<Options, StoreError> {
    let mut doc = serde_json::to_value(Options::default()).unwrap_or(Value::Null);
    for (key, text) in options::all(conn)? {
        let name = key.as_str();
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            log::warn!("option {name} is not valid JSON; using its default");
            continue;
        };
        let mut next = doc.clone();
        if !set_in(&mut next, name, v) {
            log::warn!("option {name} is not known to this version; ignored");
            continue;
        }
        match parse(next.clone()) {
            Ok(_) => doc = next,
            Err(e) => log::warn!("option {name} is not valid ({e}); using its default"),
        }
    }
    parse(doc).or_else(|e| {
        log::error!("stored options are not valid ({e}); using the defaults");
        Ok(Options::default())
    })
}

/// The result of applying a change: the new options and the rows to store.
pub struct Merged {
    pub options: Options,
    /// (name, JSON text) of every option whose value changed.
    pub rows: Vec<(String, String)>,
}

/// Why a change was refused: option name → reason for each option at fault, or only a
/// message when the fault lies between options rather than in one.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Refused {
    fn whole(message: String) -> Refused {
        Refused {
            message,
            fields: BTreeMap::new(),
        }
    }
}

/// Applies `changes` (`module.field` → value) to `current`. Every unknown name, wrong type and
/// value out of range is reported at its option (all of them, not just the first); a masked
/// secret sent back unchanged is left as it was. Nothing is applied unless all pass.
pub fn merge(current: &Options, changes: &Map<String, Value>) -> Result<Merged, Refused> {
    let mut doc = serde_json::to_value(current).map_err(|e| Refused::whole(e.to_string()))?;
    let before = flatten(current);
    let mut rows = Vec::new();
    let mut fields = BTreeMap::new();
    let mut applied: Vec<&String> = Vec::new();
    for (name, v) in changes {
        if SECRETS.contains(&name.as_str()) && v.as_str() == Some(MASK) {
            continue;
        }
        if !set_in(&mut doc, name, v.clone()) {
            fields.insert(
                name.clone(),
                format!("unknown option {name:?}; GET /api/option lists every option"),
            );
            continue;
        }
        applied.push(name);
    }
    // Find the options at fault one by one: the one the error names, else one that fails on
    // its own; take it back out and try again. At most one round per change.
    for _ in 0..=applied.len() {
        let e = match parse(doc.clone()) {
            Ok(options) if fields.is_empty() => {
                // Compared as the typed options read them back: `1` and `1.0` for a ratio
                // are the same value, not a change.
                let after = flatten(&options);
                for name in &applied {
                    if let Some(v) = after.get(*name)
                        && before.get(*name) != Some(v)
                    {
                        rows.push(((*name).clone(), v.to_string()));
                    }
                }
                return Ok(Merged { options, rows });
            }
            Ok(_) => break,
            Err(e) => e,
        };
        let named = applied.iter().position(|n| e.contains(n.as_str()));
        let culprit = named.map(|i| (i, e.clone())).or_else(|| {
            applied.iter().enumerate().find_map(|(i, n)| {
                let mut alone = serde_json::to_value(current).ok()?;
                set_in(&mut alone, n, changes.get(*n)?.clone());
                parse(alone).err().map(|e| (i, e))
            })
        });
        let Some((i, why)) = culprit else {
            // No single option is at fault: the combination is (e.g. smtp.host without smtp.from).
            return Err(Refused {
                message: format!("invalid option values: {e}"),
                fields,
            });
        };
        let name = applied.remove(i);
        let why = if why.contains(name.as_str()) {
            why
        } else {
            format!("{name}: {why}")
        };
        fields.insert(name.clone(), why);
        set_in(
            &mut doc,
            name,
            before.get(name).cloned().unwrap_or(Value::Null),
        );
    }
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let message = match fields.values().next() {
        Some(only) if fields.len() == 1 => format!("invalid option value: {only}"),
        _ => format!(
            "{} options are not valid: {}",
            fields.len(),
            names.join(", ")
        ),
    };
    Err(Refused { message, fields })
}

/// One option as `GET /api/option` shows it: value, default and description, plus the form
/// metadata of [`meta`].
#[derive(Debug, Serialize)]
pub struct Described {
    pub name: &'static str,
    /// The part of the name before the dot.
    pub module: &'static str,
    pub value: Value,
    pub default: Value,
    pub description: &'static str,
    pub secret: bool,
    #[serde(flatten)]
    pub meta: meta::Meta,
}

/// Every option with its value (secrets masked), default and description.
pub fn describe(o: &Options) -> Vec<Described> {
    let values = flatten(o);
    let defaults = flatten(&Options::default());
    DESCRIPTIONS
        .iter()
        .map(|(name, description)| {
            let secret = SECRETS.contains(name);
            let value = values.get(*name).cloned().unwrap_or(Value::Null);
            let default = defaults.get(*name).cloned().unwrap_or(Value::Null);
            Described {
                name,
                module: name.split_once('.').map_or(*name, |(m, _)| m),
                value: if secret { mask(&value) } else { value },
                meta: meta::of(name, &default),
                default,
                description,
                secret,
            }
        })
        .collect()
}

/// The flat export document; secrets masked unless `with_secrets`.
pub fn export(o: &Options, with_secrets: bool) -> Map<String, Value> {
    let mut flat = flatten(o);
    if !with_secrets {
        for name in SECRETS {
            if let Some(v) = flat.get_mut(*name) {
                *v = mask(v);
            }
        }
    }
    flat
}

fn mask(v: &Value) -> Value {
    match v.as_str() {
        Some("") | None => Value::String(String::new()),
        Some(_) => Value::String(MASK.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_option_has_a_description_and_every_description_an_option() {
        let names: Vec<String> = flatten(&Options::default()).keys().cloned().collect();
        let described: Vec<String> = DESCRIPTIONS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, described);
    }

    #[test]
    fn merge_validates_and_lists_only_changes() {
        let o = Options::default();
        let m = merge(
            &o,
            json!({"log.retention_days": 30, "relay.retries": 1})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(m.options.log.retention_days, 30);
        assert_eq!(
            m.rows,
            vec![("log.retention_days".to_string(), "30".to_string())]
        );
        let e = merge(&o, json!({"log.retention_days": -1}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("retention_days"), "{e:?}");
        let e = merge(&o, json!({"relay.retries": 99}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.fields["relay.retries"].contains("0 to 10"), "{e:?}");
        let e = merge(&o, json!({"nope.x": 1}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.fields["nope.x"].contains("unknown option"), "{e:?}");
        let e = merge(&o, json!({"display.currency": "EUR"}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(e.message.contains("invalid option value"), "{e:?}");
        assert!(e.fields.contains_key("display.currency"), "{e:?}");
    }

    #[test]
    fn every_bad_option_is_named_and_good_ones_beside_them_are_not() {
        let o = Options::default();
        let changes = json!({
            "relay.retries": 99,
            "log.retention_days": "forever",
            "backup.keep": 3,
            "nope.x": 1,
            // Valid only together: neither may be blamed.
            "smtp.host": "smtp.example.com",
            "smtp.from": "sluice <noreply@example.com>",
        });
        let e = merge(&o, changes.as_object().unwrap()).err().unwrap();
        let names: Vec<&str> = e.fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["log.retention_days", "nope.x", "relay.retries"],
            "{e:?}"
        );
        assert!(e.message.starts_with("3 options are not valid"), "{e:?}");
        // A fault between options, with no single one to blame, is a message only.
        let e = merge(
            &o,
            json!({"smtp.host": "smtp.example.com"})
                .as_object()
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("smtp.from"), "{e:?}");
    }

    #[test]
    fn stored_values_override_defaults_and_bad_ones_are_skipped() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE options (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL)")
            .unwrap();
        options::set(&conn, "log.retention_days", "7", 0).unwrap();
        options::set(&conn, "relay.retries", "\"many\"", 0).unwrap();
        options::set(&conn, "pricing.allow_unpriced_models", "true", 0).unwrap();
        options::set(&conn, "gone.option", "1", 0).unwrap();
        let o = load(&conn).unwrap();
        assert_eq!(o.log.retention_days, 7);
        assert_eq!(o.relay.retries, 1);
        assert!(o.pricing.allow_unpriced_models);
    }
}
