//! Key schedules: where a block's secret, its Shamir coefficients and its key come from.
//!
//! * [`KeySchedule::V1`] (files with a version 1 manifest): a fresh random secret per block,
//!   random Shamir coefficients, key = [`crate::keys::block_key`].
//! * [`KeySchedule::V2`] (version 2 manifests, see `docs/manifest-v2.md`): everything about a
//!   block is derived from the file's [`RepairSeed`] and the block index, so the uploader can
//!   regenerate share `j` of block `i` bit for bit ([`regenerate_share`]) without fetching it:
//!   * block secret = BLAKE3 `derive_key`([`BLOCK_SECRET_V2_CONTEXT`], `seed ‖ i` u32 LE);
//!   * Shamir coefficients = a ChaCha20 generator seeded with BLAKE3
//!     `derive_key`([`SHAMIR_COEFFICIENTS_V2_CONTEXT`], `seed ‖ i` u32 LE);
//!   * block key = [`crate::keys::block_key_v2`]`(salt, i, secret, T)` with `T` the file's
//!     [`LockSecret`] (32 zero bytes when the file has no drand lock).
//!
//! Opening needs only the [`OpenSchedule`]: the block secret comes from the shares, and for v2
//! the lock secret `T` is mixed into the key.
//!
//! Invariants:
//! * V2 sealing is deterministic: the same `(salt, repair seed, T, params, plaintext)` always
//!   gives the same pieces. A block key encrypts exactly one message only if every file is
//!   sealed under a fresh salt (the repair seed is derived from it, and so are the keys): **never
//!   seal two different plaintexts with the same salt and seed**, or AES-GCM's nonce (the block
//!   index) repeats under one key.
//! * Lock secrets, repair seeds and derived block secrets are wiped when dropped; `Debug` never
//!   shows them.
//! * The regenerated share depends on how vsss-rs draws its coefficients from the generator.
//!   The v2 known-answer vectors (`testdata/seal/kat-v2.json`) pin that: if a vsss-rs upgrade
//!   changes it, shares already stored could no longer be regenerated, so the upgrade must be
//!   refused (the v2 vectors are never regenerated, unlike the v1 ones).
//!
//! Known gap: rand_chacha's generator has no `Zeroize`; its state is overwritten when dropped
//! (`CoefficientRng`) but copies made by moves may stay on the stack.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::{Zeroize, Zeroizing};

use crate::error::SealError;
use crate::keys::{
    block_key, block_key_v2, derive_wiped, split_secret, BlockPos, KeyShare, SECRET_LEN,
};
use crate::params::Params;

/// BLAKE3 `derive_key` context of a v2 block secret.
pub const BLOCK_SECRET_V2_CONTEXT: &str = "kairos block secret v2";
/// BLAKE3 `derive_key` context of the seed of a v2 block's Shamir coefficient generator.
pub const SHAMIR_COEFFICIENTS_V2_CONTEXT: &str = "kairos shamir coefficients v2";

/// The per-file lock secret `T` mixed into every v2 block key: 32 random bytes for a file with a
/// drand lock (stored only tlock-encrypted in the manifest), 32 zero bytes without one.
/// Wiped when dropped; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct LockSecret(Zeroizing<[u8; 32]>);

impl LockSecret {
    /// `T` of a file without a drand lock: 32 zero bytes.
    pub fn none() -> Self {
        LockSecret(Zeroizing::new([0u8; 32]))
    }

    /// A fresh random `T` from the operating system's CSPRNG, for a file with a drand lock.
    pub fn random() -> Self {
        let mut t = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut t[..]);
        LockSecret(t)
    }

    /// `T` from its bytes (for example decrypted from the manifest's tlock ciphertext). The
    /// caller wipes its own copy.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        LockSecret(Zeroizing::new(*bytes))
    }

    /// The 32 bytes (to tlock-encrypt them).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True for the all-zero `T` of a file without a drand lock.
    pub fn is_none(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }
}

impl From<Zeroizing<[u8; 32]>> for LockSecret {
    fn from(bytes: Zeroizing<[u8; 32]>) -> Self {
        LockSecret(bytes)
    }
}

impl std::fmt::Debug for LockSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockSecret(hidden)")
    }
}

/// The per-file repair seed every v2 block secret and Shamir polynomial is derived from (kept
/// by the uploader's node, derived from its identity and the file's salt). Wiped when dropped;
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RepairSeed(Zeroizing<[u8; 32]>);

impl RepairSeed {
    /// A seed from its bytes. The caller wipes its own copy.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        RepairSeed(Zeroizing::new(*bytes))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<Zeroizing<[u8; 32]>> for RepairSeed {
    fn from(bytes: Zeroizing<[u8; 32]>) -> Self {
        RepairSeed(bytes)
    }
}

impl std::fmt::Debug for RepairSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepairSeed(hidden)")
    }
}

/// How a file is sealed: where block secrets and Shamir coefficients come from and how the
/// block key is derived (see the module docs).
#[derive(Clone, Debug)]
pub enum KeySchedule {
    /// Format 1: random secrets and coefficients, key context `"kairos block key v1"`.
    V1,
    /// Format 2: secrets and coefficients derived from `repair_seed`, key mixed with
    /// `lock_secret` (`T`).
    V2 {
        lock_secret: LockSecret,
        repair_seed: RepairSeed,
    },
}

impl KeySchedule {
    /// What opening a file sealed with this schedule needs.
    pub fn for_opening(&self) -> OpenSchedule {
        match self {
            KeySchedule::V1 => OpenSchedule::V1,
            KeySchedule::V2 { lock_secret, .. } => OpenSchedule::V2 {
                lock_secret: lock_secret.clone(),
            },
        }
    }

    pub(crate) fn keying(&self) -> Keying<'_> {
        match self {
            KeySchedule::V1 => Keying::V1,
            KeySchedule::V2 { lock_secret, .. } => Keying::V2(lock_secret),
        }
    }
}

/// How a file is opened: the block key derivation of its [`KeySchedule`] (the block secret
/// itself comes from the shares).
#[derive(Clone, Debug)]
pub enum OpenSchedule {
    /// Format 1.
    V1,
    /// Format 2 with the file's lock secret `T` (zero for a file without a drand lock).
    V2 { lock_secret: LockSecret },
}

impl OpenSchedule {
    pub(crate) fn keying(&self) -> Keying<'_> {
        match self {
            OpenSchedule::V1 => Keying::V1,
            OpenSchedule::V2 { lock_secret } => Keying::V2(lock_secret),
        }
    }
}

/// The block key derivation of a schedule, borrowed: what sealing and opening a block share.
#[derive(Clone, Copy)]
pub(crate) enum Keying<'a> {
    V1,
    V2(&'a LockSecret),
}

impl Keying<'_> {
    /// The AES-256 key of the block at `pos` under `secret`.
    pub(crate) fn block_key(
        &self,
        pos: &BlockPos,
        secret: &[u8; SECRET_LEN],
    ) -> Zeroizing<[u8; 32]> {
        match self {
            Keying::V1 => block_key(&pos.salt, pos.index, secret),
            Keying::V2(t) => block_key_v2(&pos.salt, pos.index, secret, t.as_bytes()),
        }
    }
}

/// BLAKE3 `derive_key(context, seed ‖ index u32 LE)`, with the hasher wiped afterwards.
fn derive_per_block(context: &str, seed: &RepairSeed, index: u32) -> Zeroizing<[u8; 32]> {
    derive_wiped(context, &[seed.as_bytes(), &index.to_le_bytes()])
}

/// The v2 secret of block `index` (see the module docs).
pub(crate) fn block_secret_v2(seed: &RepairSeed, index: u32) -> Zeroizing<[u8; SECRET_LEN]> {
    derive_per_block(BLOCK_SECRET_V2_CONTEXT, seed, index)
}

/// The generator of block `index`'s Shamir coefficients under v2: ChaCha20 seeded from the
/// repair seed and the index. Its state is overwritten when dropped (best effort: rand_chacha
/// offers no `Zeroize`).
pub(crate) struct CoefficientRng(ChaCha20Rng);

impl CoefficientRng {
    pub(crate) fn new(seed: &RepairSeed, index: u32) -> Self {
        let rng_seed = derive_per_block(SHAMIR_COEFFICIENTS_V2_CONTEXT, seed, index);
        CoefficientRng(ChaCha20Rng::from_seed(*rng_seed))
    }
}

impl RngCore for CoefficientRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for CoefficientRng {}

impl Drop for CoefficientRng {
    fn drop(&mut self) {
        // Replaces key, counter and the buffered keystream; black_box keeps the store alive.
        self.0 = ChaCha20Rng::from_seed([0u8; 32]);
        std::hint::black_box(&mut self.0);
    }
}

/// The v2 secret and coefficient generator of block `index`.
pub(crate) fn block_material_v2(
    seed: &RepairSeed,
    index: u32,
) -> (Zeroizing<[u8; SECRET_LEN]>, CoefficientRng) {
    (
        block_secret_v2(seed, index),
        CoefficientRng::new(seed, index),
    )
}

/// Share `piece` (0-based piece index; x-coordinate `piece + 1`) of block `index` of a file
/// sealed under [`KeySchedule::V2`] with `repair_seed` and `params`: bit-identical to the share
/// the sealer put into that piece. With the shard rebuilt by Reed-Solomon from any `k` others,
/// this rebuilds the exact piece (same [`crate::piece_hash`]) without fetching a share.
pub fn regenerate_share(
    repair_seed: &RepairSeed,
    index: u32,
    piece: usize,
    params: &Params,
) -> Result<Zeroizing<KeyShare>, SealError> {
    params.validate()?;
    let n = params.total_shards();
    if piece >= n {
        return Err(SealError::PieceIndex { piece, n });
    }
    let (secret, mut rng) = block_material_v2(repair_seed, index);
    let mut shares =
        split_secret(&secret, params.k(), n, &mut rng).map_err(|detail| SealError::Internal {
            stage: "shamir",
            detail,
        })?;
    let share = Zeroizing::new(shares[piece]);
    shares.zeroize();
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_material_is_deterministic_and_per_block() {
        let seed = RepairSeed::from_bytes(&[5u8; 32]);
        assert_eq!(*block_secret_v2(&seed, 0), *block_secret_v2(&seed, 0));
        assert_ne!(*block_secret_v2(&seed, 0), *block_secret_v2(&seed, 1));
        let other = RepairSeed::from_bytes(&[6u8; 32]);
        assert_ne!(*block_secret_v2(&seed, 0), *block_secret_v2(&other, 0));
        // The coefficient seed is not the block secret (distinct contexts).
        assert_ne!(
            *block_secret_v2(&seed, 0),
            *derive_per_block(SHAMIR_COEFFICIENTS_V2_CONTEXT, &seed, 0)
        );
        let (mut a, mut b) = (CoefficientRng::new(&seed, 3), CoefficientRng::new(&seed, 3));
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn lock_secret_t_changes_the_key_and_is_hidden() {
        let pos = BlockPos::new([1u8; 32], 0, true);
        let s = [2u8; 32];
        let none = LockSecret::none();
        let t = LockSecret::from_bytes(&[3u8; 32]);
        assert!(none.is_none() && !t.is_none());
        let k_none = Keying::V2(&none).block_key(&pos, &s);
        assert_ne!(*k_none, *Keying::V2(&t).block_key(&pos, &s));
        // v2 with T = 0 is still not v1 (distinct contexts).
        assert_ne!(*k_none, *Keying::V1.block_key(&pos, &s));
        assert_eq!(format!("{t:?}"), "LockSecret(hidden)");
        assert_eq!(
            format!("{:?}", RepairSeed::from_bytes(&[1; 32])),
            "RepairSeed(hidden)"
        );
    }

    #[test]
    fn regenerate_share_checks_its_inputs() {
        let seed = RepairSeed::from_bytes(&[5u8; 32]);
        let p = Params {
            data_shards: 2,
            parity_shards: 1,
            shard_size: 4096,
        };
        assert!(matches!(
            regenerate_share(&seed, 0, 3, &p),
            Err(SealError::PieceIndex { piece: 3, n: 3 })
        ));
        let bad = Params {
            data_shards: 1,
            ..p
        };
        assert!(matches!(
            regenerate_share(&seed, 0, 0, &bad),
            Err(SealError::Params(_))
        ));
        assert_eq!(regenerate_share(&seed, 0, 2, &p).unwrap()[0], 3);
    }
}
