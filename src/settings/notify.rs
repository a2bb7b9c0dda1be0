//! The `notify.*` and `smtp.*` options: quota-warning policy, delivery limits, the SSRF
//! allow-list and the outgoing mail server. Turned into the notifier's [`NotifyConfig`] and
//! pushed to it whenever an option changes.

use crate::notify::ssrf::AllowList;
use crate::notify::{NotifyConfig, NotifyPolicy, SmtpSecurity, SmtpSettings};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// The `notify.*` options are the notifier's policy itself.
pub type NotifyOptions = NotifyPolicy;

/// Checks the `notify.*` options, naming the one at fault.
pub(super) fn validate(n: &NotifyOptions) -> Result<(), String> {
    if n.default_threshold < 0 {
        return Err("notify.default_threshold must be 0 (no warnings) or more".into());
    }
    if n.max_per_window == 0 {
        return Err("notify.max_per_window must be at least 1".into());
    }
    if !(60..=7 * 86_400).contains(&n.window_secs) {
        return Err("notify.window_secs must be between 60 and 604800".into());
    }
    if n.retries > 9 {
        return Err("notify.retries must be between 0 and 9".into());
    }
    if !(1..=300).contains(&n.timeout_secs) {
        return Err("notify.timeout_secs must be between 1 and 300".into());
    }
    AllowList::parse(&n.ssrf_allow_hosts).map_err(|e| format!("notify.ssrf_allow_hosts: {e}"))?;
    Ok(())
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpMode {
    Starttls,
    Implicit,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpOptions {
    /// Empty: no mail server, so email notifications are off.
    pub host: String,
    pub port: u16,
    pub security: SmtpMode,
    pub username: String,
    /// A secret: masked by `GET /api/option` and left alone when the mask comes back.
    pub password: String,
    pub from: String,
    /// Plain SMTP to a mail server on this machine (a local postfix on 127.0.0.1:25).
    /// Ignored for every other host, so credentials never cross a network in clear text.
    pub plaintext_loopback: bool,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            host: String::new(),
            port: 587,
            security: SmtpMode::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
            plaintext_loopback: false,
        }
    }
}

impl SmtpOptions {
    /// Whether `next` would send mail, and with it the stored password, to a mail server other
    /// than the one the password was given for: another host (compared case-insensitively) or
    /// port. Clearing the host sends nothing anywhere; naming one after a clear is a move (else
    /// a clear would be the way round). Whoever moves it must send the password again.
    pub fn moves_password(&self, next: &SmtpOptions) -> bool {
        let (from, to) = (self.host.trim(), next.host.trim());
        !self.password.is_empty()
            && !next.password.is_empty()
            && !to.is_empty()
            && (!from.eq_ignore_ascii_case(to) || self.port != next.port)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        // Checked even while mail is off, so a port that could never work is not stored.
        if self.port == 0 {
            return Err(
                "smtp.port must be 1 to 65535 (587 for STARTTLS, 465 for implicit TLS)".into(),
            );
        }
        let host = self.host.trim();
        if host.is_empty() {
            return Ok(());
        }
        if host.contains(['/', ' ', '@']) || host.contains("://") {
            return Err(format!(
                "smtp.host {host:?} must be a host name or address, e.g. smtp.example.com"
            ));
        }
        if self.from.trim().is_empty() {
            return Err("smtp.from is required when smtp.host is set, e.g. \"sluice <noreply@example.com>\"".into());
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "smtp.from {:?} is not a mail address, e.g. \"sluice <noreply@example.com>\"",
                self.from
            ));
        }
        Ok(())
    }

    fn settings(&self) -> Option<SmtpSettings> {
        let host = self.host.trim();
        if host.is_empty() {
            return None;
        }
        Some(SmtpSettings {
            host: host.to_string(),
            port: self.port,
            security: match self.security {
                SmtpMode::Starttls => SmtpSecurity::Starttls,
                SmtpMode::Implicit => SmtpSecurity::Implicit,
            },
            username: self.username.clone(),
            password: Secret::new(self.password.clone()),
            from: self.from.trim().to_string(),
            allow_plaintext_loopback: self.plaintext_loopback,
        })
    }
}

/// What the notifier is given for these options.
pub fn to_config(notify: &NotifyOptions, smtp: &SmtpOptions) -> NotifyConfig {
    NotifyConfig {
        policy: notify.clone(),
        smtp: smtp.settings(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_notifier_defaults_and_email_is_off() {
        let c = to_config(&NotifyOptions::default(), &SmtpOptions::default());
        assert_eq!(c, NotifyConfig::default());
    }

    #[test]
    fn bad_values_name_the_option() {
        let n = NotifyOptions {
            ssrf_allow_hosts: vec!["not a host!".into()],
            ..Default::default()
        };
        assert!(
            validate(&n)
                .unwrap_err()
                .contains("notify.ssrf_allow_hosts")
        );
        let s = SmtpOptions {
            host: "smtp.example.com".into(),
            ..Default::default()
        };
        assert!(s.validate().unwrap_err().contains("smtp.from"));
        let s = SmtpOptions {
            host: "smtp.example.com".into(),
            from: "sluice <noreply@example.com>".into(),
            ..Default::default()
        };
        s.validate().unwrap();
        assert_eq!(s.settings().unwrap().port, 587);
    }

    #[test]
    fn another_mail_server_is_a_move_of_the_password() {
        let home = SmtpOptions {
            host: "smtp.example.com".into(),
            password: "pw".into(),
            ..Default::default()
        };
        let to = |host: &str, port: u16| SmtpOptions {
            host: host.into(),
            port,
            ..home.clone()
        };
        assert!(home.moves_password(&to("smtp.evil.test", 587)));
        assert!(home.moves_password(&to("smtp.example.com", 2525)));
        assert!(!home.moves_password(&to("SMTP.example.com ", 587)));
        assert!(!home.moves_password(&to("", 587)), "mail off sends nothing");
        let cleared = to("", 587);
        assert!(cleared.moves_password(&to("smtp.example.com", 587)));
        let no_password = SmtpOptions {
            password: String::new(),
            ..home.clone()
        };
        assert!(!no_password.moves_password(&SmtpOptions {
            host: "smtp.evil.test".into(),
            ..no_password.clone()
        }));
    }
}
