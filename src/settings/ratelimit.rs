//! `ratelimit.*`: default per-minute limits for keys and users. A key's own `rpm_limit` /
//! `tpm_limit` columns override the key defaults; a user's group entry overrides the user
//! defaults. 0 means unlimited everywhere.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest limit accepted (per minute). Far above any real need, and small enough that the
/// limiter's fixed-point arithmetic can never overflow.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitOptions {
    /// Requests per minute for a key that sets none (0 = unlimited).
    pub key_rpm: u64,
    /// Tokens per minute for a key that sets none (0 = unlimited).
    pub key_tpm: u64,
    /// Requests per minute for a user whose group is not in `group_rpm` (0 = unlimited).
    pub user_rpm: u64,
    /// Tokens per minute for a user whose group is not in `group_tpm` (0 = unlimited).
    pub user_tpm: u64,
    /// Requests per minute per user, by group (group → limit; 0 = unlimited).
    pub group_rpm: BTreeMap<String, u64>,
    /// Tokens per minute per user, by group (group → limit; 0 = unlimited).
    pub group_tpm: BTreeMap<String, u64>,
}

impl RateLimitOptions {
    /// The per-user requests limit for `group` (0 = unlimited).
    pub fn user_rpm_for(&self, group: &str) -> u64 {
        self.group_rpm.get(group).copied().unwrap_or(self.user_rpm)
    }

    /// The per-user tokens limit for `group` (0 = unlimited).
    pub fn user_tpm_for(&self, group: &str) -> u64 {
        self.group_tpm.get(group).copied().unwrap_or(self.user_tpm)
    }

    pub fn validate(&self) -> Result<(), String> {
        let scalars = [
            ("key_rpm", self.key_rpm),
            ("key_tpm", self.key_tpm),
            ("user_rpm", self.user_rpm),
            ("user_tpm", self.user_tpm),
        ];
        for (name, v) in scalars {
            if v > MAX_LIMIT {
                return Err(format!(
                    "ratelimit.{name} is {v}; use 0 (unlimited) to {MAX_LIMIT} (default 0)"
                ));
            }
        }
        for (name, table) in [
            ("group_rpm", &self.group_rpm),
            ("group_tpm", &self.group_tpm),
        ] {
            for (group, v) in table {
                if group.is_empty() {
                    return Err(format!("ratelimit.{name} has an empty group name"));
                }
                if *v > MAX_LIMIT {
                    return Err(format!(
                        "ratelimit.{name}[{group:?}] = {v} is not allowed: use 0 (unlimited) to {MAX_LIMIT}"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_entries_override_the_user_default() {
        let mut o = RateLimitOptions {
            user_rpm: 10,
            ..Default::default()
        };
        o.group_rpm.insert("vip".into(), 100);
        o.group_tpm.insert("vip".into(), 0);
        o.user_tpm = 5;
        assert_eq!(o.user_rpm_for("vip"), 100);
        assert_eq!(o.user_rpm_for("default"), 10);
        assert_eq!(o.user_tpm_for("vip"), 0, "0 in the group means unlimited");
        assert_eq!(o.user_tpm_for("default"), 5);
    }

    #[test]
    fn validation_names_the_option() {
        let mut o = RateLimitOptions::default();
        assert!(o.validate().is_ok());
        o.group_tpm.insert(String::new(), 1);
        assert!(o.validate().unwrap_err().contains("group_tpm"));
        let o = RateLimitOptions {
            user_rpm: MAX_LIMIT + 1,
            ..Default::default()
        };
        assert!(o.validate().unwrap_err().contains("ratelimit.user_rpm"));
    }
}
