//! Money as people read it: quota units turned into the display currency chosen by the
//! `display.*` options. Responses always carry the raw units too; these figures are for
//! showing only and are never fed back into billing.
//!
//! USD is `quota / QUOTA_PER_USD`; CNY and CUSTOM multiply that by `display.exchange_rate`;
//! TOKENS shows the raw units. Amounts are rounded to millionths (one quota unit is
//! $0.000002, so USD amounts are exact), and the text keeps at least two decimals.

use super::QUOTA_PER_USD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How money is shown to people (raw quota units are always given alongside).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Usd,
    Cny,
    Tokens,
    Custom,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayOptions {
    pub currency: Currency,
    /// CNY per USD, or units of the custom currency per USD.
    pub exchange_rate: f64,
    /// Symbol of the custom currency.
    pub symbol: String,
}

impl Default for DisplayOptions {
    fn default() -> Self {
        DisplayOptions {
            currency: Currency::Usd,
            exchange_rate: 7.3,
            symbol: "¤".into(),
        }
    }
}

impl DisplayOptions {
    pub fn validate(&self) -> Result<(), String> {
        if !self.exchange_rate.is_finite() || self.exchange_rate <= 0.0 {
            return Err(format!(
                "display.exchange_rate is {}; use a number above 0 (default 7.3)",
                self.exchange_rate
            ));
        }
        if self.symbol.is_empty() || self.symbol.chars().count() > 8 {
            return Err("display.symbol must be 1 to 8 characters".into());
        }
        Ok(())
    }
}

/// One amount, shown: `{"amount": 1.23, "currency": "USD", "symbol": "$", "text": "$1.23"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Money {
    pub amount: f64,
    pub currency: &'static str,
    pub symbol: String,
    pub text: String,
}

/// `quota` units in the display currency.
pub fn show(quota: i64, o: &DisplayOptions) -> Money {
    let (currency, symbol, rate) = match o.currency {
        Currency::Usd => ("USD", "$".to_string(), 1.0),
        Currency::Cny => ("CNY", "¥".to_string(), o.exchange_rate),
        Currency::Custom => ("CUSTOM", o.symbol.clone(), o.exchange_rate),
        Currency::Tokens => {
            return Money {
                amount: quota as f64,
                currency: "TOKENS",
                symbol: String::new(),
                text: format!("{quota} tokens"),
            };
        }
    };
    // Millionths of the currency. For USD this is quota × 2 exactly; for a rate it is the
    // nearest millionth.
    let micros: i128 = if rate == 1.0 {
        i128::from(quota) * 1_000_000 / QUOTA_PER_USD as i128
    } else {
        (quota as f64 * 1_000_000.0 / QUOTA_PER_USD * rate).round() as i128
    };
    Money {
        amount: micros as f64 / 1_000_000.0,
        currency,
        text: text(micros, &symbol),
        symbol,
    }
}

/// The other way: an amount in the display currency as quota units (rounded to the nearest
/// unit), for settings a user may type in money. `None` for a negative or non-finite amount.
pub fn to_quota(amount: f64, o: &DisplayOptions) -> Option<i64> {
    if !amount.is_finite() || amount < 0.0 {
        return None;
    }
    let units = match o.currency {
        Currency::Tokens => amount,
        Currency::Usd => amount * QUOTA_PER_USD,
        Currency::Cny | Currency::Custom => amount / o.exchange_rate * QUOTA_PER_USD,
    };
    let units = units.round();
    (units <= i64::MAX as f64).then_some(units as i64)
}

/// `-$1.50`, `$0.000004`, `¥12.00`.
fn text(micros: i128, symbol: &str) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let (whole, frac) = (m / 1_000_000, m % 1_000_000);
    let mut f = format!("{frac:06}");
    while f.len() > 2 && f.ends_with('0') {
        f.pop();
    }
    format!("{sign}{symbol}{whole}.{f}")
}

/// Adds `<field>_display` next to each integer `field` of `v` (an object, or each object of
/// an array), leaving every existing field as it was.
pub fn annotate(v: &mut Value, fields: &[&str], o: &DisplayOptions) {
    match v {
        Value::Array(items) => {
            for item in items {
                annotate(item, fields, o);
            }
        }
        Value::Object(obj) => {
            for f in fields {
                if let Some(q) = obj.get(*f).and_then(Value::as_i64) {
                    let shown = serde_json::to_value(show(q, o)).unwrap_or(Value::Null);
                    obj.insert(format!("{f}_display"), shown);
                }
            }
        }
        _ => {}
    }
}

/// `v` as JSON with `<field>_display` added beside each of `fields` (see [`annotate`]).
pub fn with_display<T: Serialize>(v: &T, fields: &[&str], o: &DisplayOptions) -> Value {
    let mut doc = serde_json::to_value(v).unwrap_or(Value::Null);
    annotate(&mut doc, fields, o);
    doc
}

/// The money fields of a user row and of a key row.
pub const USER_FIELDS: &[&str] = &["quota", "used_quota"];
pub const KEY_FIELDS: &[&str] = &["remain_quota", "used_quota"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(currency: Currency) -> DisplayOptions {
        DisplayOptions {
            currency,
            ..DisplayOptions::default()
        }
    }

    #[test]
    fn amounts_turn_back_into_quota_units() {
        assert_eq!(to_quota(1.23, &opts(Currency::Usd)), Some(615_000));
        assert_eq!(to_quota(7.3, &opts(Currency::Cny)), Some(500_000));
        assert_eq!(to_quota(1234.0, &opts(Currency::Tokens)), Some(1234));
        assert_eq!(to_quota(-1.0, &opts(Currency::Usd)), None);
        assert_eq!(to_quota(f64::NAN, &opts(Currency::Usd)), None);
        assert_eq!(to_quota(1e300, &opts(Currency::Usd)), None);
    }

    #[test]
    fn usd_is_exact() {
        let m = show(615_000, &opts(Currency::Usd));
        assert_eq!(
            (m.amount, m.currency, m.symbol.as_str(), m.text.as_str()),
            (1.23, "USD", "$", "$1.23")
        );
        assert_eq!(show(1, &opts(Currency::Usd)).text, "$0.000002");
        assert_eq!(show(0, &opts(Currency::Usd)).text, "$0.00");
        assert_eq!(show(50_000_000, &opts(Currency::Usd)).text, "$100.00");
        assert_eq!(show(-250_000, &opts(Currency::Usd)).text, "-$0.50");
        assert_eq!(show(-250_000, &opts(Currency::Usd)).amount, -0.5);
    }

    #[test]
    fn cny_and_custom_use_the_rate() {
        let m = show(500_000, &opts(Currency::Cny));
        assert_eq!(
            (m.amount, m.text.as_str(), m.currency),
            (7.3, "¥7.30", "CNY")
        );
        let o = DisplayOptions {
            currency: Currency::Custom,
            exchange_rate: 100.0,
            symbol: "pts ".into(),
        };
        let m = show(1_000_000, &o);
        assert_eq!((m.amount, m.text.as_str()), (200.0, "pts 200.00"));
        assert_eq!(m.currency, "CUSTOM");
    }

    #[test]
    fn tokens_are_the_raw_units() {
        let m = show(123_456, &opts(Currency::Tokens));
        assert_eq!(
            (m.amount, m.text.as_str(), m.symbol.as_str()),
            (123_456.0, "123456 tokens", "")
        );
    }

    #[test]
    fn annotate_adds_beside_and_keeps_the_raw_field() {
        let mut v = json!([{"quota": 500_000, "name": "a"}, {"quota": "x"}, 3]);
        annotate(&mut v, &["quota", "used_quota"], &opts(Currency::Usd));
        assert_eq!(v[0]["quota"], 500_000);
        assert_eq!(v[0]["quota_display"]["text"], "$1.00");
        assert!(v[0].get("used_quota_display").is_none());
        assert!(v[1].get("quota_display").is_none());
    }
}
