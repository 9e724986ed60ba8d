//! Choosing which node holds which piece of an upload.
//!
//! Invariants:
//! * the `n` pieces of one block always sit on `n` distinct nodes (a node holding two pieces of
//!   a block would count twice towards the `k` needed to open it early, and losing it would
//!   lose two pieces);
//! * blocks are spread evenly over all known nodes: block `b` starts where block `b − 1` ended
//!   in a shuffled ring, so every node gets `≈ blocks × n / nodes` pieces;
//! * a node that failed a store is not chosen again for this upload; its piece moves to the
//!   least-loaded node that holds nothing of that block yet.

use kairos_proto::PublicKey;
use rand::seq::SliceRandom;

/// A candidate node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: PublicKey,
    pub addr: String,
}

/// Placement state of one upload.
pub struct Placement {
    nodes: Vec<Candidate>,
    failed: Vec<bool>,
    load: Vec<u64>,
    n: usize,
}

impl Placement {
    /// `nodes` must be distinct; the caller checked `nodes.len() >= n`.
    pub fn new(mut nodes: Vec<Candidate>, n: usize) -> Self {
        nodes.shuffle(&mut rand::thread_rng());
        let len = nodes.len();
        Placement {
            nodes,
            failed: vec![false; len],
            load: vec![0; len],
            n,
        }
    }

    pub fn node(&self, i: usize) -> &Candidate {
        &self.nodes[i]
    }

    /// Nodes not marked failed.
    pub fn healthy(&self) -> usize {
        self.failed.iter().filter(|f| !**f).count()
    }

    /// The `n` distinct nodes for block `b` (healthy ones preferred), or `None` if fewer than
    /// `n` healthy nodes remain.
    pub fn for_block(&mut self, b: u64) -> Option<Vec<usize>> {
        let len = self.nodes.len();
        if self.healthy() < self.n {
            return None;
        }
        let start = (b as usize).wrapping_mul(self.n) % len;
        let chosen: Vec<usize> = (0..len)
            .map(|i| (start + i) % len)
            .filter(|&i| !self.failed[i])
            .take(self.n)
            .collect();
        for &i in &chosen {
            self.load[i] += 1;
        }
        Some(chosen)
    }

    /// Marks `node` failed and picks a replacement not in `holding` (the nodes assigned to the
    /// other pieces of the same block): the least-loaded healthy one.
    pub fn replace(&mut self, node: usize, holding: &[usize]) -> Option<usize> {
        self.failed[node] = true;
        self.load[node] = self.load[node].saturating_sub(1);
        let best = (0..self.nodes.len())
            .filter(|i| !self.failed[*i] && !holding.contains(i))
            .min_by_key(|i| self.load[*i])?;
        self.load[best] += 1;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn nodes(count: u8) -> Vec<Candidate> {
        (0..count)
            .map(|i| Candidate {
                key: PublicKey([i; 32]),
                addr: format!("127.0.0.1:{}", 1000 + i as u16),
            })
            .collect()
    }

    #[test]
    fn distinct_per_block_and_spread_evenly() {
        let mut p = Placement::new(nodes(9), 6);
        let mut load = vec![0; 9];
        for b in 0..300 {
            let chosen = p.for_block(b).unwrap();
            assert_eq!(chosen.iter().collect::<HashSet<_>>().len(), 6);
            for i in chosen {
                load[i] += 1;
            }
        }
        assert!(load.iter().all(|&l| l == 200), "{load:?}");
        let mut small = Placement::new(nodes(6), 6);
        assert_eq!(small.for_block(0).unwrap().len(), 6);
        assert!(Placement::new(nodes(5), 6).for_block(0).is_none());
        // One failure among six leaves nobody to take the piece.
        let chosen = small.for_block(1).unwrap();
        assert_eq!(small.replace(chosen[0], &chosen), None);
    }

    #[test]
    fn replacement_avoids_holders_and_failed_nodes() {
        let mut p = Placement::new(nodes(8), 6);
        let chosen = p.for_block(0).unwrap();
        let r = p.replace(chosen[2], &chosen).unwrap();
        assert!(!chosen.contains(&r));
        let next = p.for_block(1).unwrap();
        assert!(!next.contains(&chosen[2]));
        assert_eq!(p.healthy(), 7);
    }
}
