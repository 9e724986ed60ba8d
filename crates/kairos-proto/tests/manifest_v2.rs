//! Content manifest v2 and the version dispatch: round trips, every bit flip and truncation
//! rejected, the v2 caps, the lock section, and arbitrary bytes through the decoders.

mod common;

use common::*;
use kairos_proto::manifest::{MAX_PIECES_PER_BLOCK, MAX_TLOCK_CIPHERTEXT};
use kairos_proto::{
    AnyManifest, ContentManifest, DrandLock, FileId, Identity, LockRoundError, LockSection,
    ManifestError, SignedContentManifest,
};
use kairos_seal::Params;
use proptest::prelude::*;

fn signed(lock: LockSection) -> SignedContentManifest {
    let id = Identity::from_seed(&[9; 32]);
    content(&id, 2, small_params(2, 1), lock).sign(&id).unwrap()
}

#[test]
fn sign_round_trip_id_and_dispatch() {
    let id = Identity::generate();
    for lock in [LockSection::None, drand_lock(RELEASE, 300)] {
        let s = content(&id, 3, Params::default(), lock).sign(&id).unwrap();
        let back = SignedContentManifest::verify(s.as_bytes().to_vec(), &s.id()).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.id(), FileId::of(s.as_bytes()));
        let any = AnyManifest::verify(s.as_bytes().to_vec(), &s.id()).unwrap();
        assert_eq!(any.version(), 2);
        assert_eq!(any.file_id(), s.id());
        assert_eq!(any.uploader(), id.public());
        assert_eq!(any.block_count(), 3);
        assert!(matches!(
            SignedContentManifest::verify(s.as_bytes().to_vec(), &FileId([0; 32])),
            Err(ManifestError::WrongId { .. })
        ));
        // A v2 manifest is not a v1 manifest.
        assert!(kairos_proto::SignedManifest::from_bytes(s.as_bytes().to_vec()).is_err());
    }
}

#[test]
fn dispatch_reads_v1_and_refuses_unknown_versions() {
    let id = Identity::from_seed(&[1; 32]);
    let peers = (0..3u8)
        .map(|i| {
            let key = Identity::from_seed(&[i + 10; 32]).public();
            kairos_proto::Peer {
                addr: format!("{}:80", key.onion_address()),
                key,
            }
        })
        .collect();
    let v1 = kairos_proto::Manifest {
        uploader: id.public(),
        created: CREATED,
        release: RELEASE,
        salt: [3; 32],
        params: small_params(2, 1),
        peers,
        blocks: vec![kairos_proto::BlockEntry {
            cipher_len: 100,
            pieces: (0..3)
                .map(|i| kairos_proto::PieceEntry {
                    peer: i,
                    hash: [i as u8; 32],
                })
                .collect(),
        }],
    }
    .sign(&id)
    .unwrap();
    let any = AnyManifest::from_bytes(v1.as_bytes().to_vec()).unwrap();
    assert_eq!(any.version(), 1);
    assert_eq!(any.file_id(), v1.id());
    assert_eq!(any.into_bytes(), v1.as_bytes());
    let mut v3 = v1.as_bytes().to_vec();
    v3[4] = 3;
    assert!(matches!(
        AnyManifest::from_bytes(v3),
        Err(ManifestError::Decode(kairos_proto::DecodeError::Version {
            version: 3,
            ..
        }))
    ));
    for short in [&b""[..], b"KRS", b"KRSM", b"XXXX\x02"] {
        assert!(AnyManifest::from_bytes(short.to_vec()).is_err());
    }
}

#[test]
fn every_single_bit_flip_and_truncation_is_rejected() {
    for lock in [LockSection::None, drand_lock(RELEASE, 5)] {
        let s = signed(lock);
        let bytes = s.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                assert!(
                    SignedContentManifest::from_bytes(b.clone()).is_err()
                        && AnyManifest::from_bytes(b).is_err(),
                    "flip of bit {bit} at byte {i} accepted"
                );
            }
        }
        for cut in 0..bytes.len() {
            assert!(SignedContentManifest::from_bytes(bytes[..cut].to_vec()).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(SignedContentManifest::from_bytes(long).is_err());
    }
}

#[test]
fn inconsistent_or_oversized_manifests_cannot_be_signed() {
    let id = Identity::from_seed(&[4; 32]);
    let base = || content(&id, 2, small_params(2, 1), LockSection::None);
    let refuse = |m: ContentManifest, what: &str| {
        assert!(m.sign(&id).is_err(), "{what} was signed");
    };
    let mut m = base();
    m.release = m.created - 1;
    refuse(m, "release before creation");
    let mut m = base();
    m.created = kairos_proto::time::MAX_RFC3339 + 1;
    m.release = m.created;
    refuse(m, "release after 9999");
    let mut m = base();
    m.release = kairos_proto::time::MAX_RFC3339;
    assert!(m.sign(&id).is_ok(), "release at 9999-12-31T23:59:59Z");
    refuse(
        content(&id, 1, small_params(30, 3), LockSection::None),
        "k + m = 33",
    );
    assert_eq!(MAX_PIECES_PER_BLOCK, 32);
    assert!(content(&id, 1, small_params(30, 2), LockSection::None)
        .sign(&id)
        .is_ok());
    let big = Params {
        shard_size: 4 * 1024 * 1024 + 64,
        ..small_params(2, 1)
    };
    refuse(content(&id, 1, big, LockSection::None), "shard over 4 MiB");
    let mut m = base();
    m.blocks[0].cipher_len -= 1;
    refuse(m, "short non-last block");
    let mut m = base();
    m.blocks[1].hashes.pop();
    refuse(m, "missing piece hash");
    let mut m = base();
    m.blocks.clear();
    refuse(m, "no blocks");
    let mut m = base();
    m.lock = drand_lock(RELEASE, 0);
    refuse(m, "empty tlock ciphertext");
    let mut m = base();
    m.lock = drand_lock(RELEASE, MAX_TLOCK_CIPHERTEXT + 1);
    refuse(m, "tlock ciphertext over 1 KiB");
    let mut m = base();
    m.lock = drand_lock(RELEASE, MAX_TLOCK_CIPHERTEXT);
    assert!(m.sign(&id).is_ok(), "1 KiB ciphertext");
    let mut m = base();
    m.lock = LockSection::DrandTlock(DrandLock {
        chain_hash: [0; 32],
        round: 0,
        ciphertext: vec![1],
    });
    refuse(m, "drand round 0");
}

#[test]
fn signer_must_be_the_uploader() {
    let id = Identity::from_seed(&[4; 32]);
    let m = content(&id, 1, small_params(2, 1), LockSection::None);
    assert!(matches!(
        m.sign(&Identity::from_seed(&[5; 32])),
        Err(ManifestError::Inconsistent(_))
    ));
}

#[test]
fn lock_round_is_checked_against_the_chain() {
    let m = signed(drand_lock(RELEASE, 5));
    m.manifest()
        .check_lock_round(QUICKNET_GENESIS, QUICKNET_PERIOD)
        .unwrap();
    // The same round against a chain with another period does not fit.
    assert!(matches!(
        m.manifest().check_lock_round(QUICKNET_GENESIS, 30),
        Err(LockRoundError::WrongRound { .. })
    ));
    let id = Identity::from_seed(&[9; 32]);
    let mut early = content(&id, 1, small_params(2, 1), drand_lock(RELEASE, 5));
    if let LockSection::DrandTlock(d) = &mut early.lock {
        d.round -= 1;
    }
    // Proto signs it (it does not know the chain); the caller's check refuses it.
    let early = early.sign(&id).unwrap();
    assert!(matches!(
        early
            .manifest()
            .check_lock_round(QUICKNET_GENESIS, QUICKNET_PERIOD),
        Err(LockRoundError::WrongRound {
            when: "before its release time",
            ..
        })
    ));
    // No drand lock: nothing to check.
    signed(LockSection::None)
        .manifest()
        .check_lock_round(QUICKNET_GENESIS, 0)
        .unwrap();
}

#[test]
fn piece_len_is_share_plus_shard() {
    let s = signed(LockSection::None);
    let m = s.manifest();
    assert_eq!(m.blocks[0].piece_len(&m.params), 33 + 4096);
    assert_eq!(m.blocks[1].piece_len(&m.params), 33 + 64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_manifests_round_trip(
        k in 2u8..=16, m in 1u8..=16, blocks in 1usize..5, ct in 1usize..=MAX_TLOCK_CIPHERTEXT,
        drand in any::<bool>(), release_delta in 0u64..10_000_000,
    ) {
        prop_assume!(usize::from(k) + usize::from(m) <= MAX_PIECES_PER_BLOCK);
        let id = Identity::from_seed(&[3; 32]);
        let lock = if drand { drand_lock(CREATED + release_delta, ct) } else { LockSection::None };
        let mut c = content(&id, blocks, small_params(k, m), lock);
        c.release = CREATED + release_delta;
        let s = c.clone().sign(&id).unwrap();
        let back = SignedContentManifest::from_bytes(s.as_bytes().to_vec()).unwrap();
        prop_assert_eq!(back.manifest(), &c);
        prop_assert_eq!(back.id(), s.id());
        back.manifest().check_lock_round(QUICKNET_GENESIS, QUICKNET_PERIOD).unwrap();
    }

    /// Any single bit flip, at any position, of a manifest with either lock kind is refused.
    #[test]
    fn single_bit_flips_are_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8, drand in any::<bool>()) {
        let lock = if drand { drand_lock(RELEASE, 40) } else { LockSection::None };
        let s = signed(lock);
        let mut b = s.as_bytes().to_vec();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        prop_assert!(AnyManifest::from_bytes(b).is_err());
    }

    /// The decoders are total: arbitrary bytes, or a valid manifest with one byte changed and a
    /// random cut, give Ok or a typed error, never a panic.
    #[test]
    fn arbitrary_and_mutated_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>(),
    ) {
        let _ = AnyManifest::from_bytes(bytes.clone());
        let mut v2 = b"KRSM\x02".to_vec();
        v2.extend_from_slice(&bytes);
        let _ = SignedContentManifest::from_bytes(v2);
        let mut b = signed(drand_lock(RELEASE, 20)).into_bytes();
        let i = pos.index(b.len());
        b[i] = val;
        b.truncate(cut.index(b.len() + 1));
        let _ = AnyManifest::from_bytes(b);
    }
}
