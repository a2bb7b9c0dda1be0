//! The in-memory error window per channel, fed by every upstream attempt. It decides, without
//! touching SQLite, when a channel should be turned off: when errors over a sliding window pass
//! the threshold after enough requests — never on one transient error. A status the admin
//! listed (upstream refused a key) turns off that key instead ([`super::keys`]), and the
//! channel once every key is off; here it only counts as an error.

use crate::settings::channel::ChannelOptions;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What one upstream attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Response headers with a status (2xx included).
    Status(u16),
    /// No response within the first-byte timeout.
    Timeout,
    /// No connection, or it broke before the headers.
    Connect,
}

impl Outcome {
    /// Counts against the channel in the error rate. The client's own mistakes (400, 404, 422…)
    /// do not: the channel answered. Nor does 429: the upstream is busy, not broken, the relay
    /// already moves such calls to the next channel, and a channel turned off for it would stay
    /// off until a test (scheduled tests are off by default).
    fn is_error(self, opts: &ChannelOptions) -> bool {
        match self {
            Outcome::Status(s) => {
                s >= 500 || matches!(s, 401 | 403 | 408) || opts.disable_statuses.contains(&s)
            }
            Outcome::Timeout | Outcome::Connect => true,
        }
    }
}

/// The tracker's verdict: turn this channel off, for this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub channel_id: i64,
    pub reason: String,
    /// The status that tripped it, when one status did.
    pub status: Option<u16>,
}

/// Requests and errors of one second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    sec: i64,
    requests: u32,
    errors: u32,
}

#[derive(Debug, Default)]
struct Window {
    /// Oldest first; at most one per second of the window, so memory is bounded by the window.
    buckets: VecDeque<Bucket>,
    /// A trip is being applied: later errors wait for [`Tracker::reset`] instead of tripping
    /// again (a burst of 401s makes one disable, not hundreds).
    tripped: bool,
}

impl Window {
    fn prune(&mut self, now: i64, window_secs: i64) {
        while self
            .buckets
            .front()
            .is_some_and(|b| b.sec <= now - window_secs)
        {
            self.buckets.pop_front();
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets.iter().fold((0, 0), |(r, e), b| {
            (r + u64::from(b.requests), e + u64::from(b.errors))
        })
    }
}

/// Per channel, behind its own lock, so channels never contend with each other.
#[derive(Default)]
pub struct Tracker {
    channels: RwLock<HashMap<i64, Arc<Mutex<Window>>>>,
}

impl Tracker {
    fn window(&self, id: i64) -> Arc<Mutex<Window>> {
        if let Some(w) = self.channels.read().get(&id) {
            return w.clone();
        }
        self.channels.write().entry(id).or_default().clone()
    }

    /// Records one attempt at `now` (Unix seconds) and says whether the channel should be
    /// turned off. Cheap and never blocks on I/O: the relay calls it for every attempt.
    pub fn observe(
        &self,
        channel_id: i64,
        outcome: Outcome,
        now: i64,
        opts: &ChannelOptions,
    ) -> Option<Trip> {
        let error = outcome.is_error(opts);
        let window = self.window(channel_id);
        let mut w = window.lock();
        w.prune(
            now,
            i64::try_from(opts.error_window_secs).unwrap_or(i64::MAX),
        );
        match w.buckets.back_mut() {
            Some(b) if b.sec >= now => {
                b.requests += 1;
                b.errors += u32::from(error);
            }
            _ => w.buckets.push_back(Bucket {
                sec: now,
                requests: 1,
                errors: u32::from(error),
            }),
        }
        if !opts.auto_disable || w.tripped || !error {
            return None;
        }
        let (requests, errors) = w.totals();
        let rate = errors as f64 / requests as f64;
        if requests >= u64::from(opts.error_rate_min_requests) && rate > opts.error_rate_threshold {
            w.tripped = true;
            return Some(Trip {
                channel_id,
                reason: format!(
                    "{errors} of the last {requests} requests failed within {} s ({:.0}% > {:.0}%)",
                    opts.error_window_secs,
                    rate * 100.0,
                    opts.error_rate_threshold * 100.0
                ),
                status: None,
            });
        }
        None
    }

    /// Forgets a channel's window: after its status changed (a fresh start once back on) or
    /// when applying a trip failed (so a later error can trip again).
    pub fn reset(&self, channel_id: i64) {
        self.channels.write().remove(&channel_id);
    }

    /// (requests, errors) of the channel within the window ending at `now`.
    pub fn counts(&self, channel_id: i64, now: i64, window_secs: u64) -> (u64, u64) {
        let Some(w) = self.channels.read().get(&channel_id).cloned() else {
            return (0, 0);
        };
        let mut w = w.lock();
        w.prune(now, i64::try_from(window_secs).unwrap_or(i64::MAX));
        w.totals()
    }
}

/// `401 Unauthorized`.
pub fn describe_status(s: u16) -> String {
    match http::StatusCode::from_u16(s)
        .ok()
        .and_then(|c| c.canonical_reason())
    {
        Some(r) => format!("{s} {r}"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ChannelOptions {
        ChannelOptions {
            error_rate_threshold: 0.5,
            error_rate_min_requests: 10,
            error_window_secs: 300,
            ..ChannelOptions::default()
        }
    }

    #[test]
    fn a_listed_status_counts_as_an_error_but_trips_only_by_the_rate() {
        // Turning a key (and a channel with no key left) off is the keys' business.
        let t = Tracker::default();
        assert_eq!(t.observe(1, Outcome::Status(401), 100, &opts()), None);
        assert_eq!(t.counts(1, 100, 300), (1, 1));
        for i in 0..8 {
            assert_eq!(t.observe(1, Outcome::Status(403), 101 + i, &opts()), None);
        }
        let trip = t.observe(1, Outcome::Status(401), 110, &opts()).unwrap();
        assert!(trip.reason.contains("10 of the last 10"), "{}", trip.reason);
        assert_eq!(
            t.observe(1, Outcome::Status(401), 111, &opts()),
            None,
            "once"
        );
    }

    #[test]
    fn one_transient_error_never_trips() {
        let t = Tracker::default();
        for o in [
            Outcome::Status(500),
            Outcome::Timeout,
            Outcome::Connect,
            Outcome::Status(429),
        ] {
            assert_eq!(t.observe(7, o, 100, &opts()), None, "{o:?}");
        }
        // Upstream's 429 (busy) and the client's mistakes do not count as errors at all.
        assert_eq!(t.counts(7, 100, 300), (4, 3));
        t.observe(7, Outcome::Status(400), 100, &opts());
        assert_eq!(t.counts(7, 100, 300), (5, 3));
    }

    #[test]
    fn the_error_rate_trips_after_enough_requests() {
        let t = Tracker::default();
        let o = opts();
        for i in 0..4 {
            assert_eq!(t.observe(1, Outcome::Status(200), 100 + i, &o), None);
        }
        // 5 errors of 9 is over half but below the minimum of 10 requests.
        for i in 0..5 {
            assert_eq!(t.observe(1, Outcome::Status(502), 110 + i, &o), None);
        }
        let trip = t.observe(1, Outcome::Timeout, 120, &o).unwrap();
        assert_eq!(trip.status, None);
        assert!(trip.reason.contains("6 of the last 10"), "{}", trip.reason);
    }

    #[test]
    fn old_errors_slide_out_of_the_window() {
        let t = Tracker::default();
        let o = opts();
        for i in 0..9 {
            t.observe(1, Outcome::Status(500), i, &o);
        }
        // 300 s later those nine are gone: one more error is one of one.
        assert_eq!(t.observe(1, Outcome::Status(500), 400, &o), None);
        assert_eq!(t.counts(1, 400, 300), (1, 1));
    }

    #[test]
    fn nothing_trips_when_auto_disable_is_off() {
        let t = Tracker::default();
        let o = ChannelOptions {
            auto_disable: false,
            ..opts()
        };
        assert_eq!(t.observe(1, Outcome::Status(401), 1, &o), None);
        for i in 0..50 {
            assert_eq!(t.observe(1, Outcome::Status(500), i, &o), None);
        }
    }
}
