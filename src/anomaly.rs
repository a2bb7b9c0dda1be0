//! The anomaly report: spenders far above their usual rate, models whose upstream token counts
//! disagree with ours, channels that reported fewer prompt tokens than a prompt's length
//! allows, channels whose errors or latency stand out. Thresholds are the `anomaly.*` options.
//!
//! Prompt undercounts are checked on every call at no cost: a prompt of N bytes is at least
//! N / 128 tokens for any tokenizer (`billing::tokens::MAX_TOKEN_BYTES`), a figure made of
//! string lengths alone. Each channel's count since start and its latest case live in the
//! metrics; they need no threshold, since no honest count falls below the floor.
//!
//! Spend and channel figures come from SQLite (the last hour's rows, the baseline from the
//! hourly rollups). Token divergence comes from [`TokenAudit`]: at most one call per model and
//! second that upstream reported usage for is counted here too, off the request path, and the
//! two sums are kept per model for the current and the previous hour, in memory. Sampling by
//! time rather than by count keeps the cost flat under load (a busy model gets 3600 samples an
//! hour, a quiet one every call).

use crate::settings::modules::AnomalyOptions;
use crate::store::StoreError;
use crate::store::anomalies::{self, SpendBy};
use parking_lot::Mutex;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::HashMap;

const HOUR: i64 = 3600;

/// Prompt tokens as upstream reported them and as counted here, per model.
#[derive(Default)]
pub struct TokenAudit {
    /// When each model was last sampled (ms on the caller's monotonic clock).
    last: Mutex<HashMap<String, u64>>,
    buckets: Mutex<AuditBuckets>,
}

#[derive(Default)]
struct AuditBuckets {
    /// Start of the hour `current` covers.
    hour: i64,
    current: HashMap<String, Sums>,
    previous: HashMap<String, Sums>,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    samples: u64,
    local: u64,
    upstream: u64,
}

/// Least time between two audited calls of one model.
pub const SAMPLE_EVERY_MS: u64 = 1000;

impl TokenAudit {
    /// True for the first call of `model`, then for one call per [`SAMPLE_EVERY_MS`].
    pub fn should_sample(&self, model: &str, now_ms: u64) -> bool {
        let mut last = self.last.lock();
        match last.get_mut(model) {
            Some(t) if now_ms.saturating_sub(*t) < SAMPLE_EVERY_MS => false,
            Some(t) => {
                *t = now_ms;
                true
            }
            None => {
                last.insert(model.to_string(), now_ms);
                true
            }
        }
    }

    pub fn record(&self, now: i64, model: &str, local: u64, upstream: u64) {
        let hour = now - now.rem_euclid(HOUR);
        let mut b = self.buckets.lock();
        if b.hour != hour {
            b.previous = if b.hour == hour - HOUR {
                std::mem::take(&mut b.current)
            } else {
                HashMap::new()
            };
            b.current.clear();
            b.hour = hour;
        }
        let s = b.current.entry(model.to_string()).or_default();
        s.samples += 1;
        s.local += local;
        s.upstream += upstream;
    }

    /// Sums over the current and previous hour, per model.
    fn last_hours(&self, now: i64) -> HashMap<String, Sums> {
        let hour = now - now.rem_euclid(HOUR);
        let b = self.buckets.lock();
        let mut out: HashMap<String, Sums> = HashMap::new();
        let mut add = |m: &HashMap<String, Sums>| {
            for (k, v) in m {
                let e = out.entry(k.clone()).or_default();
                e.samples += v.samples;
                e.local += v.local;
                e.upstream += v.upstream;
            }
        };
        if b.hour == hour {
            add(&b.current);
            add(&b.previous);
        } else if b.hour == hour - HOUR {
            add(&b.current);
        }
        out
    }
}

#[derive(Debug, Serialize)]
pub struct Spender {
    /// `user` or `key`.
    pub account: &'static str,
    pub id: i64,
    pub name: Option<String>,
    pub last_hour_quota: i64,
    /// Mean quota per hour over the baseline days before the last hour.
    pub usual_hourly_quota: f64,
}

#[derive(Debug, Serialize)]
pub struct TokenDivergence {
    pub model: String,
    pub samples: u64,
    pub upstream_prompt_tokens: u64,
    pub local_prompt_tokens: u64,
    /// upstream / local − 1.
    pub divergence: f64,
}

/// A channel whose upstream reported fewer prompt tokens than the prompt's length allows.
#[derive(Debug, Serialize)]
pub struct PromptUndercount {
    pub channel_id: i64,
    /// Such calls since the server started.
    pub calls: u64,
    pub last: Option<crate::metrics::Undercount>,
}

#[derive(Debug, Serialize)]
pub struct ChannelOutlier {
    pub channel_id: i64,
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub mean_latency_ms: f64,
    /// Mean latency of all channels over the same hour.
    pub overall_mean_latency_ms: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: i64,
    pub thresholds: AnomalyOptions,
    pub spenders: Vec<Spender>,
    pub token_divergence: Vec<TokenDivergence>,
    pub prompt_undercounts: Vec<PromptUndercount>,
    pub channels: Vec<ChannelOutlier>,
}

/// Builds the report from the database, the token audit and the channels' prompt
/// undercounts (channel id, calls, the latest).
pub fn report(
    conn: &Connection,
    audit: &TokenAudit,
    undercounts: Vec<(i64, u64, Option<crate::metrics::Undercount>)>,
    o: &AnomalyOptions,
    now: i64,
) -> Result<Report, StoreError> {
    let mut prompt_undercounts: Vec<PromptUndercount> = undercounts
        .into_iter()
        .map(|(channel_id, calls, last)| PromptUndercount {
            channel_id,
            calls,
            last,
        })
        .collect();
    prompt_undercounts.sort_by_key(|u| std::cmp::Reverse(u.calls));
    let baseline_hours = f64::from(o.baseline_days) * 24.0;
    let baseline_from = now - HOUR - i64::from(o.baseline_days) * 86_400;
    let mut spenders = Vec::new();
    // The last 60 minutes from the rows (exact); the baseline from whole rolled-up hours
    // before that.
    let recent_from = now - HOUR;
    let base_to = recent_from - recent_from.rem_euclid(HOUR);
    for (account, by) in [("user", SpendBy::User), ("key", SpendBy::Key)] {
        for (id, name, last, base) in
            anomalies::spend(conn, by, recent_from, baseline_from, base_to)?
        {
            let usual = base as f64 / baseline_hours;
            if last >= o.min_spend && last as f64 > o.spend_factor * usual {
                spenders.push(Spender {
                    account,
                    id,
                    name,
                    last_hour_quota: last,
                    usual_hourly_quota: usual,
                });
            }
        }
    }
    spenders.sort_by_key(|s| std::cmp::Reverse(s.last_hour_quota));

    let mut token_divergence: Vec<TokenDivergence> = audit
        .last_hours(now)
        .into_iter()
        .filter(|(_, s)| s.samples >= u64::from(o.min_requests) && s.local > 0)
        .map(|(model, s)| TokenDivergence {
            model,
            samples: s.samples,
            upstream_prompt_tokens: s.upstream,
            local_prompt_tokens: s.local,
            divergence: s.upstream as f64 / s.local as f64 - 1.0,
        })
        .filter(|d| d.divergence.abs() > o.token_divergence)
        .collect();
    token_divergence.sort_by(|a, b| b.divergence.abs().total_cmp(&a.divergence.abs()));

    let per_channel = anomalies::channel_hour(conn, now - HOUR)?;
    let (lat_sum, ok_sum) = per_channel
        .iter()
        .fold((0i64, 0i64), |(l, n), c| (l + c.3, n + c.4));
    let overall = if ok_sum > 0 {
        lat_sum as f64 / ok_sum as f64
    } else {
        0.0
    };
    let mut channels = Vec::new();
    for (channel_id, requests, errors, lat, ok) in per_channel {
        if requests < i64::from(o.min_requests) {
            continue;
        }
        let error_rate = errors as f64 / requests as f64;
        let mean = if ok > 0 { lat as f64 / ok as f64 } else { 0.0 };
        let mut reasons = Vec::new();
        if error_rate > o.error_rate {
            reasons.push(format!(
                "error rate {:.0}% is above {:.0}%",
                error_rate * 100.0,
                o.error_rate * 100.0
            ));
        }
        if overall > 0.0 && mean > o.latency_factor * overall {
            reasons.push(format!(
                "mean latency {mean:.0} ms is over {}× the {overall:.0} ms of all channels",
                o.latency_factor
            ));
        }
        if !reasons.is_empty() {
            channels.push(ChannelOutlier {
                channel_id,
                requests,
                errors,
                error_rate,
                mean_latency_ms: mean,
                overall_mean_latency_ms: overall,
                reasons,
            });
        }
    }
    Ok(Report {
        generated_at: now,
        thresholds: o.clone(),
        spenders,
        token_divergence,
        prompt_undercounts,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keeps_this_hour_and_the_last() {
        let a = TokenAudit::default();
        let h = 1_000 * HOUR;
        a.record(h + 10, "m", 100, 300);
        a.record(h + HOUR + 5, "m", 100, 100);
        let s = a.last_hours(h + HOUR + 6)["m"];
        assert_eq!((s.samples, s.local, s.upstream), (2, 200, 400));
        // Two hours on, the first sample has aged out.
        let s = a.last_hours(h + 2 * HOUR + 1)["m"];
        assert_eq!((s.samples, s.local, s.upstream), (1, 100, 100));
        assert!(a.last_hours(h + 5 * HOUR).is_empty());
    }

    #[test]
    fn each_model_is_sampled_at_most_once_a_second() {
        let a = TokenAudit::default();
        // 3 s of calls every 10 ms: the first, then one a second.
        let n = (0..300)
            .filter(|i| a.should_sample("m", 5_000 + i * 10))
            .count();
        assert_eq!(n, 3);
        assert!(
            a.should_sample("other", 5_010),
            "a new model waits for nobody"
        );
        assert!(!a.should_sample("other", 5_020));
    }
}
