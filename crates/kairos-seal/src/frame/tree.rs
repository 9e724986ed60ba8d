//! The whole-file BLAKE3 hash of the framed trailer, computed as pieces of BLAKE3's Merkle tree
//! so that worker threads can hash the blocks they seal (hashing on the reader thread made it
//! the bottleneck of multi-threaded sealing).
//!
//! BLAKE3 is a binary tree over 1 KiB chunks; [`blake3::hazmat`] computes the chaining value
//! (CV) of a subtree of `2^j` chunks that starts at a multiple of `2^j` chunks, and merges CVs.
//! The file's bytes are split, in order, by [`TreeHasher::split`]:
//! * the chunks that straddle a block boundary, and the chunk holding the newest bytes (the
//!   *edge*, which may turn out to be the file's last chunk), stay with the reader thread, which
//!   hashes them itself (at most 2 KiB per block);
//! * the whole chunks in between go to the worker that seals the block ([`HashJob`]), which
//!   hashes them before encrypting the buffer in place ([`hash_subtrees`]) and sends the CVs
//!   back.
//!
//! Invariants:
//! * The result is bit-identical to `blake3::hash` of the file's bytes (tests compare them for
//!   many lengths and block shapes). [`TreeHasher`] keeps a CV stack like `blake3::Hasher`'s
//!   own: a subtree is pushed only when every chunk before it has been pushed (CVs arriving out
//!   of order wait in a map), and before each push the stack is merged down to the binary
//!   decomposition of the chunk count, which is the shape BLAKE3's tree has.
//! * The file's last chunk is always the edge, never part of a pushed subtree, so no pushed CV
//!   is the root: the root is made by [`TreeHasher::finalize`] (or by `blake3::hash` when the
//!   file is a single chunk).

use std::collections::BTreeMap;
use std::ops::Range;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use blake3::{Hasher, CHUNK_LEN};

/// Whole chunks of a block's plaintext for its worker to hash: `range` of the block buffer,
/// starting with chunk `first_chunk` of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HashJob {
    pub first_chunk: u64,
    pub range: Range<usize>,
}

/// The CV of `chunks` (a power of two) chunks of the file starting at chunk `first_chunk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubtreeCv {
    first_chunk: u64,
    chunks: u64,
    cv: ChainingValue,
}

/// The non-root CV of `bytes` (whole chunks forming one valid subtree) at chunk `first_chunk`.
fn subtree_cv(first_chunk: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = Hasher::new();
    hasher.set_input_offset(first_chunk * CHUNK_LEN as u64);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// Largest subtree [`hash_subtrees`] hashes in one go: 256 KiB, which BLAKE3 hashes as fast as
/// any larger update, and small enough that the order below pays off.
const MAX_SUBTREE_CHUNKS: u64 = 256;

/// Hashes `bytes` (whole chunks, the file's bytes from chunk `first_chunk` on) as subtrees of
/// BLAKE3's tree: each starts at a multiple of its own size (a power of two).
///
/// The subtrees are hashed last to first, so the start of `bytes` is what the cache holds
/// afterwards: the caller encrypts the block from its start right after this.
pub(crate) fn hash_subtrees(first_chunk: u64, bytes: &[u8]) -> Vec<SubtreeCv> {
    debug_assert_eq!(bytes.len() % CHUNK_LEN, 0);
    let mut subtrees = Vec::new();
    let end = first_chunk + (bytes.len() / CHUNK_LEN) as u64;
    let mut chunk = first_chunk;
    while chunk < end {
        // The largest power of two that fits, divides the start (any does, at chunk 0) and is
        // at most MAX_SUBTREE_CHUNKS.
        let mut size = (1u64 << (63 - (end - chunk).leading_zeros())).min(MAX_SUBTREE_CHUNKS);
        if chunk != 0 {
            size = size.min(1 << chunk.trailing_zeros());
        }
        subtrees.push((chunk, size));
        chunk += size;
    }
    subtrees
        .into_iter()
        .rev()
        .map(|(chunk, chunks)| {
            let from = (chunk - first_chunk) as usize * CHUNK_LEN;
            let sub = &bytes[from..from + chunks as usize * CHUNK_LEN];
            SubtreeCv {
                first_chunk: chunk,
                chunks,
                cv: subtree_cv(chunk, sub),
            }
        })
        .collect()
}

/// Assembles the file hash from CVs (see the module docs).
#[derive(Default)]
pub(crate) struct TreeHasher {
    /// CVs of consecutive subtrees covering chunks `0..pushed`, largest first.
    stack: Vec<ChainingValue>,
    pushed: u64,
    /// Subtrees that arrived before all chunks ahead of them, by first chunk.
    waiting: BTreeMap<u64, (u64, ChainingValue)>,
    /// Chunk `edge_chunk`: the newest bytes of the file (at most one chunk).
    edge: Vec<u8>,
    edge_chunk: u64,
}

impl TreeHasher {
    /// Takes the next bytes of the file. Keeps the chunks at the edges itself and returns the
    /// range of `bytes` of whole chunks between them (and the first one's chunk index), if any,
    /// for a worker to hash with [`hash_subtrees`]; their CVs must come back through
    /// [`TreeHasher::add`] before [`TreeHasher::finalize`].
    pub fn split(&mut self, bytes: &[u8]) -> Option<HashJob> {
        let take = bytes.len().min(CHUNK_LEN - self.edge.len());
        self.edge.extend_from_slice(&bytes[..take]);
        if take == bytes.len() {
            return None;
        }
        // The edge chunk is full and more bytes follow: it is not the last chunk.
        let cv = subtree_cv(self.edge_chunk, &self.edge);
        self.add(vec![SubtreeCv {
            first_chunk: self.edge_chunk,
            chunks: 1,
            cv,
        }]);
        self.edge_chunk += 1;
        self.edge.clear();
        // The last (partial or whole) chunk of the rest becomes the new edge.
        let tail = match (bytes.len() - take) % CHUNK_LEN {
            0 => CHUNK_LEN,
            r => r,
        };
        let range = take..bytes.len() - tail;
        self.edge.extend_from_slice(&bytes[range.end..]);
        let first_chunk = self.edge_chunk;
        self.edge_chunk += (range.len() / CHUNK_LEN) as u64;
        (!range.is_empty()).then_some(HashJob { first_chunk, range })
    }

    /// Adds the CVs of a [`HashJob`] (or of the edge), in any order relative to other jobs.
    pub fn add(&mut self, cvs: Vec<SubtreeCv>) {
        for s in cvs {
            self.waiting.insert(s.first_chunk, (s.chunks, s.cv));
        }
        while let Some((chunks, cv)) = self.waiting.remove(&self.pushed) {
            self.merge_stack(self.pushed);
            self.stack.push(cv);
            self.pushed += chunks;
        }
    }

    /// Merges the top of the stack until it holds one CV per set bit of `chunks` (the
    /// subtrees of a BLAKE3 tree over `chunks` chunks, when more chunks follow).
    fn merge_stack(&mut self, chunks: u64) {
        while self.stack.len() > chunks.count_ones() as usize {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                return;
            };
            self.stack
                .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
    }

    /// True once every job's CVs have been added.
    pub fn is_complete(&self) -> bool {
        self.pushed == self.edge_chunk && self.waiting.is_empty()
    }

    /// The hash of all bytes split so far; `None` while some job's CVs are missing.
    pub fn finalize(&mut self) -> Option<blake3::Hash> {
        if !self.is_complete() {
            return None;
        }
        if self.edge_chunk == 0 {
            return Some(blake3::hash(&self.edge));
        }
        self.merge_stack(self.pushed);
        let mut right = subtree_cv(self.edge_chunk, &self.edge);
        while self.stack.len() > 1 {
            let left = self.stack.pop()?;
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        Some(merge_subtrees_root(&self.stack.pop()?, &right, Mode::Hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `data` at `cuts`, hashes the jobs (in reverse order, to exercise the waiting
    /// map) and compares with `blake3::hash`.
    fn check(data: &[u8], cuts: &[usize]) {
        let mut t = TreeHasher::default();
        let mut jobs = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([&data.len()]) {
            let part = &data[from..cut];
            if let Some(job) = t.split(part) {
                jobs.push(hash_subtrees(job.first_chunk, &part[job.range]));
            }
            from = cut;
        }
        let complete_early = jobs.is_empty();
        assert_eq!(t.is_complete(), complete_early);
        for cvs in jobs.into_iter().rev() {
            t.add(cvs);
        }
        assert_eq!(
            t.finalize(),
            Some(blake3::hash(data)),
            "{} {cuts:?}",
            data.len()
        );
    }

    #[test]
    fn matches_plain_hash() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let k = CHUNK_LEN;
        for len in [
            0,
            1,
            k - 1,
            k,
            k + 1,
            2 * k,
            3 * k,
            4 * k + 5,
            16 * k,
            17 * k - 1,
        ] {
            check(&data[..len], &[]);
            check(&data[..len], &[len / 2]);
            check(&data[..len], &[len / 3, 2 * len / 3]);
        }
        // Blocks of an odd size (like real blocks, 16 bytes short of a shard multiple).
        for block in [k - 3, k + 7, 3 * k + 1000, 8176] {
            for len in [block - 1, block, block + 1, 2 * block, 4 * block + 17] {
                let cuts: Vec<usize> = (1..).map(|i| i * block).take_while(|&c| c < len).collect();
                check(&data[..len], &cuts);
            }
        }
        // Cuts on chunk boundaries, and empty parts.
        check(&data[..8 * k], &[2 * k, 2 * k, 4 * k, 6 * k]);
        check(&data[..32 * k], &[k, 5 * k, 13 * k, 31 * k, 32 * k]);
        // Parts longer than MAX_SUBTREE_CHUNKS.
        let big: Vec<u8> = (0..1_300_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
        check(&big, &[700 * k + 3, 1100 * k]);
        check(&big, &[512 * k, 1024 * k]);
    }
}
