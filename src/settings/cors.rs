//! `cors.*`: which web pages may call the relay (`/v1`, `/dashboard/billing`) from a browser.
//! Off by default; `/api` never answers cross-origin (see `server::cors`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsOptions {
    /// Origins (`https://chat.example.com`, `http://localhost:5173`) whose pages may call the
    /// relay; `"*"` allows any page and must be set explicitly. Empty = no CORS.
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer (s).
    pub max_age_secs: u32,
}

impl Default for CorsOptions {
    fn default() -> Self {
        CorsOptions {
            allowed_origins: Vec::new(),
            max_age_secs: 600,
        }
    }
}

/// Most origins listed: a list this long is a mistake (use `"*"`).
pub const MAX_ORIGINS: usize = 100;

impl CorsOptions {
    /// The value for `Access-Control-Allow-Origin` when `origin` may call, else `None`.
    pub fn allow<'a>(&self, origin: &'a str) -> Option<&'a str> {
        if self.allowed_origins.iter().any(|o| o == "*") {
            return Some("*");
        }
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
            .then_some(origin)
    }

    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_age_secs > 86_400 {
            return Err(format!(
                "cors.max_age_secs is {}; use 0 to 86400 (default 600)",
                self.max_age_secs
            ));
        }
        if self.allowed_origins.len() > MAX_ORIGINS {
            return Err(format!(
                "cors.allowed_origins lists more than {MAX_ORIGINS} origins; use \"*\" to allow any page"
            ));
        }
        for o in &self.allowed_origins {
            if o != "*" && !is_origin(o) {
                return Err(format!(
                    "cors.allowed_origins has {o:?}; give origins as a browser sends them, scheme://host[:port] with no path (e.g. \"https://chat.example.com\"), or \"*\" for any page"
                ));
            }
        }
        Ok(())
    }
}

/// `http(s)://host[:port]`, nothing after it.
fn is_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal has colons inside its brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(origins: &[&str]) -> CorsOptions {
        CorsOptions {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn origins_are_checked_as_browsers_send_them() {
        for ok in [
            "https://chat.example.com",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "*",
        ] {
            with(&[ok]).validate().unwrap();
        }
        for bad in [
            "chat.example.com",
            "https://chat.example.com/",
            "https://chat.example.com/app",
            "https://",
            "ftp://x",
            "https://x:0",
            "https://x:99999",
            "https://x?y",
            "null",
        ] {
            assert!(with(&[bad]).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_listed_origins_are_allowed_and_star_only_when_set() {
        let o = with(&["https://chat.example.com"]);
        assert_eq!(
            o.allow("https://chat.example.com"),
            Some("https://chat.example.com")
        );
        assert_eq!(
            o.allow("https://CHAT.example.com"),
            Some("https://CHAT.example.com")
        );
        assert_eq!(o.allow("https://evil.example.com"), None);
        assert_eq!(o.allow("https://chat.example.com.evil.com"), None);
        assert_eq!(
            CorsOptions::default().allow("https://chat.example.com"),
            None
        );
        assert!(!CorsOptions::default().enabled());
        assert_eq!(with(&["*"]).allow("https://any.where"), Some("*"));
    }
}
