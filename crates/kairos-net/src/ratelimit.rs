//! A token-bucket rate limiter keyed by identity or connection.
//!
//! Bounded memory: at most `max_keys` buckets; when full, idle (full) buckets are dropped first
//! and, if none are idle, the new key is refused — a flood of fresh keys cannot evict the
//! buckets of keys that are being limited.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// `burst` requests at once, refilled at `per_second`.
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_second: f64, burst: f64, max_keys: usize) -> Self {
        RateLimiter {
            per_second,
            burst,
            max_keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let (rate, burst) = (self.per_second, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
            if buckets.len() >= self.max_keys {
                return Err(1);
            }
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.per_second).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_and_refills() {
        let rl = RateLimiter::new(10.0, 3.0, 2);
        let t0 = Instant::now();
        for _ in 0..3 {
            rl.check_at(&1, t0).unwrap();
        }
        assert!(rl.check_at(&1, t0).is_err());
        rl.check_at(&1, t0 + Duration::from_millis(150)).unwrap();
        rl.check_at(&2, t0).unwrap();
        // Table full of busy keys: a new key is refused instead of evicting them.
        assert!(rl.check_at(&3, t0).is_err());
        // Once key 2's bucket is full again it is idle and can be dropped.
        rl.check_at(&3, t0 + Duration::from_secs(5)).unwrap();
    }
}
