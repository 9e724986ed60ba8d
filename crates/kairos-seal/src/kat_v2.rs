//! Known-answer tests of the v2 key schedule: pins v2 sealing byte for byte.
//!
//! `testdata/seal/kat-v2.json` (at the workspace root) holds small files sealed by the public
//! [`Sealer::with_schedule`] under [`KeySchedule::V2`] with fixed salts, repair seeds and lock
//! secrets (no test-only hooks: v2 sealing is deterministic). The tests
//! 1. re-seal every case (in the caller's thread and on worker threads) and require identical
//!    pieces;
//! 2. open the committed pieces with the right lock secret (also with data pieces lost), and
//!    fail with a typed error under a wrong lock secret or the v1 schedule;
//! 3. require [`regenerate_share`] to give every committed share.
//!
//! Unlike the v1 vectors, these are **never regenerated once v2 data exists**: the repair of
//! stored files rebuilds shares from the repair seed, so a change here (for example a vsss-rs
//! upgrade that draws its coefficients differently) would make stored pieces unrepairable.
//! The generator below exists for the first commit of the vectors only.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::OpenError;
use crate::kat::{hex, unhex, KatBlock, KatPiece};
use crate::params::Params;
use crate::schedule::{
    block_secret_v2, regenerate_share, KeySchedule, LockSecret, OpenSchedule, RepairSeed,
};
use crate::stream::{Opener, Sealer};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct KatV2File {
    comment: String,
    cases: Vec<KatV2Case>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct KatV2Case {
    label: String,
    k: u8,
    m: u8,
    shard_size: u32,
    salt: String,
    repair_seed: String,
    /// `T`; all zeros for a file without a drand lock.
    lock_secret: String,
    file_name: String,
    file: String,
    /// `secret` of each block is the derived v2 block secret (for reference).
    blocks: Vec<KatBlock>,
}

impl KatV2Case {
    fn params(&self) -> Params {
        Params {
            data_shards: self.k,
            parity_shards: self.m,
            shard_size: self.shard_size,
        }
    }

    fn seed(&self) -> RepairSeed {
        RepairSeed::from_bytes(&unhex(&self.repair_seed).try_into().unwrap())
    }

    fn lock(&self) -> LockSecret {
        LockSecret::from_bytes(&unhex(&self.lock_secret).try_into().unwrap())
    }

    fn salt(&self) -> [u8; 32] {
        unhex(&self.salt).try_into().unwrap()
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seal/kat-v2.json")
}

/// Fixed inputs: label, params, file name, file bytes, whether the file has a drand lock.
fn inputs() -> Vec<(&'static str, Params, &'static str, Vec<u8>, bool)> {
    let two_blocks: Vec<u8> = (0..9000u32).map(|i| (i * 31 + 7) as u8).collect();
    let p = |k, m| Params {
        data_shards: k,
        parity_shards: m,
        shard_size: 4096,
    };
    vec![
        (
            "small file, no drand lock (T = 0), k=3 m=2",
            p(3, 2),
            "hello.txt",
            b"hello, kairos\n".to_vec(),
            false,
        ),
        (
            "two blocks, drand lock T, k=2 m=1",
            p(2, 1),
            "données.bin",
            two_blocks,
            true,
        ),
    ]
}

/// Seals `file` under the V2 schedule on `threads` threads.
fn seal_case(
    params: Params,
    name: &str,
    file: &[u8],
    salt: [u8; 32],
    schedule: KeySchedule,
    threads: usize,
) -> Vec<crate::SealedBlock> {
    Sealer::with_schedule(file, params, name, threads, salt, schedule)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn generate(threads: usize) -> KatV2File {
    let mut cases = Vec::new();
    for (case_no, (label, params, name, file, locked)) in inputs().into_iter().enumerate() {
        let n = [case_no as u8];
        let salt = blake3::derive_key("kairos seal kat v2 salt", &n);
        let seed = RepairSeed::from_bytes(&blake3::derive_key("kairos seal kat v2 seed", &n));
        let lock = if locked {
            LockSecret::from_bytes(&blake3::derive_key("kairos seal kat v2 lock", &n))
        } else {
            LockSecret::none()
        };
        let schedule = KeySchedule::V2 {
            lock_secret: lock.clone(),
            repair_seed: seed.clone(),
        };
        let sealed = seal_case(params, name, &file, salt, schedule, threads);
        let count = sealed.len();
        let blocks = sealed
            .into_iter()
            .map(|b| KatBlock {
                index: b.index,
                is_last: b.index as usize + 1 == count,
                secret: hex(&block_secret_v2(&seed, b.index)[..]),
                cipher_len: b.cipher_len,
                pieces: b
                    .pieces
                    .iter()
                    .map(|p| KatPiece {
                        share: hex(&p.share),
                        shard: hex(&p.shard),
                        hash: hex(&p.hash),
                    })
                    .collect(),
            })
            .collect();
        cases.push(KatV2Case {
            label: label.into(),
            k: params.data_shards,
            m: params.parity_shards,
            shard_size: params.shard_size,
            salt: hex(&salt),
            repair_seed: hex(seed.as_bytes()),
            lock_secret: hex(lock.as_bytes()),
            file_name: name.into(),
            file: hex(&file),
            blocks,
        });
    }
    KatV2File {
        comment: "kairos-seal key schedule v2 known-answer vectors; never regenerate once v2 \
                  data exists (repair regenerates shares from the repair seed); see \
                  crates/kairos-seal/src/kat_v2.rs"
            .into(),
        cases,
    }
}

fn load() -> KatV2File {
    let text = std::fs::read_to_string(path()).expect("testdata/seal/kat-v2.json exists");
    serde_json::from_str(&text).expect("valid KAT JSON")
}

#[test]
fn v2_sealing_matches_committed_vectors() {
    let committed = load();
    for threads in [1, 3] {
        let fresh = generate(threads);
        assert_eq!(committed.cases.len(), fresh.cases.len());
        for (c, f) in committed.cases.iter().zip(&fresh.cases) {
            assert_eq!(c.blocks.len(), f.blocks.len(), "{}: block count", c.label);
            for (cb, fb) in c.blocks.iter().zip(&f.blocks) {
                for (i, (cp, fp)) in cb.pieces.iter().zip(&fb.pieces).enumerate() {
                    let at = format!("{} block {} piece {i}", c.label, cb.index);
                    assert_eq!(cp.shard, fp.shard, "{at}: shard drifted");
                    assert_eq!(cp.share, fp.share, "{at}: share drifted");
                    assert_eq!(cp.hash, fp.hash, "{at}: hash drifted");
                }
            }
            assert_eq!(c, f, "{}: other fields drifted", c.label);
        }
    }
}

/// Opens a committed case under `schedule`, with the first `lose` pieces of every block lost.
fn open_case(case: &KatV2Case, schedule: OpenSchedule, lose: usize) -> Result<Vec<u8>, OpenError> {
    let count = case.blocks.len() as u32;
    let mut opener = Opener::with_schedule(Vec::new(), case.params(), case.salt(), count, schedule);
    for b in &case.blocks {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = b
            .pieces
            .iter()
            .map(|p| (unhex(&p.share), unhex(&p.shard)))
            .collect();
        let hashes: Vec<[u8; 32]> = b
            .pieces
            .iter()
            .map(|p| unhex(&p.hash).try_into().unwrap())
            .collect();
        let slots: Vec<Option<(&[u8], &[u8])>> = raw
            .iter()
            .enumerate()
            .map(|(i, (s, d))| (i >= lose).then_some((&s[..], &d[..])))
            .collect();
        opener.push_block(b.index, b.cipher_len, &hashes, &slots)?;
    }
    let (info, out) = opener.finish_with_writer()?;
    assert_eq!(info.name, case.file_name);
    Ok(out)
}

#[test]
fn committed_v2_vectors_open_only_with_their_lock_secret() {
    for case in load().cases {
        let right = OpenSchedule::V2 {
            lock_secret: case.lock(),
        };
        for lose in [0, case.params().m()] {
            let out = open_case(&case, right.clone(), lose).unwrap();
            assert_eq!(hex(&out), case.file, "{}", case.label);
        }
        let mut wrong_t = *case.lock().as_bytes();
        wrong_t[31] ^= 1;
        let wrong = OpenSchedule::V2 {
            lock_secret: LockSecret::from_bytes(&wrong_t),
        };
        for schedule in [wrong, OpenSchedule::V1] {
            let err = open_case(&case, schedule, 0).unwrap_err();
            assert!(
                matches!(err, OpenError::Decrypt { block: 0 }),
                "{}: {err}",
                case.label
            );
            assert!(err.is_retryable());
        }
    }
}

#[test]
fn regenerated_shares_equal_the_committed_ones() {
    for case in load().cases {
        let (params, seed) = (case.params(), case.seed());
        for b in &case.blocks {
            for (j, p) in b.pieces.iter().enumerate() {
                let share = regenerate_share(&seed, b.index, j, &params).unwrap();
                assert_eq!(
                    hex(&share[..]),
                    p.share,
                    "{} block {} piece {j}",
                    case.label,
                    b.index
                );
            }
        }
    }
}

/// Writes the vectors from the current code. Only for their first commit (see the module docs).
#[test]
#[ignore = "writes testdata/seal/kat-v2.json; never run once v2 data exists"]
fn generate_v2_vectors() {
    let mut text = serde_json::to_string_pretty(&generate(1)).unwrap();
    text.push('\n');
    std::fs::write(path(), text).unwrap();
}
