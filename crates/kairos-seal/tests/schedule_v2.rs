//! The v2 key schedule through the public API: deterministic sealing (threads or not, stream or
//! single block), opening only with the file's lock secret, and share regeneration for every
//! block and piece.

use kairos_seal::{
    open_block_with, piece_hash, regenerate_share, seal_block_with, BlockPieces, BlockPos,
    KeySchedule, LockSecret, OpenError, OpenSchedule, Opener, Params, PieceHash, RepairSeed,
    SealedBlock, Sealer,
};
use proptest::prelude::*;

const NAME: &str = "v2.bin";

fn params(k: u8, m: u8) -> Params {
    Params {
        data_shards: k,
        parity_shards: m,
        shard_size: 4096,
    }
}

fn schedule(seed: u8, lock: Option<u8>) -> KeySchedule {
    KeySchedule::V2 {
        lock_secret: lock.map_or_else(LockSecret::none, |t| LockSecret::from_bytes(&[t; 32])),
        repair_seed: RepairSeed::from_bytes(&[seed; 32]),
    }
}

fn seal(
    file: &[u8],
    p: Params,
    salt: [u8; 32],
    s: KeySchedule,
    threads: usize,
) -> Vec<SealedBlock> {
    Sealer::with_schedule(file, p, NAME, threads, salt, s)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Opens `blocks` on `threads` threads under `s`.
fn open(
    blocks: &[SealedBlock],
    p: Params,
    salt: [u8; 32],
    s: OpenSchedule,
    threads: usize,
) -> Result<Vec<u8>, OpenError> {
    let hashes: Vec<Vec<PieceHash>> = blocks.iter().map(SealedBlock::hashes).collect();
    let mut opener = Opener::with_schedule(Vec::new(), p, salt, blocks.len() as u32, s);
    let inputs = blocks
        .iter()
        .zip(&hashes)
        .map(|(b, h)| BlockPieces::from_sealed(b, h));
    opener.push_blocks(inputs, threads)?;
    Ok(opener.finish_with_writer()?.1)
}

#[test]
fn wrong_lock_secret_or_schedule_is_a_typed_error() {
    let p = params(3, 2);
    let file: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let salt = [4u8; 32];
    let s = schedule(1, Some(7));
    let blocks = seal(&file, p, salt, s.clone(), 2);
    assert!(blocks.len() > 1);
    for threads in [1, 2] {
        assert_eq!(
            open(&blocks, p, salt, s.for_opening(), threads).unwrap(),
            file
        );
        for bad in [
            OpenSchedule::V2 {
                lock_secret: LockSecret::none(),
            },
            OpenSchedule::V2 {
                lock_secret: LockSecret::from_bytes(&[8; 32]),
            },
            OpenSchedule::V1,
        ] {
            let err = open(&blocks, p, salt, bad, threads).unwrap_err();
            assert!(matches!(err, OpenError::Decrypt { block: 0 }), "{err}");
        }
    }
    // A v1 file does not open as v2 either.
    let v1 = seal(&file, p, salt, KeySchedule::V1, 1);
    let err = open(&v1, p, salt, schedule(1, None).for_opening(), 1).unwrap_err();
    assert!(matches!(err, OpenError::Decrypt { block: 0 }), "{err}");
}

#[test]
fn lock_none_is_the_zero_secret_and_still_v2() {
    let p = params(2, 1);
    let salt = [5u8; 32];
    let blocks = seal(b"abc", p, salt, schedule(2, None), 1);
    let zero = OpenSchedule::V2 {
        lock_secret: LockSecret::from_bytes(&[0; 32]),
    };
    assert_eq!(open(&blocks, p, salt, zero, 1).unwrap(), b"abc");
}

#[test]
fn single_block_api_matches_the_stream_and_opens() {
    let p = params(2, 2);
    let salt = [6u8; 32];
    let s = schedule(3, Some(1));
    let plain = vec![0x5a; 1000];
    let pos = BlockPos::new(salt, 9, true);
    let a = seal_block_with(&p, &s, pos, &plain).unwrap();
    let b = seal_block_with(&p, &s, pos, &plain).unwrap();
    assert_eq!(a, b, "v2 sealing is deterministic");
    let got = open_block_with(
        &p,
        &s.for_opening(),
        pos,
        a.cipher_len,
        &a.hashes(),
        &a.piece_refs(),
    )
    .unwrap();
    assert_eq!(got, plain);
    // Another block index or repair seed gives other shares.
    let c = seal_block_with(&p, &s, BlockPos::new(salt, 10, true), &plain).unwrap();
    assert_ne!(a.pieces[0].share, c.pieces[0].share);
    let d = seal_block_with(&p, &schedule(4, Some(1)), pos, &plain).unwrap();
    assert_ne!(a.pieces[0].share, d.pieces[0].share);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every share of every block is regenerated bit for bit, and with the sealed shard gives
    /// the piece hash the manifest lists; sealing on threads gives the same bytes.
    #[test]
    fn regenerate_share_equals_every_sealed_share(
        k in 2u8..=5, m in 1u8..=3, size in 0usize..40_000, seed in any::<u8>(), lock in any::<Option<u8>>(),
    ) {
        let p = params(k, m);
        let file: Vec<u8> = (0..size).map(|i| (i as u8) ^ seed).collect();
        let salt = [seed; 32];
        let s = schedule(seed, lock);
        let blocks = seal(&file, p, salt, s.clone(), 1);
        prop_assert_eq!(&blocks, &seal(&file, p, salt, s.clone(), 2));
        let KeySchedule::V2 { repair_seed, .. } = &s else { unreachable!() };
        for b in &blocks {
            for (j, piece) in b.pieces.iter().enumerate() {
                let share = regenerate_share(repair_seed, b.index, j, &p).unwrap();
                prop_assert_eq!(*share, piece.share);
                prop_assert_eq!(piece_hash(&share[..], &piece.shard), piece.hash);
            }
        }
        prop_assert_eq!(open(&blocks, p, salt, s.for_opening(), 1).unwrap(), file);
    }
}
