//! Proofs of possession for pieces: a holder proves it still holds a whole piece, before release,
//! without giving out the piece or its key share.
//!
//! The piece hash ([`crate::piece_hash`]) is BLAKE3 in `derive_key` mode over `share ‖ shard`,
//! and BLAKE3 is a Merkle tree over 1 KiB chunks. So a single chunk can be proven against the
//! piece hash from the manifest: the holder sends the chunk and the chaining values of the
//! sibling subtrees on the path to the root (as Bao does, here in `derive_key` mode); the auditor
//! hashes the chunk at its offset and folds the siblings up to the root.
//!
//! Invariants:
//! * **The share never leaves the holder**: the share is the first [`SHARE_LEN`] bytes of chunk
//!   0, and a proof of chunk 0 carries the chunk *without* them. The auditor (the uploader's
//!   node) regenerates the share from its repair seed (`crate::regenerate_share`) and splices it
//!   back to verify. So an audit answer holds only shard bytes, which are ciphertext.
//! * **A partial copy fails**: the auditor picks the chunks at random after the holder stored
//!   the piece; a holder keeping a fraction `f` of the chunks passes one challenged chunk with
//!   probability `f` (and [`AUDIT_CHUNKS`] of them with `f^AUDIT_CHUNKS`). Keeping the chaining
//!   values alone does not help: the chunk bytes themselves are needed.
//! * Decoding and verifying never panic on any input (both are fed by the network).

use crate::keys::{PieceHash, PIECE_HASH_CONTEXT, SHARE_LEN};
use blake3::hazmat::{
    hash_derive_key_context, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
    ChainingValue, HasherExt, Mode,
};
use blake3::{Hasher, CHUNK_LEN};

/// Chunks one audit challenges per piece: a holder with half a piece passes with 1 / 2^8.
pub const AUDIT_CHUNKS: usize = 8;
/// Most chunks a holder answers in one audit request.
pub const MAX_AUDIT_CHUNKS: usize = 32;
/// Deepest proof: pieces are far below 2^48 chunks.
const MAX_DEPTH: usize = 48;

/// The number of 1 KiB chunks of a piece of `piece_len` bytes (at least 1).
pub fn chunk_count(piece_len: u64) -> u64 {
    piece_len.div_ceil(CHUNK_LEN as u64).max(1)
}

/// One chunk of a piece and its Merkle path to the piece hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkProof {
    /// Index of the chunk in the piece.
    pub chunk: u64,
    /// The chunk's bytes; for chunk 0 without the share (its first [`SHARE_LEN`] bytes).
    pub bytes: Vec<u8>,
    /// Chaining values of the sibling subtrees, from the root down to the chunk.
    pub siblings: Vec<ChainingValue>,
}

fn hasher_at(offset: u64) -> Hasher {
    let mut h = Hasher::new_derive_key(PIECE_HASH_CONTEXT);
    h.set_input_offset(offset);
    h
}

/// Proves chunk `chunk` of `piece` (`share ‖ shard`, as the holder stores it). `None` if the
/// piece has no such chunk or is shorter than a share.
pub fn prove(piece: &[u8], chunk: u64) -> Option<ChunkProof> {
    let len = piece.len() as u64;
    if piece.len() < SHARE_LEN || chunk >= chunk_count(len) {
        return None;
    }
    let (mut start, mut end) = (0u64, len);
    let mut siblings = Vec::new();
    let target = chunk * CHUNK_LEN as u64;
    while end - start > CHUNK_LEN as u64 {
        let split = start + left_subtree_len(end - start);
        let (sib_start, sib_end) = if target < split {
            let r = (split, end);
            end = split;
            r
        } else {
            let r = (start, split);
            start = split;
            r
        };
        let cv = hasher_at(sib_start)
            .update(&piece[sib_start as usize..sib_end as usize])
            .finalize_non_root();
        siblings.push(cv);
    }
    let skip = if chunk == 0 { SHARE_LEN } else { 0 };
    Some(ChunkProof {
        chunk,
        bytes: piece[start as usize + skip..end as usize].to_vec(),
        siblings,
    })
}

/// Whether `proof` shows chunk `proof.chunk` of the piece with hash `hash` and length
/// `piece_len`; `share` is the piece's key share, needed only for chunk 0 (the auditor
/// regenerates it). Never panics.
pub fn verify(
    hash: &PieceHash,
    piece_len: u64,
    share: &[u8; SHARE_LEN],
    proof: &ChunkProof,
) -> bool {
    if piece_len < SHARE_LEN as u64 || proof.chunk >= chunk_count(piece_len) {
        return false;
    }
    // Walk down to learn the chunk's range and, per level, which side the sibling is on.
    let (mut start, mut end) = (0u64, piece_len);
    let target = proof.chunk * CHUNK_LEN as u64;
    let mut sibling_is_right = Vec::new();
    while end - start > CHUNK_LEN as u64 {
        if sibling_is_right.len() >= MAX_DEPTH {
            return false;
        }
        let split = start + left_subtree_len(end - start);
        if target < split {
            sibling_is_right.push(true);
            end = split;
        } else {
            sibling_is_right.push(false);
            start = split;
        }
    }
    if sibling_is_right.len() != proof.siblings.len() {
        return false;
    }
    let mut chunk = Vec::with_capacity(CHUNK_LEN);
    if proof.chunk == 0 {
        chunk.extend_from_slice(share);
    }
    chunk.extend_from_slice(&proof.bytes);
    if chunk.len() as u64 != end - start {
        return false;
    }
    let mut h = hasher_at(start);
    h.update(&chunk);
    if proof.siblings.is_empty() {
        return h.finalize().as_bytes() == hash;
    }
    let context = hash_derive_key_context(PIECE_HASH_CONTEXT);
    let mode = Mode::DeriveKeyMaterial(&context);
    let mut cv = h.finalize_non_root();
    for (level, (sibling, right)) in proof
        .siblings
        .iter()
        .zip(&sibling_is_right)
        .enumerate()
        .rev()
    {
        let (l, r) = if *right {
            (&cv, sibling)
        } else {
            (sibling, &cv)
        };
        if level == 0 {
            return merge_subtrees_root(l, r, mode).as_bytes() == hash;
        }
        cv = merge_subtrees_non_root(l, r, mode);
    }
    false
}

/// Encodes proofs for the wire: per proof, chunk index (u64 LE), byte count (u16 LE), bytes,
/// sibling count (u8), siblings (32 bytes each).
pub fn encode(proofs: &[ChunkProof]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in proofs {
        out.extend_from_slice(&p.chunk.to_le_bytes());
        out.extend_from_slice(&(p.bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(&p.bytes);
        out.push(p.siblings.len() as u8);
        for s in &p.siblings {
            out.extend_from_slice(s);
        }
    }
    out
}

/// Decodes [`encode`]'s output; at most [`MAX_AUDIT_CHUNKS`] proofs, chunks of at most
/// [`CHUNK_LEN`] bytes, at most 48 siblings each. `None` if malformed.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<ChunkProof>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() >= MAX_AUDIT_CHUNKS {
            return None;
        }
        let chunk = u64::from_le_bytes(take(&mut bytes, 8)?.try_into().ok()?);
        let len = u16::from_le_bytes(take(&mut bytes, 2)?.try_into().ok()?) as usize;
        if len > CHUNK_LEN {
            return None;
        }
        let data = take(&mut bytes, len)?.to_vec();
        let count = *take(&mut bytes, 1)?.first()? as usize;
        if count > MAX_DEPTH {
            return None;
        }
        let mut siblings = Vec::with_capacity(count);
        for _ in 0..count {
            siblings.push(take(&mut bytes, 32)?.try_into().ok()?);
        }
        out.push(ChunkProof {
            chunk,
            bytes: data,
            siblings,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::piece_hash;

    fn piece(len: usize) -> (Vec<u8>, PieceHash, [u8; SHARE_LEN]) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 1024) as u8).collect();
        let hash = piece_hash(&data[..SHARE_LEN], &data[SHARE_LEN..]);
        (data.clone(), hash, data[..SHARE_LEN].try_into().unwrap())
    }

    #[test]
    fn every_chunk_of_many_shapes_proves_against_the_piece_hash() {
        for len in [
            SHARE_LEN,
            SHARE_LEN + 64,
            1024,
            1025,
            2048,
            3 * 1024 + 1,
            SHARE_LEN + 64 * 100,
            SHARE_LEN + 64 * 1000,
            SHARE_LEN + 256 * 1024,
        ] {
            let (data, hash, share) = piece(len);
            for c in 0..chunk_count(len as u64) {
                let p = prove(&data, c).unwrap();
                assert!(verify(&hash, len as u64, &share, &p), "len {len} chunk {c}");
                let decoded = decode(&encode(std::slice::from_ref(&p))).unwrap();
                assert_eq!(decoded, vec![p.clone()]);
                if c == 0 {
                    // The share is never part of an answer.
                    assert!(!p.bytes.starts_with(&share) || p.bytes.is_empty());
                    assert_eq!(p.bytes.len(), (len.min(1024)) - SHARE_LEN);
                }
            }
            assert!(prove(&data, chunk_count(len as u64)).is_none());
        }
    }

    #[test]
    fn a_changed_byte_a_wrong_index_or_a_wrong_share_fails() {
        let len = SHARE_LEN + 64 * 100;
        let (data, hash, share) = piece(len);
        let p = prove(&data, 3).unwrap();
        let mut bad = p.clone();
        bad.bytes[10] ^= 1;
        assert!(!verify(&hash, len as u64, &share, &bad));
        let mut moved = p.clone();
        moved.chunk = 2;
        assert!(!verify(&hash, len as u64, &share, &moved));
        let mut sib = p.clone();
        sib.siblings[0][0] ^= 1;
        assert!(!verify(&hash, len as u64, &share, &sib));
        let mut short = p;
        short.siblings.pop();
        assert!(!verify(&hash, len as u64, &share, &short));
        let p0 = prove(&data, 0).unwrap();
        let mut other = share;
        other[5] ^= 1;
        assert!(!verify(&hash, len as u64, &other, &p0));
    }

    #[test]
    fn a_holder_with_half_a_piece_cannot_answer_the_other_half() {
        let len = SHARE_LEN + 64 * 64;
        let (data, hash, share) = piece(len);
        let mut half = data.clone();
        let cut = half.len() / 2;
        half[cut..].fill(0);
        let chunks = chunk_count(len as u64);
        let passed = (0..chunks)
            .filter(|&c| verify(&hash, len as u64, &share, &prove(&half, c).unwrap()))
            .count() as u64;
        assert!(passed < chunks / 2 + 1, "{passed} of {chunks}");
    }

    #[test]
    fn decode_refuses_garbage_without_panicking() {
        assert_eq!(decode(&[]), Some(vec![]));
        assert!(decode(&[1, 2, 3]).is_none());
        let mut long = vec![0u8; 8];
        long.extend_from_slice(&2000u16.to_le_bytes());
        assert!(decode(&long).is_none());
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let _ = decode(&junk);
        }
    }
}
