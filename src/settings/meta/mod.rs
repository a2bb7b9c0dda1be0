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
mod tests;
