//! Rate limits: requests and tokens per minute, per API key and per user, counted in memory
//! on the request path (no SQLite). Counts reset when the server restarts.
//!
//! - [`policy`]: the exact fixed-point token bucket.
//! - [`headers`]: the `x-ratelimit-*` headers and OpenAI's duration format.
//!
//! Admission checks every bucket that applies (key and user × requests and tokens) while
//! holding their locks, and takes from all of them only when all pass: a refusal by one
//! consumes nothing from the others. Locks are always taken key first, then user, so two
//! calls can never wait on each other in a cycle. TPM takes the call's estimate (prompt +
//! max_tokens) at admission; the [`Permit`] corrects it to the real count at settle, or
//! gives it back if the call is never charged.

pub mod headers;
pub mod policy;
#[cfg(test)]
mod tests;

use crate::catalog::KeyEntry;
use crate::settings::ratelimit::RateLimitOptions;
use headers::{RateHeaders, Trio};
use parking_lot::Mutex;
use policy::{Bucket, Short};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Monotonic nanoseconds; injected so tests can move time without sleeping.
pub trait Clock: Send + Sync {
    fn now_ns(&self) -> u64;
}

/// The real clock: nanoseconds since the limiter was made.
pub struct SystemClock(Instant);

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// A clock that moves only when told (tests): a limit's refill and the 10 s between refusal
/// rows then depend on what the test does, never on how fast the machine runs it.
#[derive(Clone)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicU64>);

impl Default for ManualClock {
    /// Starts at 1 µs (a bucket's first refill is at a time after 0).
    fn default() -> Self {
        ManualClock(Arc::new(std::sync::atomic::AtomicU64::new(1_000)))
    }
}

impl ManualClock {
    pub fn advance(&self, by: std::time::Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The limits that apply to one call, resolved from the key, the user's group and the
/// options. 0 = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub key_rpm: u64,
    pub key_tpm: u64,
    pub user_rpm: u64,
    pub user_tpm: u64,
}

impl Limits {
    pub fn resolve(key: &KeyEntry, group: &str, o: &RateLimitOptions) -> Limits {
        Limits {
            key_rpm: key.rpm_limit.unwrap_or(o.key_rpm),
            key_tpm: key.tpm_limit.unwrap_or(o.key_tpm),
            user_rpm: o.user_rpm_for(group),
            user_tpm: o.user_tpm_for(group),
        }
    }

    fn none(&self) -> bool {
        *self == Limits::default()
    }
}

/// The two buckets of one subject (a key or a user), under one lock, and when its refusals
/// last got a log row: rate-limit refusals, and apart from them quota refusals (which the
/// relay reports through [`Limiter::quota_refusal_row`]).
#[derive(Debug, Default)]
struct Counters {
    requests: Bucket,
    tokens: Bucket,
    refusals: RefusalLog,
    quota_refusals: RefusalLog,
}

/// At most one refusal log row per subject per this long: a client hammering past its limit
/// must not turn each refused call into a database insert (the metrics count every one).
pub const REFUSAL_ROW_EVERY_NS: u64 = 10_000_000_000;

/// When the last refusal row of a subject was written, and how many refusals since had none.
#[derive(Debug, Default)]
struct RefusalLog {
    last_row: Option<u64>,
    unlogged: u64,
}

impl RefusalLog {
    /// `Some(n)` when this refusal gets a row, `n` being the refusals since the last row that
    /// had none; `None` when it is folded into the next row.
    fn due(&mut self, now: u64) -> Option<u64> {
        match self.last_row {
            Some(t) if now.saturating_sub(t) < REFUSAL_ROW_EVERY_NS => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last_row = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

type Cell = Arc<Mutex<Counters>>;

const SHARDS: usize = 16;

/// Subjects by id, spread over shards so concurrent calls of different keys rarely meet on
/// the same map lock (which is held only to find or create a subject's cell).
struct Shards([Mutex<HashMap<i64, Cell>>; SHARDS]);

impl Shards {
    fn new() -> Shards {
        Shards(std::array::from_fn(|_| Mutex::new(HashMap::new())))
    }

    fn cell(&self, id: i64) -> Cell {
        let shard = &self.0[(id.unsigned_abs() as usize) % SHARDS];
        shard.lock().entry(id).or_default().clone()
    }
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Key,
    User,
}

/// Which dimension refused a call; also the error's `type` in OpenAI's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
        }
    }
}

/// A refused call: everything the 429 says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: Kind,
    pub subject: Subject,
    pub limit: u64,
    pub used: u64,
    pub requested: u64,
    /// Nanoseconds until the call could pass; `None` when it never can (more tokens than the
    /// whole per-minute limit).
    pub wait_ns: Option<u64>,
    pub headers: RateHeaders,
    /// `Some(n)`: write an error row for this refusal, noting `n` earlier refusals of the same
    /// subject that had none; `None`: no row (one was written moments ago).
    pub log_row: Option<u64>,
}

impl Refusal {
    /// Whole seconds for `Retry-After` (at least 1; a minute when waiting cannot help).
    pub fn retry_after_secs(&self) -> u64 {
        headers::retry_after_secs(self.wait_ns.unwrap_or(policy::WINDOW_NS))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, short) = match self.kind {
            Kind::Requests => ("requests", "RPM"),
            Kind::Tokens => ("tokens", "TPM"),
        };
        let on = match self.subject {
            Subject::Key => "this API key",
            Subject::User => "your account",
        };
        match self.wait_ns {
            Some(ns) => write!(
                f,
                "Rate limit reached for {what} per min ({short}) on {on}: Limit {}, Used {}, Requested {}. Please try again in {}.",
                self.limit,
                self.used,
                self.requested,
                headers::duration(ns)
            ),
            None => write!(
                f,
                "Request too large for {what} per min ({short}) on {on}: Limit {}, Requested {}. Lower max_tokens or shorten the prompt.",
                self.limit, self.requested
            ),
        }
    }
}

pub struct Limiter {
    keys: Shards,
    users: Shards,
    clock: Box<dyn Clock>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::with_clock(Box::new(SystemClock(Instant::now())))
    }
}

/// One bucket taking part in an admission.
struct Part<'a> {
    subject: Subject,
    kind: Kind,
    limit: u64,
    n: u64,
    bucket: &'a mut Bucket,
}

impl Limiter {
    pub fn with_clock(clock: Box<dyn Clock>) -> Limiter {
        Limiter {
            keys: Shards::new(),
            users: Shards::new(),
            clock,
        }
    }

    /// Admits a call of `key_id` / `user_id` estimated at `tokens`, or says why not. On a
    /// refusal nothing is taken from any bucket.
    pub fn admit(
        self: &Arc<Self>,
        key_id: i64,
        user_id: i64,
        limits: Limits,
        tokens: u64,
    ) -> Result<Permit, Box<Refusal>> {
        if limits.none() {
            return Ok(Permit::unlimited());
        }
        let key_cell = (limits.key_rpm > 0 || limits.key_tpm > 0).then(|| self.keys.cell(key_id));
        let user_cell =
            (limits.user_rpm > 0 || limits.user_tpm > 0).then(|| self.users.cell(user_id));
        let now = self.clock.now_ns();
        // Key before user, always (see the module comment).
        let mut key_guard = key_cell.as_ref().map(|c| c.lock());
        let mut user_guard = user_cell.as_ref().map(|c| c.lock());
        let mut parts: Vec<Part<'_>> = Vec::with_capacity(4);
        for (subject, guard, rpm, tpm) in [
            (Subject::Key, &mut key_guard, limits.key_rpm, limits.key_tpm),
            (
                Subject::User,
                &mut user_guard,
                limits.user_rpm,
                limits.user_tpm,
            ),
        ] {
            let Some(g) = guard.as_deref_mut() else {
                continue;
            };
            let Counters {
                requests,
                tokens: tok,
                ..
            } = g;
            if rpm > 0 {
                parts.push(Part {
                    subject,
                    kind: Kind::Requests,
                    limit: rpm,
                    n: 1,
                    bucket: requests,
                });
            }
            if tpm > 0 {
                parts.push(Part {
                    subject,
                    kind: Kind::Tokens,
                    limit: tpm,
                    n: tokens,
                    bucket: tok,
                });
            }
        }
        for p in parts.iter_mut() {
            p.bucket.refill(p.limit, now);
        }
        let refused = parts.iter().find_map(|p| match p.bucket.check(p.n) {
            Ok(()) => None,
            Err(short) => Some((p.subject, p.kind, p.limit, p.bucket.used(), p.n, short)),
        });
        if let Some((subject, kind, limit, used, requested, short)) = refused {
            let headers = headers_of(&parts);
            drop(parts);
            let counters = match subject {
                Subject::Key => key_guard.as_deref_mut(),
                Subject::User => user_guard.as_deref_mut(),
            };
            let log_row = counters.and_then(|c| c.refusals.due(now));
            return Err(Box::new(Refusal {
                kind,
                subject,
                limit,
                used,
                requested,
                wait_ns: match short {
                    Short::Wait(ns) => Some(ns),
                    Short::TooLarge => None,
                },
                headers,
                log_row,
            }));
        }
        for p in parts.iter_mut() {
            p.bucket.take(p.n);
        }
        let headers = headers_of(&parts);
        drop(parts);
        drop(user_guard);
        drop(key_guard);
        Ok(Permit {
            limiter: Some(self.clone()),
            key: key_cell.filter(|_| limits.key_tpm > 0),
            user: user_cell.filter(|_| limits.user_tpm > 0),
            reserved: tokens,
            settled: AtomicBool::new(false),
            headers,
        })
    }

    /// Whether a call of this key or user refused for insufficient quota gets an error row:
    /// `Some(n)` (with `n` refusals since the last row that had none) at most once per
    /// subject per 10 s, as rate-limit refusals, on the same clock.
    pub fn quota_refusal_row(&self, subject: Subject, id: i64) -> Option<u64> {
        let cell = match subject {
            Subject::Key => self.keys.cell(id),
            Subject::User => self.users.cell(id),
        };
        let now = self.clock.now_ns();
        cell.lock().quota_refusals.due(now)
    }

    /// Moves `delta` tokens (negative = refund) on the token buckets of a permit.
    fn adjust(&self, key: Option<&Cell>, user: Option<&Cell>, delta: i64) {
        if delta == 0 {
            return;
        }
        let now = self.clock.now_ns();
        // Same order as admission.
        let mut k = key.map(|c| c.lock());
        let mut u = user.map(|c| c.lock());
        for g in [k.as_deref_mut(), u.as_deref_mut()].into_iter().flatten() {
            g.tokens.adjust(delta, now);
        }
    }
}

fn headers_of(parts: &[Part<'_>]) -> RateHeaders {
    let mut h = RateHeaders::default();
    for p in parts {
        let t = Some(Trio {
            limit: p.limit,
            remaining: p.bucket.remaining(),
            reset_ns: p.bucket.reset_ns(),
        });
        match p.kind {
            Kind::Requests => h.requests = Trio::tighter(h.requests, t),
            Kind::Tokens => h.tokens = Trio::tighter(h.tokens, t),
        }
    }
    h
}

/// An admitted call's hold on the token buckets. [`settle`](Permit::settle) corrects the
/// estimate to the real count; dropped unsettled (the call failed and is not charged), it
/// gives the estimate back. The request itself stays counted either way.
pub struct Permit {
    limiter: Option<Arc<Limiter>>,
    key: Option<Cell>,
    user: Option<Cell>,
    reserved: u64,
    settled: AtomicBool,
    /// The headers for the successful response, as of admission.
    pub headers: RateHeaders,
}

impl Permit {
    /// A permit for a call no limit applies to.
    pub fn unlimited() -> Permit {
        Permit {
            limiter: None,
            key: None,
            user: None,
            reserved: 0,
            settled: AtomicBool::new(false),
            headers: RateHeaders::default(),
        }
    }

    /// The call used `actual` tokens: charge or refund the difference from the estimate
    /// (once; later calls do nothing).
    pub fn settle(&self, actual: u64) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(l) = &self.limiter {
            let delta = i64::try_from(actual)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(self.reserved).unwrap_or(i64::MAX));
            l.adjust(self.key.as_ref(), self.user.as_ref(), delta);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.settle(0);
    }
}
