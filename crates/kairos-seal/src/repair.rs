//! Rebuilding one lost piece of a block bit for bit, without opening the block: the shard by
//! Reed-Solomon from any `k` shards of the block ([`rebuild_shard`]), the key share by
//! [`crate::regenerate_share`] from the per-file repair seed. Used by the uploader's node to
//! repair a block that lost holders before release.
//!
//! Invariant: the shards handed in are trusted to be the block's (the caller checked their
//! piece hashes or, for shards fetched without their shares, checks the rebuilt piece's hash
//! against the manifest before using it); nothing here decrypts.

use crate::error::SealError;
use crate::params::Params;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

fn rs(e: reed_solomon_simd::Error) -> SealError {
    SealError::Internal {
        stage: "reed-solomon repair",
        detail: e.to_string(),
    }
}

/// Shard `want` (0-based, `< k + m`) of a block of `params`, from at least `k` other shards of
/// the same block given as `(index, bytes)` (all of one length, a multiple of 64).
pub fn rebuild_shard(
    params: &Params,
    have: &[(usize, &[u8])],
    want: usize,
) -> Result<Vec<u8>, SealError> {
    params.validate()?;
    let (k, m, n) = (params.k(), params.m(), params.total_shards());
    if want >= n {
        return Err(SealError::PieceIndex { piece: want, n });
    }
    if let Some((_, s)) = have.iter().find(|(i, _)| *i == want) {
        return Ok(s.to_vec());
    }
    let shard_len = have.first().map_or(0, |(_, s)| s.len());
    let mut dec = ReedSolomonDecoder::new(k, m, shard_len).map_err(rs)?;
    let mut originals: Vec<Option<Vec<u8>>> = vec![None; k];
    for &(i, s) in have {
        if i >= n || s.len() != shard_len {
            return Err(SealError::PieceIndex { piece: i, n });
        }
        if i < k {
            dec.add_original_shard(i, s).map_err(rs)?;
            originals[i] = Some(s.to_vec());
        } else {
            dec.add_recovery_shard(i - k, s).map_err(rs)?;
        }
    }
    if originals.iter().any(Option::is_none) {
        let restored = dec.decode().map_err(rs)?;
        for (i, s) in restored.restored_original_iter() {
            originals[i] = Some(s.to_vec());
        }
    }
    if want < k {
        return originals[want].take().ok_or_else(|| SealError::Internal {
            stage: "reed-solomon repair",
            detail: format!("shard {want} was not restored"),
        });
    }
    let mut enc = ReedSolomonEncoder::new(k, m, shard_len).map_err(rs)?;
    for s in originals.iter().flatten() {
        enc.add_original_shard(s).map_err(rs)?;
    }
    let out = enc.encode().map_err(rs)?;
    out.recovery(want - k)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| SealError::Internal {
            stage: "reed-solomon repair",
            detail: format!("recovery shard {} missing", want - k),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::seal::seal_block_with;
    use crate::keys::{piece_hash, BlockPos};
    use crate::schedule::{regenerate_share, KeySchedule, LockSecret, RepairSeed};

    #[test]
    fn every_piece_of_a_block_is_rebuilt_bit_identical_from_k_others() {
        let params = Params {
            data_shards: 4,
            parity_shards: 2,
            shard_size: 64 * 1024,
        };
        let seed = RepairSeed::from_bytes(&[9u8; 32]);
        let schedule = KeySchedule::V2 {
            repair_seed: RepairSeed::from_bytes(&[9u8; 32]),
            lock_secret: LockSecret::none(),
        };
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i * 13) as u8).collect();
        let pos = BlockPos::new([1u8; 32], 0, true);
        let block = seal_block_with(&params, &schedule, pos, &plain).unwrap();
        let hashes = block.hashes();
        let pieces: Vec<(Vec<u8>, Vec<u8>)> = block
            .piece_refs()
            .into_iter()
            .map(|p| {
                let (share, shard) = p.unwrap();
                (share.to_vec(), shard.to_vec())
            })
            .collect();
        for want in 0..6 {
            // The k pieces furthest from `want`, so recovery shards are used too.
            let have: Vec<(usize, &[u8])> = (0..6)
                .filter(|&i| i != want)
                .rev()
                .take(4)
                .map(|i| (i, pieces[i].1.as_slice()))
                .collect();
            let shard = rebuild_shard(&params, &have, want).unwrap();
            let share = regenerate_share(&seed, 0, want, &params).unwrap();
            assert_eq!(shard, pieces[want].1, "shard {want}");
            assert_eq!(piece_hash(&share[..], &shard), hashes[want], "piece {want}");
        }
        let too_few: Vec<(usize, &[u8])> = (1..4).map(|i| (i, pieces[i].1.as_slice())).collect();
        assert!(rebuild_shard(&params, &too_few, 0).is_err());
    }
}
