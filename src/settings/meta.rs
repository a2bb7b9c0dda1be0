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
}

/// (name, unit, min, max, allowed values). Bounds of a list or map apply to each item.
type Row = (
    &'static str,
    Option<&'static str>,
    Option<f64>,
    Option<f64>,
    Option<&'static [&'static str]>,
);

const U32: f64 = u32::MAX as f64;
const RATE_MAX: f64 = super::ratelimit::MAX_LIMIT as f64;
const OUTPUT_MAX: f64 = super::modules::MAX_OUTPUT_LIMIT as f64;

const TABLE: &[Row] = &[
    ("pricing.model_ratio", Some("ratio"), Some(0.0), None, None),
    (
        "pricing.completion_ratio",
        Some("ratio"),
        Some(0.0),
        None,
        None,
    ),
    ("pricing.group_ratio", Some("ratio"), Some(0.0), None, None),
    ("pricing.model_price", Some("USD"), Some(0.0), None, None),
    (
        "relay.connect_timeout_ms",
        Some("ms"),
        Some(100.0),
        Some(120_000.0),
        None,
    ),
    (
        "relay.first_byte_timeout_ms",
        Some("ms"),
        Some(100.0),
        Some(3_600_000.0),
        None,
    ),
    (
        "relay.idle_timeout_ms",
        Some("ms"),
        Some(100.0),
        Some(3_600_000.0),
        None,
    ),
    ("relay.retries", None, Some(0.0), Some(10.0), None),
    (
        "relay.max_body_bytes",
        Some("bytes"),
        Some(1024.0),
        Some(1_073_741_824.0),
        None,
    ),
    (
        "relay.max_sse_line_bytes",
        Some("bytes"),
        Some(65_536.0),
        Some(1_073_741_824.0),
        None,
    ),
    (
        "relay.default_completion_estimate",
        Some("tokens"),
        Some(1.0),
        Some(1_000_000.0),
        None,
    ),
    (
        "relay.max_output_tokens",
        Some("tokens"),
        Some(1.0),
        Some(OUTPUT_MAX),
        None,
    ),
    (
        "relay.default_max_output_tokens",
        Some("tokens"),
        Some(1.0),
        Some(OUTPUT_MAX),
        None,
    ),
    (
        "profiler.interval_secs",
        Some("s"),
        Some(1.0),
        Some(86_400.0),
        None,
    ),
    (
        "profiler.threshold_percent",
        Some("percent"),
        Some(0.0),
        Some(100.0),
        None,
    ),
    (
        "profiler.duration_secs",
        Some("s"),
        Some(1.0),
        Some(600.0),
        None,
    ),
    (
        "profiler.cooldown_secs",
        Some("s"),
        Some(0.0),
        Some(604_800.0),
        None,
    ),
    (
        "profiler.keep",
        None,
        Some(1.0),
        Some(crate::profiler::MAX_KEEP as f64),
        None,
    ),
    (
        "profiler.frequency_hz",
        Some("Hz"),
        Some(1.0),
        Some(crate::profiler::MAX_FREQUENCY_HZ as f64),
        None,
    ),
    (
        "log.retention_days",
        Some("days"),
        Some(0.0),
        Some(36_500.0),
        None,
    ),
    (
        "backup.interval_hours",
        Some("hours"),
        Some(0.0),
        Some(8_760.0),
        None,
    ),
    ("backup.keep", None, Some(1.0), Some(1000.0), None),
    (
        "anomaly.spend_factor",
        Some("ratio"),
        Some(1.0),
        Some(1e6),
        None,
    ),
    ("anomaly.min_spend", Some("quota"), Some(0.0), None, None),
    (
        "anomaly.baseline_days",
        Some("days"),
        Some(1.0),
        Some(365.0),
        None,
    ),
    (
        "anomaly.token_divergence",
        Some("ratio"),
        Some(0.0),
        Some(100.0),
        None,
    ),
    (
        "anomaly.error_rate",
        Some("ratio"),
        Some(0.0),
        Some(1.0),
        None,
    ),
    (
        "anomaly.latency_factor",
        Some("ratio"),
        Some(1.0),
        Some(1e6),
        None,
    ),
    (
        "anomaly.min_requests",
        None,
        Some(1.0),
        Some(1_000_000.0),
        None,
    ),
    (
        "display.currency",
        None,
        None,
        None,
        Some(&["USD", "CNY", "TOKENS", "CUSTOM"]),
    ),
    (
        "display.exchange_rate",
        Some("ratio"),
        Some(0.0),
        None,
        None,
    ),
    (
        "notify.default_threshold",
        Some("quota"),
        Some(0.0),
        None,
        None,
    ),
    ("notify.max_per_window", None, Some(1.0), Some(U32), None),
    (
        "notify.window_secs",
        Some("s"),
        Some(60.0),
        Some(604_800.0),
        None,
    ),
    ("notify.retries", None, Some(0.0), Some(9.0), None),
    (
        "notify.timeout_secs",
        Some("s"),
        Some(1.0),
        Some(300.0),
        None,
    ),
    ("smtp.port", None, Some(1.0), Some(65_535.0), None),
    (
        "smtp.security",
        None,
        None,
        None,
        Some(&["starttls", "implicit"]),
    ),
    (
        "ratelimit.key_rpm",
        Some("requests/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "ratelimit.key_tpm",
        Some("tokens/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "ratelimit.user_rpm",
        Some("requests/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "ratelimit.user_tpm",
        Some("tokens/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "ratelimit.group_rpm",
        Some("requests/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "ratelimit.group_tpm",
        Some("tokens/min"),
        Some(0.0),
        Some(RATE_MAX),
        None,
    ),
    (
        "channel.test_interval_minutes",
        Some("minutes"),
        Some(0.0),
        Some(10_080.0),
        None,
    ),
    (
        "channel.disable_statuses",
        None,
        Some(400.0),
        Some(499.0),
        None,
    ),
    (
        "channel.error_rate_threshold",
        Some("ratio"),
        Some(0.0),
        Some(1.0),
        None,
    ),
    (
        "channel.error_rate_min_requests",
        None,
        Some(2.0),
        Some(1_000_000.0),
        None,
    ),
    (
        "channel.error_window_secs",
        Some("s"),
        Some(10.0),
        Some(86_400.0),
        None,
    ),
];

/// Options whose value must be above their `min`.
const EXCLUSIVE_MIN: &[&str] = &["display.exchange_rate", "channel.error_rate_threshold"];

/// The metadata of `name`, read from the table and the shape of its default value.
pub fn of(name: &str, default: &Value) -> Meta {
    let row = TABLE.iter().find(|r| r.0 == name);
    let (unit, min, max, allowed) = row.map_or((None, None, None, None), |r| (r.1, r.2, r.3, r.4));
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
        OptionType::List => json!({"type": "array", "items": item(m.item_type)}),
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
#[allow(clippy::unwrap_used)]
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
        for (name, ..) in TABLE {
            assert!(defaults.contains_key(*name), "{name} is not an option");
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
