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

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}
