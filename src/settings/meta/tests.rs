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
