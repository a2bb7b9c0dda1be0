//! The typed run-time settings, one struct per module. Field names are the option names
//! (`<module>.<field>`); defaults live here; `validate` names the option and the fix.

use super::notify::{NotifyOptions, SmtpOptions};
use crate::billing::Pricing;
pub use crate::billing::display::{Currency, DisplayOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every run-time setting. Stored in the `options` table, one row per `<module>.<field>`
/// that differs from its default; applied live after every change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub pricing: Pricing,
    pub relay: RelayOptions,
    pub profiler: ProfilerOptions,
    pub log: LogOptions,
    pub backup: BackupOptions,
    pub anomaly: AnomalyOptions,
    pub display: DisplayOptions,
    pub notify: NotifyOptions,
    pub smtp: SmtpOptions,
    pub ratelimit: super::ratelimit::RateLimitOptions,
    pub channel: super::channel::ChannelOptions,
    pub keys: KeyOptions,
    pub cors: super::cors::CorsOptions,
}

impl Options {
    pub fn validate(&self) -> Result<(), String> {
        self.pricing.validate().map_err(|e| e.to_string())?;
        self.relay.validate()?;
        self.profiler.validate()?;
        self.log.validate()?;
        self.backup.validate()?;
        self.anomaly.validate()?;
        self.display.validate()?;
        super::notify::validate(&self.notify)?;
        self.smtp.validate()?;
        self.ratelimit.validate()?;
        self.channel.validate()?;
        self.keys.validate()?;
        self.cors.validate()
    }
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    v: T,
    lo: T,
    hi: T,
    default: &str,
) -> Result<(), String> {
    if v < lo || v > hi || v.partial_cmp(&v).is_none() {
        return Err(format!(
            "{name} is {v}; use a value from {lo} to {hi} (default {default})"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelayOptions {
    pub connect_timeout_ms: u64,
    pub first_byte_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub retries: u32,
    pub max_body_bytes: usize,
    pub max_sse_line_bytes: usize,
    /// Completion tokens counted against tokens-per-minute limits at admission when a request
    /// sets no output limit (corrected to the real count when it settles).
    pub default_completion_estimate: u64,
    /// The output limit of each model (model → tokens): written into a request that sets
    /// none, unless the balance covers less.
    pub max_output_tokens: BTreeMap<String, u64>,
    /// The output limit of a model not in `max_output_tokens`.
    pub default_max_output_tokens: u64,
    /// Model-name prefixes whose output limit goes in `max_completion_tokens` (they refuse
    /// `max_tokens`); every other chat model gets `max_tokens`.
    pub max_completion_tokens_models: Vec<String>,
}

/// Published output limits (max completion tokens) of OpenAI's models. gpt-4's is 8192, but
/// prompt + limit must fit its 8192-token context, so half is written for it.
const MODEL_OUTPUT_LIMITS: &[(&str, u64)] = &[
    ("gpt-3.5-turbo", 4_096),
    ("gpt-3.5-turbo-instruct", 4_096),
    ("gpt-4", 4_096),
    ("gpt-4-turbo", 4_096),
    ("gpt-4o", 16_384),
    ("gpt-4o-mini", 16_384),
    ("gpt-4.1", 32_768),
    ("gpt-4.1-mini", 32_768),
    ("gpt-4.1-nano", 32_768),
    ("o1", 100_000),
    ("o1-mini", 65_536),
    ("o3", 100_000),
    ("o3-mini", 100_000),
    ("o4-mini", 100_000),
];

/// Largest output limit an option may set (tokens).
pub const MAX_OUTPUT_LIMIT: u64 = 10_000_000;

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 120_000,
            idle_timeout_ms: 60_000,
            retries: 1,
            max_body_bytes: 32 * 1024 * 1024,
            max_sse_line_bytes: 16 * 1024 * 1024,
            default_completion_estimate: 1_024,
            max_output_tokens: MODEL_OUTPUT_LIMITS
                .iter()
                .map(|(m, n)| ((*m).to_string(), *n))
                .collect(),
            default_max_output_tokens: 4_096,
            max_completion_tokens_models: ["o1", "o3", "o4", "gpt-5"]
                .iter()
                .map(|m| (*m).to_string())
                .collect(),
        }
    }
}

impl RelayOptions {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.first_byte_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    fn validate(&self) -> Result<(), String> {
        range(
            "relay.connect_timeout_ms",
            self.connect_timeout_ms,
            100,
            120_000,
            "5000",
        )?;
        range(
            "relay.first_byte_timeout_ms",
            self.first_byte_timeout_ms,
            100,
            3_600_000,
            "120000",
        )?;
        range(
            "relay.idle_timeout_ms",
            self.idle_timeout_ms,
            100,
            3_600_000,
            "60000",
        )?;
        range("relay.retries", self.retries, 0, 10, "1")?;
        range(
            "relay.max_body_bytes",
            self.max_body_bytes,
            1024,
            1 << 30,
            "33554432",
        )?;
        range(
            "relay.max_sse_line_bytes",
            self.max_sse_line_bytes,
            64 * 1024,
            1 << 30,
            "16777216",
        )?;
        range(
            "relay.default_completion_estimate",
            self.default_completion_estimate,
            1,
            1_000_000,
            "1024",
        )?;
        range(
            "relay.default_max_output_tokens",
            self.default_max_output_tokens,
            1,
            MAX_OUTPUT_LIMIT,
            "4096",
        )?;
        for (model, n) in &self.max_output_tokens {
            if model.is_empty() {
                return Err("relay.max_output_tokens has an empty model name".into());
            }
            range(
                &format!("relay.max_output_tokens[{model:?}]"),
                *n,
                1,
                MAX_OUTPUT_LIMIT,
                "the model's published limit",
            )?;
        }
        if self
            .max_completion_tokens_models
            .iter()
            .any(String::is_empty)
        {
            return Err(
                "relay.max_completion_tokens_models has an empty prefix (it would match every model)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProfilerOptions {
    pub enabled: bool,
    pub interval_secs: u64,
    pub threshold_percent: f64,
    pub duration_secs: u64,
    pub cooldown_secs: u64,
    pub keep: usize,
    pub frequency_hz: i32,
}

impl Default for ProfilerOptions {
    fn default() -> Self {
        ProfilerOptions {
            enabled: true,
            interval_secs: 30,
            threshold_percent: 80.0,
            duration_secs: 10,
            cooldown_secs: 300,
            keep: 20,
            frequency_hz: 99,
        }
    }
}

impl ProfilerOptions {
    /// The profiler's settings, writing into `dir`.
    pub fn to_config(&self, dir: std::path::PathBuf) -> crate::profiler::ProfilerConfig {
        crate::profiler::ProfilerConfig {
            enabled: self.enabled,
            interval: Duration::from_secs(self.interval_secs),
            threshold_percent: self.threshold_percent,
            duration: Duration::from_secs(self.duration_secs),
            cooldown: Duration::from_secs(self.cooldown_secs),
            keep: self.keep,
            frequency_hz: self.frequency_hz,
            dir,
        }
    }

    fn validate(&self) -> Result<(), String> {
        range(
            "profiler.interval_secs",
            self.interval_secs,
            1,
            86_400,
            "30",
        )?;
        range(
            "profiler.threshold_percent",
            self.threshold_percent,
            0.0,
            100.0,
            "80",
        )?;
        range("profiler.duration_secs", self.duration_secs, 1, 600, "10")?;
        range(
            "profiler.cooldown_secs",
            self.cooldown_secs,
            0,
            7 * 86_400,
            "300",
        )?;
        range(
            "profiler.keep",
            self.keep,
            1,
            crate::profiler::MAX_KEEP,
            "20",
        )?;
        range(
            "profiler.frequency_hz",
            self.frequency_hz,
            1,
            crate::profiler::MAX_FREQUENCY_HZ,
            "99",
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogOptions {
    /// Consume, error and system rows older than this many days are deleted (0 = keep all).
    pub retention_days: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { retention_days: 90 }
    }
}

impl LogOptions {
    fn validate(&self) -> Result<(), String> {
        range("log.retention_days", self.retention_days, 0, 36_500, "90")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BackupOptions {
    /// Hours between scheduled backups (0 = no scheduled backups).
    pub interval_hours: u32,
    /// Scheduled and manual backups kept, newest first.
    pub keep: u32,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            interval_hours: 24,
            keep: 7,
        }
    }
}

impl BackupOptions {
    fn validate(&self) -> Result<(), String> {
        range(
            "backup.interval_hours",
            self.interval_hours,
            0,
            24 * 365,
            "24",
        )?;
        range("backup.keep", self.keep, 1, 1000, "7")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyOptions {
    /// A user or key is flagged when its last-hour spend exceeds this many times its usual
    /// hourly spend (the mean over the baseline window).
    pub spend_factor: f64,
    /// Last-hour spend (quota units) below which nobody is flagged.
    pub min_spend: i64,
    /// Days of history that make "usual".
    pub baseline_days: u32,
    /// A model is flagged when upstream-reported prompt tokens differ from the local count by
    /// more than this fraction.
    pub token_divergence: f64,
    /// A channel is flagged when its last-hour error rate is above this fraction…
    pub error_rate: f64,
    /// …or its mean latency is this many times the mean of all channels.
    pub latency_factor: f64,
    /// Requests (or token samples) needed before a channel or model is judged.
    pub min_requests: u32,
}

impl Default for AnomalyOptions {
    fn default() -> Self {
        AnomalyOptions {
            spend_factor: 5.0,
            min_spend: 50_000,
            baseline_days: 7,
            token_divergence: 0.25,
            error_rate: 0.2,
            latency_factor: 3.0,
            min_requests: 20,
        }
    }
}

impl AnomalyOptions {
    fn validate(&self) -> Result<(), String> {
        range("anomaly.spend_factor", self.spend_factor, 1.0, 1e6, "5")?;
        range("anomaly.min_spend", self.min_spend, 0, i64::MAX, "50000")?;
        range("anomaly.baseline_days", self.baseline_days, 1, 365, "7")?;
        range(
            "anomaly.token_divergence",
            self.token_divergence,
            0.0,
            100.0,
            "0.25",
        )?;
        range("anomaly.error_rate", self.error_rate, 0.0, 1.0, "0.2")?;
        range("anomaly.latency_factor", self.latency_factor, 1.0, 1e6, "3")?;
        range(
            "anomaly.min_requests",
            self.min_requests,
            1,
            1_000_000,
            "20",
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeyOptions {
    /// Most API keys one account may have (0 = no limit): every key lives in memory and in
    /// each catalog snapshot, so one account must not be able to make them without end.
    pub max_per_user: u32,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions { max_per_user: 100 }
    }
}

impl KeyOptions {
    fn validate(&self) -> Result<(), String> {
        range("keys.max_per_user", self.max_per_user, 0, 1_000_000, "100")
    }
}
