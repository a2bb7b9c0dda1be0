//! Secrets that cannot leak by accident: `Debug` and `Display` print a mask.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A string that must never reach a log line or an error body.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A display form: the first few characters and a mask, for lists in the admin UI.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// `sk-abcd…` style: keeps at most 6 leading characters, never more than a third of the value.
pub fn mask(s: &str) -> String {
    let keep = (s.chars().count() / 3).min(6);
    let head: String = s.chars().take(keep).collect();
    format!("{head}…")
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("sk-canary-123456789");
        assert!(!format!("{s:?} {s}").contains("canary"));
        assert_eq!(s.expose(), "sk-canary-123456789");
        assert!(!s.masked().contains("canary"));
    }
}
