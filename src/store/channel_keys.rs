//! Several upstream keys per channel: the channel's secret holds one key per line. Each key
//! is known to the rest of sluice by a digest (to remember which are disabled across edits
//! and restarts) and a fingerprint (its last 4 characters, for people); never by its value.
//!
//! [`KeyRing`] is the in-memory side the relay picks from (round robin, lock-free); the
//! `channels.key_disables` column (JSON, see [`KeyDisable`]) is the durable side, read into the
//! ring each time the catalog loads the channels.

use super::StoreError;
use crate::secret::Secret;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Most keys one channel may hold.
pub const MAX_KEYS: usize = 100;

/// The keys of a channel's secret: one per line (`\n` or `\r\n`), blank lines ignored. Not
/// trimmed: a space in a key is refused where the key is given, as before several keys.
pub fn split(secret: &Secret) -> impl Iterator<Item = &str> {
    secret
        .expose()
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|k| !k.is_empty())
}

/// The secret as stored: the keys one per line, nothing else.
pub fn normalise(secret: &Secret) -> Secret {
    Secret::new(split(secret).collect::<Vec<_>>().join("\n"))
}

/// Identifies a key without revealing it: 16 hex digits of its SHA-256.
pub fn digest(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// What people see of a key: `…` and its last 4 characters (less of a short key).
pub fn fingerprint(key: &str) -> String {
    let n = key.chars().count();
    let keep = if n >= 16 { 4 } else { n / 4 };
    let tail: String = key.chars().skip(n - keep).collect();
    format!("…{tail}")
}

/// One key turned off by the health checks: upstream refused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDisable {
    pub digest: String,
    pub at: i64,
    pub reason: String,
    #[serde(default)]
    pub status: Option<u16>,
}

/// The parsed `key_disables` column (an unreadable value reads as none disabled).
pub fn parse_disables(json: &str) -> Vec<KeyDisable> {
    serde_json::from_str(json).unwrap_or_default()
}

struct RingKey {
    secret: Secret,
    digest: String,
    fingerprint: String,
    down: AtomicBool,
}

/// A channel's keys as the relay uses them: a start that turns round on every call, and a
/// flag per key set at once when upstream refuses it (before the disable is written), so
/// concurrent calls stop using it without waiting for the store.
pub struct KeyRing {
    keys: Vec<RingKey>,
    next: AtomicUsize,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys)", self.keys.len())
    }
}

/// One key picked for an attempt.
#[derive(Clone, Copy)]
pub struct PickedKey<'a> {
    pub index: usize,
    pub secret: &'a Secret,
}

impl KeyRing {
    pub fn new(secret: &Secret, disables: &[KeyDisable]) -> KeyRing {
        let keys = split(secret)
            .map(|k| {
                let digest = digest(k);
                let down = disables.iter().any(|d| d.digest == digest);
                RingKey {
                    secret: Secret::new(k),
                    fingerprint: fingerprint(k),
                    digest,
                    down: AtomicBool::new(down),
                }
            })
            .collect();
        KeyRing {
            keys,
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys one call may try, in order: the usable ones, starting one further round
    /// than the previous call started. Each key at most once, so a call's retries are bounded.
    pub fn order(&self) -> KeyOrder<'_> {
        let n = self.keys.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        KeyOrder {
            ring: self,
            start,
            step: 0,
        }
    }

    /// Marks a key refused. True when this call turned it off (so one refusal is recorded
    /// once, however many calls saw it).
    pub fn mark_down(&self, index: usize) -> bool {
        self.keys
            .get(index)
            .is_some_and(|k| !k.down.swap(true, Ordering::AcqRel))
    }

    pub fn is_down(&self, index: usize) -> bool {
        self.keys
            .get(index)
            .is_none_or(|k| k.down.load(Ordering::Acquire))
    }

    /// No key left to use.
    pub fn all_down(&self) -> bool {
        self.keys.iter().all(|k| k.down.load(Ordering::Acquire))
    }

    pub fn digest(&self, index: usize) -> Option<&str> {
        self.keys.get(index).map(|k| k.digest.as_str())
    }

    pub fn fingerprint(&self, index: usize) -> Option<&str> {
        self.keys.get(index).map(|k| k.fingerprint.as_str())
    }

    pub fn secret(&self, index: usize) -> Option<&Secret> {
        self.keys.get(index).map(|k| &k.secret)
    }
}

/// See [`KeyRing::order`].
pub struct KeyOrder<'a> {
    ring: &'a KeyRing,
    start: usize,
    step: usize,
}

impl<'a> Iterator for KeyOrder<'a> {
    type Item = PickedKey<'a>;
    fn next(&mut self) -> Option<PickedKey<'a>> {
        let n = self.ring.keys.len();
        while self.step < n {
            let index = (self.start + self.step) % n;
            self.step += 1;
            let k = &self.ring.keys[index];
            if !k.down.load(Ordering::Acquire) {
                return Some(PickedKey {
                    index,
                    secret: &k.secret,
                });
            }
        }
        None
    }
}

/// What the API shows of one key.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub fingerprint: String,
    pub enabled: bool,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

/// The view of every key, in the order of the secret.
pub fn views(secret: &Secret, disables: &[KeyDisable]) -> Vec<KeyView> {
    split(secret)
        .map(|k| {
            let d = disables.iter().find(|d| d.digest == digest(k));
            KeyView {
                fingerprint: fingerprint(k),
                enabled: d.is_none(),
                disabled_at: d.map(|d| d.at),
                disabled_reason: d.map(|d| d.reason.clone()),
            }
        })
        .collect()
}

fn read(conn: &Connection, id: i64) -> Result<Vec<KeyDisable>, StoreError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT key_disables FROM channels WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    match json {
        Some(j) => Ok(parse_disables(&j)),
        None => Err(rusqlite::Error::QueryReturnedNoRows.into()),
    }
}

fn write(conn: &Connection, id: i64, list: &[KeyDisable]) -> Result<(), StoreError> {
    let json = serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "UPDATE channels SET key_disables = ?2 WHERE id = ?1",
        params![id, json],
    )?;
    Ok(())
}

/// Records a key as turned off. False when it already was (or the channel no longer holds it).
pub fn disable(conn: &Connection, id: i64, d: KeyDisable) -> Result<bool, StoreError> {
    let mut list = read(conn, id)?;
    let secret: String =
        conn.query_row("SELECT api_key FROM channels WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    let held = split(&Secret::new(secret)).any(|k| digest(k) == d.digest);
    if !held || list.iter().any(|x| x.digest == d.digest) {
        return Ok(false);
    }
    list.push(d);
    write(conn, id, &list)?;
    Ok(true)
}

/// Turns a key back on. False when it was not off.
pub fn enable(conn: &Connection, id: i64, digest: &str) -> Result<bool, StoreError> {
    let mut list = read(conn, id)?;
    let before = list.len();
    list.retain(|d| d.digest != digest);
    if list.len() == before {
        return Ok(false);
    }
    write(conn, id, &list)?;
    Ok(true)
}

/// Turns every key back on (the admin switched the channel on).
pub fn enable_all(conn: &Connection, id: i64) -> Result<(), StoreError> {
    write(conn, id, &[])
}

/// Forgets the disables of keys the channel no longer holds (after an edit of its secret), so
/// a key given anew starts on.
pub fn prune(conn: &Connection, id: i64, secret: &Secret) -> Result<(), StoreError> {
    let mut list = read(conn, id)?;
    let held: Vec<String> = split(secret).map(digest).collect();
    let before = list.len();
    list.retain(|d| held.contains(&d.digest));
    if list.len() != before {
        write(conn, id, &list)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(key: &str) -> KeyDisable {
        KeyDisable {
            digest: digest(key),
            at: 1,
            reason: "401".into(),
            status: Some(401),
        }
    }

    #[test]
    fn keys_are_split_by_line_and_shown_by_their_last_four() {
        let s = Secret::new("\nsk-aaaaaaaaaaaaaaaa1111\r\n\nsk-bbbbbbbbbbbbbbbb2222\n");
        assert_eq!(
            split(&s).collect::<Vec<_>>(),
            ["sk-aaaaaaaaaaaaaaaa1111", "sk-bbbbbbbbbbbbbbbb2222"]
        );
        assert_eq!(
            normalise(&s).expose(),
            "sk-aaaaaaaaaaaaaaaa1111\nsk-bbbbbbbbbbbbbbbb2222"
        );
        assert_eq!(fingerprint("sk-aaaaaaaaaaaaaaaa1111"), "…1111");
        // A short key shows at most a quarter of itself.
        assert_eq!(fingerprint("abcdefgh"), "…gh");
        assert_eq!(fingerprint("k"), "…");
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a").len(), 16);
    }

    #[test]
    fn calls_take_the_keys_in_turn_and_skip_those_turned_off() {
        let ring = KeyRing::new(&Secret::new("a\nb\nc"), &[off("b")]);
        let firsts: Vec<usize> = (0..4).map(|_| ring.order().next().unwrap().index).collect();
        // Starts go 0, 1, 2, 0; b (1) is off, so the second call starts at c.
        assert_eq!(firsts, [0, 2, 2, 0]);
        let all: Vec<usize> = ring.order().map(|k| k.index).collect();
        assert_eq!(all.len(), 2, "each usable key once: {all:?}");
        assert!(ring.mark_down(0));
        assert!(!ring.mark_down(0), "recorded once");
        assert!(!ring.all_down());
        assert!(ring.mark_down(2));
        assert!(ring.all_down());
        assert_eq!(ring.order().next().map(|k| k.index), None);
        assert!(KeyRing::new(&Secret::new(""), &[]).all_down());
    }
}
