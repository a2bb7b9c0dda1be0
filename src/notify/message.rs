//! What is sent: a title, a content template with `{{name}}` placeholders, and the values that
//! fill them. Every sender sends the rendered content, placeholders
//! filled.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event: `quota_warning`, `test`, …; the webhook's `type`.
    pub event: String,
    pub title: String,
    /// Content with `{{name}}` placeholders.
    pub template: String,
    pub values: Map<String, Value>,
    /// Unix seconds when the event happened.
    pub timestamp: i64,
}

impl Message {
    /// The content with its placeholders filled.
    pub fn content(&self) -> String {
        render(&self.template, &self.values)
    }

    /// The message `POST /api/me/notify/test` sends.
    pub fn test(username: &str, now: i64) -> Message {
        let mut values = Map::new();
        values.insert("username".into(), Value::from(username));
        Message {
            event: "test".into(),
            title: "sluice test notification".into(),
            template:
                "This is a test notification for {{username}}: your notification settings work."
                    .into(),
            values,
            timestamp: now,
        }
    }

    /// A balance fell below its warning threshold. `key_name` is set for a key's own quota.
    pub fn quota_warning(
        username: &str,
        key_name: Option<&str>,
        balance: i64,
        threshold: i64,
        now: i64,
    ) -> Message {
        let mut values = Map::new();
        values.insert("username".into(), Value::from(username));
        values.insert("balance".into(), Value::from(balance));
        values.insert("threshold".into(), Value::from(threshold));
        let (title, template) = match key_name {
            Some(k) => {
                values.insert("key_name".into(), Value::from(k));
                (
                    "API key quota running low",
                    "The remaining quota of API key {{key_name}} is {{balance}}, below your warning threshold of {{threshold}}.",
                )
            }
            None => (
                "Quota running low",
                "Your remaining quota is {{balance}}, below your warning threshold of {{threshold}}. Top up to keep your API keys working.",
            ),
        };
        Message {
            event: "quota_warning".into(),
            title: title.into(),
            template: template.into(),
            values,
            timestamp: now,
        }
    }

    /// A channel was turned off or back on by the health checks (sent to root).
    /// `status` is `auto_disabled` or `enabled`; `reason` says what was seen.
    pub fn channel_status(
        channel_id: i64,
        channel_name: &str,
        status: &str,
        reason: &str,
        now: i64,
    ) -> Message {
        let mut values = Map::new();
        values.insert("channel_id".into(), Value::from(channel_id));
        values.insert("channel_name".into(), Value::from(channel_name));
        values.insert("status".into(), Value::from(status));
        values.insert("reason".into(), Value::from(reason));
        let (title, template) = if status == "enabled" {
            (
                "Channel re-enabled",
                "Channel {{channel_name}} (id {{channel_id}}) passed a test and takes requests again: {{reason}}.",
            )
        } else {
            (
                "Channel disabled",
                "Channel {{channel_name}} (id {{channel_id}}) was turned off automatically: {{reason}}. Fix the channel, then test it (POST /api/channels/{{channel_id}}/test) to turn it back on.",
            )
        };
        Message {
            event: "channel_status".into(),
            title: title.into(),
            template: template.into(),
            values,
            timestamp: now,
        }
    }
}

/// Replaces each `{{name}}` (spaces inside the braces allowed) with its value; strings go in
/// without quotes. Unknown names are left as written. One pass: a value containing `{{x}}` is
/// not expanded again.
pub fn render(template: &str, values: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Text for HTML bodies.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vals(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn placeholders_are_filled_once() {
        let v = vals(json!({"name": "ann", "n": 42, "evil": "{{name}}"}));
        assert_eq!(render("hi {{name}}, {{ n }} left", &v), "hi ann, 42 left");
        assert_eq!(render("{{evil}}", &v), "{{name}}");
        assert_eq!(render("{{unknown}} {{name}}", &v), "{{unknown}} ann");
        assert_eq!(render("open {{name", &v), "open {{name");
        assert_eq!(render("", &v), "");
        assert_eq!(render("{{}}{{n}}", &v), "{{}}42");
    }

    #[test]
    fn quota_warning_content_has_the_numbers() {
        let m = Message::quota_warning("ann", Some("ci"), 120, 1000, 7);
        let c = m.content();
        assert!(
            c.contains("ci") && c.contains("120") && c.contains("1000"),
            "{c}"
        );
        assert!(!c.contains("{{"), "{c}");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
