//! How long this node has seen each peer in directory listings.
//!
//! Placement prefers nodes observed for longer ([`crate::placement`]); the observation is this
//! node's own, so no directory can make a fresh identity look old. The book lives in memory: a
//! restarted node starts from nothing again (every candidate equally new), which costs
//! preference, never safety.
//!
//! Invariant: the book holds at most [`MAX_PEERS`] entries; when full, entries not seen for
//! [`FORGET_AFTER_SECS`] are dropped first, and new keys are not added while it stays full
//! (old, still-listed peers keep their age).

use kairos_proto::PublicKey;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most peers remembered.
pub const MAX_PEERS: usize = 100_000;
/// A peer not listed for this long is forgotten when room is needed (one day).
pub const FORGET_AFTER_SECS: u64 = 24 * 3600;

/// First and last time each peer was seen listed.
#[derive(Default)]
pub struct PeerBook {
    seen: Mutex<HashMap<PublicKey, (u64, u64)>>,
}

impl PeerBook {
    /// Records that `keys` were listed at `now`.
    pub fn observe<'a>(&self, keys: impl IntoIterator<Item = &'a PublicKey>, now: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if let Some(entry) = seen.get_mut(key) {
                entry.1 = entry.1.max(now);
                continue;
            }
            if seen.len() >= MAX_PEERS {
                seen.retain(|_, (_, last)| now.saturating_sub(*last) < FORGET_AFTER_SECS);
                if seen.len() >= MAX_PEERS {
                    continue;
                }
            }
            seen.insert(*key, (now, now));
        }
    }

    /// Seconds since `key` was first seen (0 if never).
    pub fn seen_for(&self, key: &PublicKey, now: u64) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(key)
            .map_or(0, |(first, _)| now.saturating_sub(*first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_from_first_sighting_and_clock_going_back_is_harmless() {
        let book = PeerBook::default();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        book.observe([&a], 1000);
        book.observe([&a, &b], 5000);
        assert_eq!(book.seen_for(&a, 6000), 5000);
        assert_eq!(book.seen_for(&b, 6000), 1000);
        assert_eq!(book.seen_for(&PublicKey([3; 32]), 6000), 0);
        assert_eq!(book.seen_for(&a, 10), 0);
    }

    #[test]
    fn full_book_forgets_stale_peers_first() {
        let book = PeerBook::default();
        let key = |i: u32| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            PublicKey(k)
        };
        let old: Vec<_> = (0..MAX_PEERS as u32).map(key).collect();
        book.observe(&old, 0);
        let fresh = key(u32::MAX);
        // Still full of peers seen recently: the newcomer waits.
        book.observe([&fresh], 100);
        assert_eq!(book.seen_for(&fresh, 200), 0);
        // A day later the stale ones make room.
        book.observe([&fresh], FORGET_AFTER_SECS + 1);
        assert_eq!(book.seen_for(&fresh, FORGET_AFTER_SECS + 11), 10);
    }
}
