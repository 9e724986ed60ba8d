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
//! * a directory whose own nodes mostly fail (at least [`DISCREDIT_MIN`] of them, and more than
//!   twice as many as stored a piece) is *discredited* for the upload: it listed dead or fake
//!   nodes (honest directories list only nodes they reached), so its sole nodes are dropped and
//!   it no longer counts as a directory for the cap — with one credible directory left, that
//!   one's nodes may take every piece, as when only one directory is configured. Never the last
//!   credible directory. A directory cannot discredit another: the uploader reaches every node
//!   itself.
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

/// Failures of a directory's own nodes before it can be discredited.
pub const DISCREDIT_MIN: usize = 8;

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
    pub(crate) fn sole_voucher(&self) -> Option<usize> {
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
    k: usize,
    /// Most pieces of one block on nodes vouched for by one directory alone (`None`: no cap,
    /// only one credible directory).
    sole_cap: Option<usize>,
    /// Directories that answered and are not discredited.
    credible: usize,
    /// Per directory: stores to its sole nodes that failed, that succeeded; discredited.
    record: std::collections::HashMap<usize, Record>,
}

/// How one directory's own nodes did in this upload.
#[derive(Default)]
struct Record {
    failed: usize,
    stored: usize,
    discredited: bool,
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
            k,
            sole_cap: (directories >= 2).then_some(k.saturating_sub(1)),
            credible: directories,
            record: Default::default(),
        }
    }

    /// Notes that `node` stored a piece.
    pub fn stored(&mut self, node: usize) {
        if let Some(d) = self.nodes[node].sole_voucher() {
            self.record.entry(d).or_default().stored += 1;
        }
    }

    /// Notes that `node` failed a store; discredits its directory if its own nodes mostly
    /// fail. Returns the directory discredited now, if any.
    fn note_failure(&mut self, node: usize) -> Option<usize> {
        let d = self.nodes[node].sole_voucher()?;
        let credible = self.credible;
        let r = self.record.entry(d).or_default();
        r.failed += 1;
        if r.discredited || credible < 2 || r.failed < DISCREDIT_MIN || r.failed <= 2 * r.stored {
            return None;
        }
        r.discredited = true;
        for (i, c) in self.nodes.iter().enumerate() {
            if c.sole_voucher() == Some(d) {
                self.failed[i] = true;
            }
        }
        self.credible -= 1;
        self.sole_cap = (self.credible >= 2).then_some(self.k.saturating_sub(1));
        Some(d)
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
    /// next to `holding` (the nodes assigned to the block's pieces, `node` included). Also
    /// returns the directory this failure discredited, if any.
    pub fn replace(&mut self, node: usize, holding: &[usize]) -> (Option<usize>, Option<usize>) {
        self.failed[node] = true;
        self.load[node] = self.load[node].saturating_sub(1);
        let discredited = self.note_failure(node);
        let others: Vec<usize> = holding.iter().copied().filter(|&h| h != node).collect();
        let best = self.draw(&others);
        if let Some(b) = best {
            self.load[b] += 1;
        }
        (best, discredited)
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
        assert_eq!(small.replace(chosen[0], &chosen).0, None);
    }

    #[test]
    fn replacement_avoids_holders_and_failed_nodes() {
        let mut p = Placement::new(nodes(8), 6, 4, 1);
        let chosen = p.for_block().unwrap();
        let r = p.replace(chosen[2], &chosen).0.unwrap();
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
                if let Some(r) = p.replace(chosen[pos], &chosen).0 {
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

    /// A directory listing 250 dead nodes next to another listing 6 live ones: once its nodes
    /// mostly fail it is discredited, its nodes are never drawn again, and the live directory's
    /// nodes may take a whole block. A directory whose nodes mostly work is never discredited.
    #[test]
    fn a_directory_of_dead_nodes_is_discredited() {
        let mut all: Vec<Candidate> = (0..6).map(|i| node(i, vec![0], 0)).collect();
        all.extend((6..256).map(|i| node(i, vec![1], 0)));
        let dead = |i: usize| i >= 6;
        let mut p = Placement::new(all, 6, 4, 2);
        let mut discredited = Vec::new();
        for _ in 0..20 {
            let Some(mut chosen) = p.for_block() else {
                panic!("no block placeable")
            };
            for pos in 0..6 {
                while dead(chosen[pos]) {
                    let (next, d) = p.replace(chosen[pos], &chosen);
                    discredited.extend(d);
                    chosen[pos] = next.expect("a live node takes the piece");
                }
                p.stored(chosen[pos]);
            }
        }
        assert_eq!(discredited, vec![1]);
        assert!(p.for_block().unwrap().iter().all(|&i| !dead(i)));
        // Directory 0's nodes work: failures of a few of them discredit nothing.
        let mut q = Placement::new(
            nodes(6)
                .into_iter()
                .chain((6..12).map(|i| node(i, vec![1], 0)))
                .collect(),
            6,
            4,
            2,
        );
        for i in 0..6 {
            q.stored(i);
            q.stored(i);
        }
        for i in 0..5 {
            assert_eq!(q.replace(i, &[i]).1, None);
        }
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
