//! Slowing down password guessing: a back-off that grows with recent failed sign-ins.
//!
//! Failures are counted per client address and per (user, address). Past a few free failures,
//! a key waits a back-off that doubles with each further failure, up to a bound; an attempt
//! during the wait is refused without looking at the password, so a guesser gets at most one
//! try per back-off. Nothing is counted per user alone: an attacker guessing alice's password
//! from one address slows only that address, and alice signs in from hers at once (a slow-down
//! for the guesser, never a lock-out for the user). A success clears its (user, address) key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How failed sign-ins are slowed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Failures of one user from one address before the first wait (typos are free).
    pub free_per_user: u32,
    /// Failures from one address, whatever the users, before the first wait.
    pub free_per_address: u32,
    /// The first wait; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            free_per_user: 3,
            free_per_address: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

/// Whose failures are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// Every sign-in from one address.
    Address(Option<IpAddr>),
    /// One user's sign-ins from one address.
    UserAt(String, Option<IpAddr>),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt is looked at before this.
    until: Instant,
}

/// Prune forgotten keys once every this many recorded failures (amortised, not per call).
const PRUNE_EVERY: u32 = 256;

/// Failed sign-ins by key, and the waits they earned.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    policy: Backoff,
    failures: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_key: HashMap<Key, Failures>,
    since_prune: u32,
}

impl Throttle {
    pub(crate) fn new(policy: Backoff) -> Self {
        Self { policy, failures: Mutex::default() }
    }

    /// `Err(wait)` while any of `keys` must still wait before an attempt is looked at.
    pub(crate) fn check(&self, keys: &[Key], now: Instant) -> Result<(), Duration> {
        let table = self.lock();
        let wait = keys
            .iter()
            .filter_map(|k| table.by_key.get(k))
            .map(|f| f.until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Records a failed attempt under every key.
    pub(crate) fn failed(&self, keys: &[Key], now: Instant) {
        let mut table = self.lock();
        for key in keys {
            let free = match key {
                Key::Address(_) => self.policy.free_per_address,
                Key::UserAt(..) => self.policy.free_per_user,
            };
            let forget = self.policy.forget_after;
            let entry = table.by_key.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                until: now,
            });
            if now.saturating_duration_since(entry.last) > forget {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            entry.until = now + self.wait_after(entry.count, free);
        }
        table.since_prune += 1;
        if table.since_prune >= PRUNE_EVERY {
            table.since_prune = 0;
            let forget = self.policy.forget_after;
            table.by_key.retain(|_, f| now.saturating_duration_since(f.last) <= forget);
        }
    }

    /// Clears `key` after a success.
    pub(crate) fn succeeded(&self, key: &Key) {
        self.lock().by_key.remove(key);
    }

    /// The wait after the `count`th failure, when `free` are free: base, 2 × base, … ≤ max.
    fn wait_after(&self, count: u32, free: u32) -> Duration {
        let Some(over) = count.checked_sub(free).filter(|over| *over > 0) else {
            return Duration::ZERO;
        };
        let doublings = (over - 1).min(20);
        self.policy.base.saturating_mul(1 << doublings).min(self.policy.max)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.lock().by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, ip]))
    }

    fn policy() -> Backoff {
        Backoff {
            free_per_user: 2,
            free_per_address: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            forget_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn waits_start_after_the_free_failures_double_and_stop_at_the_bound() {
        let t = Throttle::new(policy());
        let key = [Key::UserAt("alice".into(), at(1))];
        let now = Instant::now();
        let mut waits = Vec::new();
        for i in 0..7 {
            let then = now + Duration::from_secs(100 * i);
            t.failed(&key, then);
            waits.push(t.check(&key, then).err().unwrap_or_default().as_secs());
        }
        assert_eq!(waits, [0, 0, 0, 0, 0, 0, 0], "failures 100 s apart are forgotten");
        let t = Throttle::new(policy());
        let mut waits = Vec::new();
        for _ in 0..7 {
            t.failed(&key, now);
            waits.push(t.check(&key, now).err().unwrap_or_default().as_secs());
        }
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 8]);
    }

    #[test]
    fn a_failure_exactly_forget_after_the_last_one_still_counts() {
        let t = Throttle::new(policy());
        let key = [Key::UserAt("alice".into(), at(1))];
        let step = policy().forget_after;
        let start = Instant::now();
        for i in 0..3 {
            t.failed(&key, start + step * i);
        }
        let third = start + step * 2;
        assert_eq!(t.check(&key, third), Err(Duration::from_secs(1)), "past the two free ones");
    }

    #[test]
    fn a_wait_ends_and_the_right_password_then_counts() {
        let t = Throttle::new(policy());
        let key = [Key::UserAt("alice".into(), at(1))];
        let now = Instant::now();
        for _ in 0..4 {
            t.failed(&key, now);
        }
        assert_eq!(t.check(&key, now), Err(Duration::from_secs(2)));
        assert_eq!(t.check(&key, now + Duration::from_secs(2)), Ok(()));
        t.succeeded(&key[0]);
        assert_eq!(t.check(&key, now), Ok(()));
    }

    #[test]
    fn failures_from_one_address_never_slow_another() {
        let t = Throttle::new(policy());
        let now = Instant::now();
        let attacker = [Key::Address(at(9)), Key::UserAt("alice".into(), at(9))];
        for _ in 0..50 {
            t.failed(&attacker, now);
        }
        assert!(t.check(&attacker, now).is_err());
        let alice = [Key::Address(at(1)), Key::UserAt("alice".into(), at(1))];
        assert_eq!(t.check(&alice, now), Ok(()));
    }

    #[test]
    fn an_address_spraying_many_users_is_slowed_as_one() {
        let t = Throttle::new(policy());
        let now = Instant::now();
        for user in 0..6 {
            let keys = [Key::Address(at(9)), Key::UserAt(format!("u{user}"), at(9))];
            t.failed(&keys, now);
        }
        let next = [Key::Address(at(9)), Key::UserAt("fresh".into(), at(9))];
        assert_eq!(t.check(&next, now), Err(Duration::from_secs(1)));
    }

    #[test]
    fn forgotten_keys_stay_until_the_next_prune() {
        let t = Throttle::new(policy());
        let now = Instant::now();
        t.failed(&[Key::UserAt("old".into(), at(1))], now);
        t.failed(&[Key::UserAt("new".into(), at(1))], now + Duration::from_secs(61));
        assert_eq!(t.keys(), 2, "no scan before the 256th failure");
    }

    #[test]
    fn forgotten_keys_are_pruned_without_a_scan_per_call() {
        let t = Throttle::new(policy());
        let now = Instant::now();
        for user in 0..PRUNE_EVERY - 1 {
            t.failed(&[Key::UserAt(format!("u{user}"), at(1))], now);
        }
        assert_eq!(t.keys(), (PRUNE_EVERY - 1) as usize);
        let later = now + Duration::from_secs(61);
        t.failed(&[Key::UserAt("last".into(), at(1))], later);
        assert_eq!(t.keys(), 1, "the 256th failure prunes the forgotten keys");
    }
}
