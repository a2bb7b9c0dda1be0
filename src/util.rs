//! Small helpers shared across layers: time, random tokens, digests.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random alphanumeric string from the OS-seeded CSPRNG.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// SHA-256 of a bearer secret: what we store and look up, never the secret itself.
pub fn digest(secret: &str) -> [u8; 32] {
    let out = Sha256::digest(secret.as_bytes());
    let mut d = [0u8; 32];
    d.copy_from_slice(&out);
    d
}

/// For `#[serde(default, deserialize_with = "crate::util::not_null")]` on an `Option` field:
/// absent is `None`, a value is `Some`, and `null` is refused (the API's schema has no null
/// there: leave the field out instead).
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
