//! The output limit: the most tokens the upstream may generate, bounded by what was reserved.
//!
//! The charge can only stay within the reservation if the upstream is never asked for more
//! output than the reservation pays for, so sluice writes the limit into every completion
//! request itself, in one field:
//! - `max_completion_tokens` for the model families that refuse `max_tokens` (OpenAI's
//!   reasoning models: o1, o3, o4, gpt-5; the `relay.max_completion_tokens_models` option);
//! - `max_tokens` for every other chat model and for legacy completions: the field every
//!   OpenAI-compatible server honours (vLLM, llama.cpp, Ollama, TGI…), and the only one the
//!   legacy API has.
//!
//! Never both: OpenAI (and others, such as Volcengine Ark) refuse a request that sets both
//! with 400 `invalid_parameter_combination`, and a server that honours only one would take
//! whichever it knows. The client's own fields are removed and their smaller value kept.
//! When the client sets neither, the limit is the model's (`relay.max_output_tokens`, else
//! `relay.default_max_output_tokens`; 16 for legacy completions, that API's documented
//! default) or the most the balance covers, whichever is less.

use crate::billing::{Price, Usage};
use crate::error::ApiError;
use crate::settings::modules::RelayOptions;
use crate::upstream::Endpoint;
use serde_json::{Map, Value};

/// The legacy completions API's default `max_tokens`.
const LEGACY_DEFAULT: u64 = 16;
/// OpenAI's upper bounds on `n` and (legacy completions) `best_of`.
const MAX_N: u64 = 128;
const MAX_BEST_OF: u64 = 20;

/// What the client asked of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// The smaller of `max_tokens` and `max_completion_tokens`, when the client set either.
    pub max: Option<u64>,
    /// Completions the upstream generates, each up to the limit: `n`, and for legacy
    /// completions `best_of` (generated server-side and billed, though one is returned).
    pub copies: u64,
    /// The request marks prompt parts for caching (Anthropic's `cache_control`): its prompt
    /// may be written to the cache whole, at the cache-write ratio, dearer than full rate.
    pub writes_cache: bool,
}

/// An optional non-negative integer field (`null` is the same as absent).
fn count(doc: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!("'{name}' must be a whole number of 0 or more"))
        }),
    }
}

fn copies(doc: &Map<String, Value>, name: &str, max: u64) -> Result<u64, ApiError> {
    match count(doc, name)? {
        None => Ok(1),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "'{name}' is {n}; use a whole number from 1 to {max}"
        ))),
    }
}

/// Reads and checks the client's limit fields, `n` and `best_of`.
pub fn asked(endpoint: Endpoint, doc: &Map<String, Value>) -> Result<Asked, ApiError> {
    if endpoint == Endpoint::Embeddings {
        return Ok(Asked {
            max: None,
            copies: 0,
            writes_cache: false,
        });
    }
    if endpoint == Endpoint::Responses {
        // The Responses API has one limit field, and one answer per call.
        return Ok(Asked {
            max: count(doc, "max_output_tokens")?,
            copies: 1,
            writes_cache: false,
        });
    }
    let max = match (
        count(doc, "max_tokens")?,
        count(doc, "max_completion_tokens")?,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let n = copies(doc, "n", MAX_N)?;
    let copies = match endpoint {
        Endpoint::Completions => n.max(copies(doc, "best_of", MAX_BEST_OF)?),
        Endpoint::Chat | Endpoint::Embeddings | Endpoint::Responses => n,
    };
    Ok(Asked {
        max,
        copies,
        writes_cache: false,
    })
}

/// The field that carries the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    MaxTokens,
    MaxCompletionTokens,
    /// The Responses API's one limit field.
    MaxOutputTokens,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::MaxTokens => "max_tokens",
            Field::MaxCompletionTokens => "max_completion_tokens",
            Field::MaxOutputTokens => "max_output_tokens",
        }
    }
}

/// The field the upstream model honours (see the module comment).
pub fn field(endpoint: Endpoint, upstream_model: &str, o: &RelayOptions) -> Field {
    // A Responses call converted for a chat upstream is a chat request by now.
    if matches!(endpoint, Endpoint::Completions | Endpoint::Embeddings) {
        return Field::MaxTokens;
    }
    // "openai/o3-mini" (a router's name) is the o3 family too.
    let base = upstream_model
        .rsplit('/')
        .next()
        .unwrap_or(upstream_model)
        .to_ascii_lowercase();
    let reasoning = o
        .max_completion_tokens_models
        .iter()
        .any(|p| base.starts_with(&p.to_ascii_lowercase()));
    if reasoning {
        Field::MaxCompletionTokens
    } else {
        Field::MaxTokens
    }
}

/// The field in a request of `format`: Anthropic's is always `max_tokens`.
pub fn field_in(
    format: crate::formats::Format,
    endpoint: Endpoint,
    upstream_model: &str,
    o: &RelayOptions,
) -> Field {
    match format {
        // Gemini's (`maxOutputTokens`) is written by its encoder; never a client's format.
        crate::formats::Format::Anthropic | crate::formats::Format::Gemini => Field::MaxTokens,
        crate::formats::Format::Responses => Field::MaxOutputTokens,
        crate::formats::Format::OpenAiChat => field(endpoint, upstream_model, o),
    }
}

/// Puts `limit` in `field` and removes the other limit fields.
pub fn write(doc: &mut Map<String, Value>, field: Field, limit: u64) {
    doc.remove("max_tokens");
    doc.remove("max_completion_tokens");
    doc.remove("max_output_tokens");
    doc.insert(field.name().into(), Value::from(limit));
}

/// The limit when the client sets none and the balance is no constraint.
pub fn model_cap(endpoint: Endpoint, model: &str, o: &RelayOptions) -> u64 {
    let cap = o
        .max_output_tokens
        .get(model)
        .copied()
        .unwrap_or(o.default_max_output_tokens);
    match endpoint {
        Endpoint::Completions => cap.min(LEGACY_DEFAULT),
        Endpoint::Chat | Endpoint::Embeddings | Endpoint::Responses => cap,
    }
}

/// What a call costs at most: the estimated prompt and `limit` tokens for each copy.
/// Cached input only ever costs less than full rate, except a cache write: a request that may
/// write the cache is reserved as if its whole prompt were written at the dearest write ratio.
pub fn cost(price: &Price, prompt: u64, asked: &Asked, limit: u64) -> i64 {
    let mut usage = Usage::new(prompt, limit.saturating_mul(asked.copies));
    if asked.writes_cache
        && let Price::Ratio { cache, .. } = price
        && cache.dearest() > 1.0
    {
        if cache.write_1h >= cache.write_5m {
            usage.cache_write_1h = prompt;
        } else {
            usage.cache_write_5m = prompt;
        }
    }
    price.quota(usage)
}

/// The largest limit, at most `cap`, whose [`cost`] is within `budget`. The cost grows with
/// the limit (never falls), so a bisection finds it exactly; the caller has made sure a limit
/// of 0 fits.
pub fn largest_within(price: &Price, prompt: u64, asked: &Asked, cap: u64, budget: i64) -> u64 {
    let fits = |limit| cost(price, prompt, asked, limit) <= budget;
    if fits(cap) {
        return cap;
    }
    // fits(lo) and !fits(hi) throughout.
    let (mut lo, mut hi) = (0, cap);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_smaller_field_and_every_copy_count() {
        let a = asked(
            Endpoint::Chat,
            &doc(json!({"max_tokens": 4096, "max_completion_tokens": 1, "n": 3})),
        )
        .unwrap();
        assert_eq!(
            a,
            Asked {
                max: Some(1),
                copies: 3,
                writes_cache: false,
            }
        );
        let a = asked(
            Endpoint::Completions,
            &doc(json!({"max_tokens": null, "n": 2, "best_of": 5})),
        )
        .unwrap();
        assert_eq!(
            a,
            Asked {
                max: None,
                copies: 5,
                writes_cache: false,
            }
        );
        for bad in [
            json!({"max_tokens": -1}),
            json!({"max_completion_tokens": 2.5}),
            json!({"n": 0}),
            json!({"n": 129}),
            json!({"best_of": 21}),
        ] {
            assert!(
                asked(Endpoint::Completions, &doc(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn reasoning_families_take_max_completion_tokens() {
        let o = RelayOptions::default();
        for m in [
            "o1",
            "o3-mini",
            "o4-mini-2025",
            "gpt-5",
            "openai/o3",
            "GPT-5-mini",
        ] {
            assert_eq!(
                field(Endpoint::Chat, m, &o),
                Field::MaxCompletionTokens,
                "{m}"
            );
        }
        for m in ["gpt-4o", "gpt-4.1-mini", "llama-3-70b", "deepseek-reasoner"] {
            assert_eq!(field(Endpoint::Chat, m, &o), Field::MaxTokens, "{m}");
        }
        assert_eq!(field(Endpoint::Completions, "o3", &o), Field::MaxTokens);
        let mut d = doc(json!({"max_tokens": 9, "max_completion_tokens": 3, "x": 1}));
        write(&mut d, Field::MaxCompletionTokens, 3);
        assert_eq!(
            Value::Object(d),
            json!({"max_completion_tokens": 3, "x": 1})
        );
    }

    #[test]
    fn the_largest_limit_the_budget_covers() {
        let price = Price::Ratio {
            model_ratio: 0.075,
            completion_ratio: 4.0,
            group_ratio: 1.0,
            cache: crate::billing::pricing::CacheRatios::FLAT,
        };
        let asked = Asked {
            max: None,
            copies: 2,
            writes_cache: false,
        };
        // From the prompt alone (4 units) upwards.
        for budget in [4, 5, 7, 100, 1_000, 123_457] {
            let limit = largest_within(&price, 50, &asked, 100_000, budget);
            assert!(cost(&price, 50, &asked, limit) <= budget, "{budget}");
            if limit < 100_000 {
                assert!(cost(&price, 50, &asked, limit + 1) > budget, "{budget}");
            }
        }
        assert_eq!(largest_within(&price, 50, &asked, 300, i64::MAX), 300);
        let flat = Price::PerCall {
            usd: 0.01,
            group_ratio: 1.0,
        };
        assert_eq!(largest_within(&flat, 50, &asked, 300, 5_000), 300);
    }
}
