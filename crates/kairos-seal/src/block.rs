//! Sealing and opening one block: AES-256-GCM, Reed-Solomon, Shamir, piece hashes.
//!
//! # Layout of a sealed block
//!
//! ```text
//! plaintext (P bytes, P <= params.block_plaintext_size(); P is the full size unless last)
//!   -> AES-256-GCM(key = block_key(salt, index, s), nonce = block_nonce(index),
//!                  aad = salt || index u32 LE || is_last u8)
//!   -> ciphertext || tag                       cipher_len = P + 16 bytes
//!   -> zero padding to k * L                   L = params.shard_len_for(cipher_len)
//!   -> data shard i = padded[i*L .. (i+1)*L]   for i in 0..k  (systematic code)
//!      parity shard j = RS(k, m) parity j      for j in 0..m  (reed-solomon-simd)
//! s (32 random bytes) -> Shamir GF(256), threshold k, n = k + m shares; share i has x = i + 1
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
//!   that has opened a degraded block.
//! * Piece hashes are fed in updates that start on 16 KiB boundaries of the hash input (see
//!   [`hash_boundary`]); the result is the same as hashing in one go, only faster.

use std::cell::RefCell;
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rand::{CryptoRng, RngCore};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{OpenError, SealError};
use crate::keys::{
    combine_secret, new_secret, piece_hasher, split_secret, BlockPos, CombineError, KeyShare,
    PieceHash, SECRET_LEN, SHARE_LEN,
};
use crate::params::{Params, SHARD_ALIGN, TAG_LEN};

/// Bytes of all `n` strips processed together while sealing: small enough to stay in L2 with
/// the RS encoder's work space, large enough that BLAKE3 gets its full SIMD width per update.
const STRIP_WORKING_SET: usize = 384 * 1024;
/// Smallest strip (BLAKE3's AVX-512 path hashes 16 chunks of 1 KiB at a time).
const MIN_STRIP: usize = 16 * 1024;
/// Strip length when hashing and copying shards while opening.
const OPEN_STRIP: usize = 64 * 1024;

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

    /// All `n` pieces as the `(share, shard)` slots [`open_block`] takes.
    pub fn piece_refs(&self) -> Vec<Option<(&[u8], &[u8])>> {
        self.pieces
            .iter()
            .map(|p| Some((&p.share[..], &p.shard[..])))
            .collect()
    }
}

thread_local! {
    // Reed-Solomon coders keep their work space between blocks: allocating it per block would
    // cost page faults on every block. One per thread keeps the per-block functions pure.
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
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

/// Seals one block of plaintext with a fresh random secret.
///
/// `plaintext` must be exactly `params.block_plaintext_size()` bytes unless `pos.is_last`, when
/// it may be shorter (even empty). Pure: no I/O besides drawing randomness.
pub fn seal_block(
    params: &Params,
    pos: BlockPos,
    plaintext: &[u8],
) -> Result<SealedBlock, SealError> {
    params.validate()?;
    check_plaintext(params, &pos, plaintext.len())?;
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN + params.k() * SHARD_ALIGN);
    buf.extend_from_slice(plaintext);
    let secret = new_secret();
    seal_in_place(
        params,
        pos,
        &mut buf,
        &secret,
        &mut rand::thread_rng(),
        None,
    )
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
    seal_in_place(params, pos, &mut buf, secret, shamir_rng, None)
}

/// The sealing core. `buf` holds the plaintext; it is encrypted and padded in place (so the
/// caller can reuse it for the next block) and copied into the shards strip by strip. Shard
/// buffers come from `pool` when it has some.
pub(crate) fn seal_in_place<G: RngCore + CryptoRng>(
    params: &Params,
    pos: BlockPos,
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
    encrypt_in_place(&pos, secret, buf)?;
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

/// The AES-256-GCM key for the 32 key bytes of [`BlockPos::key`].
fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, aws_lc_rs::error::Unspecified> {
    UnboundKey::new(&AES_256_GCM, &key[..]).map(LessSafeKey::new)
}

/// Encrypts the plaintext in `buf` in place and appends the tag.
fn encrypt_in_place(
    pos: &BlockPos,
    secret: &[u8; SECRET_LEN],
    buf: &mut Vec<u8>,
) -> Result<(), SealError> {
    let key = aead_key(&pos.key(secret)).map_err(|e| seal_internal("aead key")(e.to_string()))?;
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

/// Strip length for `n` shards of `shard_len` bytes: a multiple of [`SHARD_ALIGN`] (the RS
/// code's position-wise unit) that keeps the `n` strips near [`STRIP_WORKING_SET`].
fn strip_len(n: usize, shard_len: usize) -> usize {
    let per = (STRIP_WORKING_SET / n).max(MIN_STRIP);
    let per = per / SHARD_ALIGN * SHARD_ALIGN;
    per.min(shard_len).max(SHARD_ALIGN)
}

/// One piece slot as the open functions take it: `(share, shard)`, or `None` if not fetched.
type Slot<'a> = Option<(&'a [u8], &'a [u8])>;

/// Opens one block from its pieces; returns the plaintext.
///
/// `expected` holds the `n` piece hashes from the manifest and `pieces` the `n` slots in shard
/// order (`None` = not fetched). A piece whose hash does not match is an erasure; with at least
/// `k` intact pieces the block opens. See [`open_block_into`] to reuse an output buffer.
pub fn open_block(
    params: &Params,
    pos: BlockPos,
    cipher_len: u32,
    expected: &[PieceHash],
    pieces: &[Option<(&[u8], &[u8])>],
) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::new();
    open_block_into(params, pos, cipher_len, expected, pieces, &mut out)?;
    Ok(out)
}

/// [`open_block`] writing the plaintext into `out` (replacing its contents). Reusing `out`
/// across blocks avoids allocating and zeroing a block-sized buffer each time. On error `out`
/// holds unspecified bytes.
pub fn open_block_into(
    params: &Params,
    pos: BlockPos,
    cipher_len: u32,
    expected: &[PieceHash],
    pieces: &[Option<(&[u8], &[u8])>],
    out: &mut Vec<u8>,
) -> Result<(), OpenError> {
    let shape = OpenShape::check(params, &pos, cipher_len, expected.len(), pieces.len())?;
    let c = shape.cipher_len;
    // Grow without zeroing what a reused buffer already holds; every byte below `c` is
    // overwritten by a data shard or a reconstructed one.
    if out.len() < c {
        out.resize(c, 0);
    } else {
        out.truncate(c);
    }

    // 1-2. Verify pieces: data pieces are copied into `out` as they are hashed; parity pieces
    //      are hashed only if data pieces are lost.
    let triage = Triage::verify(&shape, expected, pieces, out)?;

    // 3. The block secret from the k intact shares.
    let secret = recover_secret(shape.block, &triage.good, pieces)?;

    // 4. Rebuild lost data shards from the intact ones (skipped when all data is there).
    if triage.data_good < shape.k {
        reconstruct(&shape, pieces, &triage.good, out)?;
    }

    // 5. Decrypt and authenticate in place.
    decrypt_in_place(&pos, secret, out)?;
    out.truncate(c - TAG_LEN);
    Ok(())
}

/// The dimensions of a block being opened, after checking the caller's and the manifest's
/// claims (piece count, ciphertext length) against the parameters.
struct OpenShape {
    block: u32,
    k: usize,
    m: usize,
    shard_len: usize,
    /// Ciphertext bytes including the tag.
    cipher_len: usize,
}

impl OpenShape {
    fn check(
        params: &Params,
        pos: &BlockPos,
        cipher_len: u32,
        hashes: usize,
        pieces: usize,
    ) -> Result<Self, OpenError> {
        params.validate()?;
        let (block, n) = (pos.index, params.total_shards());
        if hashes != n || pieces != n {
            return Err(OpenError::PieceCount {
                block,
                expected: n,
                pieces,
                hashes,
            });
        }
        let c = cipher_len as usize;
        let bad_len = |reason| OpenError::CipherLen {
            block,
            cipher_len,
            reason,
        };
        if c < TAG_LEN {
            return Err(bad_len("shorter than the authentication tag"));
        }
        if c > params.block_cipher_size() {
            return Err(bad_len("longer than a full block"));
        }
        if !pos.is_last && c != params.block_cipher_size() {
            return Err(bad_len("every block but the last is full"));
        }
        Ok(OpenShape {
            block,
            k: params.k(),
            m: params.m(),
            shard_len: params.shard_len_for(c),
            cipher_len: c,
        })
    }

    fn n(&self) -> usize {
        self.k + self.m
    }
}

/// Which pieces of a block are intact (hash matches the manifest), missing or corrupt.
struct Triage {
    /// Intact pieces, data pieces first; exactly `k` once [`Triage::verify`] succeeds.
    good: Vec<usize>,
    /// How many of `good` are data pieces.
    data_good: usize,
    missing: Vec<usize>,
    corrupt: Vec<usize>,
}

impl Triage {
    /// Hashes the data pieces, copying each into place in `out` while it is hashed (one read
    /// pass); then, only if data pieces are lost, hashes parity pieces until `k` are intact.
    /// Fails with [`OpenError::NotEnoughPieces`] if fewer than `k` are.
    fn verify(
        shape: &OpenShape,
        expected: &[PieceHash],
        pieces: &[Slot<'_>],
        out: &mut [u8],
    ) -> Result<Triage, OpenError> {
        let (k, n, shard_len, c) = (shape.k, shape.n(), shape.shard_len, shape.cipher_len);
        let mut t = Triage {
            good: Vec::with_capacity(n),
            data_good: 0,
            missing: Vec::new(),
            corrupt: Vec::new(),
        };
        for i in 0..k {
            let base = i * shard_len;
            t.check(i, pieces[i], &expected[i], shard_len, |off, strip| {
                let (start, end) = (base + off, (base + off + strip.len()).min(c));
                if start < end {
                    out[start..end].copy_from_slice(&strip[..end - start]);
                }
            });
        }
        t.data_good = t.good.len();
        if t.data_good < k {
            for i in k..n {
                if t.good.len() == k {
                    break;
                }
                t.check(i, pieces[i], &expected[i], shard_len, |_, _| ());
            }
        }
        if t.good.len() < k {
            return Err(OpenError::NotEnoughPieces {
                block: shape.block,
                needed: k,
                good: t.good.len(),
                missing: t.missing,
                corrupt: t.corrupt,
            });
        }
        Ok(t)
    }

    /// Sorts piece `i` into good, missing or corrupt (wrong lengths or hash mismatch);
    /// `on_strip` sees the shard strip by strip as it is hashed.
    fn check(
        &mut self,
        i: usize,
        slot: Slot<'_>,
        expected: &PieceHash,
        shard_len: usize,
        on_strip: impl FnMut(usize, &[u8]),
    ) {
        let Some((share, shard)) = slot else {
            self.missing.push(i);
            return;
        };
        if share.len() == SHARE_LEN
            && shard.len() == shard_len
            && hash_piece(share, shard, on_strip) == *expected
        {
            self.good.push(i);
        } else {
            self.corrupt.push(i);
        }
    }
}

/// `piece_hash(share, shard)`, fed in strips aligned for BLAKE3 (see [`hash_boundary`]);
/// `on_strip(offset, strip)` sees each strip right after it was hashed, while it is in cache.
fn hash_piece(share: &[u8], shard: &[u8], mut on_strip: impl FnMut(usize, &[u8])) -> blake3::Hash {
    let mut hasher = piece_hasher(share);
    let mut off = 0;
    while off < shard.len() {
        let end = hash_boundary(off + OPEN_STRIP)
            .max(off + 1)
            .min(shard.len());
        let strip = &shard[off..end];
        hasher.update(strip);
        on_strip(off, strip);
        off = end;
    }
    hasher.finalize()
}

/// The block secret from the shares of the intact pieces `good`.
fn recover_secret(
    block: u32,
    good: &[usize],
    pieces: &[Slot<'_>],
) -> Result<Zeroizing<[u8; SECRET_LEN]>, OpenError> {
    let shares: Vec<(usize, &[u8])> = good
        .iter()
        .map(|&i| (i, pieces[i].map(|p| p.0).unwrap_or_default()))
        .collect();
    combine_secret(&shares).map_err(|e| match e {
        CombineError::Misplaced(piece) => OpenError::BadShare { block, piece },
        CombineError::Invalid => OpenError::Internal {
            block,
            stage: "shamir combine",
            detail: "vsss-rs rejected well-formed shares".into(),
        },
    })
}

/// Decrypts and authenticates the ciphertext + tag in `buf` in place (the plaintext is left in
/// front of the tag). The secret is wiped as soon as the key is derived.
fn decrypt_in_place(
    pos: &BlockPos,
    secret: Zeroizing<[u8; SECRET_LEN]>,
    buf: &mut [u8],
) -> Result<(), OpenError> {
    let key = pos.key(&secret);
    drop(secret);
    let key = aead_key(&key).map_err(|e| OpenError::Internal {
        block: pos.index,
        stage: "aead key",
        detail: e.to_string(),
    })?;
    key.open_in_place(
        Nonce::assume_unique_for_key(pos.nonce()),
        Aad::from(pos.aad()),
        buf,
    )
    .map_err(|_| OpenError::Decrypt { block: pos.index })?;
    Ok(())
}

/// Runs `f` with this thread's Reed-Solomon decoder, set up for the block's `k + m` shards.
fn with_decoder<T>(
    shape: &OpenShape,
    f: impl FnOnce(&mut ReedSolomonDecoder) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    let (k, m, shard_len) = (shape.k, shape.m, shape.shard_len);
    let rs_err = |e: reed_solomon_simd::Error| rs_decode_error(shape.block, e);
    DECODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decoder = match slot.as_mut() {
            Some(dec) => {
                dec.reset(k, m, shard_len).map_err(rs_err)?;
                dec
            }
            None => slot.insert(ReedSolomonDecoder::new(k, m, shard_len).map_err(rs_err)?),
        };
        f(decoder)
    })
}

fn rs_decode_error(block: u32, e: reed_solomon_simd::Error) -> OpenError {
    OpenError::Internal {
        block,
        stage: "reed-solomon decode",
        detail: e.to_string(),
    }
}

/// Reed-Solomon-decodes the missing data shards from the `k` intact pieces in `good` and copies
/// their ciphertext part into `out`.
fn reconstruct(
    shape: &OpenShape,
    pieces: &[Slot<'_>],
    good: &[usize],
    out: &mut [u8],
) -> Result<(), OpenError> {
    let (k, shard_len, c) = (shape.k, shape.shard_len, shape.cipher_len);
    let rs_err = |e| rs_decode_error(shape.block, e);
    with_decoder(shape, |decoder| {
        for &i in good {
            let shard = pieces[i].map(|p| p.1).unwrap_or_default();
            if i < k {
                decoder.add_original_shard(i, shard).map_err(rs_err)?;
            } else {
                decoder.add_recovery_shard(i - k, shard).map_err(rs_err)?;
            }
        }
        let result = decoder.decode().map_err(rs_err)?;
        for (i, shard) in result.restored_original_iter() {
            let (start, end) = (i * shard_len, ((i + 1) * shard_len).min(c));
            if start < end {
                out[start..end].copy_from_slice(&shard[..end - start]);
            }
        }
        Ok(())
    })
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

    #[test]
    fn roundtrip_healthy_and_degraded() {
        let p = small(3, 2);
        let salt = [1u8; 32];
        for len in [0, 1, 100, p.block_plaintext_size()] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = seal_block(&p, BlockPos::new(salt, 7, true), &plain).unwrap();
            assert_eq!(sealed.pieces.len(), 5);
            let hashes = sealed.hashes();
            let mut refs = sealed.piece_refs();
            let got = open_block(
                &p,
                BlockPos::new(salt, 7, true),
                sealed.cipher_len,
                &hashes,
                &refs,
            )
            .unwrap();
            assert_eq!(got, plain);
            refs[0] = None;
            refs[2] = None;
            let got = open_block(
                &p,
                BlockPos::new(salt, 7, true),
                sealed.cipher_len,
                &hashes,
                &refs,
            )
            .unwrap();
            assert_eq!(got, plain);
            refs[3] = None;
            let err = open_block(
                &p,
                BlockPos::new(salt, 7, true),
                sealed.cipher_len,
                &hashes,
                &refs,
            )
            .unwrap_err();
            assert!(
                matches!(err, OpenError::NotEnoughPieces { good: 2, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn wrong_position_or_salt_fails_cleanly() {
        let p = small(2, 1);
        let salt = [1u8; 32];
        let sealed = seal_block(&p, BlockPos::new(salt, 3, true), b"hello").unwrap();
        let (h, r, c) = (sealed.hashes(), sealed.piece_refs(), sealed.cipher_len);
        assert!(matches!(
            open_block(&p, BlockPos::new([2u8; 32], 3, true), c, &h, &r),
            Err(OpenError::Decrypt { block: 3 })
        ));
        assert!(matches!(
            open_block(&p, BlockPos::new(salt, 4, true), c, &h, &r),
            Err(OpenError::Decrypt { block: 4 })
        ));
        // Claiming a short block is not the last is rejected before any crypto.
        assert!(matches!(
            open_block(&p, BlockPos::new(salt, 3, false), c, &h, &r),
            Err(OpenError::CipherLen { .. })
        ));
    }
}
