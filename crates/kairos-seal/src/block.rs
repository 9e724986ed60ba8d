//! One block: AES-256-GCM, Reed-Solomon, Shamir, piece hashes. [`seal`] makes the pieces of a
//! block, [`open`] turns enough of them back into its plaintext; this module holds what both
//! share: the layout below, [`Piece`] and [`SealedBlock`], and the piece-hash alignment.
//!
//! # Layout of a sealed block
//!
//! ```text
//! plaintext (P bytes, P <= params.block_plaintext_size(); P is the full size unless last)
//!   -> AES-256-GCM(key = block_key(salt, index, s)            format 1 (KeySchedule::V1)
//!                      | block_key_v2(salt, index, s, T)      format 2 (KeySchedule::V2),
//!                  nonce = block_nonce(index), aad = salt || index u32 LE || is_last u8)
//!   -> ciphertext || tag                       cipher_len = P + 16 bytes
//!   -> zero padding to k * L                   L = params.shard_len_for(cipher_len)
//!   -> data shard i = padded[i*L .. (i+1)*L]   for i in 0..k  (systematic code)
//!      parity shard j = RS(k, m) parity j      for j in 0..m  (reed-solomon-simd)
//! s (32 random bytes, or derived from the repair seed under V2)
//!   -> Shamir GF(256), threshold k, n = k + m shares; share i has x = i + 1
//!      (coefficients random, or from the block's ChaCha20 generator under V2)
//! piece i = (share i, shard i), hash i = piece_hash(share i, shard i)
//! ```
//!
//! Invariants:
//! * A non-last block is always full (`cipher_len == params.block_cipher_size()`); the last
//!   block has `TAG_LEN <= cipher_len <= params.block_cipher_size()`. Both sides check it.
//! * Reed-Solomon coding is position-wise in 64-byte units, so coding a shard in column strips
//!   gives exactly the bytes of coding it whole. Sealing exploits this to code, copy and hash
//!   each strip while it is in L1/L2 cache (one pass over memory instead of three); a unit test
//!   pins the equivalence.
//! * Opening never trusts a piece it has not hashed: a piece whose hash differs from the
//!   manifest's (or whose lengths are wrong) is an erasure. When all `k` data pieces are
//!   intact, parity pieces are neither hashed nor decoded.
//! * Each thread keeps one Reed-Solomon encoder and one decoder (thread-local) and reuses their
//!   work space across blocks; a decoder holds a few shards' worth of memory in every thread
//!   that has opened a degraded block. For high-rate codes (the default `k = 4, m = 2`) opening
//!   uses `decode`'s strip-wise decoder instead, which holds a few strips and a 128 KiB table.
//! * Piece hashes are fed in updates that start on 16 KiB boundaries of the hash input (see
//!   `hash_boundary`); the result is the same as hashing in one go, only faster.

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};

use crate::keys::{KeyShare, PieceHash, SHARE_LEN};

mod decode;
pub mod open;
pub mod seal;

/// One piece of a sealed block: what one peer stores.
#[derive(Clone, PartialEq, Eq)]
pub struct Piece {
    /// Shamir share `i` of the block secret (x-coordinate `i + 1`).
    pub share: KeyShare,
    /// Shard `i`: data shard for `i < k`, parity shard `i - k` otherwise.
    pub shard: Vec<u8>,
    /// `piece_hash(share, shard)`: the piece's content address, listed in the manifest.
    pub hash: PieceHash,
}

impl std::fmt::Debug for Piece {
    // Shares are key material and shards are large: show neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piece")
            .field("shard_len", &self.shard.len())
            .field("hash", &hex(&self.hash))
            .finish_non_exhaustive()
    }
}

/// Lower-case hex, for `Debug` output.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A sealed block: `n` pieces, piece `i` = shard `i` + share `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlock {
    /// Position of the block in the file (0-based).
    pub index: u32,
    /// Ciphertext bytes including the 16-byte tag (before zero padding). Goes in the manifest.
    pub cipher_len: u32,
    /// The `n = k + m` pieces in shard order.
    pub pieces: Vec<Piece>,
}

impl SealedBlock {
    /// The `n` piece hashes in shard order (what the manifest lists for this block).
    pub fn hashes(&self) -> Vec<PieceHash> {
        self.pieces.iter().map(|p| p.hash).collect()
    }

    /// All `n` pieces as the `(share, shard)` slots [`open::open_block`] takes.
    pub fn piece_refs(&self) -> Vec<Option<(&[u8], &[u8])>> {
        self.pieces
            .iter()
            .map(|p| Some((&p.share[..], &p.shard[..])))
            .collect()
    }
}

/// The AES-256-GCM key for the 32 key bytes of [`crate::keys::BlockPos::key`].
fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, aws_lc_rs::error::Unspecified> {
    UnboundKey::new(&AES_256_GCM, &key[..]).map(LessSafeKey::new)
}

/// BLAKE3 hashes a long input fastest when each `update` starts on a boundary of many 1 KiB
/// chunks (it hashes 16 chunks at once with AVX-512, but only subtrees aligned to the bytes
/// already absorbed). The piece hash absorbs the 33-byte share first, so shard offsets are
/// shifted: this is the largest shard offset `<= pos` that is a [`HASH_GRAIN`] boundary of the
/// hash input (or 0).
fn hash_boundary(pos: usize) -> usize {
    ((pos + SHARE_LEN) / HASH_GRAIN * HASH_GRAIN).saturating_sub(SHARE_LEN)
}

/// See [`hash_boundary`]: 16 chunks of 1 KiB.
const HASH_GRAIN: usize = 16 * 1024;
