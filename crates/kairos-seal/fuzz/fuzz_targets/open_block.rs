//! `open_block` on hostile pieces: a valid sealed block whose shares and shards the fuzzer
//! edits, presented with either the original or "honest" (recomputed) hashes, plus arbitrary
//! slot masks and ciphertext lengths. Must never panic; may open only to the original plaintext.
#![no_main]

use std::sync::OnceLock;

use kairos_seal::{open_block, piece_hash, seal_block, BlockPos, Params, SealedBlock};
use libfuzzer_sys::fuzz_target;

const SALT: [u8; 32] = [7; 32];
const PLAIN: &[u8] = b"fuzzing kairos: the quick brown fox jumps over the lazy dog";

fn params() -> Params {
    Params {
        data_shards: 3,
        parity_shards: 2,
        shard_size: 4096,
    }
}

fn sealed() -> &'static SealedBlock {
    static BLOCK: OnceLock<SealedBlock> = OnceLock::new();
    BLOCK.get_or_init(|| seal_block(&params(), BlockPos::new(SALT, 1, true), PLAIN).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, edits)) = data.split_first() else {
        return;
    };
    let mut block = sealed().clone();
    let mut present = [true; 5];
    for (i, p) in present.iter_mut().enumerate() {
        *p = ctl & (1 << i) != 0;
    }
    let honest = ctl & 0x20 != 0;
    let cipher_len = if ctl & 0x40 != 0 && edits.len() >= 4 {
        u32::from_le_bytes(edits[..4].try_into().unwrap())
    } else {
        block.cipher_len
    };
    let is_last = ctl & 0x80 == 0;
    // Each edit: piece, offset (2 bytes), xor value; offsets past the share go into the shard.
    for e in edits.chunks_exact(4) {
        let piece = &mut block.pieces[e[0] as usize % 5];
        let at = u16::from_le_bytes([e[1], e[2]]) as usize;
        if at < piece.share.len() {
            piece.share[at] ^= e[3];
        } else {
            let len = piece.shard.len();
            piece.shard[(at - piece.share.len()) % len] ^= e[3];
        }
    }
    let hashes: Vec<[u8; 32]> = if honest {
        block
            .pieces
            .iter()
            .map(|p| piece_hash(&p.share, &p.shard))
            .collect()
    } else {
        sealed().hashes()
    };
    let slots: Vec<Option<(&[u8], &[u8])>> = block
        .pieces
        .iter()
        .zip(present)
        .map(|(p, keep)| keep.then_some((&p.share[..], &p.shard[..])))
        .collect();
    if let Ok(plain) = open_block(
        &params(),
        BlockPos::new(SALT, 1, is_last),
        cipher_len,
        &hashes,
        &slots,
    ) {
        assert_eq!(
            plain, PLAIN,
            "opened to something other than the sealed plaintext"
        );
    }
});
