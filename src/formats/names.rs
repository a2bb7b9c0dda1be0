//! Tool names: OpenAI takes at most 64 characters (`^[a-zA-Z0-9_-]{1,64}$`), Anthropic and
//! MCP clients such as Claude Code send longer ones. A long name is shortened on the way out to
//! a stable form (a prefix and a digest of the whole name), and restored on the way back from
//! the request's own tool list, so nothing needs to be remembered between calls.

use sha2::{Digest, Sha256};

/// OpenAI's limit on a function name.
pub const MAX_OPENAI_NAME: usize = 64;

/// `name` as OpenAI accepts it: itself when short enough, else its first 55 characters, `_`
/// and 8 hex digits of its SHA-256 (64 in all; the digest keeps two long names that share a
/// prefix apart).
pub fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_OPENAI_NAME {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let prefix: String = name.chars().take(55).collect();
    format!("{prefix}_{}", hex::encode(&digest[..4]))
}

/// The original of a (possibly shortened) name, among the request's tool names.
pub fn restore<'a>(short: &str, originals: impl IntoIterator<Item = &'a str>) -> String {
    originals
        .into_iter()
        .find(|o| *o == short || (o.chars().count() > MAX_OPENAI_NAME && shorten(o) == short))
        .unwrap_or(short)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_shorten_stably_and_restore() {
        let long_a = format!("mcp__server__{}", "a".repeat(80));
        let long_b = format!("mcp__server__{}b", "a".repeat(80));
        let (sa, sb) = (shorten(&long_a), shorten(&long_b));
        assert_eq!(sa.chars().count(), 64);
        assert_ne!(sa, sb);
        assert_eq!(shorten(&long_a), sa);
        assert_eq!(shorten("get_weather"), "get_weather");
        let names = [long_a.as_str(), long_b.as_str(), "get_weather"];
        assert_eq!(restore(&sa, names), long_a);
        assert_eq!(restore(&sb, names), long_b);
        assert_eq!(restore("get_weather", names), "get_weather");
        assert_eq!(restore("unknown", names), "unknown");
    }
}
