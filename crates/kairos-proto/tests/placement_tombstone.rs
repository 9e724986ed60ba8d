//! Placement records and tombstones: round trips, the placement rules and the match with the
//! manifest, every bit flip and truncation rejected, signatures that never cross object types,
//! and arbitrary bytes through the decoders.

mod common;

use common::*;
use kairos_proto::manifest::{v1, v2};
use kairos_proto::{
    placement, tombstone, Identity, LockSection, PlacementError, PlacementRecord,
    SignedContentManifest, SignedPlacement, SignedTombstone, Tombstone, TombstoneError,
};
use proptest::prelude::*;

fn per_file() -> Identity {
    Identity::from_seed(&[11; 32])
}

fn manifest(blocks: usize) -> SignedContentManifest {
    let id = per_file();
    content(&id, blocks, small_params(3, 2), LockSection::None)
        .sign(&id)
        .unwrap()
}

#[test]
fn placement_round_trip_and_accessors() {
    let m = manifest(3);
    let p = placement(&m, 1).sign(&per_file()).unwrap();
    let back = SignedPlacement::verify(p.as_bytes().to_vec(), &m).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.seq(), 1);
    assert_eq!(back.file_id(), m.id());
    assert_eq!(back.signer(), per_file().public());
    let r = back.record();
    assert_eq!(r.pieces_per_block(), 5);
    assert_eq!(r.holder_of(1, 0), Some(&r.holders[1]));
    assert_eq!(r.holder_of(3, 0), None);
    assert_eq!(r.holder_of(0, 5), None);
    assert_eq!(
        PlacementRecord::decode_unverified(p.as_bytes()).unwrap(),
        *r
    );
    // A repair: seq + 1, one holder replaced; the file id stays.
    let mut repaired = placement(&m, 2);
    repaired.holders[0] = Identity::from_seed(&[200; 32]).public();
    let repaired = repaired.sign(&per_file()).unwrap();
    assert_eq!(
        SignedPlacement::verify(repaired.into_bytes(), &m)
            .unwrap()
            .file_id(),
        m.id()
    );
}

#[test]
fn placement_rules() {
    let m = manifest(2);
    let id = per_file();
    let refuse = |r: PlacementRecord, what: &str| {
        assert!(
            matches!(r.sign(&id), Err(PlacementError::Inconsistent(_))),
            "{what}"
        );
    };
    let mut r = placement(&m, 1);
    r.holders[1] = r.holders[0];
    refuse(r, "duplicate holder");
    let mut r = placement(&m, 1);
    r.blocks[0][1] = r.blocks[0][0];
    refuse(r, "two pieces of one block on one holder");
    let mut r = placement(&m, 1);
    r.blocks[1][0] = r.holders.len() as u16;
    refuse(r, "holder index out of range");
    let mut r = placement(&m, 1);
    r.blocks[1].pop();
    refuse(r, "uneven block");
    let mut r = placement(&m, 1);
    r.holders.truncate(4);
    r.blocks = vec![vec![0, 1, 2, 3]; 2];
    assert!(
        r.clone().sign(&id).is_ok(),
        "n = 4 on 4 holders is fine alone"
    );
    let signed = r.sign(&id).unwrap();
    assert!(matches!(
        SignedPlacement::verify(signed.into_bytes(), &m),
        Err(PlacementError::Mismatch(_))
    ));
    let mut r = placement(&m, 1);
    r.blocks.clear();
    refuse(r, "no blocks");
    let mut r = placement(&m, 1);
    r.blocks = vec![vec![0, 1]; 2];
    refuse(r, "n = 2");
}

#[test]
fn placement_must_fit_its_manifest() {
    let m = manifest(2);
    let id = per_file();
    let mismatch = |r: PlacementRecord| {
        let p = r.sign(&id).unwrap();
        assert!(matches!(
            SignedPlacement::verify(p.into_bytes(), &m),
            Err(PlacementError::Mismatch(_))
        ));
    };
    let mut r = placement(&m, 1);
    r.file_id.0[0] ^= 1;
    mismatch(r);
    let mut r = placement(&m, 1);
    r.blocks.push(r.blocks[0].clone());
    mismatch(r);
    // Signed by another key than the manifest's uploader.
    let p = placement(&m, 1)
        .sign(&Identity::from_seed(&[12; 32]))
        .unwrap();
    assert_eq!(
        SignedPlacement::verify(p.into_bytes(), &m),
        Err(PlacementError::BadSignature)
    );
}

#[test]
fn tombstone_round_trip_and_rules() {
    let m = manifest(1);
    let t = Tombstone {
        file_id: m.id(),
        created: CREATED + 5,
    }
    .sign(&per_file());
    assert_eq!(t.as_bytes().len(), tombstone::TOMBSTONE_LEN);
    let back = SignedTombstone::verify(t.as_bytes().to_vec(), &m).unwrap();
    assert_eq!(back, t);
    assert_eq!(
        Tombstone::decode_unverified(t.as_bytes()).unwrap(),
        *t.tombstone()
    );
    back.check_before_release(&m, RELEASE - 1).unwrap();
    assert_eq!(
        back.check_before_release(&m, RELEASE),
        Err(TombstoneError::Released { release: RELEASE })
    );
    let other = Tombstone {
        file_id: kairos_proto::FileId([1; 32]),
        created: CREATED,
    }
    .sign(&per_file());
    assert!(matches!(
        SignedTombstone::verify(other.as_bytes().to_vec(), &m),
        Err(TombstoneError::WrongFile { .. })
    ));
    assert!(matches!(
        other.check_before_release(&m, CREATED),
        Err(TombstoneError::WrongFile { .. })
    ));
    let forged = Tombstone {
        file_id: m.id(),
        created: CREATED,
    }
    .sign(&Identity::from_seed(&[12; 32]));
    assert_eq!(
        SignedTombstone::verify(forged.into_bytes(), &m),
        Err(TombstoneError::BadSignature)
    );
}

#[test]
fn every_single_bit_flip_and_truncation_is_rejected() {
    let m = manifest(2);
    let key = per_file().public();
    let p = placement(&m, 7).sign(&per_file()).unwrap().into_bytes();
    let t = Tombstone {
        file_id: m.id(),
        created: CREATED,
    }
    .sign(&per_file())
    .into_bytes();
    for i in 0..p.len() {
        for bit in 0..8 {
            let mut b = p.clone();
            b[i] ^= 1 << bit;
            assert!(
                SignedPlacement::from_bytes(b, &key).is_err(),
                "placement flip {bit} at {i}"
            );
        }
    }
    for i in 0..t.len() {
        for bit in 0..8 {
            let mut b = t.clone();
            b[i] ^= 1 << bit;
            assert!(
                SignedTombstone::from_bytes(b, &key).is_err(),
                "tombstone flip {bit} at {i}"
            );
        }
    }
    for cut in 0..p.len() {
        assert!(SignedPlacement::from_bytes(p[..cut].to_vec(), &key).is_err());
        assert!(PlacementRecord::decode_unverified(&p[..cut]).is_err());
    }
    for cut in 0..t.len() {
        assert!(SignedTombstone::from_bytes(t[..cut].to_vec(), &key).is_err());
    }
    let (mut pl, mut tl) = (p.clone(), t.clone());
    pl.push(0);
    tl.push(0);
    assert!(SignedPlacement::from_bytes(pl, &key).is_err());
    assert!(SignedTombstone::from_bytes(tl, &key).is_err());
}

/// The signature of one object type never verifies as another: every context is distinct and
/// none is a prefix of another, and each decoder refuses the others' bytes.
#[test]
fn signatures_never_cross_object_types() {
    let contexts: [&[u8]; 4] = [
        v1::SIGNING_CONTEXT,
        v2::SIGNING_CONTEXT,
        placement::SIGNING_CONTEXT,
        tombstone::SIGNING_CONTEXT,
    ];
    for (i, a) in contexts.iter().enumerate() {
        for (j, b) in contexts.iter().enumerate() {
            if i != j {
                assert!(!a.starts_with(b), "context {i} starts with context {j}");
            }
        }
    }
    let id = per_file();
    let key = id.public();
    let m = manifest(1);
    let p = placement(&m, 1).sign(&id).unwrap();
    let t = Tombstone {
        file_id: m.id(),
        created: CREATED,
    }
    .sign(&id);
    // (bytes, the context they were signed under)
    let objects: [(&[u8], &[u8]); 3] = [
        (m.as_bytes(), v2::SIGNING_CONTEXT),
        (p.as_bytes(), placement::SIGNING_CONTEXT),
        (t.as_bytes(), tombstone::SIGNING_CONTEXT),
    ];
    for (bytes, own) in objects {
        let (body, sig) = bytes.split_at(bytes.len() - 64);
        let sig: [u8; 64] = sig.try_into().unwrap();
        for ctx in contexts {
            let msg = [ctx, body].concat();
            assert_eq!(key.verify(&msg, &sig).is_ok(), ctx == own);
        }
    }
    // Each decoder refuses the other types' bytes outright.
    assert!(SignedPlacement::from_bytes(m.as_bytes().to_vec(), &key).is_err());
    assert!(SignedPlacement::from_bytes(t.as_bytes().to_vec(), &key).is_err());
    assert!(SignedTombstone::from_bytes(m.as_bytes().to_vec(), &key).is_err());
    assert!(SignedTombstone::from_bytes(p.as_bytes().to_vec(), &key).is_err());
    assert!(SignedContentManifest::from_bytes(p.as_bytes().to_vec()).is_err());
    assert!(SignedContentManifest::from_bytes(t.as_bytes().to_vec()).is_err());
    assert!(kairos_proto::AnyManifest::from_bytes(t.into_bytes()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_placements_round_trip(blocks in 1usize..6, seq in any::<u64>(), k in 2u8..=8, m in 1u8..=8) {
        let id = per_file();
        let manifest = content(&id, blocks, small_params(k, m), LockSection::None).sign(&id).unwrap();
        let r = placement(&manifest, seq);
        let p = r.clone().sign(&id).unwrap();
        let back = SignedPlacement::verify(p.into_bytes(), &manifest).unwrap();
        prop_assert_eq!(back.record(), &r);
    }

    #[test]
    fn single_bit_flips_are_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let m = manifest(2);
        let mut b = placement(&m, 3).sign(&per_file()).unwrap().into_bytes();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        prop_assert!(SignedPlacement::verify(b, &m).is_err());
    }

    #[test]
    fn arbitrary_and_mutated_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>(),
    ) {
        let key = per_file().public();
        let _ = SignedPlacement::from_bytes(bytes.clone(), &key);
        let _ = PlacementRecord::decode_unverified(&bytes);
        let _ = SignedTombstone::from_bytes(bytes.clone(), &key);
        let _ = Tombstone::decode_unverified(&bytes);
        let mut p = b"KRSP\x01".to_vec();
        p.extend_from_slice(&bytes);
        let _ = PlacementRecord::decode_unverified(&p);
        let m = manifest(2);
        let mut b = placement(&m, 3).sign(&per_file()).unwrap().into_bytes();
        let i = pos.index(b.len());
        b[i] = val;
        b.truncate(cut.index(b.len() + 1));
        let _ = PlacementRecord::decode_unverified(&b);
        let _ = SignedPlacement::verify(b, &m);
    }
}
