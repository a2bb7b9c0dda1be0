//! sluice patch: the BPE table (token bytes → rank) as one block of bytes and a table of
//! indexes into it (see PATCHES.md).
//!
//! Upstream keeps it as `HashMap<Vec<u8>, Rank>`: for o200k's 200,000 tokens, 8 MiB of buckets
//! (32 bytes each) plus 200,000 separate allocations of a few bytes, each a 32-byte malloc
//! chunk, ~15 MiB resident. Here the bytes of every token sit end to end in one `Vec`, and the
//! hash table holds only where each token's bytes are and its rank (12 bytes): ~5 MiB for the
//! same tokens, and one allocation per part instead of one per token. Counting is as fast (a
//! probe compares lengths before it reads a token's bytes, one cache miss as upstream's).

use crate::Rank;
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Token bytes → rank, compact (see the module's comment). Lookups take a byte slice.
#[derive(Clone, Default)]
pub struct Ranks {
    /// Every token's bytes, end to end, in insertion order.
    bytes: Vec<u8>,
    /// One entry per token, hashed by its bytes.
    table: HashTable<Entry>,
}

/// A token: where its bytes are in `Ranks::bytes`, and its rank. The length sits beside the
/// rank so that a probe rejects most other tokens without reading their bytes (one cache miss
/// per lookup, as upstream's table had).
#[derive(Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    rank: Rank,
}

fn hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.finish()
}

impl Entry {
    fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.start as usize..(self.start + self.len) as usize]
    }
}

impl Ranks {
    /// How many tokens.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The rank of the token whose bytes are `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Rank> {
        let bytes = &self.bytes;
        self.table
            .find(hash(key), |e| e.len as usize == key.len() && e.key(bytes) == key)
            .map(|e| &e.rank)
    }

    /// Adds a token, or gives an existing one a new rank (and returns the old), as
    /// `HashMap::insert` does.
    pub fn insert<K: AsRef<[u8]>>(&mut self, key: K, rank: Rank) -> Option<Rank> {
        let key = key.as_ref();
        let h = hash(key);
        let bytes = &self.bytes;
        if let Some(e) = self
            .table
            .find_mut(h, |e| e.len as usize == key.len() && e.key(bytes) == key)
        {
            return Some(std::mem::replace(&mut e.rank, rank));
        }
        let entry = Entry {
            start: u32::try_from(self.bytes.len()).expect("token bytes under 4 GiB"),
            len: u32::try_from(key.len()).expect("a token under 4 GiB"),
            rank,
        };
        self.bytes.extend_from_slice(key);
        let bytes = &self.bytes;
        self.table.insert_unique(h, entry, |e| hash(e.key(bytes)));
        None
    }

    /// Gives back what the parts grew past while loading.
    pub fn shrink_to_fit(&mut self) {
        let bytes = &self.bytes;
        self.table.shrink_to_fit(|e| hash(e.key(bytes)));
        self.bytes.shrink_to_fit();
    }

    /// Every token's bytes and rank, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Rank)> {
        self.table.iter().map(|e| (e.key(&self.bytes), &e.rank))
    }

    /// Every token's bytes, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.iter().map(|(k, _)| k)
    }
}

impl std::ops::Index<&[u8]> for Ranks {
    type Output = Rank;

    fn index(&self, key: &[u8]) -> &Rank {
        self.get(key).expect("token in the BPE table")
    }
}

impl<K: AsRef<[u8]>> FromIterator<(K, Rank)> for Ranks {
    fn from_iter<I: IntoIterator<Item = (K, Rank)>>(iter: I) -> Self {
        let mut ranks = Ranks::default();
        for (k, r) in iter {
            ranks.insert(k, r);
        }
        ranks.shrink_to_fit();
        ranks
    }
}

#[cfg(test)]
mod tests {
    use super::Ranks;

    #[test]
    fn finds_every_token_and_nothing_else() {
        let mut r = Ranks::default();
        let words: Vec<Vec<u8>> = (0..5000u32).map(|i| format!("t{i}").into_bytes()).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(r.insert(w, i as u32), None);
        }
        r.shrink_to_fit();
        assert_eq!(r.len(), 5000);
        for (i, w) in words.iter().enumerate() {
            assert_eq!(r.get(w), Some(&(i as u32)));
            assert_eq!(r[w.as_slice()], i as u32);
        }
        assert_eq!(r.get(b"t5000"), None);
        assert_eq!(r.get(b""), None);
        assert_eq!(r.insert(b"t7", 99), Some(7));
        assert_eq!(r.get(b"t7"), Some(&99));
        assert_eq!(r.iter().count(), 5000);
    }
}
