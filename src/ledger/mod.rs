//! In-memory balances and reservations: the one place money moves.
//!
//! Each user and each limited key has an [`Account`] whose `available` is the committed balance
//! minus what in-flight requests have reserved. Reserving and settling are single
//! compare-and-swap loops, so no interleaving of requests can take `available` below zero, and
//! the request path never waits on SQLite. The database stays the record: a settle applies the
//! charge here and then commits the same charge with its log row in one writer transaction;
//! reservations live only in memory, so a crash leaves none behind.
//!
//! Rules that keep memory and database in step (see `catalog`):
//! - an account is created from the database balance when its user or key is loaded, and then
//!   only changed through this module;
//! - an admin balance change is applied as a difference (new − old, read in the same writer
//!   transaction that writes the new value);
//! - a charge is applied here before its transaction is queued, and given back if that
//!   transaction fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A balance that may be reserved against.
#[derive(Debug)]
pub struct Account {
    available: AtomicI64,
    /// The balance as committed (or about to be): `available` plus outstanding reservations.
    /// Quota warnings read it, so an in-flight estimate does not look like spending.
    committed: AtomicI64,
}

impl Account {
    pub fn new(balance: i64) -> Arc<Account> {
        Arc::new(Account {
            available: AtomicI64::new(balance),
            committed: AtomicI64::new(balance),
        })
    }

    /// Committed balance minus outstanding reservations.
    pub fn available(&self) -> i64 {
        self.available.load(Ordering::Acquire)
    }

    /// The balance once every settled charge is committed, ignoring reservations.
    pub fn balance(&self) -> i64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Takes as much of `max` as is available, and at least `min`; returns what was taken, or
    /// `None` (taking nothing) when not even `min` is available.
    fn try_take_up_to(&self, min: i64, max: i64) -> Option<i64> {
        let mut taken = 0;
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                taken = max.min(cur);
                (taken >= min).then_some(cur - taken)
            })
            .ok()
            .map(|_| taken)
    }

    /// Gives `held` back and takes up to `want` in one step; returns what was taken. It takes
    /// less than `want` only when the balance (with `held` returned) cannot cover it.
    fn settle(&self, held: i64, want: i64) -> i64 {
        let mut taken = 0;
        let _ = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let room = (cur + held).max(0);
                taken = want.min(room);
                Some(cur + held - taken)
            });
        self.committed.fetch_sub(taken, Ordering::AcqRel);
        taken
    }

    /// Applies an admin's balance change (new − old), or gives back a charge.
    pub fn adjust(&self, delta: i64) {
        self.available.fetch_add(delta, Ordering::AcqRel);
        self.committed.fetch_add(delta, Ordering::AcqRel);
    }

    /// Returns a reservation that was never charged.
    fn unhold(&self, amount: i64) {
        self.available.fetch_add(amount, Ordering::AcqRel);
    }
}

/// Quota held for one request from its key (when limited) and its user.
#[derive(Debug)]
pub struct Reservation {
    key: Option<Arc<Account>>,
    user: Arc<Account>,
    amount: i64,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    #[error("the API key's remaining quota is too low for this request")]
    KeyShort,
    #[error("the account's quota is too low for this request")]
    UserShort,
}

/// Reserves `amount` from the key (if limited) and the user, both or neither.
pub fn reserve(
    key: Option<&Arc<Account>>,
    user: &Arc<Account>,
    amount: i64,
) -> Result<Reservation, ReserveError> {
    reserve_up_to(key, user, amount, amount)
}

/// Reserves as much of `max` as both the key (if limited) and the user have, and at least
/// `min`; the same amount from both, or nothing. Each account is taken from in one atomic
/// step, so concurrent calls can never reserve more than is there between them.
pub fn reserve_up_to(
    key: Option<&Arc<Account>>,
    user: &Arc<Account>,
    min: i64,
    max: i64,
) -> Result<Reservation, ReserveError> {
    let min = min.max(0);
    let max = max.max(min);
    let from_key = match key {
        Some(k) => k.try_take_up_to(min, max).ok_or(ReserveError::KeyShort)?,
        None => max,
    };
    let Some(amount) = user.try_take_up_to(min, from_key) else {
        if let Some(k) = key {
            k.unhold(from_key);
        }
        return Err(ReserveError::UserShort);
    };
    if let Some(k) = key {
        // The user had less than the key: the key holds only what the user does.
        k.unhold(from_key - amount);
    }
    Ok(Reservation {
        key: key.cloned(),
        user: user.clone(),
        amount,
        done: false,
    })
}

/// What a settled request was charged; `capped` when the balance could not cover the full cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub quota: i64,
    pub capped: bool,
}

impl Reservation {
    pub fn amount(&self) -> i64 {
        self.amount
    }

    /// Gives back all but `amount` (no-op when it holds no more than that).
    pub fn shrink_to(&mut self, amount: i64) {
        let back = self.amount - amount.max(0);
        if back > 0 {
            if let Some(k) = &self.key {
                k.unhold(back);
            }
            self.user.unhold(back);
            self.amount -= back;
        }
    }

    /// Releases the reservation and charges `cost` (capped at what the key and user can pay).
    /// The same amount is taken from both.
    pub fn settle(mut self, cost: i64) -> Settled {
        let cost = cost.max(0);
        self.done = true;
        let from_key = match &self.key {
            Some(k) => k.settle(self.amount, cost),
            None => cost,
        };
        let from_user = self.user.settle(self.amount, from_key);
        if let Some(k) = &self.key {
            // The user could pay less than the key: return the difference to the key.
            k.adjust(from_key - from_user);
        }
        Settled {
            key: self.key.take(),
            user: self.user.clone(),
            charge: Charge {
                quota: from_user,
                capped: from_user < cost,
            },
        }
    }

    /// Releases the reservation with no charge (upstream failed).
    pub fn release(self) {
        drop(self.settle(0));
    }
}

impl Drop for Reservation {
    /// A reservation dropped without settling (a panic, a cancelled task) is released, so quota
    /// is never stranded.
    fn drop(&mut self) {
        if !self.done {
            if let Some(k) = &self.key {
                k.unhold(self.amount);
            }
            self.user.unhold(self.amount);
        }
    }
}

/// A charge applied in memory, waiting for its transaction. If the commit fails, `refund`
/// gives it back so memory matches the database again.
#[derive(Debug)]
pub struct Settled {
    key: Option<Arc<Account>>,
    user: Arc<Account>,
    pub charge: Charge,
}

impl Settled {
    pub fn refund(self) {
        if let Some(k) = &self.key {
            k.adjust(self.charge.quota);
        }
        self.user.adjust(self.charge.quota);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_all_or_nothing() {
        let key = Account::new(100);
        let user = Account::new(50);
        assert_eq!(
            reserve(Some(&key), &user, 60).unwrap_err(),
            ReserveError::UserShort
        );
        assert_eq!(key.available(), 100, "the key's part is returned");
        assert_eq!(
            reserve(Some(&key), &user, 101).unwrap_err(),
            ReserveError::KeyShort
        );
        let r = reserve(Some(&key), &user, 50).unwrap();
        assert_eq!((key.available(), user.available()), (50, 0));
        let s = r.settle(30);
        assert_eq!(
            s.charge,
            Charge {
                quota: 30,
                capped: false
            }
        );
        assert_eq!((key.available(), user.available()), (70, 20));
        assert_eq!((key.balance(), user.balance()), (70, 20));
    }

    #[test]
    fn balance_ignores_reservations_and_follows_charges() {
        let user = Account::new(100);
        let r = reserve(None, &user, 60).unwrap();
        assert_eq!((user.available(), user.balance()), (40, 100));
        let other = reserve(None, &user, 40).unwrap();
        drop(other);
        assert_eq!((user.available(), user.balance()), (40, 100));
        let s = r.settle(25);
        assert_eq!((user.available(), user.balance()), (75, 75));
        s.refund();
        assert_eq!((user.available(), user.balance()), (100, 100));
        user.adjust(-30);
        assert_eq!((user.available(), user.balance()), (70, 70));
    }

    #[test]
    fn settle_above_the_reservation_is_capped_at_the_balance() {
        let user = Account::new(100);
        let r = reserve(None, &user, 40).unwrap();
        let s = r.settle(500);
        assert_eq!(
            s.charge,
            Charge {
                quota: 100,
                capped: true
            }
        );
        assert_eq!(user.available(), 0);
    }

    #[test]
    fn dropped_reservation_is_released() {
        let user = Account::new(10);
        {
            let _r = reserve(None, &user, 10).unwrap();
            assert_eq!(user.available(), 0);
        }
        assert_eq!(user.available(), 10);
    }

    #[test]
    fn refund_restores_a_failed_commit() {
        let user = Account::new(10);
        let s = reserve(None, &user, 10).unwrap().settle(7);
        assert_eq!(user.available(), 3);
        s.refund();
        assert_eq!(user.available(), 10);
    }

    #[test]
    fn concurrent_reservations_never_overdraw() {
        let user = Account::new(1000);
        let admitted = std::sync::atomic::AtomicI64::new(0);
        std::thread::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    if let Ok(r) = reserve(None, &user, 100) {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        std::mem::forget(r.settle(100));
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::SeqCst), 10);
        assert_eq!(user.available(), 0);
    }

    #[test]
    fn reserve_up_to_takes_what_both_have_and_shrinks() {
        let key = Account::new(100);
        let user = Account::new(60);
        let mut r = reserve_up_to(Some(&key), &user, 10, 1_000).unwrap();
        assert_eq!(r.amount(), 60, "the user's balance bounds it");
        assert_eq!((key.available(), user.available()), (40, 0));
        r.shrink_to(25);
        assert_eq!((key.available(), user.available()), (75, 35));
        r.shrink_to(30);
        assert_eq!(r.amount(), 25, "shrinking never grows it");
        assert_eq!(
            reserve_up_to(Some(&key), &user, 36, 50).unwrap_err(),
            ReserveError::UserShort
        );
        assert_eq!(key.available(), 75, "nothing taken on a refusal");
        assert_eq!(
            reserve_up_to(Some(&key), &user, 76, 80).unwrap_err(),
            ReserveError::KeyShort
        );
        let s = r.settle(20);
        assert_eq!(s.charge.quota, 20);
        assert_eq!((key.available(), user.available()), (80, 40));
    }

    #[test]
    fn concurrent_reserve_up_to_never_overdraws() {
        let user = Account::new(1000);
        let taken = std::sync::atomic::AtomicI64::new(0);
        std::thread::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    if let Ok(r) = reserve_up_to(None, &user, 7, 150) {
                        let amount = r.amount();
                        taken.fetch_add(amount, Ordering::SeqCst);
                        std::mem::forget(r.settle(amount));
                    }
                });
            }
        });
        assert_eq!(taken.load(Ordering::SeqCst) + user.available(), 1000);
        assert!(user.available() < 7, "the balance was used up");
    }

    #[test]
    fn lowered_balance_caps_in_flight_charges_at_zero() {
        let user = Account::new(1000);
        let r = reserve(None, &user, 500).unwrap();
        user.adjust(100 - 1000); // an admin sets the balance to 100 while the request runs
        let s = r.settle(500);
        assert_eq!(s.charge.quota, 100);
        assert_eq!(user.available(), 0);
    }
}
