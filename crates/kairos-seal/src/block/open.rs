//! Opening one block: check the pieces against the manifest, recover the secret, rebuild lost
//! data shards, decrypt.
//!
//! The byte layout is in [`crate::block`]. The steps of [`open_block_into`]: `OpenShape::check`
//! (piece count and ciphertext length against the parameters), `Triage::verify` (hash the data
//! pieces while copying them into place; parity pieces only if data pieces are lost),
//! `recover_secret`, `reconstruct` (only if data pieces are lost), `decrypt_in_place`.
//!
//! Invariants: no byte of a piece is used before the piece's hash matched the manifest (a piece
//! that fails is an erasure; fewer than `k` intact pieces is [`OpenError::NotEnoughPieces`]),
//! and plaintext is handed back only after AES-GCM authenticated it against the block's
//! [`BlockPos`]. Pure: a failure changes nothing but the output buffer, so the same block can be
//! tried again with other pieces.

use std::cell::RefCell;

use aws_lc_rs::aead::{Aad, Nonce};
use reed_solomon_simd::ReedSolomonDecoder;
use zeroize::Zeroizing;

use super::decode::{use_high_rate, StripDecoder};
use super::{aead_key, hash_boundary};
use crate::error::OpenError;
use crate::keys::{
    combine_secret, piece_hasher, BlockPos, CombineError, PieceHash, SECRET_LEN, SHARE_LEN,
};
use crate::params::{Params, TAG_LEN};
use crate::schedule::{Keying, OpenSchedule};

/// Strip length when hashing and copying shards while opening.
const OPEN_STRIP: usize = 64 * 1024;

thread_local! {
    // The Reed-Solomon decoder keeps its work space between blocks (see the encoder in
    // `seal.rs`); it holds a few shards' worth of memory once a thread opened a degraded block.
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
    // The strip-wise decoder used instead when the code is high-rate (see `decode.rs`).
    static STRIP_DECODER: RefCell<Option<StripDecoder>> = const { RefCell::new(None) };
}

/// One piece slot as the open functions take it: `(share, shard)`, or `None` if not fetched.
type Slot<'a> = Option<(&'a [u8], &'a [u8])>;

/// Opens one block of a format 1 file from its pieces; returns the plaintext (see
/// [`open_block_with`] for any format).
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
    open_block_into_with(
        params,
        &OpenSchedule::V1,
        pos,
        cipher_len,
        expected,
        pieces,
        out,
    )
}

/// [`open_block`] for a file sealed under any key schedule (format 2: [`OpenSchedule::V2`]
/// with the file's lock secret). A wrong lock secret fails with [`OpenError::Decrypt`].
pub fn open_block_with(
    params: &Params,
    schedule: &OpenSchedule,
    pos: BlockPos,
    cipher_len: u32,
    expected: &[PieceHash],
    pieces: &[Option<(&[u8], &[u8])>],
) -> Result<Vec<u8>, OpenError> {
    let mut out = Vec::new();
    open_block_into_with(
        params, schedule, pos, cipher_len, expected, pieces, &mut out,
    )?;
    Ok(out)
}

/// [`open_block_into`] for a file sealed under any key schedule.
pub fn open_block_into_with(
    params: &Params,
    schedule: &OpenSchedule,
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
    decrypt_in_place(&pos, schedule.keying(), secret, out)?;
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
    keying: Keying<'_>,
    secret: Zeroizing<[u8; SECRET_LEN]>,
    buf: &mut [u8],
) -> Result<(), OpenError> {
    let key = keying.block_key(pos, &secret);
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
/// their ciphertext part into `out`: strip by strip when the code is high-rate (the usual
/// case), else with `reed-solomon-simd`'s whole-shard decoder.
fn reconstruct(
    shape: &OpenShape,
    pieces: &[Slot<'_>],
    good: &[usize],
    out: &mut [u8],
) -> Result<(), OpenError> {
    let (k, shard_len, c) = (shape.k, shape.shard_len, shape.cipher_len);
    if use_high_rate(k, shape.m) {
        let mut shards: Vec<Option<&[u8]>> = vec![None; shape.n()];
        for &i in good {
            shards[i] = pieces[i].map(|p| p.1);
        }
        STRIP_DECODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let decoder = slot.get_or_insert_with(StripDecoder::new);
            decoder.decode(k, shape.m, shard_len, &shards, |i, off, strip| {
                let start = i * shard_len + off;
                let end = (start + strip.len()).min(c);
                if start < end {
                    out[start..end].copy_from_slice(&strip[..end - start]);
                }
            });
        });
        return Ok(());
    }
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
    use crate::block::seal::seal_block;

    fn small(k: u8, m: u8) -> Params {
        Params {
            data_shards: k,
            parity_shards: m,
            shard_size: 4096,
        }
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
