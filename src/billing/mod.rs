//! Pure pricing: what a call costs in quota units. Knows nothing of SQLite or HTTP.
//!
//! - [`pricing`]: the ratio and price tables (run-time options) and the quota formula.
//! - [`display`]: quota units shown in the display currency (USD, CNY, TOKENS, CUSTOM).
//! - [`tokens`]: token counting with tiktoken, for estimates and when upstream reports no usage.

pub mod display;
pub mod pricing;
pub mod tokens;

pub use pricing::{Price, Pricing, PricingError};

/// 500,000 quota units are one US dollar.
pub const QUOTA_PER_USD: f64 = 500_000.0;

/// Token counts of one call, normalised to one meaning whatever the provider (docs/api.md has
/// the mapping; FORMATS.md each provider's own):
/// - `prompt_tokens` is **every** input token, cached or not (OpenAI's and Gemini's meaning):
///   `prompt_tokens ⊇ cache_read + cache_write_5m + cache_write_1h`. Anthropic reports the
///   uncached part alone, so its three input fields are summed into it.
/// - `completion_tokens` is every output token, reasoning included (`⊇ reasoning_tokens`).
///
/// One meaning means a token is never counted twice: the price of the uncached input is
/// `prompt − cache_read − cache_write_*` ([`Usage::uncached_input`]), and an Anthropic-shaped
/// answer gets `input_tokens` by the same subtraction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the cache with a 5-minute lifetime (Anthropic's default).
    pub cache_write_5m: u64,
    /// Input tokens written to the cache with a 1-hour lifetime.
    pub cache_write_1h: u64,
    /// Output tokens spent reasoning (part of `completion_tokens`, shown, not priced apart).
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            ..Usage::default()
        }
    }

    /// Input tokens neither read from nor written to a cache (never negative: an upstream
    /// whose cache figures exceed its prompt is charged no uncached input, not a refund).
    pub fn uncached_input(&self) -> u64 {
        self.prompt_tokens
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write_5m)
            .saturating_sub(self.cache_write_1h)
    }

    /// Merges what a later stream event reports: each figure is cumulative where it is given
    /// (Anthropic's `message_delta`, OpenAI's single usage chunk), so the larger one stands.
    pub fn merge(&mut self, later: Usage) {
        self.prompt_tokens = self.prompt_tokens.max(later.prompt_tokens);
        self.completion_tokens = self.completion_tokens.max(later.completion_tokens);
        self.cache_read = self.cache_read.max(later.cache_read);
        self.cache_write_5m = self.cache_write_5m.max(later.cache_write_5m);
        self.cache_write_1h = self.cache_write_1h.max(later.cache_write_1h);
        self.reasoning_tokens = self.reasoning_tokens.max(later.reasoning_tokens);
    }
}
