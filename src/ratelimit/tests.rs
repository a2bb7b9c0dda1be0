//! The limiter with a hand-moved clock: no sleeps.

use super::headers::{Trio, duration, retry_after_secs};
use super::policy::{Bucket, Short, WINDOW_NS};
use super::*;
use std::sync::atomic::AtomicU64;

struct Manual(Arc<AtomicU64>);

impl Clock for Manual {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn limiter() -> (Arc<Limiter>, Arc<AtomicU64>) {
    let t = Arc::new(AtomicU64::new(1_000));
    (
        Arc::new(Limiter::with_clock(Box::new(Manual(t.clone())))),
        t,
    )
}

const SEC: u64 = 1_000_000_000;

fn key_rpm(n: u64) -> Limits {
    Limits {
        key_rpm: n,
        ..Default::default()
    }
}

#[test]
fn exactly_the_limit_passes_in_one_instant_for_any_limit() {
    for limit in [1, 3, 7, 60, 7_000_000] {
        let mut b = Bucket::default();
        b.refill(limit, 5);
        for _ in 0..limit.min(1000) {
            assert!(b.check(1).is_ok());
            b.take(1);
        }
        if limit > 1000 {
            // Take the rest in one go, then one more must fail: no rounding slack.
            assert!(b.check(limit - 1000).is_ok());
            b.take(limit - 1000);
        }
        assert!(matches!(b.check(1), Err(Short::Wait(_))), "limit {limit}");
    }
}

#[test]
fn refill_is_proportional_to_time() {
    let mut b = Bucket::default();
    b.refill(3, 0);
    b.take(3);
    // One unit comes back every 20 s at 3 per minute.
    assert_eq!(b.check(1), Err(Short::Wait(20 * SEC)));
    b.refill(3, 20 * SEC - 1);
    assert!(b.check(1).is_err());
    b.refill(3, 20 * SEC);
    assert!(b.check(1).is_ok());
    // It never fills past the limit.
    b.refill(3, 100 * WINDOW_NS);
    assert_eq!(b.remaining(), 3);
    assert_eq!(b.reset_ns(), 0);
}

#[test]
fn requests_over_the_whole_limit_are_too_large() {
    let mut b = Bucket::default();
    b.refill(100, 0);
    assert_eq!(b.check(101), Err(Short::TooLarge));
}

#[test]
fn debt_makes_the_next_call_wait_and_refunds_cap_at_full() {
    let mut b = Bucket::default();
    b.refill(100, 0);
    b.take(50);
    b.adjust(80, 0); // used 130 of 100: 30 in debt
    assert_eq!(b.remaining(), 0);
    assert_eq!(b.used(), 130);
    // 30 units of debt + 1 needed = 31 units at 100/min.
    assert_eq!(b.check(1), Err(Short::Wait(31 * WINDOW_NS / 100)));
    b.adjust(-1000, 0);
    assert_eq!(b.remaining(), 100);
}

#[test]
fn a_changed_limit_keeps_what_was_used() {
    let mut b = Bucket::default();
    b.refill(3, 0);
    b.take(3);
    b.refill(10, 0);
    assert_eq!(b.remaining(), 7);
    b.refill(2, 0);
    assert_eq!(b.used(), 3);
    assert_eq!(b.remaining(), 0);
}

#[test]
fn time_before_a_limit_change_refills_at_the_old_rate() {
    let mut b = Bucket::default();
    b.refill(60, 0);
    b.take(60);
    // 10 s at 60/min gives 10 back; then the limit rises to 100: 40 more, all available.
    // (At the new rate it would have been 100.)
    b.refill(100, 10 * SEC);
    assert_eq!(b.remaining(), 50);
    assert_eq!(b.used(), 50);
}

#[test]
fn key_limit_refuses_with_the_numbers_and_recovers() {
    let (l, t) = limiter();
    for _ in 0..3 {
        l.admit(1, 1, key_rpm(3), 0).unwrap();
    }
    let r = l.admit(1, 1, key_rpm(3), 0).err().unwrap();
    assert_eq!(
        (r.kind, r.subject, r.limit, r.used, r.requested),
        (Kind::Requests, Subject::Key, 3, 3, 1)
    );
    assert_eq!(r.wait_ns, Some(20 * SEC));
    assert_eq!(r.retry_after_secs(), 20);
    assert_eq!(
        r.to_string(),
        "Rate limit reached for requests per min (RPM) on this API key: Limit 3, Used 3, Requested 1. Please try again in 20s."
    );
    // Another key of the same user is not affected.
    assert!(l.admit(2, 1, key_rpm(3), 0).is_ok());
    t.fetch_add(20 * SEC, Ordering::SeqCst);
    assert!(l.admit(1, 1, key_rpm(3), 0).is_ok());
    assert!(l.admit(1, 1, key_rpm(3), 0).is_err());
}

#[test]
fn refusal_rows_are_one_per_subject_per_interval() {
    let (l, t) = limiter();
    l.admit(1, 1, key_rpm(1), 0).unwrap();
    let rows = |l: &Arc<Limiter>| l.admit(1, 1, key_rpm(1), 0).err().unwrap().log_row;
    assert_eq!(rows(&l), Some(0), "the first refusal gets a row");
    assert_eq!(rows(&l), None);
    assert_eq!(rows(&l), None);
    // Another key's refusals have rows of their own.
    l.admit(2, 1, key_rpm(1), 0).unwrap();
    assert_eq!(l.admit(2, 1, key_rpm(1), 0).err().unwrap().log_row, Some(0));
    t.fetch_add(REFUSAL_ROW_EVERY_NS, Ordering::SeqCst);
    // (a minute's refill at 1/min is not yet back: 10 s passed)
    assert_eq!(rows(&l), Some(2), "the next row counts the two folded in");
}

#[test]
fn a_refusal_by_one_subject_takes_nothing_from_the_other() {
    let (l, _) = limiter();
    let both = Limits {
        key_rpm: 10,
        user_rpm: 2,
        ..Default::default()
    };
    l.admit(1, 7, both, 0).unwrap();
    l.admit(1, 7, both, 0).unwrap();
    // The user is out; the key's count must stay at 2 of 10 however often it is refused.
    for _ in 0..5 {
        let r = l.admit(1, 7, both, 0).err().unwrap();
        assert_eq!(r.subject, Subject::User);
    }
    let key_only = key_rpm(10);
    let p = l.admit(1, 7, key_only, 0).unwrap();
    assert_eq!(p.headers.requests.unwrap().remaining, 7);
}

#[test]
fn tokens_are_reserved_then_corrected_at_settle() {
    let (l, _) = limiter();
    let tpm = Limits {
        key_tpm: 1000,
        ..Default::default()
    };
    let p = l.admit(1, 1, tpm, 600).unwrap();
    assert_eq!(p.headers.tokens.unwrap().remaining, 400);
    // 500 more would not fit while 600 are reserved.
    assert!(l.admit(1, 1, tpm, 500).is_err());
    p.settle(100); // the call used only 100: 500 come back
    p.settle(999); // settles once
    drop(p);
    let q = l.admit(1, 1, tpm, 500).unwrap();
    assert_eq!(q.headers.tokens.unwrap().remaining, 400);
    q.settle(1300); // used more than reserved: 800 more, into debt
    let r = l.admit(1, 1, tpm, 1).err().unwrap();
    assert_eq!((r.kind, r.used), (Kind::Tokens, 1400));
    assert_eq!(r.wait_ns, Some(401 * WINDOW_NS / 1000));
}

#[test]
fn an_unsettled_permit_gives_the_tokens_back() {
    let (l, _) = limiter();
    let tpm = Limits {
        user_tpm: 100,
        ..Default::default()
    };
    drop(l.admit(1, 1, tpm, 100).unwrap());
    assert!(l.admit(1, 1, tpm, 100).is_ok());
}

#[test]
fn too_large_a_request_is_refused_without_a_wait() {
    let (l, _) = limiter();
    let tpm = Limits {
        key_tpm: 100,
        ..Default::default()
    };
    let r = l.admit(1, 1, tpm, 101).err().unwrap();
    assert_eq!(r.wait_ns, None);
    assert_eq!(r.retry_after_secs(), 60);
    assert!(r.to_string().starts_with("Request too large for tokens"));
}

#[test]
fn no_limits_means_no_counting() {
    let (l, _) = limiter();
    for _ in 0..1000 {
        let p = l.admit(1, 1, Limits::default(), 1_000_000).unwrap();
        assert!(p.headers.is_empty());
    }
}

#[test]
fn concurrent_admissions_pass_exactly_the_limit() {
    let (l, _) = limiter();
    let limits = Limits {
        key_rpm: 25,
        user_rpm: 1000,
        ..Default::default()
    };
    let passed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (l, passed) = (l.clone(), passed.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    if l.admit(1, 1, limits, 0).is_ok() {
                        passed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(passed.load(Ordering::SeqCst), 25);
}

#[test]
fn headers_show_the_tighter_limit() {
    let a = Trio {
        limit: 10,
        remaining: 5,
        reset_ns: 1,
    };
    let b = Trio {
        limit: 100,
        remaining: 2,
        reset_ns: 1,
    };
    assert_eq!(Trio::tighter(Some(a), Some(b)), Some(b));
    assert_eq!(Trio::tighter(None, Some(a)), Some(a));
    let (l, _) = limiter();
    let limits = Limits {
        key_rpm: 10,
        user_rpm: 3,
        key_tpm: 50,
        user_tpm: 0,
    };
    let p = l.admit(1, 1, limits, 5).unwrap();
    assert_eq!(p.headers.requests.unwrap().limit, 3);
    assert_eq!(p.headers.requests.unwrap().remaining, 2);
    assert_eq!(p.headers.tokens.unwrap().remaining, 45);
    let names: Vec<String> = p
        .headers
        .pairs()
        .iter()
        .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            "x-ratelimit-limit-requests=3",
            "x-ratelimit-remaining-requests=2",
            "x-ratelimit-reset-requests=20s",
            "x-ratelimit-limit-tokens=50",
            "x-ratelimit-remaining-tokens=45",
            "x-ratelimit-reset-tokens=6s",
        ]
    );
}

#[test]
fn durations_read_like_openais() {
    assert_eq!(duration(0), "0s");
    assert_eq!(duration(120 * 1_000_000), "120ms");
    assert_eq!(duration(1), "1ms", "rounded up, never down to zero");
    assert_eq!(duration(SEC), "1s");
    assert_eq!(duration(1_500 * 1_000_000), "1.5s");
    assert_eq!(duration(360 * SEC), "6m0s");
    assert_eq!(duration(90 * SEC + 250_000_000), "1m30.25s");
    assert_eq!(duration(3600 * SEC), "1h0m0s");
    assert_eq!(retry_after_secs(1), 1);
    assert_eq!(retry_after_secs(0), 1);
    assert_eq!(retry_after_secs(20 * SEC + 1), 21);
}
