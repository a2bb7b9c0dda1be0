//! The per-minute token bucket, in exact integer arithmetic.
//!
//! A bucket of limit `L` per minute holds at most `L` units and refills at `L` per minute.
//! The level is kept in fixed point as units × [`WINDOW_NS`], so a refill of `elapsed_ns × L`
//! and a take of `n × WINDOW_NS` are both exact: `L` calls in the same instant pass and the
//! `L+1`th does not, for any `L` (float or rounded-rate buckets let a few extra through at
//! large limits). The level may go negative (debt): a call that used more tokens than it
//! reserved makes the next ones wait.

/// One minute, in nanoseconds: the window every limit is expressed over.
pub const WINDOW_NS: u64 = 60_000_000_000;
const W: i128 = WINDOW_NS as i128;

#[derive(Debug, Default, Clone)]
pub struct Bucket {
    /// Units available × WINDOW_NS; negative while in debt.
    level: i128,
    /// Clock reading (ns) of the last refill.
    last: u64,
    /// The limit the level was last refilled with; 0 for a bucket never used.
    limit: u64,
}

/// Why a take cannot happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Short {
    /// Not enough yet: this many nanoseconds until there is.
    Wait(u64),
    /// More than the whole limit: waiting never helps.
    TooLarge,
}

impl Bucket {
    /// Brings the bucket to `now` under `limit` (> 0). A changed limit keeps what was used:
    /// raising a limit from 3 to 10 after 3 calls leaves 7 available at once, lowering it
    /// leaves the calls already made counted against the new limit. A new bucket starts full.
    pub fn refill(&mut self, limit: u64, now: u64) {
        // The time since the last refill ran at the old rate.
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.level = (self.level + i128::from(elapsed) * i128::from(self.limit)).min(self.cap());
        if limit != self.limit {
            self.level += (i128::from(limit) - i128::from(self.limit)) * W;
            self.limit = limit;
        }
    }

    fn cap(&self) -> i128 {
        i128::from(self.limit) * W
    }

    /// Whether `n` units are available now (after [`refill`](Self::refill)).
    pub fn check(&self, n: u64) -> Result<(), Short> {
        if n > self.limit {
            return Err(Short::TooLarge);
        }
        let need = i128::from(n) * W;
        if self.level >= need {
            return Ok(());
        }
        let missing = need - self.level;
        let rate = i128::from(self.limit.max(1));
        Err(Short::Wait(ceil_div(missing, rate) as u64))
    }

    /// Takes `n` units; call [`check`](Self::check) first.
    pub fn take(&mut self, n: u64) {
        self.level -= i128::from(n) * W;
    }

    /// Charges `delta` more units (a refund when negative), after bringing the bucket to
    /// `now`. A refund never fills past the limit; a charge may go into debt.
    pub fn adjust(&mut self, delta: i64, now: u64) {
        let limit = self.limit;
        self.refill(limit, now);
        self.level = (self.level - i128::from(delta) * W).min(self.cap());
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whole units available now (0 while in debt).
    pub fn remaining(&self) -> u64 {
        (self.level.max(0) / W) as u64
    }

    /// Units counted against the limit now, rounded up (may pass the limit while in debt).
    pub fn used(&self) -> u64 {
        ceil_div((self.cap() - self.level).max(0), W) as u64
    }

    /// Nanoseconds until the bucket is full again.
    pub fn reset_ns(&self) -> u64 {
        if self.limit == 0 {
            return 0;
        }
        ceil_div((self.cap() - self.level).max(0), i128::from(self.limit)) as u64
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}
