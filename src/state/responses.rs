//! Responses created by passthrough (`POST /v1/responses` to a channel with the Responses
//! API): which channel made each and whose key, for `GET/DELETE /v1/responses/{id}`
//! (`relay::stored`). In memory: written on every such call, where the relay waits on no
//! database; a restart forgets them (those calls then answer a clear 404).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most responses remembered (about 100 bytes each).
pub const MAX_REMEMBERED: usize = 100_000;
/// How long a response is remembered: OpenAI keeps stored responses 30 days.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub channel_id: i64,
    pub key_id: i64,
    pub user_id: i64,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, (Owner, Instant)>,
    /// Ids in the order they were remembered (a re-remembered id appears twice; the map's
    /// instant tells the live entry).
    order: VecDeque<(String, Instant)>,
}

#[derive(Default)]
pub struct Responses {
    inner: parking_lot::Mutex<Inner>,
}

impl Responses {
    pub fn remember(&self, id: &str, owner: Owner) {
        self.remember_at(id, owner, Instant::now());
    }

    fn remember_at(&self, id: &str, owner: Owner, now: Instant) {
        let mut g = self.inner.lock();
        g.by_id.insert(id.to_string(), (owner, now));
        g.order.push_back((id.to_string(), now));
        while g.by_id.len() > MAX_REMEMBERED || g.order.len() > 2 * MAX_REMEMBERED {
            let Some((old, at)) = g.order.pop_front() else {
                break;
            };
            if g.by_id.get(&old).is_some_and(|(_, t)| *t == at) {
                g.by_id.remove(&old);
            }
        }
    }

    pub fn lookup(&self, id: &str) -> Option<Owner> {
        self.lookup_at(id, Instant::now())
    }

    fn lookup_at(&self, id: &str, now: Instant) -> Option<Owner> {
        let mut g = self.inner.lock();
        // Age out from the front: the oldest first.
        while let Some((old, at)) = g.order.front().cloned() {
            if now.duration_since(at) <= MAX_AGE {
                break;
            }
            g.order.pop_front();
            if g.by_id.get(&old).is_some_and(|(_, t)| *t == at) {
                g.by_id.remove(&old);
            }
        }
        g.by_id.get(id).map(|(o, _)| *o)
    }

    pub fn forget(&self, id: &str) {
        self.inner.lock().by_id.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_remembered_within_bounds_and_age() {
        let r = Responses::default();
        let o = Owner {
            channel_id: 1,
            key_id: 2,
            user_id: 3,
        };
        let t0 = Instant::now();
        r.remember_at("resp_a", o, t0);
        assert_eq!(r.lookup_at("resp_a", t0), Some(o));
        assert_eq!(r.lookup_at("resp_b", t0), None);
        assert_eq!(
            r.lookup_at("resp_a", t0 + MAX_AGE + Duration::from_secs(1)),
            None
        );
        for i in 0..MAX_REMEMBERED + 5 {
            r.remember_at(&format!("x{i}"), o, t0);
        }
        assert_eq!(r.lookup_at("x0", t0), None);
        let last = format!("x{}", MAX_REMEMBERED + 4);
        assert_eq!(r.lookup_at(&last, t0), Some(o));
        r.forget(&last);
        assert_eq!(r.lookup_at(&last, t0), None);
    }
}
