//! Known-answer tests: pins the sealed format byte for byte.
//!
//! `testdata/seal/kat-v1.json` (at the workspace root) holds small files sealed with fixed
//! salts, fixed block secrets and a fixed stream for the Shamir coefficients. The tests
//! 1. re-seal every case and require identical ciphertext lengths, shares, shards and hashes
//!    (so any drift in framing, key derivation, AES-GCM use, Reed-Solomon layout, Shamir
//!    encoding or piece hashing fails loudly), and
//! 2. open the committed pieces (with parity standing in for lost data shards) and require the
//!    original file back (so data sealed by this version stays readable).
//!
//! The Shamir shares also depend on how vsss-rs draws its coefficients from the RNG; if an
//! upgrade of vsss-rs changes that, (1) fails on shares alone while (2) still passes, and the
//! vectors may be regenerated after review:
//! `cargo test -p kairos-seal --lib kat::regenerate -- --ignored`.

use std::path::PathBuf;

use data_encoding::HEXLOWER;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::block::seal::seal_block_with_secret;
use crate::block::SealedBlock;
use crate::frame::Framer;
use crate::keys::BlockPos;
use crate::params::Params;
use crate::stream::Opener;

/// A deterministic "CSPRNG" for the test vectors only: the BLAKE3 XOF of a seed.
struct XofRng(blake3::OutputReader);

impl XofRng {
    fn new(seed: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key("kairos seal kat shamir rng");
        h.update(seed);
        XofRng(h.finalize_xof())
    }
}

impl RngCore for XofRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for XofRng {}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub(crate) struct KatFile {
    pub(crate) comment: String,
    pub(crate) cases: Vec<KatCase>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub(crate) struct KatCase {
    pub(crate) label: String,
    pub(crate) k: u8,
    pub(crate) m: u8,
    pub(crate) shard_size: u32,
    pub(crate) salt: String,
    pub(crate) file_name: String,
    pub(crate) file: String,
    pub(crate) blocks: Vec<KatBlock>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub(crate) struct KatBlock {
    pub(crate) index: u32,
    pub(crate) is_last: bool,
    pub(crate) secret: String,
    pub(crate) cipher_len: u32,
    pub(crate) pieces: Vec<KatPiece>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub(crate) struct KatPiece {
    pub(crate) share: String,
    pub(crate) shard: String,
    pub(crate) hash: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seal/kat-v1.json")
}

pub(crate) fn hex(b: &[u8]) -> String {
    HEXLOWER.encode(b)
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    HEXLOWER.decode(s.as_bytes()).expect("hex in test vectors")
}

/// Fixed inputs of the vectors: label, params, file name, file bytes.
fn inputs() -> Vec<(&'static str, Params, &'static str, Vec<u8>)> {
    let two_blocks: Vec<u8> = (0..9000u32).map(|i| (i * 31 + 7) as u8).collect();
    vec![
        (
            "empty file, k=2 m=1",
            Params {
                data_shards: 2,
                parity_shards: 1,
                shard_size: 4096,
            },
            "",
            Vec::new(),
        ),
        (
            "small file, k=3 m=2",
            Params {
                data_shards: 3,
                parity_shards: 2,
                shard_size: 4096,
            },
            "hello.txt",
            b"hello, kairos\n".to_vec(),
        ),
        (
            "two blocks, k=2 m=1",
            Params {
                data_shards: 2,
                parity_shards: 1,
                shard_size: 4096,
            },
            "données.bin",
            two_blocks,
        ),
    ]
}

/// Seals every case deterministically.
fn generate() -> KatFile {
    let mut cases = Vec::new();
    for (case_no, (label, params, name, file)) in inputs().into_iter().enumerate() {
        let salt = blake3::derive_key("kairos seal kat salt", &[case_no as u8]);
        let mut framer = Framer::new(&file[..], &params, name).unwrap();
        let mut blocks = Vec::new();
        while let Some(b) = framer.next_block(Vec::new()).unwrap() {
            let seed = [case_no as u8, b.index as u8];
            let secret = blake3::derive_key("kairos seal kat secret", &seed);
            let sealed: SealedBlock = seal_block_with_secret(
                &params,
                BlockPos::new(salt, b.index, b.is_last),
                &b.buf,
                &secret,
                &mut XofRng::new(&seed),
            )
            .unwrap();
            blocks.push(KatBlock {
                index: b.index,
                is_last: b.is_last,
                secret: hex(&secret),
                cipher_len: sealed.cipher_len,
                pieces: sealed
                    .pieces
                    .iter()
                    .map(|p| KatPiece {
                        share: hex(&p.share),
                        shard: hex(&p.shard),
                        hash: hex(&p.hash),
                    })
                    .collect(),
            });
        }
        cases.push(KatCase {
            label: label.into(),
            k: params.data_shards,
            m: params.parity_shards,
            shard_size: params.shard_size,
            salt: hex(&salt),
            file_name: name.into(),
            file: hex(&file),
            blocks,
        });
    }
    KatFile {
        comment: "kairos-seal format v1 known-answer vectors; generated by \
                  `cargo test -p kairos-seal --lib kat::regenerate -- --ignored`; \
                  see crates/kairos-seal/src/kat.rs"
            .into(),
        cases,
    }
}

fn load() -> KatFile {
    let text = std::fs::read_to_string(path()).expect("testdata/seal/kat-v1.json exists");
    serde_json::from_str(&text).expect("valid KAT JSON")
}

#[test]
fn sealing_matches_committed_vectors() {
    let committed = load();
    let fresh = generate();
    assert_eq!(committed.cases.len(), fresh.cases.len());
    for (c, f) in committed.cases.iter().zip(&fresh.cases) {
        assert_eq!(c.blocks.len(), f.blocks.len(), "{}: block count", c.label);
        for (cb, fb) in c.blocks.iter().zip(&f.blocks) {
            assert_eq!(
                cb.cipher_len, fb.cipher_len,
                "{} block {}",
                c.label, cb.index
            );
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

#[test]
fn committed_vectors_open() {
    for case in load().cases {
        let params = Params {
            data_shards: case.k,
            parity_shards: case.m,
            shard_size: case.shard_size,
        };
        let salt: [u8; 32] = unhex(&case.salt).try_into().unwrap();
        // Once with every piece, once with the first m (data) pieces lost.
        for lose in [0, params.m()] {
            let mut opener = Opener::new(Vec::new(), params, salt, case.blocks.len() as u32);
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
                opener
                    .push_block(b.index, b.cipher_len, &hashes, &slots)
                    .unwrap();
            }
            let (info, out) = opener.finish_with_writer().unwrap();
            assert_eq!(hex(&out), case.file, "{}", case.label);
            assert_eq!(info.name, case.file_name);
            assert_eq!(info.size, out.len() as u64);
            assert_eq!(info.hash, *blake3::hash(&out).as_bytes());
        }
    }
}

/// Rewrites the committed vectors from the current code. Run only after reviewing why they
/// changed: a change means data sealed before may no longer open.
#[test]
#[ignore = "regenerates testdata/seal/kat-v1.json"]
fn regenerate() {
    let mut text = serde_json::to_string_pretty(&generate()).unwrap();
    text.push('\n');
    std::fs::create_dir_all(path().parent().unwrap()).unwrap();
    std::fs::write(path(), text).unwrap();
}
