//! Coding parameters of a sealed file: how many data and parity shards each block has and how
//! large a shard is.
//!
//! Invariants (checked by [`Params::validate`], relied on everywhere else):
//! * `2 <= k` — with a threshold of 1 every key share *is* the key, so a single peer would hold
//!   data plus key;
//! * `1 <= m` and `k + m <= 255` — Shamir over GF(256) has 255 non-zero share identifiers;
//! * `MIN_SHARD_SIZE <= shard_size <= MAX_SHARD_SIZE` and `shard_size % SHARD_ALIGN == 0`.

use thiserror::Error;

/// Bytes of the AES-256-GCM authentication tag appended to every block's ciphertext.
pub const TAG_LEN: usize = 16;
/// Shard lengths are multiples of this (reed-solomon-simd works on 64-byte chunks fastest and
/// requires an even length).
pub const SHARD_ALIGN: usize = 64;
/// Smallest allowed full shard size.
pub const MIN_SHARD_SIZE: u32 = 4 * 1024;
/// Largest allowed full shard size (bounds the memory a peer or downloader must commit per piece).
pub const MAX_SHARD_SIZE: u32 = 16 * 1024 * 1024;

/// Erasure-coding parameters of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// `k`: data shards per block; also the Shamir threshold.
    pub data_shards: u8,
    /// `m`: parity shards per block; up to `m` pieces of a block may be lost.
    pub parity_shards: u8,
    /// Bytes of every shard of a full block (the last block's shards may be shorter).
    pub shard_size: u32,
}

impl Default for Params {
    /// `k = 4, m = 2`, shards of 1 MiB − 4 KiB.
    ///
    /// * `k = 4, m = 2` (n = 6) fits small networks: six distinct nodes suffice to store a file,
    ///   any two of them may vanish, and an attacker must control four holders of the same block
    ///   to open it early. Storage overhead is 1.5×.
    /// * A shard of 1 MiB − 4 KiB leaves room for the key share and the record header inside one
    ///   1 MiB run of redb pages (redb stores large values in power-of-two runs of pages, so an
    ///   exact 1 MiB shard would occupy 2 MiB). A block then carries 4 × (1 MiB − 4 KiB) − 16
    ///   bytes of plaintext (≈ 4 MiB): large enough to amortise the per-block Shamir split and
    ///   request overhead, small enough that a few blocks in flight stay far below 64 MiB.
    fn default() -> Self {
        Params {
            data_shards: 4,
            parity_shards: 2,
            shard_size: 1024 * 1024 - 4 * 1024,
        }
    }
}

/// Why a set of parameters was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParamsError {
    #[error("data shards k = {0} is out of range: need 2 <= k (k = 1 would hand every peer the whole key)")]
    DataShards(u8),
    #[error("parity shards m = {0} is out of range: need m >= 1")]
    ParityShards(u8),
    #[error("k + m = {0} exceeds 255, the most key shares Shamir over GF(256) can make")]
    TotalShards(usize),
    #[error("shard size {0} is out of range: need {MIN_SHARD_SIZE}..={MAX_SHARD_SIZE} and a multiple of {SHARD_ALIGN}")]
    ShardSize(u32),
}

impl Params {
    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.data_shards < 2 {
            return Err(ParamsError::DataShards(self.data_shards));
        }
        if self.parity_shards < 1 {
            return Err(ParamsError::ParityShards(self.parity_shards));
        }
        if self.total_shards() > 255 {
            return Err(ParamsError::TotalShards(self.total_shards()));
        }
        if !(MIN_SHARD_SIZE..=MAX_SHARD_SIZE).contains(&self.shard_size)
            || self.shard_size as usize % SHARD_ALIGN != 0
        {
            return Err(ParamsError::ShardSize(self.shard_size));
        }
        Ok(())
    }

    /// `k`.
    pub fn k(&self) -> usize {
        self.data_shards as usize
    }

    /// `m`.
    pub fn m(&self) -> usize {
        self.parity_shards as usize
    }

    /// `n = k + m`: pieces per block.
    pub fn total_shards(&self) -> usize {
        self.k() + self.m()
    }

    /// Ciphertext bytes (tag included) of a full block: `k * shard_size`.
    pub fn block_cipher_size(&self) -> usize {
        self.k() * self.shard_size as usize
    }

    /// Plaintext bytes of a full block: `k * shard_size - TAG_LEN`.
    pub fn block_plaintext_size(&self) -> usize {
        self.block_cipher_size() - TAG_LEN
    }

    /// Length of every shard of a block whose ciphertext is `cipher_len` bytes:
    /// `ceil(cipher_len / k)` rounded up to [`SHARD_ALIGN`]. The ciphertext is zero-padded to
    /// `k * shard_len` before erasure coding; `cipher_len` (in the manifest) says where it ends.
    pub fn shard_len_for(&self, cipher_len: usize) -> usize {
        let per_shard = cipher_len.div_ceil(self.k());
        per_shard.div_ceil(SHARD_ALIGN) * SHARD_ALIGN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_fits_a_redb_page_run() {
        let p = Params::default();
        p.validate().unwrap();
        assert!(p.shard_size < 1024 * 1024);
        assert_eq!(
            p.shard_len_for(p.block_cipher_size()),
            p.shard_size as usize
        );
    }

    #[test]
    fn rejects_out_of_range() {
        let ok = Params::default();
        assert!(Params {
            data_shards: 1,
            ..ok
        }
        .validate()
        .is_err());
        assert!(Params {
            parity_shards: 0,
            ..ok
        }
        .validate()
        .is_err());
        assert!(Params {
            data_shards: 200,
            parity_shards: 56,
            ..ok
        }
        .validate()
        .is_err());
        assert!(Params {
            shard_size: 100,
            ..ok
        }
        .validate()
        .is_err());
        assert!(Params {
            shard_size: MIN_SHARD_SIZE + 1,
            ..ok
        }
        .validate()
        .is_err());
    }

    #[test]
    fn shard_len_is_aligned_and_covers_the_ciphertext() {
        let p = Params::default();
        for len in [16, 17, 63, 64, 65, 1000, 4 * 64 + 1] {
            let s = p.shard_len_for(len);
            assert_eq!(s % SHARD_ALIGN, 0);
            assert!(s * p.k() >= len);
            assert!((s - SHARD_ALIGN) * p.k() < len);
        }
    }
}
