//! Strip-wise Reed-Solomon decoding for opening degraded blocks.
//!
//! `reed-solomon-simd`'s decoder works on whole shards: for a block of ~1 MiB shards its
//! transform touches `work_count` (8 for k = 4, m = 2) shard-sized buffers several times, far
//! more than L2 holds, and it copies every input shard into that work space first. This module
//! runs the same algorithm (the crate's high-rate decoder, built from its public `engine`
//! primitives) column strip by column strip: the erasure-locator polynomial depends only on
//! which pieces are present, so it is evaluated once per block, and each strip's work space
//! stays in cache while it is loaded, transformed and copied out.
//!
//! Invariants: the result is the unique Reed-Solomon reconstruction of the lost data shards,
//! bit-for-bit what `ReedSolomonDecoder` returns (a unit test compares the two); it is used only
//! when the crate itself would pick its high-rate code for `k, m` (`use_high_rate` below), as
//! decoding must use the rate the encoder used. Shard lengths are multiples of 64 bytes.

use reed_solomon_simd::engine::utils::xor_within;
use reed_solomon_simd::engine::{DefaultEngine, Engine, ShardsRefMut, GF_MODULUS, GF_ORDER};

use crate::params::SHARD_ALIGN;

/// Bytes of each shard decoded together: the `work_count` strips (8 for `k = 4, m = 2`) stay
/// in L2 through the transforms.
const DECODE_STRIP: usize = 32 * 1024;

/// Whether `reed-solomon-simd` encodes `k` originals and `m` recovery shards with its high-rate
/// code (mirrors its `DefaultRate` choice; `k, m <= 255` here).
pub(super) fn use_high_rate(k: usize, m: usize) -> bool {
    let (kp, mp) = (k.next_power_of_two(), m.next_power_of_two());
    kp > mp || (kp == mp && k <= m)
}

/// A reusable strip decoder: the SIMD engine, the erasure-locator table and the work space.
pub(super) struct StripDecoder {
    engine: DefaultEngine,
    erasures: Box<[u16; GF_ORDER]>,
    /// The work positions that were present when `erasures` was evaluated (blocks of a file
    /// usually lose the same pieces, so the table is reused).
    erasures_for: Vec<bool>,
    work: Vec<[u8; 64]>,
}

impl StripDecoder {
    pub fn new() -> Self {
        StripDecoder {
            engine: DefaultEngine::new(),
            erasures: Box::new([0; GF_ORDER]),
            erasures_for: Vec::new(),
            work: Vec::new(),
        }
    }

    /// Rebuilds the data shards missing from `shards` (index `< k`: data, `>= k`: parity; at
    /// least `k` present, all `shard_len` bytes) and hands each rebuilt strip to
    /// `restored(data index, offset in shard, bytes)`.
    pub fn decode(
        &mut self,
        k: usize,
        m: usize,
        shard_len: usize,
        shards: &[Option<&[u8]>],
        mut restored: impl FnMut(usize, usize, &[u8]),
    ) {
        debug_assert!(use_high_rate(k, m) && shard_len % SHARD_ALIGN == 0);
        let chunk_size = m.next_power_of_two();
        let original_end = chunk_size + k;
        let work_count = original_end.next_power_of_two();
        // Work position of shard i: parity j at j, data i at chunk_size + i.
        let position = |i: usize| if i < k { chunk_size + i } else { i - k };
        let mut present = vec![false; original_end];
        for (i, s) in shards.iter().enumerate() {
            present[position(i)] = s.is_some();
        }
        if present != self.erasures_for {
            let erasures = &mut self.erasures;
            erasures.fill(0);
            for (e, &p) in erasures.iter_mut().zip(&present) {
                *e = u16::from(!p);
            }
            DefaultEngine::eval_poly(erasures, original_end);
            self.erasures_for = present;
        }
        let erasures = &self.erasures;
        // The shard (if present) that loads each work position.
        let mut source: Vec<Option<&[u8]>> = vec![None; work_count];
        for (i, s) in shards.iter().enumerate() {
            source[position(i)] = *s;
        }
        let strip = DECODE_STRIP.min(shard_len);
        let mut off = 0;
        while off < shard_len {
            let w = strip.min(shard_len - off);
            let len64 = w / 64;
            self.work.resize(work_count * len64, [0; 64]);
            let mut work =
                ShardsRefMut::new(work_count, len64, &mut self.work[..work_count * len64]);
            for (p, s) in source.iter().enumerate() {
                match s {
                    Some(s) => {
                        work[p].as_flattened_mut().copy_from_slice(&s[off..off + w]);
                        self.engine.mul(&mut work[p], erasures[p]);
                    }
                    None => work.zero(p..p + 1),
                }
            }
            self.engine.ifft(&mut work, 0, work_count, original_end, 0);
            formal_derivative(&mut work);
            self.engine.fft(&mut work, 0, work_count, original_end, 0);
            for (i, s) in shards.iter().enumerate().take(k) {
                if s.is_none() {
                    let p = position(i);
                    self.engine.mul(&mut work[p], GF_MODULUS - erasures[p]);
                    restored(i, off, work[p].as_flattened());
                }
            }
            off += w;
        }
    }
}

/// The formal derivative step of the decoder (as in `reed-solomon-simd`).
fn formal_derivative(data: &mut ShardsRefMut<'_>) {
    for i in 1..data.len() {
        let width = 1 << i.trailing_zeros();
        xor_within(data, i - width, i, width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dec: &mut StripDecoder, k: usize, m: usize, shard_len: usize, lost: &[usize]) {
        let originals: Vec<Vec<u8>> = (0..k)
            .map(|i| {
                (0..shard_len)
                    .map(|b| (b * 31 + i * 7 + b / 251) as u8)
                    .collect()
            })
            .collect();
        let recovery = reed_solomon_simd::encode(k, m, &originals).unwrap();
        let all: Vec<&[u8]> = originals.iter().chain(&recovery).map(|s| &s[..]).collect();
        let mut shards: Vec<Option<&[u8]>> = all.iter().map(|s| Some(*s)).collect();
        for &i in lost {
            shards[i] = None;
        }
        let mut got = vec![vec![0u8; shard_len]; k];
        dec.decode(k, m, shard_len, &shards, |i, off, bytes| {
            got[i][off..off + bytes.len()].copy_from_slice(bytes);
        });
        for &i in lost.iter().filter(|&&i| i < k) {
            assert_eq!(got[i], originals[i], "k={k} m={m} lost={lost:?}");
        }
    }

    #[test]
    fn strip_decoding_restores_lost_originals() {
        // One decoder throughout: the cached erasure table must follow the pattern.
        let dec = &mut StripDecoder::new();
        check(dec, 4, 2, 3 * DECODE_STRIP + 640, &[0, 2]);
        check(dec, 4, 2, 1024, &[0, 2]);
        check(dec, 4, 2, 1024, &[3, 4]);
        check(dec, 5, 1, 4096, &[0]);
        check(dec, 4, 4, 4096, &[0, 1, 6]);
        check(dec, 3, 3, 2 * DECODE_STRIP, &[0, 1, 2]);
        check(dec, 10, 4, 4096, &[1, 5, 9, 11]);
        check(dec, 2, 1, 64, &[1]);
        assert!(use_high_rate(4, 2) && use_high_rate(3, 3) && !use_high_rate(2, 5));
    }
}
