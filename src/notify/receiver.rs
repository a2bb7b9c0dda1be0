//! A user's notification settings: the kind, the warning threshold, and each kind's fields.
//! Validation with messages that say what to fix; a partial update that leaves unsent fields
//! alone; the masked view; and the delivery target built from them.

use super::ssrf::{self, AllowList};
use crate::secret::Secret;
use crate::store::notify::SettingsRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Longest secret or token accepted.
const MAX_SECRET: usize = 256;
/// Gotify's priority when none is set (Gotify's "normal" level: a notification, no alert).
pub const DEFAULT_PRIORITY: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Email,
    Webhook,
    Bark,
    Gotify,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Webhook => "webhook",
            Kind::Bark => "bark",
            Kind::Gotify => "gotify",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "email" => Some(Kind::Email),
            "webhook" => Some(Kind::Webhook),
            "bark" => Some(Kind::Bark),
            "gotify" => Some(Kind::Gotify),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub user_id: i64,
    /// `None`: notifications off.
    pub kind: Option<Kind>,
    /// Quota units; `None` takes the policy's default.
    pub threshold: Option<i64>,
    pub email: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Secret>,
    /// A URL template with `{{title}}` and `{{content}}` in its path or query.
    pub bark_url: Option<String>,
    pub gotify_url: Option<String>,
    pub gotify_token: Option<Secret>,
    pub gotify_priority: i64,
}

impl Settings {
    /// Nothing set yet.
    pub fn empty(user_id: i64) -> Settings {
        Settings {
            user_id,
            gotify_priority: DEFAULT_PRIORITY,
            ..Settings::default()
        }
    }

    pub fn from_row(r: SettingsRow) -> Settings {
        let kind = r.kind.as_deref().and_then(|k| {
            let parsed = Kind::parse(k);
            if parsed.is_none() {
                log::warn!(
                    "user {}: unknown notification kind {k:?} ignored",
                    r.user_id
                );
            }
            parsed
        });
        Settings {
            user_id: r.user_id,
            kind,
            threshold: r.threshold,
            email: r.email,
            webhook_url: r.webhook_url,
            webhook_secret: r.webhook_secret.map(Secret::new),
            bark_url: r.bark_url,
            gotify_url: r.gotify_url,
            gotify_token: r.gotify_token.map(Secret::new),
            gotify_priority: r.gotify_priority,
        }
    }

    pub fn to_row(&self) -> SettingsRow {
        SettingsRow {
            user_id: self.user_id,
            kind: self.kind.map(|k| k.as_str().to_string()),
            threshold: self.threshold,
            email: self.email.clone(),
            webhook_url: self.webhook_url.clone(),
            webhook_secret: self.webhook_secret.as_ref().map(|s| s.expose().to_string()),
            bark_url: self.bark_url.clone(),
            gotify_url: self.gotify_url.clone(),
            gotify_token: self.gotify_token.as_ref().map(|s| s.expose().to_string()),
            gotify_priority: self.gotify_priority,
        }
    }

    /// What `GET /api/me/notify` shows: secrets only as "set or not".
    pub fn view(&self, default_threshold: i64) -> Value {
        json!({
            "kind": self.kind,
            "quota_warning_threshold": self.threshold,
            "effective_threshold": self.threshold.unwrap_or(default_threshold),
            "email": self.email,
            "webhook_url": self.webhook_url,
            "webhook_secret_set": self.webhook_secret.is_some(),
            "bark_url": self.bark_url,
            "gotify_url": self.gotify_url,
            "gotify_token_set": self.gotify_token.is_some(),
            "gotify_priority": self.gotify_priority,
        })
    }

    /// The chosen kind has what it needs to send.
    pub fn check_complete(&self) -> Result<(), String> {
        let missing = |field: &str, kind: &str| {
            Err(format!(
                "kind {kind:?} needs {field}: send it with this request or earlier"
            ))
        };
        match self.kind {
            None => Ok(()),
            Some(Kind::Email) if self.email.is_none() => missing("email", "email"),
            Some(Kind::Webhook) if self.webhook_url.is_none() => missing("webhook_url", "webhook"),
            Some(Kind::Bark) if self.bark_url.is_none() => missing("bark_url", "bark"),
            Some(Kind::Gotify) if self.gotify_url.is_none() => missing("gotify_url", "gotify"),
            Some(Kind::Gotify) if self.gotify_token.is_none() => {
                Err("kind \"gotify\" needs gotify_token (the Gotify application token)".into())
            }
            Some(_) => Ok(()),
        }
    }

    /// Where to send, when a kind is chosen and complete.
    pub fn target(&self) -> Option<Target> {
        match self.kind? {
            Kind::Email => Some(Target::Email {
                to: self.email.clone()?,
            }),
            Kind::Webhook => Some(Target::Webhook {
                url: self.webhook_url.clone()?,
                secret: self.webhook_secret.clone(),
            }),
            Kind::Bark => Some(Target::Bark {
                template: self.bark_url.clone()?,
            }),
            Kind::Gotify => Some(Target::Gotify {
                url: self.gotify_url.clone()?,
                token: self.gotify_token.clone()?,
                priority: self.gotify_priority,
            }),
        }
    }
}

/// A complete destination for one message.
#[derive(Debug, Clone)]
pub enum Target {
    Email {
        to: String,
    },
    Webhook {
        url: String,
        secret: Option<Secret>,
    },
    Bark {
        template: String,
    },
    Gotify {
        url: String,
        token: Secret,
        priority: i64,
    },
}

impl Target {
    pub fn kind(&self) -> Kind {
        match self {
            Target::Email { .. } => Kind::Email,
            Target::Webhook { .. } => Kind::Webhook,
            Target::Bark { .. } => Kind::Bark,
            Target::Gotify { .. } => Kind::Gotify,
        }
    }
}

/// `PUT /api/me/notify`: a field left out keeps its value; `null` (or `""`) clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default, with = "double_option")]
    pub kind: Option<Option<Kind>>,
    #[serde(default, with = "double_option")]
    pub quota_warning_threshold: Option<Option<i64>>,
    /// The threshold in the display currency (`display.*` options); the API turns it into
    /// quota units before anything else looks at the patch.
    #[serde(default)]
    pub quota_warning_threshold_amount: Option<f64>,
    #[serde(default, with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub webhook_url: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub webhook_secret: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub bark_url: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub gotify_url: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub gotify_token: Option<Option<String>>,
    #[serde(default)]
    pub gotify_priority: Option<i64>,
}

/// Tells "field absent" (leave it) from "field null" (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A set string field: `Some(Some(v))` with `v` trimmed; an empty string counts as `null`.
fn given(f: &Option<Option<String>>) -> Option<&str> {
    f.as_ref()
        .and_then(|v| v.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.quota_warning_threshold.is_none()
            && self.quota_warning_threshold_amount.is_none()
            && self.email.is_none()
            && self.webhook_url.is_none()
            && self.webhook_secret.is_none()
            && self.bark_url.is_none()
            && self.gotify_url.is_none()
            && self.gotify_token.is_none()
            && self.gotify_priority.is_none()
    }

    /// Checks every field sent, without I/O. URLs get their form checked here and their
    /// addresses in [`Patch::check_addresses`].
    pub fn validate(&self) -> Result<(), String> {
        if let Some(Some(t)) = self.quota_warning_threshold
            && t < 0
        {
            return Err(
                "quota_warning_threshold must be 0 or more (quota units; 0 turns warnings off)"
                    .into(),
            );
        }
        if let Some(p) = self.gotify_priority
            && !(0..=10).contains(&p)
        {
            return Err(format!("gotify_priority must be 0–10, not {p}"));
        }
        if let Some(e) = given(&self.email) {
            check_email(e)?;
        }
        for (field, url) in self.urls() {
            ssrf::parse(&url).map_err(|e| format!("{field}: {e}"))?;
        }
        if let Some(t) = given(&self.bark_url) {
            check_bark_template(t)?;
        }
        if let Some(g) = given(&self.gotify_url) {
            let u = ssrf::parse(g).map_err(|e| format!("gotify_url: {e}"))?;
            if u.query().is_some() || u.fragment().is_some() {
                return Err("gotify_url must be the server's base URL, without ?query or #fragment (the token goes in gotify_token)".into());
            }
        }
        if let Some(s) = given(&self.webhook_secret) {
            check_secret("webhook_secret", s)?;
        }
        if let Some(t) = given(&self.gotify_token) {
            check_secret("gotify_token", t)?;
            if t.chars().any(|c| c.is_whitespace()) {
                return Err("gotify_token must not contain spaces".into());
            }
        }
        Ok(())
    }

    /// The URLs sent, with their field names, as they will be checked (a Bark template with
    /// its placeholders filled by sample text).
    fn urls(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(u) = given(&self.webhook_url) {
            out.push(("webhook_url", u.to_string()));
        }
        if let Some(u) = given(&self.bark_url) {
            out.push(("bark_url", super::bark::render(u, "title", "content")));
        }
        if let Some(u) = given(&self.gotify_url) {
            out.push(("gotify_url", u.to_string()));
        }
        out
    }

    /// Resolves each URL sent and refuses private, loopback, metadata … addresses (the SSRF
    /// guard at save time; it runs again at send time). Blocking: call it off the async threads.
    pub fn check_addresses(&self, allow: &AllowList, timeout: Duration) -> Result<(), String> {
        for (field, url) in self.urls() {
            ssrf::check(&url, allow, timeout).map_err(|e| format!("{field}: {e}"))?;
        }
        Ok(())
    }

    /// The settings after this change.
    pub fn apply(&self, mut s: Settings) -> Settings {
        fn set(field: &Option<Option<String>>, slot: &mut Option<String>) {
            if field.is_some() {
                *slot = given(field).map(str::to_string);
            }
        }
        fn set_secret(field: &Option<Option<String>>, slot: &mut Option<Secret>) {
            if field.is_some() {
                *slot = given(field).map(Secret::new);
            }
        }
        if let Some(k) = self.kind {
            s.kind = k;
        }
        if let Some(t) = self.quota_warning_threshold {
            s.threshold = t;
        }
        set(&self.email, &mut s.email);
        set(&self.webhook_url, &mut s.webhook_url);
        set_secret(&self.webhook_secret, &mut s.webhook_secret);
        set(&self.bark_url, &mut s.bark_url);
        set(&self.gotify_url, &mut s.gotify_url);
        set_secret(&self.gotify_token, &mut s.gotify_token);
        if let Some(p) = self.gotify_priority {
            s.gotify_priority = p;
        }
        s
    }
}

fn check_email(e: &str) -> Result<(), String> {
    if e.len() > 254 || e.parse::<lettre::Address>().is_err() {
        return Err(format!(
            "email {e:?} is not a valid address: give name@example.com"
        ));
    }
    Ok(())
}

fn check_secret(field: &str, s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_SECRET || s.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be at most {MAX_SECRET} characters, without control characters"
        ));
    }
    Ok(())
}

/// Placeholders may fill the path or query, never the scheme, host or port: the host must
/// be the one that was checked.
fn check_bark_template(t: &str) -> Result<(), String> {
    let Some(after_scheme) = t.find("://").map(|i| i + 3) else {
        return Err(
            "bark_url: not a valid URL: give https://host/key/{{title}}/{{content}}".into(),
        );
    };
    let authority_end = t[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(t.len(), |i| after_scheme + i);
    if t[..authority_end].contains("{{") {
        return Err("bark_url: {{title}} and {{content}} may appear only in the path or query, not in the host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(v: Value) -> Patch {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_not_sent_are_kept_and_null_clears() {
        let s = Settings::empty(1);
        let s = patch(json!({"kind": "gotify", "gotify_url": "https://g.example.com",
                             "gotify_token": "tok", "gotify_priority": 8, "quota_warning_threshold": 500}))
        .apply(s);
        assert_eq!(s.kind, Some(Kind::Gotify));
        assert_eq!(s.gotify_token.as_ref().unwrap().expose(), "tok");
        let s = patch(json!({"gotify_priority": 2})).apply(s);
        assert_eq!(
            (s.gotify_priority, s.threshold, s.gotify_url.as_deref()),
            (2, Some(500), Some("https://g.example.com"))
        );
        assert!(s.gotify_token.is_some());
        let s = patch(json!({"gotify_token": null, "quota_warning_threshold": null})).apply(s);
        assert!(s.gotify_token.is_none() && s.threshold.is_none());
        assert!(s.check_complete().unwrap_err().contains("gotify_token"));
        let s = patch(json!({"kind": null})).apply(s);
        assert!(s.check_complete().is_ok() && s.target().is_none());
    }

    #[test]
    fn validation_messages_say_what_to_fix() {
        let bad = [
            (json!({"gotify_priority": 11}), "0–10"),
            (json!({"gotify_priority": -1}), "0–10"),
            (json!({"quota_warning_threshold": -5}), "0 or more"),
            (json!({"email": "not-an-email"}), "not a valid address"),
            (json!({"webhook_url": "ftp://x.example.com"}), "scheme"),
            (
                json!({"webhook_url": "http://u:p@x.example.com"}),
                "user name",
            ),
            (
                json!({"bark_url": "https://{{title}}.example.com/k"}),
                "not in the host",
            ),
            (
                json!({"gotify_url": "https://g.example.com/?token=x"}),
                "base URL",
            ),
            (json!({"gotify_token": "a b"}), "spaces"),
            (json!({"webhook_secret": "x".repeat(300)}), "at most"),
        ];
        for (body, words) in bad {
            let e = patch(body.clone()).validate().unwrap_err();
            assert!(e.contains(words), "{body}: {e}");
        }
        assert!(serde_json::from_value::<Patch>(json!({"kind": "sms"})).is_err());
        assert!(serde_json::from_value::<Patch>(json!({"surprise": 1})).is_err());
        let ok = patch(
            json!({"kind": "bark", "bark_url": "https://api.day.app/KEY/{{title}}/{{content}}?group=x"}),
        );
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn the_view_never_shows_secrets() {
        let s = patch(
            json!({"kind": "webhook", "webhook_url": "https://h.example.com/x",
                             "webhook_secret": "canary-secret", "gotify_token": "canary-token"}),
        )
        .apply(Settings::empty(3));
        let v = s.view(1000).to_string();
        assert!(!v.contains("canary"), "{v}");
        assert!(
            v.contains("\"webhook_secret_set\":true") && v.contains("\"gotify_token_set\":true")
        );
        assert!(v.contains("\"effective_threshold\":1000"));
    }
}
