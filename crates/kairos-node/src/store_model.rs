//! Model-based property test of the piece store: random sequences of stores, sweeps, reads
//! and reopenings, applied in random batches through the writer's [`Apply`] implementation,
//! must behave exactly like a `BTreeMap` with a quota.

use crate::piece::{PieceBody, HEADER_LEN};
use crate::store::{PieceInfo, PieceWrite, PutOutcome, Store};
use crate::writer::{self, Op, Outcome};
use bytes::Bytes;
use kairos_host::writer::Apply;
use kairos_proto::PublicKey;
use proptest::prelude::*;
use std::collections::BTreeMap;

const QUOTA: u64 = 2_000;

#[derive(Clone, Debug)]
enum Step {
    Put {
        hash: u8,
        release: u64,
        keep: u64,
        len: usize,
    },
    Sweep {
        now: u64,
    },
    Read {
        hash: u8,
        now: u64,
    },
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..8, 0u64..50, 0u64..20, 0usize..400)
            .prop_map(|(hash, release, keep, len)| Step::Put { hash, release, keep, len }),
        1 => (0u64..80).prop_map(|now| Step::Sweep { now }),
        3 => (0u8..8, 0u64..80).prop_map(|(hash, now)| Step::Read { hash, now }),
        1 => Just(Step::Reopen),
    ]
}

/// What the store should hold: hash → (release, delete at, bytes).
#[derive(Default)]
struct Model {
    pieces: BTreeMap<u8, (u64, u64, Vec<u8>)>,
    used: u64,
}

impl Model {
    fn put(&mut self, hash: u8, release: u64, delete_at: u64, data: &[u8]) -> PutOutcome {
        if let Some((have, _, _)) = self.pieces.get(&hash) {
            return if *have == release {
                PutOutcome::Existing
            } else {
                PutOutcome::Conflict { release: *have }
            };
        }
        let len = data.len() as u64;
        if self.used + len > QUOTA {
            return PutOutcome::QuotaFull {
                used: self.used,
                quota: QUOTA,
            };
        }
        self.used += len;
        self.pieces
            .insert(hash, (release, delete_at, data.to_vec()));
        PutOutcome::Stored
    }

    fn sweep(&mut self, now: u64) -> u64 {
        let due: Vec<u8> = (self.pieces.iter())
            .filter(|(_, (_, delete_at, _))| *delete_at <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in &due {
            let (_, _, data) = self.pieces.remove(h).unwrap();
            self.used -= data.len() as u64;
        }
        due.len() as u64
    }
}

fn piece_write(hash: u8, release: u64, keep: u64, len: usize) -> PieceWrite {
    PieceWrite {
        hash: [hash; 32],
        info: PieceInfo {
            release,
            stored_at: 0,
            uploader: PublicKey([9; 32]),
            block: u32::from(hash),
            shard: hash,
            len: 0,
        },
        delete_at: release + keep,
        data: Bytes::from(vec![hash ^ (len as u8); len]),
    }
}

fn check_read(store: &Store, model: &Model, hash: u8, now: u64) {
    let got = store.read(&[hash; 32], now).unwrap();
    match (got, model.pieces.get(&hash)) {
        (None, None) => {}
        (Some((info, body)), Some((release, _, data))) => {
            assert_eq!(info.release, *release);
            assert_eq!(info.len, data.len() as u64);
            if now < *release {
                assert!(body.is_none(), "a locked piece's bytes were read");
            } else {
                let body = body.expect("a released piece has its body");
                assert_eq!(&body[HEADER_LEN..], &data[..]);
                let mut header = Vec::new();
                PieceBody::encode_header(&mut header, *release, u32::from(hash), hash);
                assert_eq!(&body[..HEADER_LEN], &header[..]);
            }
        }
        (got, want) => panic!("read {hash}: store has {got:?}, model has {want:?}"),
    }
}

fn run(steps: Vec<Step>, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), 1 << 20).unwrap();
    let mut model = Model::default();
    let mut pending: Vec<Step> = Vec::new();
    let flush = |store: &Store, model: &mut Model, pending: &mut Vec<Step>| {
        let ops: Vec<Op> = (pending.iter())
            .map(|s| match *s {
                Step::Put {
                    hash,
                    release,
                    keep,
                    len,
                } => Op::Put(piece_write(hash, release, keep, len)),
                Step::Sweep { now } => Op::Sweep { now },
                _ => unreachable!(),
            })
            .collect();
        let refs: Vec<&Op> = ops.iter().collect();
        let outcomes = writer::pieces(store.clone(), QUOTA).apply(&refs).unwrap();
        for (op, out) in ops.iter().zip(outcomes) {
            match (op, out) {
                (Op::Put(w), Outcome::Put(got)) => {
                    let want = model.put(w.hash[0], w.info.release, w.delete_at, &w.data);
                    assert_eq!(got, want, "storing {}", w.hash[0]);
                }
                (Op::Sweep { now }, Outcome::Swept(rep)) => {
                    assert_eq!(rep.pieces, model.sweep(*now));
                    assert!(!rep.more);
                }
                _ => panic!("outcome of another kind than its op"),
            }
        }
        pending.clear();
        assert_eq!(store.bytes_used(), model.used);
        assert_eq!(store.piece_count(), model.pieces.len() as u64);
    };
    for s in steps {
        match s {
            Step::Put { .. } | Step::Sweep { .. } => {
                pending.push(s);
                if pending.len() >= batch {
                    flush(&store, &mut model, &mut pending);
                }
            }
            Step::Read { hash, now } => {
                flush(&store, &mut model, &mut pending);
                check_read(&store, &model, hash, now);
            }
            Step::Reopen => {
                flush(&store, &mut model, &mut pending);
                drop(store);
                store = Store::open(dir.path(), 1 << 20).unwrap();
                assert_eq!(store.bytes_used(), model.used, "counters survive a reopen");
                assert_eq!(store.piece_count(), model.pieces.len() as u64);
            }
        }
    }
    flush(&store, &mut model, &mut pending);
    for hash in 0..8 {
        check_read(&store, &model, hash, u64::MAX);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_store_behaves_like_a_map_with_a_quota(
        steps in proptest::collection::vec(step(), 1..60),
        batch in 1usize..6,
    ) {
        run(steps, batch);
    }
}
