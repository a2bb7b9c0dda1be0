//! What a generated settings form needs per option beyond its value: the kind of input,
//! allowed values, bounds and unit. The bounds are the ones `validate` enforces; a test sets
//! every option to its bounds (accepted) and just past them (refused), so the two stay in step.

use serde::Serialize;
use serde_json::Value;

/// The kind of input an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionType {
    Bool,
    Int,
    Float,
    String,
    Enum,
    List,
    Map,
    Secret,
}

/// A list's items or a map's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Int,
    Float,
    String,
}

/// The form metadata of one option.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    #[serde(rename = "type")]
    pub kind: OptionType,
    pub item_type: Option<ItemType>,
    #[serde(rename = "enum")]
    pub allowed: Option<&'static [&'static str]>,
    pub min: Option<f64>,
    /// The value must be above `min`, not equal to it.
    pub min_exclusive: bool,
    pub max: Option<f64>,
    pub unit: Option<&'static str>,
    /// Most items a list may hold; `None` for other types or when any number is fine.
    pub max_items: Option<u32>,
}

/// What the table states for one option. Bounds of a list or map apply to each item;
/// `max_items` bounds a list's length.
struct Row {
    name: &'static str,
    unit: Option<&'static str>,
    min: Option<f64>,
    max: Option<f64>,
    allowed: Option<&'static [&'static str]>,
    max_items: Option<u32>,
}

/// A number (or numeric items) from `min` up to `max` (`None`: no upper bound).
const fn num(name: &'static str, unit: Option<&'static str>, min: f64, max: Option<f64>) -> Row {
    Row {
        name,
        unit,
        min: Some(min),
        max,
        allowed: None,
        max_items: None,
    }
}

/// One of `allowed`.
const fn choice(name: &'static str, allowed: &'static [&'static str]) -> Row {
    Row {
        name,
        unit: None,
        min: None,
        max: None,
        allowed: Some(allowed),
        max_items: None,
    }
}

/// A list of strings whose syntax validation checks.
const fn strings(name: &'static str) -> Row {
    Row {
        name,
        unit: None,
        min: None,
        max: None,
        allowed: None,
        max_items: None,
    }
}

impl Row {
    /// The same row, for a list at most `n` items long.
    const fn max_items(mut self, n: usize) -> Row {
        self.max_items = Some(n as u32);
        self
    }
}

const U32: f64 = u32::MAX as f64;
const RATE_MAX: f64 = super::ratelimit::MAX_LIMIT as f64;
const MS: Option<&str> = Some("ms");
const SECS: Option<&str> = Some("s");
const RATIO: Option<&str> = Some("ratio");
const OUTPUT_MAX: f64 = super::modules::MAX_OUTPUT_LIMIT as f64;

/// Every option that is not a switch, free text or a secret has a row (a test checks it, and
/// that an unstated bound is not enforced either).
const TABLE: &[Row] = &[
    num("pricing.model_ratio", RATIO, 0.0, None),
    num("pricing.completion_ratio", RATIO, 0.0, None),
    num("pricing.group_ratio", RATIO, 0.0, None),
    num("pricing.model_price", Some("USD"), 0.0, None),
    num("pricing.cache_read_ratio", RATIO, 0.0, None),
    num("pricing.cache_write_ratio", RATIO, 0.0, None),
    num("pricing.cache_write_1h_ratio", RATIO, 0.0, None),
    num("relay.connect_timeout_ms", MS, 100.0, Some(120_000.0)),
    num("relay.first_byte_timeout_ms", MS, 100.0, Some(3_600_000.0)),
    num("relay.idle_timeout_ms", MS, 100.0, Some(3_600_000.0)),
    num("relay.retries", None, 0.0, Some(10.0)),
    num(
        "relay.max_body_bytes",
        Some("bytes"),
        1024.0,
        Some(1_073_741_824.0),
    ),
    num(
        "relay.max_sse_line_bytes",
        Some("bytes"),
        65_536.0,
        Some(1_073_741_824.0),
    ),
    num(
        "relay.default_completion_estimate",
        Some("tokens"),
        1.0,
        Some(1_000_000.0),
    ),
    num(
        "relay.max_output_tokens",
        Some("tokens"),
        1.0,
        Some(OUTPUT_MAX),
    ),
    num(
        "relay.default_max_output_tokens",
        Some("tokens"),
        1.0,
        Some(OUTPUT_MAX),
    ),
    // Model-name prefixes (not empty: checked when sent); any number of them.
    strings("relay.max_completion_tokens_models"),
    num("profiler.interval_secs", SECS, 1.0, Some(86_400.0)),
    num(
        "profiler.threshold_percent",
        Some("percent"),
        0.0,
        Some(100.0),
    ),
    num("profiler.duration_secs", SECS, 1.0, Some(600.0)),
    num("profiler.cooldown_secs", SECS, 0.0, Some(604_800.0)),
    num(
        "profiler.keep",
        None,
        1.0,
        Some(crate::profiler::MAX_KEEP as f64),
    ),
    num(
        "profiler.frequency_hz",
        Some("Hz"),
        1.0,
        Some(crate::profiler::MAX_FREQUENCY_HZ as f64),
    ),
    num("log.retention_days", Some("days"), 0.0, Some(36_500.0)),
    num("backup.interval_hours", Some("hours"), 0.0, Some(8_760.0)),
    num("backup.keep", None, 1.0, Some(1000.0)),
    num("anomaly.spend_factor", RATIO, 1.0, Some(1e6)),
    num("anomaly.min_spend", Some("quota"), 0.0, None),
    num("anomaly.baseline_days", Some("days"), 1.0, Some(365.0)),
    num("anomaly.token_divergence", RATIO, 0.0, Some(100.0)),
    num("anomaly.error_rate", RATIO, 0.0, Some(1.0)),
    num("anomaly.latency_factor", RATIO, 1.0, Some(1e6)),
    num("anomaly.min_requests", None, 1.0, Some(1_000_000.0)),
    choice("display.currency", &["USD", "CNY", "TOKENS", "CUSTOM"]),
    num("display.exchange_rate", RATIO, 0.0, None),
    num("notify.default_threshold", Some("quota"), 0.0, None),
    num("notify.max_per_window", None, 1.0, Some(U32)),
    num("notify.window_secs", SECS, 60.0, Some(604_800.0)),
    // Hosts and CIDR ranges: the syntax is checked when sent; any number of them.
    strings("notify.ssrf_allow_hosts"),
    num("notify.retries", None, 0.0, Some(9.0)),
    num("notify.timeout_secs", SECS, 1.0, Some(300.0)),
    num("smtp.port", None, 1.0, Some(65_535.0)),
    choice("smtp.security", &["starttls", "implicit"]),
    num(
        "ratelimit.key_rpm",
        Some("requests/min"),
        0.0,
        Some(RATE_MAX),
    ),
    num("ratelimit.key_tpm", Some("tokens/min"), 0.0, Some(RATE_MAX)),
    num(
        "ratelimit.user_rpm",
        Some("requests/min"),
        0.0,
        Some(RATE_MAX),
    ),
    num(
        "ratelimit.user_tpm",
        Some("tokens/min"),
        0.0,
        Some(RATE_MAX),
    ),
    num(
        "ratelimit.group_rpm",
        Some("requests/min"),
        0.0,
        Some(RATE_MAX),
    ),
    num(
        "ratelimit.group_tpm",
        Some("tokens/min"),
        0.0,
        Some(RATE_MAX),
    ),
    num(
        "channel.test_interval_minutes",
        Some("minutes"),
        0.0,
        Some(10_080.0),
    ),
    num("channel.disable_statuses", None, 400.0, Some(499.0))
        .max_items(super::channel::MAX_DISABLE_STATUSES),
    num("channel.error_rate_threshold", RATIO, 0.0, Some(1.0)),
    num(
        "channel.error_rate_min_requests",
        None,
        2.0,
        Some(1_000_000.0),
    ),
    num("channel.error_window_secs", SECS, 10.0, Some(86_400.0)),
    num("keys.max_per_user", None, 0.0, Some(1_000_000.0)),
    // Origins as a browser sends them (scheme://host[:port]) or "*": checked when sent.
    strings("cors.allowed_origins").max_items(super::cors::MAX_ORIGINS),
    num("cors.max_age_secs", SECS, 0.0, Some(86_400.0)),
];

/// Options whose value must be above their `min`.
const EXCLUSIVE_MIN: &[&str] = &["display.exchange_rate", "channel.error_rate_threshold"];

/// The metadata of `name`, read from the table and the shape of its default value.
pub fn of(name: &str, default: &Value) -> Meta {
    let row = TABLE.iter().find(|r| r.name == name);
    let unit = row.and_then(|r| r.unit);
    let (min, max) = row.map_or((None, None), |r| (r.min, r.max));
    let allowed = row.and_then(|r| r.allowed);
    let max_items = row.and_then(|r| r.max_items);
    let number = |v: &Value| {
        if v.is_f64() {
            ItemType::Float
        } else if v.is_number() {
            ItemType::Int
        } else {
            ItemType::String
        }
    };
    let (kind, item_type) = if super::SECRETS.contains(&name) {
        (OptionType::Secret, None)
    } else if allowed.is_some() {
        (OptionType::Enum, None)
    } else {
        match default {
            Value::Bool(_) => (OptionType::Bool, None),
            Value::Number(n) if n.is_f64() => (OptionType::Float, None),
            Value::Number(_) => (OptionType::Int, None),
            Value::Array(items) => (OptionType::List, Some(list_item(name, items, number))),
            Value::Object(_) => (OptionType::Map, Some(map_value(name))),
            Value::String(_) | Value::Null => (OptionType::String, None),
        }
    };
    Meta {
        kind,
        item_type,
        allowed,
        min,
        min_exclusive: EXCLUSIVE_MIN.contains(&name),
        max,
        unit,
        max_items,
    }
}

/// Lists whose default is empty name their item type here.
fn list_item(name: &str, items: &[Value], number: impl Fn(&Value) -> ItemType) -> ItemType {
    match (name, items.first()) {
        ("channel.disable_statuses", _) => ItemType::Int,
        (_, Some(v)) => number(v),
        (_, None) => ItemType::String,
    }
}

fn map_value(name: &str) -> ItemType {
    if name.starts_with("ratelimit.") || name == "relay.max_output_tokens" {
        ItemType::Int
    } else {
        ItemType::Float
    }
}

/// The JSON Schema of one option's value, from its metadata (what the API documents for
/// `PUT /api/option`). Rules between options (smtp.host needs smtp.from) and the syntax of
/// host lists are checked by validation only.
pub fn value_schema(name: &str, m: &Meta) -> Value {
    use serde_json::json;
    let number = |t: &str| {
        let mut s = json!({"type": t});
        if let Some(lo) = m.min {
            if m.min_exclusive {
                s["exclusiveMinimum"] = json!(lo);
            } else {
                s["minimum"] = json!(lo);
            }
        }
        if let Some(hi) = m.max {
            s["maximum"] = json!(hi);
        }
        if name == "channel.disable_statuses" {
            // Transient statuses count toward the error rate instead.
            s["not"] = json!({"enum": [408, 429]});
        }
        s
    };
    let item = |t: Option<ItemType>| match t {
        Some(ItemType::Int) => number("integer"),
        Some(ItemType::Float) => number("number"),
        Some(ItemType::String) | None => json!({"type": "string"}),
    };
    match m.kind {
        OptionType::Bool => json!({"type": "boolean"}),
        OptionType::Int => number("integer"),
        OptionType::Float => number("number"),
        OptionType::Enum => json!({"enum": m.allowed}),
        OptionType::String if name == "display.symbol" => {
            json!({"type": "string", "minLength": 1, "maxLength": 8})
        }
        OptionType::String | OptionType::Secret => json!({"type": "string"}),
        OptionType::List => {
            let mut s = json!({"type": "array", "items": item(m.item_type)});
            if let Some(n) = m.max_items {
                s["maxItems"] = json!(n);
            }
            s
        }
        OptionType::Map => json!({
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": item(m.item_type),
        }),
    }
}

/// The schema of a `PUT /api/option` body: known names only, each with its value's schema.
pub fn document_schema() -> Value {
    use serde_json::json;
    let defaults = super::flatten(&super::Options::default());
    let mut props = serde_json::Map::new();
    for (name, default) in &defaults {
        let mut s = value_schema(name, &of(name, default));
        if let Some((_, d)) = super::DESCRIPTIONS.iter().find(|(n, _)| n == name) {
            s["description"] = json!(d);
        }
        props.insert(name.clone(), s);
    }
    json!({
        "type": "object",
        "minProperties": 1,
        "additionalProperties": false,
        "properties": props,
        "description": "Option name (module.field) → value; at least one. Each value's bounds are stated here; rules between options (smtp.host needs a valid smtp.from) and the syntax of notify.ssrf_allow_hosts and smtp.from are checked when the form is sent.",
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Options, flatten, merge};
    use super::*;
    use serde_json::{Map, json};

    fn value_at(kind: OptionType, item: Option<ItemType>, x: f64) -> Value {
        let n = |t: Option<ItemType>| match t {
            Some(ItemType::Float) | None if kind == OptionType::Float => json!(x),
            Some(ItemType::Float) => json!(x),
            _ => json!(x as i64),
        };
        match kind {
            OptionType::List => json!([n(item)]),
            OptionType::Map => json!({"g": n(item)}),
            _ => n(item),
        }
    }

    fn accepted(name: &str, v: Value) -> bool {
        let mut m = Map::new();
        m.insert(name.to_string(), v);
        merge(&Options::default(), &m).is_ok()
    }

    /// Every bound the metadata states is the one validation enforces: the bound itself is
    /// accepted, one step past it refused (bounds at a type's own limit are only checked inside).
    #[test]
    fn stated_bounds_are_the_enforced_bounds() {
        let defaults = flatten(&Options::default());
        for row in TABLE {
            assert!(
                defaults.contains_key(row.name),
                "{} is not an option",
                row.name
            );
        }
        for (name, default) in &defaults {
            let m = of(name, default);
            let step: f64 = if m.kind == OptionType::Float || m.item_type == Some(ItemType::Float) {
                1e-9
            } else {
                1.0
            };
            if let Some(lo) = m.min
                && m.min_exclusive
            {
                assert!(
                    !accepted(name, value_at(m.kind, m.item_type, lo)),
                    "{name} = exclusive min {lo}"
                );
                assert!(
                    accepted(name, value_at(m.kind, m.item_type, lo + step)),
                    "{name} just above min {lo}"
                );
            } else if let Some(lo) = m.min {
                assert!(
                    accepted(name, value_at(m.kind, m.item_type, lo)),
                    "{name} = min {lo}"
                );
                assert!(
                    !accepted(
                        name,
                        value_at(m.kind, m.item_type, lo - step.max(lo.abs() * 1e-9))
                    ),
                    "{name} below min {lo}"
                );
            }
            if let Some(hi) = m.max {
                assert!(
                    accepted(name, value_at(m.kind, m.item_type, hi)),
                    "{name} = max {hi}"
                );
                if hi < U32 {
                    assert!(
                        !accepted(name, value_at(m.kind, m.item_type, hi + step)),
                        "{name} above max {hi}"
                    );
                }
            }
            if let Some(values) = m.allowed {
                for v in values {
                    assert!(accepted(name, json!(v)), "{name} = {v}");
                }
                assert!(!accepted(name, json!("NOPE")), "{name} = NOPE");
            }
        }
    }

    /// A valid item of each list option, to test its length with.
    fn sample_item(name: &str, m: &Meta) -> Value {
        match (name, m.item_type) {
            ("notify.ssrf_allow_hosts", _) => json!("10.0.0.0/8"),
            ("cors.allowed_origins", _) => json!("https://chat.example.com"),
            ("relay.max_completion_tokens_models", _) => json!("o1"),
            (_, Some(ItemType::Int | ItemType::Float)) => json!(m.min.unwrap_or(0.0) as i64),
            (other, _) => panic!("{other}: add a valid item here to test the list's length"),
        }
    }

    /// The form gets metadata for every option it cannot take as free text: numbers, choices,
    /// lists and maps each have a row, and what the row leaves unbounded validation accepts
    /// (a bound enforced but not stated would only show as a refusal after saving).
    #[test]
    fn every_bound_is_stated() {
        let defaults = flatten(&Options::default());
        for (name, default) in &defaults {
            let m = of(name, default);
            let free = matches!(
                m.kind,
                OptionType::Bool | OptionType::String | OptionType::Secret
            );
            assert!(
                free || TABLE.iter().any(|r| r.name == name),
                "{name} ({:?}) has no row in meta::TABLE",
                m.kind
            );
            let numeric = matches!(m.kind, OptionType::Int | OptionType::Float)
                || matches!(m.item_type, Some(ItemType::Int | ItemType::Float));
            if numeric {
                assert!(m.min.is_some(), "{name}: state its lower bound");
                if m.max.is_none() {
                    assert!(
                        accepted(name, value_at(m.kind, m.item_type, 1e12)),
                        "{name} refuses 1e12 but states no max"
                    );
                }
            }
            if m.kind == OptionType::List {
                let item = sample_item(name, &m);
                let list = |n: usize| Value::Array(vec![item.clone(); n]);
                match m.max_items {
                    Some(n) => {
                        let n = n as usize;
                        assert!(accepted(name, list(n)), "{name} with {n} items");
                        assert!(!accepted(name, list(n + 1)), "{name} with {} items", n + 1);
                    }
                    None => assert!(
                        accepted(name, list(10_000)),
                        "{name} refuses 10000 items but states no max_items"
                    ),
                }
            }
        }
    }

    #[test]
    fn types_follow_the_values() {
        let d = flatten(&Options::default());
        let t = |n: &str| of(n, &d[n]);
        assert_eq!(t("pricing.allow_unpriced_models").kind, OptionType::Bool);
        assert_eq!(t("relay.retries").kind, OptionType::Int);
        assert_eq!(t("anomaly.error_rate").kind, OptionType::Float);
        assert_eq!(t("smtp.password").kind, OptionType::Secret);
        assert_eq!(t("display.currency").kind, OptionType::Enum);
        assert_eq!(t("smtp.host").kind, OptionType::String);
        let s = t("channel.disable_statuses");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::List, Some(ItemType::Int))
        );
        let s = t("notify.ssrf_allow_hosts");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::List, Some(ItemType::String))
        );
        let s = t("ratelimit.group_rpm");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::Map, Some(ItemType::Int))
        );
        let s = t("relay.max_output_tokens");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::Map, Some(ItemType::Int))
        );
        let s = t("relay.max_completion_tokens_models");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::List, Some(ItemType::String))
        );
        let s = t("pricing.model_ratio");
        assert_eq!(
            (s.kind, s.item_type),
            (OptionType::Map, Some(ItemType::Float))
        );
    }
}
