//! `channel.*`: scheduled channel tests and the rules that turn a failing channel off and back
//! on (see [`crate::channel_health`]).

use serde::{Deserialize, Serialize};

/// Statuses that say "try again later", not "this channel is broken": they may only count
/// toward the error rate, never disable a channel on their own.
const TRANSIENT: [u16; 2] = [408, 429];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelOptions {
    /// Minutes between scheduled tests of every channel (0 = no scheduled tests).
    pub test_interval_minutes: u32,
    /// Turn channels off automatically (statuses below, or the error rate).
    pub auto_disable: bool,
    /// Upstream statuses that turn a channel off at once: the upstream refused the channel's
    /// credentials, so every later request would fail the same way.
    pub disable_statuses: Vec<u16>,
    /// A channel is turned off when its errors / requests over the window exceed this…
    pub error_rate_threshold: f64,
    /// …once it has seen at least this many requests in the window.
    pub error_rate_min_requests: u32,
    /// Length of the sliding window (s).
    pub error_window_secs: u64,
    /// Turn an automatically disabled channel back on after a passing test.
    pub auto_enable: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            test_interval_minutes: 0,
            auto_disable: true,
            disable_statuses: vec![401, 403],
            error_rate_threshold: 0.5,
            error_rate_min_requests: 10,
            error_window_secs: 300,
            auto_enable: true,
        }
    }
}

/// Most statuses `disable_statuses` may list (there are not many 4xx that mean "refused").
pub const MAX_DISABLE_STATUSES: usize = 32;

impl ChannelOptions {
    pub fn validate(&self) -> Result<(), String> {
        if self.test_interval_minutes > 7 * 24 * 60 {
            return Err(format!(
                "channel.test_interval_minutes is {}; use 0 (off) to 10080 (a week)",
                self.test_interval_minutes
            ));
        }
        if self.disable_statuses.len() > MAX_DISABLE_STATUSES {
            return Err(format!(
                "channel.disable_statuses lists more than {MAX_DISABLE_STATUSES} statuses"
            ));
        }
        for &s in &self.disable_statuses {
            if !(400..=499).contains(&s) || TRANSIENT.contains(&s) {
                return Err(format!(
                    "channel.disable_statuses contains {s}; list only 4xx statuses that mean the channel itself is refused (e.g. [401, 403]); 5xx, 408 and 429 are transient and count toward the error rate instead"
                ));
            }
        }
        if !(self.error_rate_threshold > 0.0 && self.error_rate_threshold <= 1.0) {
            return Err(format!(
                "channel.error_rate_threshold is {}; use a fraction above 0 and at most 1 (default 0.5; 1 never disables)",
                self.error_rate_threshold
            ));
        }
        if !(2..=1_000_000).contains(&self.error_rate_min_requests) {
            return Err(format!(
                "channel.error_rate_min_requests is {}; use 2 to 1000000 (default 10), so one transient error never disables a channel",
                self.error_rate_min_requests
            ));
        }
        if !(10..=86_400).contains(&self.error_window_secs) {
            return Err(format!(
                "channel.error_window_secs is {}; use 10 to 86400 (default 300)",
                self.error_window_secs
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_name_the_option() {
        assert_eq!(ChannelOptions::default().validate(), Ok(()));
        let bad = [
            ChannelOptions {
                disable_statuses: vec![500],
                ..Default::default()
            },
            ChannelOptions {
                disable_statuses: vec![429],
                ..Default::default()
            },
            ChannelOptions {
                error_rate_threshold: 0.0,
                ..Default::default()
            },
            ChannelOptions {
                error_rate_threshold: f64::NAN,
                ..Default::default()
            },
            ChannelOptions {
                error_rate_min_requests: 1,
                ..Default::default()
            },
            ChannelOptions {
                error_window_secs: 1,
                ..Default::default()
            },
            ChannelOptions {
                test_interval_minutes: 100_000,
                ..Default::default()
            },
        ];
        for o in bad {
            let e = o.validate().err().unwrap_or_default();
            assert!(e.starts_with("channel."), "{o:?}: {e}");
        }
    }
}
