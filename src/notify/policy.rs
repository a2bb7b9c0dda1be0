//! The inputs the notifier is given: the admin's policy and the SMTP server. The option
//! registry fills them; until then they hold these defaults (email off: no SMTP server).

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Also the `notify.*` options (src/settings/notify.rs validates them), field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyPolicy {
    /// Warning threshold in quota units for users who set none (default 1000).
    pub default_threshold: i64,
    /// Most warnings per subject and kind within one window.
    pub max_per_window: u32,
    pub window_secs: u64,
    /// Host names, IP addresses or CIDR ranges receivers may use although private
    /// (self-hosted receivers on a private network). Cloud metadata stays refused.
    pub ssrf_allow_hosts: Vec<String>,
    /// Extra attempts after a transient failure (connect error, timeout, 429, 5xx).
    pub retries: u32,
    /// Bound on one attempt: DNS, connect, send and answer.
    pub timeout_secs: u64,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            default_threshold: 1000,
            max_per_window: 2,
            window_secs: 600,
            ssrf_allow_hosts: Vec::new(),
            retries: 3,
            timeout_secs: 10,
        }
    }
}

impl NotifyPolicy {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.clamp(1, 300))
    }
    /// Attempts in all, never more than 10.
    pub fn attempts(&self) -> u32 {
        self.retries.min(9) + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (usually port 587); refused if the server
    /// does not offer it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Implicit,
}

/// The outgoing mail server. Certificates are always verified (webpki roots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty: no authentication.
    pub username: String,
    pub password: Secret,
    /// The From address, e.g. `sluice <noreply@example.com>`.
    pub from: String,
    /// Tests only: talk plain SMTP when the host is a loopback address. Ignored (TLS as set
    /// above) for any other host, so a mistake cannot send credentials in clear text.
    pub allow_plaintext_loopback: bool,
}

/// Everything the notifier reads per delivery; swapped whole when an option changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyConfig {
    pub policy: NotifyPolicy,
    pub smtp: Option<SmtpSettings>,
}
