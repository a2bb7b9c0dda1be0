//! Quota-warning de-duplication, in memory (the settle path calls it; no SQLite read).
//!
//! Per subject (a user or a key) and warning kind: a warning fires when the balance is below
//! the threshold and the state is armed; firing disarms it. It is re-armed only when a later
//! balance is at or above the threshold again (a top-up). On top, at most `max_per_window`
//! warnings go out per window; a crossing that finds the window full stays armed and fires at
//! the first check after the window ends, if the balance is still low.
//!
//! Every change is returned as a row for the caller to persist off the request path; the
//! rows are loaded at start, so a restart neither repeats a warning nor resets the count.

use crate::store::notify::WarningRow;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;

/// Whom a balance belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(i64),
    Key(i64),
}

impl Subject {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Subject::User(id) => ("user", id),
            Subject::Key(id) => ("key", id),
        }
    }
    fn from_parts(t: &str, id: i64) -> Option<Subject> {
        match t {
            "user" => Some(Subject::User(id)),
            "key" => Some(Subject::Key(id)),
            _ => None,
        }
    }
}

/// What is being warned about. One kind today; channel failures and others can join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarnKind {
    Quota,
}

impl WarnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarnKind::Quota => "quota",
        }
    }
    fn parse(s: &str) -> Option<WarnKind> {
        match s {
            "quota" => Some(WarnKind::Quota),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    armed: bool,
    window_start: i64,
    sent_in_window: u32,
    last_sent_at: Option<i64>,
}

impl Default for State {
    fn default() -> Self {
        State {
            armed: true,
            window_start: 0,
            sent_in_window: 0,
            last_sent_at: None,
        }
    }
}

/// A user's warning preferences, kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefs {
    /// Own threshold; `None` takes the policy default.
    pub threshold: Option<i64>,
    /// A notification kind is chosen (otherwise nothing is tracked or sent).
    pub active: bool,
}

/// What [`QuotaWarnings::observe`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The owner has no notification kind, or a threshold of 0.
    Off,
    /// At or above the threshold (re-arming if it was disarmed).
    Above,
    /// Below, already warned for this crossing.
    AlreadyWarned,
    /// Below and armed, but this window's warnings are used up.
    Capped,
    /// Send a warning.
    Fire { threshold: i64 },
    /// A warning was due but the notifier's queue was full; the crossing is kept, so a
    /// later charge tries again.
    Dropped,
}

/// The limits applied by [`QuotaWarnings::observe`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default_threshold: i64,
    pub max_per_window: u32,
    pub window_secs: u64,
}

#[derive(Default)]
pub struct QuotaWarnings {
    states: Mutex<HashMap<(Subject, WarnKind), State>>,
    prefs: RwLock<HashMap<i64, Prefs>>,
}

/// A state change to persist, and the state to put back if the warning cannot be queued.
pub struct Change {
    pub row: WarningRow,
    previous: State,
    key: (Subject, WarnKind),
}

impl QuotaWarnings {
    /// Builds the in-memory state from stored rows and per-user preferences.
    pub fn load(rows: Vec<WarningRow>, prefs: impl IntoIterator<Item = (i64, Prefs)>) -> Self {
        let mut states = HashMap::new();
        for r in rows {
            let (Some(s), Some(k)) = (
                Subject::from_parts(&r.subject_type, r.subject_id),
                WarnKind::parse(&r.kind),
            ) else {
                continue;
            };
            states.insert(
                (s, k),
                State {
                    armed: r.armed,
                    window_start: r.window_start,
                    sent_in_window: u32::try_from(r.sent_in_window).unwrap_or(u32::MAX),
                    last_sent_at: r.last_sent_at,
                },
            );
        }
        QuotaWarnings {
            states: Mutex::new(states),
            prefs: RwLock::new(prefs.into_iter().collect()),
        }
    }

    pub fn set_prefs(&self, user_id: i64, p: Prefs) {
        self.prefs.write().insert(user_id, p);
    }

    pub fn prefs(&self, user_id: i64) -> Option<Prefs> {
        self.prefs.read().get(&user_id).copied()
    }

    /// The owner's threshold in force; `None` when they chose no notification kind or a
    /// threshold of 0.
    fn threshold(&self, owner: i64, limits: &Limits) -> Option<i64> {
        let prefs = self.prefs(owner).filter(|p| p.active)?;
        Some(prefs.threshold.unwrap_or(limits.default_threshold)).filter(|t| *t > 0)
    }

    /// Looks at a balance after a charge. `owner` is the user whose settings apply (the key's
    /// owner for a key). Returns the decision and the state change to persist, if any.
    pub fn observe(
        &self,
        subject: Subject,
        owner: i64,
        kind: WarnKind,
        balance: i64,
        limits: Limits,
        now: i64,
    ) -> (Decision, Option<Change>) {
        let Some(threshold) = self.threshold(owner, &limits) else {
            return (Decision::Off, None);
        };
        let key = (subject, kind);
        let mut states = self.states.lock();
        let state = states.entry(key).or_default();
        let before = *state;
        let decision = if balance >= threshold {
            state.armed = true;
            Decision::Above
        } else if !state.armed {
            Decision::AlreadyWarned
        } else {
            let window = i64::try_from(limits.window_secs).unwrap_or(i64::MAX);
            if now.saturating_sub(state.window_start) >= window {
                state.window_start = now;
                state.sent_in_window = 0;
            }
            if state.sent_in_window >= limits.max_per_window {
                Decision::Capped
            } else {
                state.armed = false;
                state.sent_in_window += 1;
                state.last_sent_at = Some(now);
                Decision::Fire { threshold }
            }
        };
        let after = *state;
        drop(states);
        let change = (after != before).then(|| Change {
            row: row(key, &after),
            previous: before,
            key,
        });
        (decision, change)
    }

    /// A balance set by an admin (a top-up). At or above the threshold it re-arms the warning,
    /// as a charge leaving that balance would; below it nothing changes (only charges warn).
    pub fn rearm(
        &self,
        subject: Subject,
        owner: i64,
        kind: WarnKind,
        balance: i64,
        limits: Limits,
        now: i64,
    ) -> Option<Change> {
        if balance < self.threshold(owner, &limits)? {
            return None;
        }
        self.observe(subject, owner, kind, balance, limits, now).1
    }

    /// Puts back the state before `change` (the warning it fired could not be queued, so the
    /// crossing is not spent).
    pub fn undo(&self, change: &Change) {
        self.states.lock().insert(change.key, change.previous);
    }
}

fn row((subject, kind): (Subject, WarnKind), s: &State) -> WarningRow {
    let (t, id) = subject.parts();
    WarningRow {
        subject_type: t.into(),
        subject_id: id,
        kind: kind.as_str().into(),
        armed: s.armed,
        window_start: s.window_start,
        sent_in_window: i64::from(s.sent_in_window),
        last_sent_at: s.last_sent_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        default_threshold: 100,
        max_per_window: 2,
        window_secs: 600,
    };

    fn active(threshold: Option<i64>) -> Prefs {
        Prefs {
            threshold,
            active: true,
        }
    }

    fn obs(w: &QuotaWarnings, balance: i64, now: i64) -> Decision {
        w.observe(Subject::User(1), 1, WarnKind::Quota, balance, LIMITS, now)
            .0
    }

    #[test]
    fn fires_once_per_crossing_and_rearms_after_a_top_up() {
        let w = QuotaWarnings::load(vec![], [(1, active(None))]);
        assert_eq!(obs(&w, 500, 0), Decision::Above);
        assert_eq!(obs(&w, 90, 1), Decision::Fire { threshold: 100 });
        assert_eq!(obs(&w, 80, 2), Decision::AlreadyWarned);
        assert_eq!(obs(&w, 10, 3), Decision::AlreadyWarned);
        assert_eq!(obs(&w, 100, 4), Decision::Above, "at the threshold re-arms");
        assert_eq!(obs(&w, 99, 5), Decision::Fire { threshold: 100 });
    }

    #[test]
    fn the_window_caps_warnings_and_a_capped_crossing_fires_after_it() {
        let w = QuotaWarnings::load(vec![], [(1, active(Some(50)))]);
        for t in [0, 2] {
            assert!(matches!(obs(&w, 10, t), Decision::Fire { threshold: 50 }));
            assert_eq!(obs(&w, 60, t + 1), Decision::Above);
        }
        assert_eq!(obs(&w, 10, 4), Decision::Capped);
        assert_eq!(obs(&w, 10, 599), Decision::Capped);
        assert!(matches!(obs(&w, 10, 600), Decision::Fire { .. }));
    }

    #[test]
    fn nothing_without_a_kind_or_with_threshold_zero() {
        let w = QuotaWarnings::load(
            vec![],
            [(
                1,
                Prefs {
                    threshold: None,
                    active: false,
                },
            )],
        );
        assert_eq!(obs(&w, 0, 0), Decision::Off);
        w.set_prefs(1, active(Some(0)));
        assert_eq!(obs(&w, -5, 0), Decision::Off);
        let none = QuotaWarnings::default();
        assert_eq!(obs(&none, 0, 0), Decision::Off);
    }

    #[test]
    fn keys_are_tracked_apart_from_their_owner() {
        let w = QuotaWarnings::load(vec![], [(1, active(None))]);
        let key = |b| {
            w.observe(Subject::Key(9), 1, WarnKind::Quota, b, LIMITS, 0)
                .0
        };
        assert!(matches!(key(1), Decision::Fire { .. }));
        assert!(matches!(obs(&w, 1, 0), Decision::Fire { .. }));
        assert_eq!(key(1), Decision::AlreadyWarned);
    }

    #[test]
    fn changes_round_trip_through_rows_and_undo_restores() {
        let w = QuotaWarnings::load(vec![], [(1, active(None))]);
        let (d, change) = w.observe(Subject::User(1), 1, WarnKind::Quota, 5, LIMITS, 7);
        assert!(matches!(d, Decision::Fire { .. }));
        let change = change.unwrap();
        assert!(!change.row.armed && change.row.sent_in_window == 1);
        let reloaded = QuotaWarnings::load(vec![change.row.clone()], [(1, active(None))]);
        assert_eq!(obs(&reloaded, 5, 8), Decision::AlreadyWarned);
        w.undo(&change);
        assert!(matches!(obs(&w, 5, 9), Decision::Fire { .. }));
        let (_, none) = w.observe(Subject::User(1), 1, WarnKind::Quota, 5, LIMITS, 10);
        assert!(none.is_none(), "no change, nothing to persist");
    }
}
