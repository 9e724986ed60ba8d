//! Key material of a sealed block: the per-file salt, the block's position ([`BlockPos`]), the
//! per-block secret and the key derived from it, the AES-GCM nonce and associated data, the
//! Shamir key shares, and the piece hash.
//!
//! Invariants:
//! * Every block is encrypted under its own key, derived by [`block_key`] from a fresh 256-bit
//!   random secret (format 1), or by [`block_key_v2`] from a secret derived from the file's
//!   repair seed and the block index (format 2; the seed is per file because the salt is). A
//!   key therefore encrypts exactly one message, which is what makes the deterministic nonce of
//!   [`block_nonce`] safe (see there).
//! * [`block_key`] (format 1) and [`block_key_v2`] (format 2, which mixes in the file's lock
//!   secret `T`) are the *only* places a block key is computed; [`crate::schedule`] picks one.
//! * Secrets, keys and intermediate share buffers are wiped (`zeroize`) when dropped. The shares
//!   inside a [`crate::Piece`] are handed to the caller, who sends each one to a different peer.
//! * Share `i` of a block (0-based piece index) always carries the Shamir x-coordinate `i + 1`
//!   in its first byte; `combine_secret` relies on that to reject misplaced shares.
//!
//! Known gap: vsss-rs 6 keeps the polynomial of the last secret byte it split in a vector it
//! frees without wiping (its `ZeroizeOnDrop` is a marker only). That is one byte of one block
//! secret (and its random coefficients) left in freed heap memory per split.

use std::convert::Infallible;

use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of one Shamir share of a 32-byte secret: a one-byte x-coordinate, then 32 bytes.
pub const SHARE_LEN: usize = 33;
/// Bytes of the per-block secret that is Shamir-split.
pub const SECRET_LEN: usize = 32;
/// Bytes of the AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM associated data: salt (32) || index (u32 LE) || is_last (1).
pub const AAD_LEN: usize = 32 + 4 + 1;

/// One Shamir share of a block secret: `[x, y_0, …, y_31]`.
pub type KeyShare = [u8; SHARE_LEN];
/// BLAKE3 content address of a piece (see [`piece_hash`]).
pub type PieceHash = [u8; 32];
/// Per-file random salt. Stored in the manifest; feeds every key derivation of the file.
pub type FileSalt = [u8; 32];

/// BLAKE3 `derive_key` context of [`piece_hash`].
pub const PIECE_HASH_CONTEXT: &str = "kairos piece v1";
/// BLAKE3 `derive_key` context of [`block_key`].
pub const BLOCK_KEY_CONTEXT: &str = "kairos block key v1";
/// BLAKE3 `derive_key` context of [`block_key_v2`].
pub const BLOCK_KEY_V2_CONTEXT: &str = "kairos block key v2";

/// The content address of a piece: BLAKE3 in `derive_key` mode (context
/// [`PIECE_HASH_CONTEXT`]) over `share || shard`.
///
/// Peers store pieces under this hash and the manifest lists it for every piece, so a
/// downloader can check a piece before using it and name the peer that served a bad one.
/// The share is covered too: a peer cannot swap in a different key share unnoticed.
pub fn piece_hash(share: &[u8], shard: &[u8]) -> PieceHash {
    let mut hasher = piece_hasher(share);
    hasher.update(shard);
    *hasher.finalize().as_bytes()
}

/// A hasher that has absorbed the share; feed it the shard (in as many pieces as convenient)
/// to get [`piece_hash`]. Lets the sealing and opening code hash a shard strip by strip while
/// the strip is still in cache.
pub(crate) fn piece_hasher(share: &[u8]) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new_derive_key(PIECE_HASH_CONTEXT);
    hasher.update(share);
    hasher
}

/// A fresh random per-file salt from the operating system's CSPRNG.
pub fn new_salt() -> FileSalt {
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

/// A fresh random per-block secret from the operating system's CSPRNG.
pub(crate) fn new_secret() -> Zeroizing<[u8; SECRET_LEN]> {
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut secret[..]);
    secret
}

/// The AES-256 key of block `index`: BLAKE3 `derive_key` (context [`BLOCK_KEY_CONTEXT`]) over
/// `salt || index (u32 LE) || secret`.
///
/// The salt and index bind the key to its file and position (defence in depth: the AAD binds
/// them too).
pub fn block_key(salt: &FileSalt, index: u32, secret: &[u8; SECRET_LEN]) -> Zeroizing<[u8; 32]> {
    derive_wiped(BLOCK_KEY_CONTEXT, &[salt, &index.to_le_bytes(), secret])
}

/// The format 2 AES-256 key of block `index`: BLAKE3 `derive_key` (context
/// [`BLOCK_KEY_V2_CONTEXT`]) over `salt || index (u32 LE) || secret || lock_secret`, where
/// `lock_secret` is the file's `T` (32 zero bytes for a file without a drand lock).
///
/// With a drand lock, `T` is only ever stored tlock-encrypted: the shares alone (or the repair
/// seed, which regenerates the secret) do not open the block before the drand round.
pub fn block_key_v2(
    salt: &FileSalt,
    index: u32,
    secret: &[u8; SECRET_LEN],
    lock_secret: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    derive_wiped(
        BLOCK_KEY_V2_CONTEXT,
        &[salt, &index.to_le_bytes(), secret, lock_secret],
    )
}

/// BLAKE3 `derive_key(context, parts concatenated)`; wipes the hasher and the hash it copied.
pub(crate) fn derive_wiped(context: &str, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    for part in parts {
        hasher.update(part);
    }
    let mut hash = hasher.finalize();
    let key = Zeroizing::new(*hash.as_bytes());
    // The hasher's buffer still holds the secret; the `Hash` holds the key.
    hasher.zeroize();
    hash.zeroize();
    key
}

/// The AES-GCM nonce of block `index`: the index as u32 LE, then eight zero bytes.
///
/// Why a deterministic nonce is safe: GCM breaks only when one key encrypts two messages under
/// the same nonce. Every block key comes from a fresh 256-bit random secret (format 1) or from
/// the file's fresh salt and a secret derived for this block alone (format 2) and encrypts
/// exactly one block, so no (key, nonce) pair ever repeats, whatever the nonce. A random nonce would add
/// nothing; putting the index there costs nothing and keeps sealing deterministic given the
/// secret (which the known-answer tests rely on).
pub fn block_nonce(index: u32) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..4].copy_from_slice(&index.to_le_bytes());
    nonce
}

/// The AES-GCM associated data of a block: `salt || index (u32 LE) || is_last (0 or 1)`.
///
/// Authenticating the index and the last-block flag means blocks cannot be reordered, moved
/// into another file (different salt), or a file truncated after a non-last block.
pub fn block_aad(salt: &FileSalt, index: u32, is_last: bool) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..32].copy_from_slice(salt);
    aad[32..36].copy_from_slice(&index.to_le_bytes());
    aad[36] = u8::from(is_last);
    aad
}

/// Where a block sits: its file (the salt), its index, and whether it is the file's last block.
///
/// These three are what the AAD authenticates and, with the block secret, what the key and
/// nonce are derived from; sealing and opening a block take them together. The salt is public
/// (it is in the manifest), so the value may be logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockPos {
    /// The file's salt.
    pub salt: FileSalt,
    /// Position of the block in the file (0-based).
    pub index: u32,
    /// True for the file's last block (the only one that may be shorter than a full block).
    pub is_last: bool,
}

impl BlockPos {
    /// Block `index` of the file with `salt`.
    pub fn new(salt: FileSalt, index: u32, is_last: bool) -> Self {
        BlockPos {
            salt,
            index,
            is_last,
        }
    }

    /// [`block_key`] (format 1) of this block under `secret`.
    pub fn key(&self, secret: &[u8; SECRET_LEN]) -> Zeroizing<[u8; 32]> {
        block_key(&self.salt, self.index, secret)
    }

    /// [`block_nonce`] of this block.
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        block_nonce(self.index)
    }

    /// [`block_aad`] of this block.
    pub fn aad(&self) -> [u8; AAD_LEN] {
        block_aad(&self.salt, self.index, self.is_last)
    }
}

/// Shamir-splits `secret` into `n` shares with threshold `k` over GF(256) (vsss-rs, constant
/// time). Share `i` has x-coordinate `i + 1`. `rng` draws the polynomial coefficients.
pub(crate) fn split_secret<G: RngCore + CryptoRng>(
    secret: &[u8; SECRET_LEN],
    k: usize,
    n: usize,
    rng: &mut G,
) -> Result<Vec<KeyShare>, String> {
    let mut raw = vsss_rs::Gf256::split_bytes(k, n, secret, Rng010(rng))
        .map_err(|e| format!("shamir split: {e:?}"))?;
    let mut shares = Vec::with_capacity(n);
    let mut result = Ok(());
    for (i, share) in raw.iter().enumerate() {
        if share.len() != SHARE_LEN || usize::from(share[0]) != i + 1 {
            result = Err(format!("shamir split produced a malformed share {i}"));
            break;
        }
        let mut out = [0u8; SHARE_LEN];
        out.copy_from_slice(share);
        shares.push(out);
    }
    for share in raw.iter_mut() {
        share.zeroize();
    }
    result.map(|()| shares)
}

/// Why [`combine_secret`] failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CombineError {
    /// The share of this piece is not `SHARE_LEN` bytes or its x-coordinate is not `piece + 1`.
    Misplaced(usize),
    /// vsss-rs refused the set (cannot happen for well-placed shares; kept typed anyway).
    Invalid,
}

/// Recombines a block secret from `k` shares, each given with its piece index.
pub(crate) fn combine_secret(
    shares: &[(usize, &[u8])],
) -> Result<Zeroizing<[u8; SECRET_LEN]>, CombineError> {
    let mut raw: Vec<Vec<u8>> = Vec::with_capacity(shares.len());
    for &(piece, share) in shares {
        if share.len() != SHARE_LEN || usize::from(share[0]) != piece + 1 {
            return Err(CombineError::Misplaced(piece));
        }
        raw.push(share.to_vec());
    }
    let combined = vsss_rs::Gf256::combine_bytes(&raw);
    for share in raw.iter_mut() {
        share.zeroize();
    }
    let mut bytes = combined.map_err(|_| CombineError::Invalid)?;
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    let ok = bytes.len() == SECRET_LEN;
    if ok {
        secret.copy_from_slice(&bytes);
    }
    bytes.zeroize();
    if ok {
        Ok(secret)
    } else {
        Err(CombineError::Invalid)
    }
}

/// Adapts a rand 0.8 generator to the rand_core 0.10 traits vsss-rs 6 takes.
struct Rng010<'a, G: ?Sized>(&'a mut G);

impl<G: RngCore + ?Sized> rand_core_010::TryRng for Rng010<'_, G> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<G: RngCore + CryptoRng + ?Sized> rand_core_010::TryCryptoRng for Rng010<'_, G> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shamir_any_k_of_n_recombine() {
        let secret = [7u8; 32];
        let shares = split_secret(&secret, 3, 5, &mut rand::thread_rng()).unwrap();
        assert_eq!(shares.len(), 5);
        for (i, s) in shares.iter().enumerate() {
            assert_eq!(usize::from(s[0]), i + 1);
        }
        for pick in [[0, 1, 2], [2, 3, 4], [0, 2, 4], [4, 1, 3]] {
            let chosen: Vec<(usize, &[u8])> = pick.iter().map(|&i| (i, &shares[i][..])).collect();
            assert_eq!(*combine_secret(&chosen).unwrap(), secret);
        }
        // A share presented under the wrong piece index is rejected, not silently misused.
        assert_eq!(
            combine_secret(&[
                (0, &shares[1][..]),
                (1, &shares[0][..]),
                (2, &shares[2][..])
            ]),
            Err(CombineError::Misplaced(0))
        );
        // k - 1 shares interpolate to something else (they reveal nothing).
        let two: Vec<(usize, &[u8])> = vec![(0, &shares[0][..]), (1, &shares[1][..])];
        assert_ne!(*combine_secret(&two).unwrap(), secret);
    }

    #[test]
    fn key_depends_on_every_input() {
        let salt = [1u8; 32];
        let s = [2u8; 32];
        let k = block_key(&salt, 0, &s);
        assert_ne!(*k, *block_key(&[3u8; 32], 0, &s));
        assert_ne!(*k, *block_key(&salt, 1, &s));
        assert_ne!(*k, *block_key(&salt, 0, &[4u8; 32]));
    }

    #[test]
    fn piece_hasher_matches_piece_hash() {
        let share = [9u8; SHARE_LEN];
        let shard: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut h = piece_hasher(&share);
        for c in shard.chunks(777) {
            h.update(c);
        }
        assert_eq!(*h.finalize().as_bytes(), piece_hash(&share, &shard));
    }
}
