//! Ratio tables and the quota formula.
//!
//! Ratio mode: `quota = round((prompt + completion × completion_ratio) × model_ratio × group_ratio)`,
//! at least 1 when the ratio is non-zero and any token was used. Model ratio 1 = $2 per 1M tokens.
//! Price mode (per-call models): `quota = round(price_usd × 500,000 × group_ratio)`.

use super::{QUOTA_PER_USD, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The price tables, as stored in the options (JSON under each field's name).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pricing {
    pub model_ratio: BTreeMap<String, f64>,
    pub completion_ratio: BTreeMap<String, f64>,
    pub group_ratio: BTreeMap<String, f64>,
    /// Per-call prices in USD; a model listed here is billed per call, not per token.
    pub model_price: BTreeMap<String, f64>,
    /// Relay models with no ratio at ratio 1 instead of refusing them.
    pub allow_unpriced_models: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    Ratio {
        model_ratio: f64,
        completion_ratio: f64,
        group_ratio: f64,
    },
    PerCall {
        usd: f64,
        group_ratio: f64,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PricingError {
    #[error(
        "model {0:?} has no price set; an admin must add it to the model_ratio or model_price option"
    )]
    Unpriced(String),
    #[error("{0}")]
    Invalid(String),
}

impl Default for Pricing {
    fn default() -> Self {
        // (model, model_ratio, completion_ratio): list prices per 1M tokens / $2.
        const MODELS: &[(&str, f64, f64)] = &[
            ("gpt-3.5-turbo", 0.25, 3.0),
            ("gpt-3.5-turbo-instruct", 0.75, 4.0 / 3.0),
            ("gpt-4", 15.0, 2.0),
            ("gpt-4-turbo", 5.0, 3.0),
            ("gpt-4o", 1.25, 4.0),
            ("gpt-4o-mini", 0.075, 4.0),
            ("gpt-4.1", 1.0, 4.0),
            ("gpt-4.1-mini", 0.2, 4.0),
            ("gpt-4.1-nano", 0.05, 4.0),
            ("o1", 7.5, 4.0),
            ("o1-mini", 0.55, 4.0),
            ("o3", 1.0, 4.0),
            ("o3-mini", 0.55, 4.0),
            ("o4-mini", 0.55, 4.0),
            ("text-embedding-3-small", 0.01, 1.0),
            ("text-embedding-3-large", 0.065, 1.0),
            ("text-embedding-ada-002", 0.05, 1.0),
        ];
        let mut model_ratio = BTreeMap::new();
        let mut completion_ratio = BTreeMap::new();
        for (m, r, c) in MODELS {
            model_ratio.insert((*m).to_string(), *r);
            completion_ratio.insert((*m).to_string(), *c);
        }
        let group_ratio = [("default", 1.0), ("vip", 1.0), ("svip", 1.0)]
            .into_iter()
            .map(|(g, r)| (g.to_string(), r))
            .collect();
        Pricing {
            model_ratio,
            completion_ratio,
            group_ratio,
            model_price: BTreeMap::new(),
            allow_unpriced_models: false,
        }
    }
}

impl Pricing {
    /// The price of `model` for a user in `group`.
    pub fn price(&self, model: &str, group: &str) -> Result<Price, PricingError> {
        let group_ratio = self.group_ratio.get(group).copied().unwrap_or(1.0);
        if let Some(usd) = self.model_price.get(model) {
            return Ok(Price::PerCall {
                usd: *usd,
                group_ratio,
            });
        }
        let model_ratio = match self.model_ratio.get(model) {
            Some(r) => *r,
            None if self.allow_unpriced_models => 1.0,
            None => return Err(PricingError::Unpriced(model.to_string())),
        };
        let completion_ratio = self.completion_ratio.get(model).copied().unwrap_or(1.0);
        Ok(Price::Ratio {
            model_ratio,
            completion_ratio,
            group_ratio,
        })
    }

    /// Checks the tables an admin sets: finite, non-negative numbers.
    pub fn validate(&self) -> Result<(), PricingError> {
        let tables = [
            ("model_ratio", &self.model_ratio),
            ("completion_ratio", &self.completion_ratio),
            ("group_ratio", &self.group_ratio),
            ("model_price", &self.model_price),
        ];
        for (name, table) in tables {
            for (k, v) in table {
                if !v.is_finite() || *v < 0.0 {
                    return Err(PricingError::Invalid(format!(
                        "{name}[{k:?}] = {v} is not allowed: use a number of 0 or more"
                    )));
                }
                if k.is_empty() {
                    return Err(PricingError::Invalid(format!(
                        "{name} has an empty model or group name"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Price {
    /// Quota units for the given usage.
    pub fn quota(&self, usage: Usage) -> i64 {
        match *self {
            Price::PerCall { usd, group_ratio } => {
                (usd * QUOTA_PER_USD * group_ratio).round() as i64
            }
            Price::Ratio {
                model_ratio,
                completion_ratio,
                group_ratio,
            } => {
                if usage.prompt_tokens == 0 && usage.completion_tokens == 0 {
                    return 0;
                }
                let ratio = model_ratio * group_ratio;
                let tokens =
                    usage.prompt_tokens as f64 + usage.completion_tokens as f64 * completion_ratio;
                let q = (tokens * ratio).round() as i64;
                if ratio > 0.0 { q.max(1) } else { 0 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(p: u64, c: u64) -> Usage {
        Usage {
            prompt_tokens: p,
            completion_tokens: c,
        }
    }

    #[test]
    fn ratio_formula_matches_the_reference() {
        let p = Price::Ratio {
            model_ratio: 0.075,
            completion_ratio: 4.0,
            group_ratio: 1.0,
        };
        // (1000 + 500*4) * 0.075 = 225
        assert_eq!(p.quota(usage(1000, 500)), 225);
        // tiny usage still costs 1
        assert_eq!(p.quota(usage(1, 0)), 1);
        // no tokens at all costs nothing
        assert_eq!(p.quota(usage(0, 0)), 0);
        let g = Price::Ratio {
            model_ratio: 1.0,
            completion_ratio: 1.0,
            group_ratio: 1.5,
        };
        assert_eq!(g.quota(usage(10, 10)), 30);
        let free = Price::Ratio {
            model_ratio: 0.0,
            completion_ratio: 1.0,
            group_ratio: 1.0,
        };
        assert_eq!(free.quota(usage(10, 10)), 0);
    }

    #[test]
    fn per_call_price() {
        let p = Price::PerCall {
            usd: 0.04,
            group_ratio: 0.5,
        };
        assert_eq!(p.quota(usage(0, 0)), 10_000);
    }

    #[test]
    fn unpriced_models_are_refused_unless_allowed() {
        let mut pr = Pricing::default();
        assert!(matches!(
            pr.price("no-such", "default"),
            Err(PricingError::Unpriced(_))
        ));
        pr.allow_unpriced_models = true;
        assert!(pr.price("no-such", "default").is_ok());
        pr.model_price.insert("dall-e-3".into(), 0.04);
        assert!(matches!(
            pr.price("dall-e-3", "default").unwrap(),
            Price::PerCall { .. }
        ));
    }

    #[test]
    fn validation_refuses_negative_and_nan() {
        let mut pr = Pricing::default();
        pr.model_ratio.insert("x".into(), -1.0);
        assert!(pr.validate().is_err());
        let mut pr = Pricing::default();
        pr.group_ratio.insert("g".into(), f64::NAN);
        assert!(pr.validate().is_err());
    }
}
