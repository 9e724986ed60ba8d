//! Choosing which node holds which piece of an upload, against Sybils and lying directories.
//!
//! Onion identities cost nothing, and a directory may list only nodes it runs. The peer lock of
//! a block breaks as soon as one party holds `k` of its `n` pieces, so placement is chosen by
//! the uploader, block by block, from what *every* configured directory lists:
//!
//! * each block's holders are drawn independently with the operating system's CSPRNG
//!   (`OsRng`), so nobody can predict or steer which nodes get which block;
//! * a node listed by only one directory counts as that directory's: at most `k − 1` pieces of
//!   a block go to nodes vouched for by one directory alone (when two or more directories were
//!   asked), so no single directory — honest or not — chose `k` holders of any block;
//! * nodes this node has observed in listings for longer weigh more (up to
//!   [`AGE_CAP_SECS`]): a burst of fresh identities gets few pieces until it has aged;
//! * less-loaded nodes weigh more, which spreads the pieces of a file over all candidates.
//!
//! Invariants:
//! * the `n` pieces of one block always sit on `n` distinct nodes (a node holding two pieces of
//!   a block would count twice towards the `k` needed to open it early, and losing it would
//!   lose two pieces);
//! * the per-directory cap above holds for every block, also after replacements;
//! * a node that failed a store is not chosen again for this upload; its piece moves to
//!   another node that holds nothing of that block yet.

use kairos_proto::PublicKey;
use rand::rngs::OsRng;
use rand::Rng;

/// Age beyond which a node weighs no more (seven days).
pub const AGE_CAP_SECS: u64 = 7 * 24 * 3600;

/// A candidate node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: PublicKey,
    pub addr: String,
    /// Indices of the directories that listed it (sorted, distinct, never empty).
    pub vouchers: Vec<usize>,
    /// How long this node has observed the candidate in directory listings, seconds.
    pub seen_for: u64,
}

impl Candidate {
    /// The one directory that vouches for it, if only one does.
    fn sole_voucher(&self) -> Option<usize> {
        match self.vouchers.as_slice() {
            [d] => Some(*d),
            _ => None,
        }
    }

    /// Selection weight before load: 1 for a node first seen now, up to 8 after
    /// [`AGE_CAP_SECS`].
    fn age_weight(&self) -> f64 {
        1.0 + 7.0 * (self.seen_for.min(AGE_CAP_SECS) as f64 / AGE_CAP_SECS as f64)
    }
}

/// Placement state of one upload.
pub struct Placement {
    nodes: Vec<Candidate>,
    failed: Vec<bool>,
    load: Vec<u64>,
    n: usize,
    /// Most pieces of one block on nodes vouched for by one directory alone (`None`: no cap,
    /// only one directory was asked).
    sole_cap: Option<usize>,
}

impl Placement {
    /// `nodes` must be distinct. `directories` is how many directories were asked; with two or
    /// more, the nodes one directory alone vouches for get at most `k − 1` pieces per block.
    pub fn new(nodes: Vec<Candidate>, n: usize, k: usize, directories: usize) -> Self {
        let len = nodes.len();
        Placement {
            nodes,
            failed: vec![false; len],
            load: vec![0; len],
            n,
            sole_cap: (directories >= 2).then_some(k.saturating_sub(1)),
        }
    }

    pub fn node(&self, i: usize) -> &Candidate {
        &self.nodes[i]
    }

    /// Nodes not marked failed.
    pub fn healthy(&self) -> usize {
        self.failed.iter().filter(|f| !**f).count()
    }

    /// How many pieces one block can get at most under the rules, with every healthy node
    /// available: the nodes several directories vouch for, plus at most the cap per directory
    /// of the others.
    pub fn capacity(&self) -> usize {
        let Some(cap) = self.sole_cap else {
            return self.healthy();
        };
        let mut per_dir: std::collections::HashMap<usize, usize> = Default::default();
        let mut shared = 0;
        for (i, c) in self.nodes.iter().enumerate() {
            if self.failed[i] {
                continue;
            }
            match c.sole_voucher() {
                Some(d) => *per_dir.entry(d).or_default() += 1,
                None => shared += 1,
            }
        }
        shared + per_dir.values().map(|&v| v.min(cap)).sum::<usize>()
    }

    /// The `n` distinct nodes for the next block, drawn at random under the rules, or `None`
    /// if the healthy nodes cannot satisfy them.
    pub fn for_block(&mut self) -> Option<Vec<usize>> {
        let mut chosen = Vec::with_capacity(self.n);
        for _ in 0..self.n {
            let i = self.draw(&chosen)?;
            chosen.push(i);
        }
        for &i in &chosen {
            self.load[i] += 1;
        }
        Some(chosen)
    }

    /// Marks `node` failed and draws a replacement for it among the nodes the rules allow
    /// next to `holding` (the nodes assigned to the block's pieces, `node` included).
    pub fn replace(&mut self, node: usize, holding: &[usize]) -> Option<usize> {
        self.failed[node] = true;
        self.load[node] = self.load[node].saturating_sub(1);
        let others: Vec<usize> = holding.iter().copied().filter(|&h| h != node).collect();
        let best = self.draw(&others)?;
        self.load[best] += 1;
        Some(best)
    }

    /// Whether node `i` may join a block already held by `holding`.
    fn eligible(&self, i: usize, holding: &[usize]) -> bool {
        if self.failed[i] || holding.contains(&i) {
            return false;
        }
        match (self.sole_cap, self.nodes[i].sole_voucher()) {
            (Some(cap), Some(d)) => {
                let same = holding
                    .iter()
                    .filter(|&&h| self.nodes[h].sole_voucher() == Some(d))
                    .count();
                same < cap
            }
            _ => true,
        }
    }

    /// One eligible node drawn with OsRng, weighted by age and inversely by load.
    fn draw(&self, holding: &[usize]) -> Option<usize> {
        let weights: Vec<(usize, f64)> = (0..self.nodes.len())
            .filter(|&i| self.eligible(i, holding))
            .map(|i| (i, self.nodes[i].age_weight() / (1 + self.load[i]) as f64))
            .collect();
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let last = weights.last()?.0;
        let mut point = OsRng.gen::<f64>() * total;
        for (i, w) in &weights {
            if point < *w {
                return Some(*i);
            }
            point -= w;
        }
        // Rounding left the point past the end: the last node takes it.
        Some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn node(i: u16, vouchers: Vec<usize>, seen_for: u64) -> Candidate {
        let mut key = [0u8; 32];
        key[..2].copy_from_slice(&i.to_le_bytes());
        Candidate {
            key: PublicKey(key),
            addr: format!("127.0.0.1:{}", 1000 + i),
            vouchers,
            seen_for,
        }
    }

    fn nodes(count: u16) -> Vec<Candidate> {
        (0..count).map(|i| node(i, vec![0], AGE_CAP_SECS)).collect()
    }

    #[test]
    fn distinct_per_block_and_spread() {
        let mut p = Placement::new(nodes(9), 6, 4, 1);
        let mut load = [0u32; 9];
        for _ in 0..900 {
            let chosen = p.for_block().unwrap();
            assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), 6);
            for i in chosen {
                load[i] += 1;
            }
        }
        // 600 pieces each on average; load feedback keeps every node close to it.
        assert!(load.iter().all(|&l| (540..=660).contains(&l)), "{load:?}");
        let mut small = Placement::new(nodes(6), 6, 4, 1);
        assert_eq!(small.for_block().unwrap().len(), 6);
        assert!(Placement::new(nodes(5), 6, 4, 1).for_block().is_none());
        // One failure among six leaves nobody to take the piece.
        let chosen = small.for_block().unwrap();
        assert_eq!(small.replace(chosen[0], &chosen), None);
    }

    #[test]
    fn replacement_avoids_holders_and_failed_nodes() {
        let mut p = Placement::new(nodes(8), 6, 4, 1);
        let chosen = p.for_block().unwrap();
        let r = p.replace(chosen[2], &chosen).unwrap();
        assert!(!chosen.contains(&r));
        for _ in 0..50 {
            assert!(!p.for_block().unwrap().contains(&chosen[2]));
        }
        assert_eq!(p.healthy(), 7);
    }

    /// 70 honest nodes listed by both directories, 30 % Sybils listed only by a hostile one:
    /// no block ever gets `k` pieces on the hostile directory's nodes, replacements included.
    #[test]
    fn one_directory_never_chooses_k_holders() {
        let (k, n) = (4, 6);
        let mut all: Vec<Candidate> = (0..70).map(|i| node(i, vec![0, 1], 3600)).collect();
        all.extend((70..100).map(|i| node(i, vec![1], 3600)));
        let sybil = |i: usize| i >= 70;
        let mut p = Placement::new(all, n, k, 2);
        let mut worst = 0;
        for b in 0..10_000 {
            let mut chosen = p.for_block().unwrap();
            // Now and then an honest holder fails (for good): its replacement is drawn under
            // the same rule.
            let pos = chosen.iter().position(|&i| !sybil(i));
            if let Some(pos) = pos.filter(|_| b % 500 == 0) {
                if let Some(r) = p.replace(chosen[pos], &chosen) {
                    chosen[pos] = r;
                }
            }
            assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), n);
            worst = worst.max(chosen.iter().filter(|&&i| sybil(i)).count());
        }
        assert!(
            worst < k,
            "a block had {worst} pieces on one directory's own nodes"
        );
    }

    /// With only hostile-listed and honest-listed nodes (no overlap), each side gets at most
    /// `k − 1` per block, and `n ≤ 2 (k − 1)` is still placeable.
    #[test]
    fn disjoint_listings_split_each_block() {
        let mut all: Vec<Candidate> = (0..10).map(|i| node(i, vec![0], 0)).collect();
        all.extend((10..20).map(|i| node(i, vec![1], 0)));
        let mut p = Placement::new(all, 6, 4, 2);
        assert_eq!(p.capacity(), 6);
        for _ in 0..500 {
            let chosen = p.for_block().unwrap();
            assert_eq!(chosen.iter().filter(|&&i| i < 10).count(), 3);
        }
        // Seven pieces cannot be placed without giving one directory four.
        assert!(Placement::new(p.nodes.clone(), 7, 4, 2)
            .for_block()
            .is_none());
    }

    /// Fresh identities weigh less than nodes seen for a week.
    #[test]
    fn older_nodes_are_preferred() {
        let mut all: Vec<Candidate> = (0..20).map(|i| node(i, vec![0], AGE_CAP_SECS)).collect();
        all.extend((20..40).map(|i| node(i, vec![0], 0)));
        let mut p = Placement::new(all, 6, 4, 1);
        let mut fresh = 0;
        for _ in 0..200 {
            fresh += p.for_block().unwrap().iter().filter(|&&i| i >= 20).count();
        }
        // Equal weights would give half of 1 200; the load feedback keeps it above a sliver.
        assert!(fresh < 500, "fresh nodes got {fresh} of 1200 pieces");
    }
}
