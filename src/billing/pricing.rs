//! Ratio tables and the quota formula.
//!
//! Ratio mode: `quota = round((uncached + read × cache_read_ratio + write_5m × cache_write_ratio
//! + write_1h × cache_write_1h_ratio + completion × completion_ratio) × model_ratio × group_ratio)`,
//! at least 1 when the ratio is non-zero and any token was used. Model ratio 1 = $2 per 1M tokens.
//! `uncached` is the prompt less its cached parts ([`Usage`] has one normalised meaning).
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
    /// Cache reads cost this many times an uncached input token (model → ratio; a model not
    /// listed pays the full rate: no discount is assumed that the operator has not set).
    #[serde(default)]
    pub cache_read_ratio: BTreeMap<String, f64>,
    /// 5-minute cache writes cost this many times an uncached input token (model → ratio;
    /// [`DEFAULT_CACHE_WRITE`] when not listed: Anthropic's rule, the only provider that
    /// reports writes).
    #[serde(default)]
    pub cache_write_ratio: BTreeMap<String, f64>,
    /// 1-hour cache writes, likewise ([`DEFAULT_CACHE_WRITE_1H`] when not listed).
    #[serde(default)]
    pub cache_write_1h_ratio: BTreeMap<String, f64>,
    /// Relay models with no ratio at ratio 1 instead of refusing them.
    pub allow_unpriced_models: bool,
}

/// Anthropic's list price for a 5-minute cache write: 1.25 × input.
pub const DEFAULT_CACHE_WRITE: f64 = 1.25;
/// Anthropic's list price for a 1-hour cache write: 2 × input.
pub const DEFAULT_CACHE_WRITE_1H: f64 = 2.0;

/// What input tokens cost relative to an uncached input token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheRatios {
    pub read: f64,
    pub write_5m: f64,
    pub write_1h: f64,
}

impl CacheRatios {
    /// No discount, no surcharge: every input token at the full rate.
    pub const FLAT: CacheRatios = CacheRatios {
        read: 1.0,
        write_5m: 1.0,
        write_1h: 1.0,
    };

    /// The dearest an input token can be (a cache write), for a reservation that must cover
    /// a prompt written to the cache whole.
    pub fn dearest(&self) -> f64 {
        self.write_5m.max(self.write_1h).max(1.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    Ratio {
        model_ratio: f64,
        completion_ratio: f64,
        group_ratio: f64,
        cache: CacheRatios,
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
        // (model, model_ratio, completion_ratio, cache read ratio): list prices per 1M
        // tokens / $2; the read ratio is the list price of cached input over input (OpenAI's
        // cached input: 0.5 for the 4o and o1 families, 0.25 for 4.1, o3 and o4-mini; none for
        // the older models; Anthropic's cache reads 0.1; Gemini's cached input 0.25 for the
        // 2.0 and 2.5 models that have caching, at the ≤ 200k-token prompt tier of 2.5 Pro;
        // thinking is billed as output, at the completion ratio).
        const MODELS: &[(&str, f64, f64, f64)] = &[
            ("gpt-3.5-turbo", 0.25, 3.0, 1.0),
            ("gpt-3.5-turbo-instruct", 0.75, 4.0 / 3.0, 1.0),
            ("gpt-4", 15.0, 2.0, 1.0),
            ("gpt-4-turbo", 5.0, 3.0, 1.0),
            ("gpt-4o", 1.25, 4.0, 0.5),
            ("gpt-4o-mini", 0.075, 4.0, 0.5),
            ("gpt-4.1", 1.0, 4.0, 0.25),
            ("gpt-4.1-mini", 0.2, 4.0, 0.25),
            ("gpt-4.1-nano", 0.05, 4.0, 0.25),
            ("o1", 7.5, 4.0, 0.5),
            ("o1-mini", 0.55, 4.0, 0.5),
            ("o3", 1.0, 4.0, 0.25),
            ("o3-mini", 0.55, 4.0, 0.5),
            ("o4-mini", 0.55, 4.0, 0.25),
            ("text-embedding-3-small", 0.01, 1.0, 1.0),
            ("text-embedding-3-large", 0.065, 1.0, 1.0),
            ("text-embedding-ada-002", 0.05, 1.0, 1.0),
            ("claude-opus-4-1", 7.5, 5.0, 0.1),
            ("claude-opus-4-0", 7.5, 5.0, 0.1),
            ("claude-sonnet-4-5", 1.5, 5.0, 0.1),
            ("claude-sonnet-4-0", 1.5, 5.0, 0.1),
            ("claude-3-7-sonnet-latest", 1.5, 5.0, 0.1),
            ("claude-haiku-4-5", 0.5, 5.0, 0.1),
            ("claude-3-5-haiku-latest", 0.4, 5.0, 0.1),
            ("gemini-2.5-pro", 0.625, 8.0, 0.25),
            ("gemini-2.5-flash", 0.15, 25.0 / 3.0, 0.25),
            ("gemini-2.5-flash-lite", 0.05, 4.0, 0.25),
            ("gemini-2.0-flash", 0.05, 4.0, 0.25),
            ("gemini-2.0-flash-lite", 0.0375, 4.0, 1.0),
        ];
        let mut model_ratio = BTreeMap::new();
        let mut completion_ratio = BTreeMap::new();
        let mut cache_read_ratio = BTreeMap::new();
        let mut cache_write_ratio = BTreeMap::new();
        let mut cache_write_1h_ratio = BTreeMap::new();
        for (m, r, c, read) in MODELS {
            model_ratio.insert((*m).to_string(), *r);
            completion_ratio.insert((*m).to_string(), *c);
            cache_read_ratio.insert((*m).to_string(), *read);
            if m.starts_with("claude") {
                cache_write_ratio.insert((*m).to_string(), DEFAULT_CACHE_WRITE);
                cache_write_1h_ratio.insert((*m).to_string(), DEFAULT_CACHE_WRITE_1H);
            }
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
            cache_read_ratio,
            cache_write_ratio,
            cache_write_1h_ratio,
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
            cache: self.cache(model),
        })
    }

    /// The cache ratios of `model` (defaults where the tables list none).
    pub fn cache(&self, model: &str) -> CacheRatios {
        CacheRatios {
            read: self.cache_read_ratio.get(model).copied().unwrap_or(1.0),
            write_5m: self
                .cache_write_ratio
                .get(model)
                .copied()
                .unwrap_or(DEFAULT_CACHE_WRITE),
            write_1h: self
                .cache_write_1h_ratio
                .get(model)
                .copied()
                .unwrap_or(DEFAULT_CACHE_WRITE_1H),
        }
    }

    /// Checks the tables an admin sets: finite, non-negative numbers.
    pub fn validate(&self) -> Result<(), PricingError> {
        let tables = [
            ("model_ratio", &self.model_ratio),
            ("completion_ratio", &self.completion_ratio),
            ("group_ratio", &self.group_ratio),
            ("model_price", &self.model_price),
            ("cache_read_ratio", &self.cache_read_ratio),
            ("cache_write_ratio", &self.cache_write_ratio),
            ("cache_write_1h_ratio", &self.cache_write_1h_ratio),
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
                cache,
            } => {
                if usage.prompt_tokens == 0 && usage.completion_tokens == 0 {
                    return 0;
                }
                let ratio = model_ratio * group_ratio;
                // Each input token once: the cached parts at their ratios, the rest in full.
                let tokens = usage.uncached_input() as f64
                    + usage.cache_read as f64 * cache.read
                    + usage.cache_write_5m as f64 * cache.write_5m
                    + usage.cache_write_1h as f64 * cache.write_1h
                    + usage.completion_tokens as f64 * completion_ratio;
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
        Usage::new(p, c)
    }

    #[test]
    fn ratio_formula_matches_the_reference() {
        let p = Price::Ratio {
            model_ratio: 0.075,
            completion_ratio: 4.0,
            group_ratio: 1.0,
            cache: CacheRatios::FLAT,
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
            cache: CacheRatios::FLAT,
        };
        assert_eq!(g.quota(usage(10, 10)), 30);
        let free = Price::Ratio {
            model_ratio: 0.0,
            completion_ratio: 1.0,
            group_ratio: 1.0,
            cache: CacheRatios::FLAT,
        };
        assert_eq!(free.quota(usage(10, 10)), 0);
    }

    #[test]
    fn cached_input_is_priced_once_at_its_ratio() {
        let pr = Pricing::default();
        let p = pr.price("claude-sonnet-4-5", "default").unwrap();
        // 10,000 input of which 8,000 read, 1,000 written for 5 min, 500 for 1 h; 100 out:
        // (500 + 8000×0.1 + 1000×1.25 + 500×2 + 100×5) × 1.5 = 4050×1.5 = 6075.
        let u = Usage {
            prompt_tokens: 10_000,
            completion_tokens: 100,
            cache_read: 8_000,
            cache_write_5m: 1_000,
            cache_write_1h: 500,
            reasoning_tokens: 0,
        };
        assert_eq!(p.quota(u), 6075);
        // gpt-4o: cached input at half price; reasoning is inside completion, not added.
        let p = pr.price("gpt-4o", "default").unwrap();
        let u = Usage {
            prompt_tokens: 1_000,
            cache_read: 800,
            completion_tokens: 10,
            reasoning_tokens: 8,
            ..Usage::default()
        };
        // (200 + 400 + 40) × 1.25 = 800
        assert_eq!(p.quota(u), 800);
        // Cache figures above the prompt never make the uncached part negative.
        let u = Usage {
            prompt_tokens: 10,
            cache_read: 50,
            ..Usage::default()
        };
        assert_eq!(u.uncached_input(), 0);
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
