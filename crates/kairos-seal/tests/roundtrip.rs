//! Property tests of the public API: seal then open across file sizes, parameters, erasures and
//! corruption, plus hostile inputs that must fail cleanly (typed errors, no panics).

use kairos_seal::{
    block_count, open_block, piece_hash, seal_block, BlockPieces, BlockPos, FileSalt, OpenError,
    Opener, Params, PieceHash, SealedBlock, Sealer, SHARE_LEN,
};
use proptest::prelude::*;

const NAME: &str = "file.bin";
/// Header (6 + name) and trailer (40) bytes around the file in the framed stream.
const OVERHEAD: usize = 6 + NAME.len() + 40;

fn params(k: u8, m: u8) -> Params {
    Params {
        data_shards: k,
        parity_shards: m,
        shard_size: 4096,
    }
}

fn file_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn seal(file: &[u8], p: Params, threads: usize) -> (FileSalt, Vec<SealedBlock>) {
    let sealer = Sealer::new(file, p, NAME, threads).unwrap();
    let salt = sealer.salt();
    let blocks: Vec<SealedBlock> = sealer.collect::<Result<_, _>>().unwrap();
    (salt, blocks)
}

/// File sizes around the block boundaries of the framed stream, and a few random ones.
fn file_size(p: Params) -> impl Strategy<Value = usize> {
    let b = p.block_plaintext_size();
    prop_oneof![
        Just(0usize),
        Just(1usize),
        (1usize..=3, -1isize..=1).prop_map(move |(j, d)| (j * b - OVERHEAD).wrapping_add_signed(d)),
        0usize..3 * b,
    ]
}

fn params_strategy() -> impl Strategy<Value = Params> {
    (2u8..=6, 1u8..=4).prop_map(|(k, m)| params(k, m))
}

/// What happens to one piece.
#[derive(Clone, Debug)]
enum Damage {
    Lost,
    /// Flip a bit of the share at this offset.
    Share(usize),
    /// Flip a bit of the shard at this offset (modulo its length).
    Shard(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Lost),
        (0..SHARE_LEN).prop_map(Damage::Share),
        any::<usize>().prop_map(Damage::Shard),
    ]
}

/// Applies `damage` to the listed pieces of a copy of `block`; returns the damaged copy, the
/// slot mask and the (missing, corrupt) index lists.
fn damaged(
    block: &SealedBlock,
    hits: &[(usize, Damage)],
) -> (SealedBlock, Vec<bool>, Vec<usize>, Vec<usize>) {
    let mut copy = block.clone();
    let mut present = vec![true; block.pieces.len()];
    let (mut missing, mut corrupt) = (Vec::new(), Vec::new());
    for (i, d) in hits {
        match d {
            Damage::Lost => {
                present[*i] = false;
                missing.push(*i);
            }
            Damage::Share(at) => {
                copy.pieces[*i].share[*at] ^= 0x01;
                corrupt.push(*i);
            }
            Damage::Shard(at) => {
                let len = copy.pieces[*i].shard.len();
                copy.pieces[*i].shard[*at % len] ^= 0x80;
                corrupt.push(*i);
            }
        }
    }
    missing.sort_unstable();
    corrupt.sort_unstable();
    (copy, present, missing, corrupt)
}

fn slots<'a>(block: &'a SealedBlock, present: &[bool]) -> Vec<Option<(&'a [u8], &'a [u8])>> {
    block
        .piece_refs()
        .into_iter()
        .zip(present)
        .map(|(s, &keep)| if keep { s } else { None })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any file opens again, with up to m pieces of every block lost.
    #[test]
    fn roundtrip_with_erasures(
        (p, size) in params_strategy().prop_flat_map(|p| (Just(p), file_size(p))),
        seed in any::<u8>(),
        threads in 1usize..=2,
        erasures in proptest::collection::vec(proptest::sample::subsequence((0..10).collect::<Vec<usize>>(), 0..=4), 4),
    ) {
        let file = file_bytes(size, seed);
        let (salt, blocks) = seal(&file, p, threads);
        prop_assert_eq!(blocks.len() as u64, block_count(&p, NAME.len(), size as u64));
        let hashes: Vec<Vec<PieceHash>> = blocks.iter().map(SealedBlock::hashes).collect();
        let mut opener = Opener::new(Vec::new(), p, salt, blocks.len() as u32);
        let inputs = blocks.iter().zip(&hashes).enumerate().map(|(b, (block, h))| {
            let mut input = BlockPieces::from_sealed(block, h);
            let lost = &erasures[b % erasures.len()];
            for &i in lost.iter().filter(|&&i| i < p.total_shards()).take(p.m()) {
                input.pieces[i] = None;
            }
            input
        });
        opener.push_blocks(inputs, threads).unwrap();
        let (info, out) = opener.finish_with_writer().unwrap();
        prop_assert!(out == file);
        prop_assert_eq!(info.name, NAME);
        prop_assert_eq!(info.size, size as u64);
        prop_assert_eq!(info.hash, *blake3::hash(&file).as_bytes());
    }

    /// Corrupted pieces are caught by their hash and treated as erasures: the block opens with
    /// up to m bad pieces; with more, the error lists exactly the missing and corrupt ones.
    #[test]
    fn corruption_is_detected(
        p in params_strategy(),
        len in 0usize..20_000,
        hits in proptest::collection::btree_map(0usize..10, damage(), 1..=6),
    ) {
        let len = len.min(p.block_plaintext_size());
        let plain = file_bytes(len, 3);
        let salt = [9u8; 32];
        let block = seal_block(&p, BlockPos::new(salt, 2, true), &plain).unwrap();
        let hits: Vec<(usize, Damage)> = hits.into_iter().filter(|(i, _)| *i < p.total_shards()).collect();
        let (bad, present, missing, corrupt) = damaged(&block, &hits);
        let result = open_block(&p, BlockPos::new(salt, 2, true), block.cipher_len, &block.hashes(), &slots(&bad, &present));
        if hits.len() <= p.m() {
            prop_assert_eq!(result.unwrap(), plain);
        } else {
            match result {
                Err(OpenError::NotEnoughPieces { block: 2, needed, good, missing: mi, corrupt: co }) => {
                    prop_assert_eq!(needed, p.k());
                    prop_assert_eq!(good, p.total_shards() - hits.len());
                    prop_assert_eq!(mi, missing);
                    prop_assert_eq!(co, corrupt);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    /// Garbage in any argument of `open_block` is an error, never a panic.
    #[test]
    fn hostile_inputs_fail_cleanly(
        k in 0u8..8, m in 0u8..5,
        shard_size in prop_oneof![Just(4096u32), Just(100u32), any::<u32>()],
        cipher_len in prop_oneof![any::<u32>(), 0u32..40_000],
        is_last in any::<bool>(),
        n_slots in 0usize..12,
        share_len in prop_oneof![Just(SHARE_LEN), 0usize..40],
        shard_len in prop_oneof![0usize..200, Just(4096usize), Just(8192usize)],
        honest_hashes in any::<bool>(),
        fill in any::<u8>(),
    ) {
        let p = Params { data_shards: k, parity_shards: m, shard_size };
        let raw: Vec<(Vec<u8>, Vec<u8>)> = (0..n_slots)
            .map(|i| {
                let mut share = vec![fill; share_len];
                if let Some(x) = share.first_mut() { *x = i as u8 + 1; }
                (share, vec![fill ^ i as u8; shard_len])
            })
            .collect();
        // With honest hashes the garbage passes the hash check and reaches Shamir and AES-GCM.
        let hashes: Vec<PieceHash> = raw
            .iter()
            .map(|(s, d)| if honest_hashes { piece_hash(s, d) } else { [fill; 32] })
            .collect();
        let slots: Vec<Option<(&[u8], &[u8])>> = raw.iter().map(|(s, d)| Some((&s[..], &d[..]))).collect();
        let r = open_block(&p, BlockPos::new([0u8; 32], 0, is_last), cipher_len, &hashes, &slots);
        prop_assert!(r.is_err());
    }
}

#[test]
fn wrong_salt_or_order_or_count_fails_cleanly() {
    let p = params(2, 1);
    let file = file_bytes(3 * p.block_plaintext_size(), 1);
    let (salt, blocks) = seal(&file, p, 1);
    assert_eq!(blocks.len(), 4);
    let hashes: Vec<Vec<PieceHash>> = blocks.iter().map(SealedBlock::hashes).collect();
    let refs: Vec<_> = blocks.iter().map(SealedBlock::piece_refs).collect();

    // Wrong salt: AES-GCM rejects block 0.
    let mut o = Opener::new(Vec::new(), p, [0u8; 32], 4);
    let e = o
        .push_block(0, blocks[0].cipher_len, &hashes[0], &refs[0])
        .unwrap_err();
    assert!(matches!(e, OpenError::Decrypt { block: 0 }), "{e}");
    assert!(e.is_retryable());

    // Pieces of block 1 presented as block 0 (same length, right salt): rejected.
    let mut o = Opener::new(Vec::new(), p, salt, 4);
    let e = o
        .push_block(0, blocks[1].cipher_len, &hashes[1], &refs[1])
        .unwrap_err();
    assert!(matches!(e, OpenError::Decrypt { block: 0 }), "{e}");
    // The opener is unchanged by that failure: the right pieces still work.
    o.push_block(0, blocks[0].cipher_len, &hashes[0], &refs[0])
        .unwrap();
    // Skipping a block is refused.
    let e = o
        .push_block(2, blocks[2].cipher_len, &hashes[2], &refs[2])
        .unwrap_err();
    assert!(matches!(
        e,
        OpenError::UnexpectedBlock {
            expected: 1,
            got: 2
        }
    ));

    // Truncation: claim the file has 3 blocks; block 2 is then "last" but was sealed as not last.
    let mut o = Opener::new(Vec::new(), p, salt, 3);
    for b in 0..2 {
        o.push_block(
            b,
            blocks[b as usize].cipher_len,
            &hashes[b as usize],
            &refs[b as usize],
        )
        .unwrap();
    }
    let e = o
        .push_block(2, blocks[2].cipher_len, &hashes[2], &refs[2])
        .unwrap_err();
    assert!(matches!(e, OpenError::Decrypt { block: 2 }), "{e}");

    // Stopping early is caught by finish.
    let mut o = Opener::new(Vec::new(), p, salt, 4);
    o.push_block(0, blocks[0].cipher_len, &hashes[0], &refs[0])
        .unwrap();
    assert!(matches!(
        o.finish(),
        Err(OpenError::MissingBlocks {
            expected: 4,
            got: 1
        })
    ));

    // Parallel opening reports an out-of-order block after writing the ones before it.
    let mut o = Opener::new(Vec::new(), p, salt, 4);
    let inputs = [0usize, 1, 3].map(|i| BlockPieces::from_sealed(&blocks[i], &hashes[i]));
    let e = o.push_blocks(inputs, 2).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::UnexpectedBlock {
                expected: 2,
                got: 3
            }
        ),
        "{e}"
    );
    o.push_block(2, blocks[2].cipher_len, &hashes[2], &refs[2])
        .unwrap();
    o.push_block(3, blocks[3].cipher_len, &hashes[3], &refs[3])
        .unwrap();
    let (info, out) = o.finish_with_writer().unwrap();
    assert_eq!(out, file);
    assert_eq!(info.size, file.len() as u64);
}

#[test]
fn error_message_names_missing_and_corrupt_shards() {
    let p = params(3, 1);
    let block = seal_block(&p, BlockPos::new([1u8; 32], 5, true), b"abc").unwrap();
    let mut bad = block.clone();
    bad.pieces[2].shard[0] ^= 1;
    let mut refs = bad.piece_refs();
    refs[0] = None;
    let e = open_block(
        &p,
        BlockPos::new([1u8; 32], 5, true),
        block.cipher_len,
        &block.hashes(),
        &refs,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("block 5"), "{msg}");
    assert!(msg.contains("missing shard indexes [0]"), "{msg}");
    assert!(
        msg.contains("corrupt (hash mismatch or wrong length) shard indexes [2]"),
        "{msg}"
    );
}

#[test]
fn sealer_recycles_buffers_and_keeps_order_with_threads() {
    let p = params(2, 2);
    let file = file_bytes(10 * p.block_plaintext_size() + 5, 7);
    for threads in [1, 2, 3] {
        let mut sealer = Sealer::new(&file[..], p, NAME, threads).unwrap();
        let salt = sealer.salt();
        let mut opener = Opener::new(
            Vec::new(),
            p,
            salt,
            block_count(&p, NAME.len(), file.len() as u64) as u32,
        );
        let mut expected_index = 0;
        while let Some(b) = sealer.next() {
            let b = b.unwrap();
            assert_eq!(b.index, expected_index);
            expected_index += 1;
            opener
                .push_block(b.index, b.cipher_len, &b.hashes(), &b.piece_refs())
                .unwrap();
            sealer.recycle(b);
        }
        let (_, out) = opener.finish_with_writer().unwrap();
        assert_eq!(out, file);
    }
}

#[test]
fn rejects_bad_names_and_params() {
    assert!(Sealer::new(&b""[..], params(2, 1), &"x".repeat(256), 1).is_err());
    assert!(Sealer::new(&b""[..], params(1, 1), "x", 1).is_err());
    assert!(seal_block(&params(2, 1), BlockPos::new([0; 32], 0, false), b"short").is_err());
    let p = params(2, 1);
    let too_big = vec![0u8; p.block_plaintext_size() + 1];
    assert!(seal_block(&p, BlockPos::new([0; 32], 0, true), &too_big).is_err());
}

/// A reader that fails after `ok` bytes.
struct Failing {
    ok: usize,
}

impl std::io::Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        buf[..n].fill(0xAB);
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn reader_errors_end_the_sealer_with_a_typed_error() {
    let p = params(2, 1);
    for threads in [1, 2] {
        let sealer = Sealer::new(
            Failing {
                ok: 3 * p.block_plaintext_size(),
            },
            p,
            NAME,
            threads,
        )
        .unwrap();
        let results: Vec<_> = sealer.collect();
        let last = results.last().unwrap();
        assert!(
            matches!(last, Err(kairos_seal::SealError::Io(_))),
            "{last:?}"
        );
        assert!(results[..results.len() - 1].iter().all(Result::is_ok));
    }
}

#[test]
fn parallel_open_stops_at_a_bad_block_and_can_resume() {
    let p = params(2, 1);
    let file = file_bytes(6 * p.block_plaintext_size(), 5);
    let (salt, blocks) = seal(&file, p, 2);
    let hashes: Vec<Vec<PieceHash>> = blocks.iter().map(SealedBlock::hashes).collect();
    let mut o = Opener::new(Vec::new(), p, salt, blocks.len() as u32);
    let inputs = blocks.iter().zip(&hashes).map(|(b, h)| {
        let mut input = BlockPieces::from_sealed(b, h);
        if b.index == 2 {
            // Two of three pieces gone: block 2 cannot open.
            input.pieces[0] = None;
            input.pieces[2] = None;
        }
        input
    });
    let e = o.push_blocks(inputs, 2).unwrap_err();
    assert!(
        matches!(&e, OpenError::NotEnoughPieces { block: 2, good: 1, missing, .. } if missing == &vec![0, 2]),
        "{e}"
    );
    assert!(e.is_retryable());
    // Resume from block 2 with all pieces.
    let rest = blocks[2..]
        .iter()
        .zip(&hashes[2..])
        .map(|(b, h)| BlockPieces::from_sealed(b, h));
    o.push_blocks(rest, 2).unwrap();
    let (_, out) = o.finish_with_writer().unwrap();
    assert_eq!(out, file);
}

proptest! {
    /// Pieces that match their (forged) manifest hashes but carry garbage key shares: a typed
    /// error, never a panic or wrong plaintext.
    #[test]
    fn forged_shares_fail_cleanly(p in params_strategy(), garbage in any::<[u8; 32]>(), swap in any::<bool>()) {
        let salt = [4u8; 32];
        let mut block = seal_block(&p, BlockPos::new(salt, 0, true), b"secret stuff").unwrap();
        if swap {
            // Shares moved to the wrong piece positions.
            let first = block.pieces[0].share;
            block.pieces[0].share = block.pieces[1].share;
            block.pieces[1].share = first;
        } else {
            // Right x-coordinate, wrong y values.
            block.pieces[0].share[1..].copy_from_slice(&garbage);
        }
        let hashes: Vec<PieceHash> = block.pieces.iter().map(|x| piece_hash(&x.share, &x.shard)).collect();
        let r = open_block(&p, BlockPos::new(salt, 0, true), block.cipher_len, &hashes, &block.piece_refs());
        if swap {
            prop_assert!(matches!(r, Err(OpenError::BadShare { block: 0, piece: 0 })), "{:?}", r);
        } else {
            prop_assert!(matches!(r, Err(OpenError::Decrypt { block: 0 })), "{:?}", r);
        }
    }
}

#[test]
fn stream_types_can_move_to_worker_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Sealer<std::fs::File>>();
    send::<Opener<std::fs::File>>();
    send::<SealedBlock>();
    send::<kairos_seal::SealError>();
    send::<OpenError>();
    sync::<kairos_seal::SealError>();
    sync::<OpenError>();
}
