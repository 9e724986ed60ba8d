//! Manifest encoding, verification and the file id: round trips, every kind of corruption, a
//! known-answer vector under `testdata/manifest/`, and arbitrary bytes through the decoder.

use kairos_proto::{
    BlockEntry, FileId, Identity, Manifest, ManifestError, Peer, PieceEntry, SignedManifest,
};
use kairos_seal::Params;
use proptest::prelude::*;

fn sample(id: &Identity, blocks: usize, params: Params) -> Manifest {
    let n = params.total_shards();
    let peers: Vec<Peer> = (0..n + 1)
        .map(|i| {
            let key = Identity::from_seed(&[i as u8 + 1; 32]).public();
            Peer {
                addr: format!("{}:80", key.onion_address()),
                key,
            }
        })
        .collect();
    let blocks = (0..blocks)
        .map(|b| BlockEntry {
            cipher_len: if b + 1 == blocks {
                100
            } else {
                params.block_cipher_size() as u32
            },
            pieces: (0..n)
                .map(|i| PieceEntry {
                    peer: ((b + i) % peers.len()) as u16,
                    hash: [(b * 31 + i) as u8; 32],
                })
                .collect(),
        })
        .collect();
    Manifest {
        uploader: id.public(),
        created: 1_800_000_000,
        release: 1_800_003_600,
        salt: [7; 32],
        params,
        peers,
        blocks,
    }
}

#[test]
fn sign_round_trip_and_id() {
    let id = Identity::generate();
    let signed = sample(&id, 3, Params::default()).sign(&id).unwrap();
    let back = SignedManifest::verify(signed.as_bytes().to_vec(), &signed.id()).unwrap();
    assert_eq!(back, signed);
    assert_eq!(
        back.id().to_string().parse::<FileId>().unwrap(),
        signed.id()
    );
    assert_eq!(signed.id().to_string().len(), 52);
    let other = FileId([0; 32]);
    assert!(matches!(
        SignedManifest::verify(signed.as_bytes().to_vec(), &other),
        Err(ManifestError::WrongId { .. })
    ));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let id = Identity::generate();
    let params = Params {
        data_shards: 2,
        parity_shards: 1,
        shard_size: 4096,
    };
    let signed = sample(&id, 2, params).sign(&id).unwrap();
    let bytes = signed.as_bytes();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.to_vec();
            b[i] ^= bit;
            assert!(
                SignedManifest::from_bytes(b).is_err(),
                "flip {bit:#x} at byte {i} accepted"
            );
        }
    }
    for cut in 0..bytes.len() {
        assert!(
            SignedManifest::from_bytes(bytes[..cut].to_vec()).is_err(),
            "truncation to {cut} accepted"
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(SignedManifest::from_bytes(long).is_err());
}

#[test]
fn inconsistent_manifests_cannot_be_signed() {
    let id = Identity::generate();
    let p = Params::default();
    let mut m = sample(&id, 2, p);
    m.blocks[0].pieces[1].peer = m.blocks[0].pieces[0].peer;
    assert!(matches!(m.sign(&id), Err(ManifestError::Inconsistent(_))));
    let mut m = sample(&id, 2, p);
    m.blocks[0].cipher_len = 5;
    assert!(m.sign(&id).is_err());
    let mut m = sample(&id, 2, p);
    m.release = m.created - 1;
    assert!(m.sign(&id).is_err());
    let mut m = sample(&id, 2, p);
    m.peers[0].addr = "no port".into();
    assert!(m.sign(&id).is_err());
    let mut m = sample(&id, 2, p);
    m.blocks[1].pieces.pop();
    assert!(m.sign(&id).is_err());
    let m = sample(&id, 1, p);
    assert!(
        m.sign(&Identity::generate()).is_err(),
        "signed by someone else"
    );
}

/// The committed vector pins the byte layout: if this fails, the format changed and
/// MANIFEST_VERSION must change with it. Regenerate with `KAIROS_REGENERATE_TESTDATA=1`.
#[test]
fn known_answer_vector() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/manifest");
    let id = Identity::from_seed(&[42; 32]);
    let params = Params {
        data_shards: 3,
        parity_shards: 2,
        shard_size: 8192,
    };
    let signed = sample(&id, 2, params).sign(&id).unwrap();
    let hex = data_encoding::HEXLOWER.encode(signed.as_bytes());
    let expected_path = dir.join("v1-signed.hex");
    let id_path = dir.join("v1-file-id.txt");
    if std::env::var_os("KAIROS_REGENERATE_TESTDATA").is_some() {
        std::fs::write(&expected_path, format!("{hex}\n")).unwrap();
        std::fs::write(&id_path, format!("{}\n", signed.id())).unwrap();
    }
    let expected =
        std::fs::read_to_string(&expected_path).expect("testdata/manifest/v1-signed.hex");
    assert_eq!(hex, expected.trim(), "manifest encoding drifted");
    let expected_id = std::fs::read_to_string(&id_path).unwrap();
    assert_eq!(signed.id().to_string(), expected_id.trim());
    let bytes = data_encoding::HEXLOWER
        .decode(expected.trim().as_bytes())
        .unwrap();
    SignedManifest::verify(bytes, &expected_id.trim().parse().unwrap()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The decoder is total: arbitrary bytes give Ok or a typed error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedManifest::from_bytes(bytes);
    }

    /// Valid prefixes with arbitrary tails exercise the deeper decoder paths.
    #[test]
    fn mutated_manifests_never_panic(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let id = Identity::from_seed(&[9; 32]);
        let signed = sample(&id, 2, Params { data_shards: 2, parity_shards: 2, shard_size: 4096 }).sign(&id).unwrap();
        let mut b = signed.as_bytes().to_vec();
        let i = pos.index(b.len());
        b[i] = val;
        b.truncate(cut.index(b.len() + 1));
        let _ = SignedManifest::from_bytes(b);
    }

    #[test]
    fn random_parameters_round_trip(k in 2u8..=16, m in 1u8..=8, blocks in 1usize..5) {
        let id = Identity::from_seed(&[3; 32]);
        let signed = sample(&id, blocks, Params { data_shards: k, parity_shards: m, shard_size: 4096 }).sign(&id).unwrap();
        let back = SignedManifest::from_bytes(signed.as_bytes().to_vec()).unwrap();
        prop_assert_eq!(back.manifest(), signed.manifest());
    }
}
