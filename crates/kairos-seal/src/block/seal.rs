//! Sealing one block: encrypt, pad, erasure-code, split the secret, hash the pieces.
//!
//! The byte layout is in [`crate::block`]. The steps of `seal_in_place`: check the plaintext
//! length against the block shape, `encrypt_in_place`, zero-pad, split the secret, then
//! `encode_strips` codes, copies and hashes the shards strip by strip while each strip is in
//! cache, and `into_pieces` pairs shards with shares and hashes.

use std::cell::RefCell;
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, Nonce};
use rand::{CryptoRng, RngCore};
use reed_solomon_simd::ReedSolomonEncoder;
use zeroize::Zeroize;

use super::{aead_key, hash_boundary, Piece, SealedBlock};
use crate::error::SealError;
use crate::keys::{new_secret, piece_hasher, split_secret, BlockPos, KeyShare, SECRET_LEN};
use crate::params::{Params, SHARD_ALIGN, TAG_LEN};
use crate::schedule::{block_material_v2, KeySchedule, Keying};

/// Bytes of all `n` strips processed together while sealing: small enough to stay in L2 with
/// the RS encoder's work space, large enough that BLAKE3 gets its full SIMD width per update.
const STRIP_WORKING_SET: usize = 384 * 1024;
/// Smallest strip (BLAKE3's AVX-512 path hashes 16 chunks of 1 KiB at a time).
const MIN_STRIP: usize = 16 * 1024;

thread_local! {
    // The Reed-Solomon encoder keeps its work space between blocks: allocating it per block
    // would cost page faults on every block. One per thread keeps the per-block functions pure.
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
}

/// Checks a plaintext length against the block-shape invariant.
fn check_plaintext(params: &Params, pos: &BlockPos, len: usize) -> Result<(), SealError> {
    let (index, max) = (pos.index, params.block_plaintext_size());
    if len > max {
        return Err(SealError::BlockTooLarge { index, len, max });
    }
    if !pos.is_last && len != max {
        return Err(SealError::ShortBlock {
            index,
            len,
            expected: max,
        });
    }
    Ok(())
}

/// Shard buffers handed back by the caller ([`crate::Sealer::recycle`]) for reuse.
///
/// Why: a sealed block hands `n` freshly allocated shard buffers to the caller. With the
/// system allocator, buffers of this size are mapped and unmapped per block, and the page
/// faults cost more than encryption and coding together. Reusing them avoids that.
pub(crate) struct ShardPool {
    bufs: Mutex<Vec<Vec<u8>>>,
    max: usize,
}

impl ShardPool {
    pub fn new(max: usize) -> Self {
        ShardPool {
            bufs: Mutex::new(Vec::with_capacity(max)),
            max,
        }
    }

    /// An empty buffer with room for `len` bytes.
    fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.bufs.lock().ok().and_then(|mut b| b.pop());
        match reused {
            Some(mut buf) if buf.capacity() >= len => {
                buf.clear();
                buf
            }
            _ => Vec::with_capacity(len),
        }
    }

    /// Keeps `buf` for a later block (drops it if the pool is full).
    pub fn give(&self, buf: Vec<u8>) {
        if let Ok(mut bufs) = self.bufs.lock() {
            if bufs.len() < self.max {
                bufs.push(buf);
            }
        }
    }
}

/// Seals one block of plaintext with a fresh random secret (format 1, [`KeySchedule::V1`]).
///
/// `plaintext` must be exactly `params.block_plaintext_size()` bytes unless `pos.is_last`, when
/// it may be shorter (even empty). Pure: no I/O besides drawing randomness.
pub fn seal_block(
    params: &Params,
    pos: BlockPos,
    plaintext: &[u8],
) -> Result<SealedBlock, SealError> {
    seal_block_with(params, &KeySchedule::V1, pos, plaintext)
}

/// [`seal_block`] under any [`KeySchedule`]. Under [`KeySchedule::V2`] the result is a pure
/// function of the schedule, `params`, `pos` and `plaintext`.
pub fn seal_block_with(
    params: &Params,
    schedule: &KeySchedule,
    pos: BlockPos,
    plaintext: &[u8],
) -> Result<SealedBlock, SealError> {
    params.validate()?;
    check_plaintext(params, &pos, plaintext.len())?;
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN + params.k() * SHARD_ALIGN);
    buf.extend_from_slice(plaintext);
    seal_scheduled(params, schedule, pos, &mut buf, None)
}

/// Seals the plaintext in `buf` (see `seal_in_place`) with the secret and coefficient
/// generator `schedule` makes for this block.
pub(crate) fn seal_scheduled(
    params: &Params,
    schedule: &KeySchedule,
    pos: BlockPos,
    buf: &mut Vec<u8>,
    pool: Option<&ShardPool>,
) -> Result<SealedBlock, SealError> {
    let keying = schedule.keying();
    match schedule {
        KeySchedule::V1 => {
            let secret = new_secret();
            let mut rng = rand::thread_rng();
            seal_in_place(params, pos, keying, buf, &secret, &mut rng, pool)
        }
        KeySchedule::V2 { repair_seed, .. } => {
            let (secret, mut rng) = block_material_v2(repair_seed, pos.index);
            seal_in_place(params, pos, keying, buf, &secret, &mut rng, pool)
        }
    }
}

/// [`seal_block`] with a given secret and coefficient RNG: deterministic, for known-answer
/// tests. Never use a fixed secret for real data.
#[cfg(test)]
pub(crate) fn seal_block_with_secret<G: RngCore + CryptoRng>(
    params: &Params,
    pos: BlockPos,
    plaintext: &[u8],
    secret: &[u8; SECRET_LEN],
    shamir_rng: &mut G,
) -> Result<SealedBlock, SealError> {
    params.validate()?;
    check_plaintext(params, &pos, plaintext.len())?;
    let mut buf = plaintext.to_vec();
    seal_in_place(params, pos, Keying::V1, &mut buf, secret, shamir_rng, None)
}

/// The sealing core. `buf` holds the plaintext; it is encrypted (key from `keying` and
/// `secret`) and padded in place (so the caller can reuse it for the next block) and copied
/// into the shards strip by strip. Shard buffers come from `pool` when it has some.
fn seal_in_place<G: RngCore + CryptoRng>(
    params: &Params,
    pos: BlockPos,
    keying: Keying<'_>,
    buf: &mut Vec<u8>,
    secret: &[u8; SECRET_LEN],
    shamir_rng: &mut G,
    pool: Option<&ShardPool>,
) -> Result<SealedBlock, SealError> {
    params.validate()?;
    check_plaintext(params, &pos, buf.len())?;
    let (k, n) = (params.k(), params.total_shards());
    let cipher_len = buf.len() + TAG_LEN;
    let shard_len = params.shard_len_for(cipher_len);

    // 1. Encrypt in place; the tag follows the ciphertext; zero-pad to k shards.
    encrypt_in_place(&pos, keying, secret, buf)?;
    buf.resize(k * shard_len, 0);

    // 2. Key shares; each piece hasher absorbs its share first (hash = H(share || shard)).
    let shares = split_secret(secret, k, n, shamir_rng).map_err(seal_internal("shamir"))?;
    let mut hashers: Vec<blake3::Hasher> = shares.iter().map(|s| piece_hasher(s)).collect();

    // 3. Erasure-code, copy and hash strip by strip.
    let mut shards: Vec<Vec<u8>> = (0..n)
        .map(|_| match pool {
            Some(pool) => pool.take(shard_len),
            None => Vec::with_capacity(shard_len),
        })
        .collect();
    encode_strips(params, shard_len, buf, &mut shards, &mut hashers)?;

    Ok(SealedBlock {
        index: pos.index,
        cipher_len: cipher_len as u32,
        pieces: into_pieces(shards, shares, hashers),
    })
}

/// A [`SealError::Internal`] maker for one stage, for `map_err`.
fn seal_internal(stage: &'static str) -> impl Fn(String) -> SealError {
    move |detail| SealError::Internal { stage, detail }
}

/// Encrypts the plaintext in `buf` in place and appends the tag.
fn encrypt_in_place(
    pos: &BlockPos,
    keying: Keying<'_>,
    secret: &[u8; SECRET_LEN],
    buf: &mut Vec<u8>,
) -> Result<(), SealError> {
    let key = aead_key(&keying.block_key(pos, secret))
        .map_err(|e| seal_internal("aead key")(e.to_string()))?;
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(pos.nonce()),
            Aad::from(pos.aad()),
            &mut buf[..],
        )
        .map_err(|e| seal_internal("aead seal")(e.to_string()))?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Runs `f` with this thread's Reed-Solomon encoder, set up for `k + m` shards of `width` bytes.
fn with_encoder<T>(
    k: usize,
    m: usize,
    width: usize,
    f: impl FnOnce(&mut ReedSolomonEncoder) -> Result<T, SealError>,
) -> Result<T, SealError> {
    let rs_err = |e: reed_solomon_simd::Error| seal_internal("reed-solomon encode")(e.to_string());
    ENCODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let encoder = match slot.as_mut() {
            Some(enc) => {
                enc.reset(k, m, width).map_err(rs_err)?;
                enc
            }
            None => slot.insert(ReedSolomonEncoder::new(k, m, width).map_err(rs_err)?),
        };
        f(encoder)
    })
}

/// Splits the padded ciphertext `buf` (`k * shard_len` bytes) into the `k` data shards, adds
/// the `m` parity shards and feeds every shard to its piece hasher. Works strip by strip: each
/// strip of the data is coded, copied and hashed while it is in cache (see the module docs).
fn encode_strips(
    params: &Params,
    shard_len: usize,
    buf: &[u8],
    shards: &mut [Vec<u8>],
    hashers: &mut [blake3::Hasher],
) -> Result<(), SealError> {
    let (k, m) = (params.k(), params.m());
    let strip = strip_len(params.total_shards(), shard_len);
    let rs_err = |e: reed_solomon_simd::Error| seal_internal("reed-solomon encode")(e.to_string());
    let first = strip.min(shard_len);
    with_encoder(k, m, first, |encoder| {
        let mut width = first;
        // Shard bytes below `hashed` are in the hashers (the same for every shard).
        let mut hashed = 0;
        let mut off = 0;
        while off < shard_len {
            let w = strip.min(shard_len - off);
            if w != width {
                encoder.reset(k, m, w).map_err(rs_err)?;
                width = w;
            }
            for (i, shard) in shards.iter_mut().enumerate().take(k) {
                let data = &buf[i * shard_len + off..i * shard_len + off + w];
                encoder.add_original_shard(data).map_err(rs_err)?;
                shard.extend_from_slice(data);
            }
            let result = encoder.encode().map_err(rs_err)?;
            for (j, parity) in result.recovery_iter().enumerate() {
                shards[k + j].extend_from_slice(parity);
            }
            off += w;
            let upto = if off == shard_len {
                off
            } else {
                hash_boundary(off)
            };
            hashed = absorb(hashers, shards, hashed, upto);
        }
        Ok(())
    })
}

/// Feeds every hasher the bytes `from..upto` of its shard (nothing if `upto <= from`); returns
/// the new count of hashed bytes.
fn absorb(hashers: &mut [blake3::Hasher], shards: &[Vec<u8>], from: usize, upto: usize) -> usize {
    if upto <= from {
        return from;
    }
    for (hasher, shard) in hashers.iter_mut().zip(shards) {
        hasher.update(&shard[from..upto]);
    }
    upto
}

/// Pairs each shard with its share and finished hash.
fn into_pieces(
    shards: Vec<Vec<u8>>,
    shares: Vec<KeyShare>,
    hashers: Vec<blake3::Hasher>,
) -> Vec<Piece> {
    shards
        .into_iter()
        .zip(shares)
        .zip(hashers)
        .map(|((shard, share), mut hasher)| {
            let hash = *hasher.finalize().as_bytes();
            // The hasher's buffer may still hold the share (for shards under 1 KiB).
            hasher.zeroize();
            Piece { share, shard, hash }
        })
        .collect()
}

/// Strip length for `n` shards of `shard_len` bytes: a multiple of [`SHARD_ALIGN`] (the RS
/// code's position-wise unit) that keeps the `n` strips near [`STRIP_WORKING_SET`].
fn strip_len(n: usize, shard_len: usize) -> usize {
    let per = (STRIP_WORKING_SET / n).max(MIN_STRIP);
    let per = per / SHARD_ALIGN * SHARD_ALIGN;
    per.min(shard_len).max(SHARD_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(k: u8, m: u8) -> Params {
        Params {
            data_shards: k,
            parity_shards: m,
            shard_size: 4096,
        }
    }

    #[test]
    fn strip_coding_equals_whole_shard_coding() {
        let p = small(4, 2);
        let salt = [5u8; 32];
        let plain: Vec<u8> = (0..p.block_plaintext_size())
            .map(|i| (i * 7) as u8)
            .collect();
        let sealed = seal_block(&p, BlockPos::new(salt, 0, false), &plain).unwrap();
        let originals: Vec<&[u8]> = sealed.pieces[..4].iter().map(|x| &x.shard[..]).collect();
        let whole = reed_solomon_simd::encode(4, 2, &originals).unwrap();
        for (j, parity) in whole.iter().enumerate() {
            assert_eq!(parity, &sealed.pieces[4 + j].shard);
        }
        // And with a strip much shorter than the shard, as for large n.
        assert!(strip_len(255, 16 << 20) < (16 << 20));
        assert_eq!(strip_len(255, 16 << 20) % SHARD_ALIGN, 0);
    }
}
