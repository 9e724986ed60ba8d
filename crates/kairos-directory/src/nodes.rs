//! In-memory index of the stored node records, for fast random sampling.
//!
//! Invariant: after every committed write the writer thread applies the same change here, so the
//! index holds exactly the records of the `nodes` table (rebuilt from it at start). Entries can
//! be past their TTL until the next sweep; readers filter on `expires_at` so an expired record
//! is never listed. With `require_reach`, an entry is listed only while this directory has
//! reached its key at the entry's address ([`crate::reach`]); that knowledge lives only in
//! memory and is forgotten with the entry.

use data_encoding::BASE64;
use indexmap::IndexMap;
use kairos_proto::{PublicKey, SignedNodeRecord};
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One node as listed by `GET /v1/nodes`.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    pub key: PublicKey,
    pub addr: String,
    pub capacity: u64,
    pub timestamp: u64,
    pub expires_at: u64,
    /// The signed record, base64: clients verify it themselves.
    pub record_b64: String,
}

impl NodeEntry {
    pub fn new(rec: &SignedNodeRecord, ttl: u64) -> Self {
        let r = rec.record();
        NodeEntry {
            key: r.key,
            addr: r.addr.clone(),
            capacity: r.capacity,
            timestamp: r.timestamp,
            expires_at: r.timestamp.saturating_add(ttl),
            record_b64: BASE64.encode(rec.as_bytes()),
        }
    }
}

pub struct NodeIndex {
    map: RwLock<IndexMap<PublicKey, Arc<NodeEntry>>>,
    /// Where and when each key was last reached (liveness proof).
    reached: RwLock<HashMap<PublicKey, (String, u64)>>,
    require_reach: bool,
}

impl NodeIndex {
    /// An empty index; with `require_reach`, only reached entries are sampled.
    pub fn new(require_reach: bool) -> Self {
        NodeIndex {
            map: RwLock::default(),
            reached: RwLock::default(),
            require_reach,
        }
    }

    /// Notes that `key` proved at `now` that it answers at `addr` — if the index holds `key`
    /// (a probe that ends after its record was swept leaves nothing behind).
    pub fn mark_reached(&self, key: PublicKey, addr: &str, now: u64) {
        let map = self.read();
        if map.contains_key(&key) {
            let mut reached = self.reached.write().unwrap_or_else(|p| p.into_inner());
            reached.insert(key, (addr.to_owned(), now));
        }
    }

    /// Whether `key` was reached at `addr` at or after `since`.
    pub fn reached_since(&self, key: &PublicKey, addr: &str, since: u64) -> bool {
        let reached = self.reached.read().unwrap_or_else(|p| p.into_inner());
        reached
            .get(key)
            .is_some_and(|(a, at)| a == addr && *at >= since)
    }

    /// Entries that may not be listed yet for want of a liveness proof (key, address).
    pub fn unreached(&self) -> Vec<(PublicKey, String)> {
        // Lock order everywhere: the map, then `reached`.
        let map = self.read();
        let reached = self.reached.read().unwrap_or_else(|p| p.into_inner());
        (map.values())
            .filter(|e| reached.get(&e.key).is_none_or(|(a, _)| *a != e.addr))
            .map(|e| (e.key, e.addr.clone()))
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, IndexMap<PublicKey, Arc<NodeEntry>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, IndexMap<PublicKey, Arc<NodeEntry>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts or replaces the entry for its key if it is newer than the one held.
    pub fn upsert(&self, entry: NodeEntry) {
        let mut map = self.write();
        match map.get(&entry.key) {
            Some(old) if old.timestamp >= entry.timestamp => {}
            _ => {
                map.insert(entry.key, Arc::new(entry));
            }
        }
    }

    /// Removes `key`'s entry if it is the one with timestamp `ts` (or older).
    pub fn remove(&self, key: &PublicKey, ts: u64) {
        let mut map = self.write();
        if map.get(key).is_some_and(|e| e.timestamp <= ts) {
            map.swap_remove(key);
            (self.reached.write().unwrap_or_else(|p| p.into_inner())).remove(key);
        }
    }

    /// Entries held (live or awaiting the sweep).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Timestamp of the record held for `key`, if any.
    pub fn timestamp(&self, key: &PublicKey) -> Option<u64> {
        self.read().get(key).map(|e| e.timestamp)
    }

    /// The entry held for `key` (live or awaiting the sweep).
    pub fn get(&self, key: &PublicKey) -> Option<Arc<NodeEntry>> {
        self.read().get(key).cloned()
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.read().contains_key(key)
    }

    /// Up to `count` distinct live entries (`expires_at > now`, reached at their address when
    /// required), uniformly at random, never `exclude`.
    pub fn sample(
        &self,
        count: usize,
        exclude: Option<&PublicKey>,
        now: u64,
    ) -> Vec<Arc<NodeEntry>> {
        let map = self.read();
        let reached = self.reached.read().unwrap_or_else(|p| p.into_inner());
        let ok = |e: &Arc<NodeEntry>| {
            e.expires_at > now
                && Some(&e.key) != exclude
                && (!self.require_reach || reached.get(&e.key).is_some_and(|(a, _)| *a == e.addr))
        };
        let mut rng = rand::thread_rng();
        let len = map.len();
        if count == 0 || len == 0 {
            return Vec::new();
        }
        // Large index: draw a few more random positions than needed and filter; fall back to a
        // full scan only if too many of them were expired.
        if len > 4 * count + 64 {
            let want = (count + count / 2 + 8).min(len);
            let mut out: Vec<_> = rand::seq::index::sample(&mut rng, len, want)
                .into_iter()
                .filter_map(|i| map.get_index(i).map(|(_, e)| e))
                .filter(|e| ok(e))
                .take(count)
                .cloned()
                .collect();
            if out.len() == count {
                out.shuffle(&mut rng);
                return out;
            }
        }
        let mut all: Vec<_> = map.values().filter(|e| ok(e)).cloned().collect();
        let (chosen, _) = all.partial_shuffle(&mut rng, count);
        chosen.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::{Identity, NodeRecord};
    use std::collections::HashSet;

    fn entry(ts: u64) -> NodeEntry {
        let id = Identity::generate();
        let rec = NodeRecord::new(&id, "127.0.0.1:9".into(), 1, ts)
            .sign(&id)
            .unwrap();
        NodeEntry::new(&rec, 10)
    }

    #[test]
    fn samples_live_distinct_and_excludes() {
        let idx = NodeIndex::new(false);
        let mut keys = Vec::new();
        for i in 0..500 {
            // every 5th entry is expired at now = 100
            let e = entry(if i % 5 == 0 { 50 } else { 95 });
            keys.push(e.key);
            idx.upsert(e);
        }
        for count in [1, 10, 100, 399, 400, 1000] {
            let s = idx.sample(count, Some(&keys[1]), 100);
            assert_eq!(s.len(), count.min(399));
            let distinct: HashSet<_> = s.iter().map(|e| e.key).collect();
            assert_eq!(distinct.len(), s.len());
            assert!(s.iter().all(|e| e.expires_at > 100 && e.key != keys[1]));
        }
    }

    #[test]
    fn with_require_reach_only_reached_addresses_are_sampled() {
        let idx = NodeIndex::new(true);
        let e = entry(95);
        let key = e.key;
        idx.upsert(e);
        assert!(idx.sample(5, None, 100).is_empty());
        assert_eq!(idx.unreached(), vec![(key, "127.0.0.1:9".to_owned())]);
        // Reached at another address: still not listed.
        idx.mark_reached(key, "127.0.0.1:10", 100);
        assert!(idx.sample(5, None, 100).is_empty());
        idx.mark_reached(key, "127.0.0.1:9", 100);
        assert_eq!(idx.sample(5, None, 100).len(), 1);
        assert!(idx.unreached().is_empty());
        assert!(idx.reached_since(&key, "127.0.0.1:9", 100));
        assert!(!idx.reached_since(&key, "127.0.0.1:9", 101));
        // Forgotten with the entry.
        idx.remove(&key, 95);
        assert!(!idx.reached_since(&key, "127.0.0.1:9", 0));
    }

    #[test]
    fn upsert_keeps_newest_and_remove_checks_timestamp() {
        let idx = NodeIndex::new(false);
        let e = entry(10);
        let key = e.key;
        let mut older = e.clone();
        older.timestamp = 5;
        idx.upsert(e);
        idx.upsert(older);
        assert_eq!(idx.sample(1, None, 0)[0].timestamp, 10);
        idx.remove(&key, 9);
        assert!(idx.contains(&key));
        idx.remove(&key, 10);
        assert_eq!(idx.len(), 0);
    }
}
