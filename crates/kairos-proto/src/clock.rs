//! Which "now" a server or client trusts: a [`Clock`] is a shared source of Unix seconds.
//!
//! The rest of this crate takes `now` as an argument and never reads a clock; the servers and
//! clients built on it keep one [`Clock`] and read it at their edges. Time-lock, expiry and
//! signed-request decisions go through it, never through the system clock directly, so tests
//! and simulations can move time with a [`ManualClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A notion of "now", in Unix seconds. Cheap to clone; clones read the same source.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock ([`crate::time::now_unix`]).
    pub fn system() -> Self {
        Clock(Arc::new(crate::time::now_unix))
    }

    /// Any function of no arguments returning Unix seconds.
    pub fn from_fn(f: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// Current time, Unix seconds.
    pub fn now(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now = {})", self.now())
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(start: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start)))
    }
    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Clock::from_fn(move || t.load(Ordering::SeqCst))
    }
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, secs: u64) {
        self.0.store(secs, Ordering::SeqCst);
    }
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let m = ManualClock::new(100);
        let c = m.clock();
        assert_eq!(c.now(), 100);
        m.advance(Duration::from_secs(5));
        assert_eq!(c.now(), 105);
        m.set(7);
        assert_eq!(c.now(), 7);
    }
}
