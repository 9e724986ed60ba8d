//! Sample version 2 objects shared by the integration tests.
#![allow(dead_code)]

use kairos_proto::{
    ContentBlock, ContentManifest, DrandLock, Identity, LockSection, PlacementRecord,
    SignedContentManifest,
};
use kairos_seal::Params;

pub fn small_params(k: u8, m: u8) -> Params {
    Params {
        data_shards: k,
        parity_shards: m,
        shard_size: 4096,
    }
}

/// drand quicknet: its chain hash, genesis (Unix time of round 1) and period.
pub const QUICKNET_HASH: &str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
pub const QUICKNET_GENESIS: u64 = 1_692_803_367;
pub const QUICKNET_PERIOD: u64 = 3;

pub const CREATED: u64 = 1_800_000_000;
pub const RELEASE: u64 = 1_800_003_600;

pub fn drand_lock(release: u64, ciphertext_len: usize) -> LockSection {
    let chain_hash = data_encoding::HEXLOWER
        .decode(QUICKNET_HASH.as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    let round =
        DrandLock::first_round_at_or_after(release, QUICKNET_GENESIS, QUICKNET_PERIOD).unwrap();
    LockSection::DrandTlock(DrandLock {
        chain_hash,
        round,
        ciphertext: (0..ciphertext_len).map(|i| (i * 7 + 1) as u8).collect(),
    })
}

/// A consistent content manifest with `blocks` blocks, the last one short.
pub fn content(
    uploader: &Identity,
    blocks: usize,
    params: Params,
    lock: LockSection,
) -> ContentManifest {
    let n = params.total_shards();
    let blocks = (0..blocks)
        .map(|b| ContentBlock {
            cipher_len: if b + 1 == blocks {
                100
            } else {
                params.block_cipher_size() as u32
            },
            hashes: (0..n).map(|i| [(b * 31 + i) as u8; 32]).collect(),
        })
        .collect();
    ContentManifest {
        uploader: uploader.public(),
        created: CREATED,
        release: RELEASE,
        salt: [7; 32],
        params,
        lock,
        blocks,
    }
}

/// A placement of `manifest` on `n + 1` holders, rotating per block.
pub fn placement(manifest: &SignedContentManifest, seq: u64) -> PlacementRecord {
    let m = manifest.manifest();
    let n = m.params.total_shards();
    let holders: Vec<_> = (0..n + 1)
        .map(|i| Identity::from_seed(&[i as u8 + 100; 32]).public())
        .collect();
    let blocks = (0..m.blocks.len())
        .map(|b| (0..n).map(|i| ((b + i) % holders.len()) as u16).collect())
        .collect();
    PlacementRecord {
        file_id: manifest.id(),
        seq,
        created: CREATED + 10,
        holders,
        blocks,
    }
}
