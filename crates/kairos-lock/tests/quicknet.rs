//! Known answers from the real drand quicknet chain, and the validation of chain keys.

use kairos_lock::wire::{hex, unhex};
use kairos_lock::{Beacon, BeaconJson, Chain, ChainInfo, LockError};

/// quicknet's chain info as drand serves it (`GET /{hash}/info`), from
/// `drand/go-clients`, `client/lp2p/example_test.go` (`jsonQuicknetInfo`).
const QUICKNET_INFO: &str = r#"{
  "genesis_time": 1692803367,
  "groupHash": "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
  "hash": "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
  "metadata": {
    "beaconID": "quicknet"
  },
  "period": 3,
  "public_key": "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
  "schemeID": "bls-unchained-g1-rfc9380"
}"#;

/// Real quicknet round 1000: signature from `thibmeu/tlock-rs`, `tlock/src/lib.rs`, test
/// `test_pk_g2_sig_g1` (feature `rfc9380`); its drand `randomness` (sha256 of the signature)
/// as served by drand's API, quoted in the same public test fixtures of drand clients.
const ROUND_1000_SIG: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";
const ROUND_1000_RANDOMNESS: &str =
    "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd";

fn round_1000() -> Beacon {
    Beacon {
        round: 1000,
        signature: unhex(ROUND_1000_SIG, 48, "sig")
            .unwrap()
            .try_into()
            .unwrap(),
    }
}

#[test]
fn quicknet_pinned_key_validates() {
    let q = Chain::quicknet();
    assert_eq!(q.genesis(), 1_692_803_367);
    assert_eq!(q.period(), 3);
    assert_eq!(q.scheme().id(), "bls-unchained-g1-rfc9380");
    // The drand info of quicknet gives exactly the pinned chain.
    let info = ChainInfo::parse(QUICKNET_INFO.as_bytes()).unwrap();
    assert_eq!(Chain::from_info(&info).unwrap(), q);
    // And we serve the same info back (every field drand serves).
    assert_eq!(ChainInfo::of(&q), info);
}

#[test]
fn a_real_quicknet_beacon_verifies() {
    let q = Chain::quicknet();
    let v = q.verify(&round_1000()).unwrap();
    assert_eq!(v.round(), 1000);
    assert_eq!(v.chain_hash(), q.hash());
    assert_eq!(hex(&v.randomness()), ROUND_1000_RANDOMNESS);
    // drand's JSON for it, and back.
    let json = serde_json::to_vec(&BeaconJson::of(&v)).unwrap();
    assert_eq!(BeaconJson::parse(&json).unwrap(), round_1000());
    let text = format!(
        r#"{{"round":1000,"randomness":"{ROUND_1000_RANDOMNESS}","signature":"{ROUND_1000_SIG}"}}"#
    );
    assert_eq!(BeaconJson::parse(text.as_bytes()).unwrap(), round_1000());
}

#[test]
fn the_real_signature_does_not_verify_for_another_round() {
    let q = Chain::quicknet();
    for round in [999, 1001] {
        let b = Beacon {
            round,
            ..round_1000()
        };
        assert!(matches!(q.verify(&b), Err(LockError::Forged { .. })));
    }
}

#[test]
fn quicknet_round_times() {
    let q = Chain::quicknet();
    assert_eq!(q.round_time(1).unwrap(), 1_692_803_367);
    assert_eq!(q.round_time(1000).unwrap(), 1_692_803_367 + 999 * 3);
    assert_eq!(q.round_at_or_after(0).unwrap(), 1);
    assert_eq!(q.round_at_or_after(1_692_803_367 + 999 * 3).unwrap(), 1000);
    assert_eq!(
        q.round_at_or_after(1_692_803_367 + 999 * 3 - 2).unwrap(),
        1000
    );
    assert_eq!(
        q.round_at_or_after(1_692_803_367 + 999 * 3 + 1).unwrap(),
        1001
    );
    assert_eq!(q.round_at(1_692_803_367 + 999 * 3 + 2), 1000);
    assert_eq!(q.round_at(1_692_803_366), 0);
}

fn info_with_key(key: &[u8]) -> ChainInfo {
    let mut info = ChainInfo::parse(QUICKNET_INFO.as_bytes()).unwrap();
    info.public_key = hex(key);
    info
}

#[test]
fn invalid_and_identity_public_keys_are_refused() {
    use ark_serialize::CanonicalSerialize;
    // The identity point (compressed, infinity flag).
    let mut identity = [0u8; 96];
    identity[0] = 0xc0;
    // Not on the curve.
    let mut garbage = unhex(kairos_lock::chain::quicknet::PUBLIC_KEY_HEX, 96, "pk").unwrap();
    garbage[95] ^= 1;
    // On the curve but outside the prime-order subgroup: the first x with a curve point.
    let mut x = ark_bls12_381::Fq2::new(1u64.into(), 0u64.into());
    let outside = loop {
        if let Some(p) = ark_bls12_381::G2Affine::get_point_from_x_unchecked(x, true) {
            if !p.is_in_correct_subgroup_assuming_on_curve() {
                break p;
            }
        }
        x.c0 += ark_bls12_381::Fq::from(1u64);
    };
    let mut outside_bytes = Vec::new();
    outside.serialize_compressed(&mut outside_bytes).unwrap();
    // Each with a test-chain hash that commits to it, so only the key check can refuse it.
    for key in [
        &identity[..],
        &garbage[..],
        &outside_bytes[..],
        &[0u8; 48][..],
    ] {
        let mut info = info_with_key(key);
        if key.len() == 96 {
            let k: [u8; 96] = key.try_into().unwrap();
            info.hash = hex(&kairos_lock::test_chain_hash(
                kairos_lock::Scheme::UnchainedG1Rfc9380,
                &k,
                info.genesis_time,
                info.period,
            ));
        }
        let err = Chain::from_info(&info).unwrap_err();
        assert!(
            matches!(err, LockError::BadPublicKey(_) | LockError::Wire(_)),
            "{err:?}"
        );
    }
}

#[test]
fn a_chain_claiming_quicknets_hash_must_have_its_parameters() {
    let mut info = ChainInfo::parse(QUICKNET_INFO.as_bytes()).unwrap();
    info.genesis_time += 1;
    assert!(matches!(
        Chain::from_info(&info),
        Err(LockError::NotPinnedQuicknet { .. })
    ));
    let mut info = ChainInfo::parse(QUICKNET_INFO.as_bytes()).unwrap();
    info.scheme_id = "pedersen-bls-chained".into();
    assert!(matches!(
        Chain::from_info(&info),
        Err(LockError::UnsupportedScheme(_))
    ));
    // Another hash for quicknet's key: neither quicknet nor a kairos test chain.
    let mut info = ChainInfo::parse(QUICKNET_INFO.as_bytes()).unwrap();
    info.hash = "00".repeat(32);
    assert!(matches!(
        Chain::from_info(&info),
        Err(LockError::BadChain(_))
    ));
}

#[test]
fn test_chain_info_round_trips() {
    use rand::SeedableRng;
    let tc =
        kairos_lock::TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(1), 5, 2).unwrap();
    let info = ChainInfo::of(tc.chain());
    assert_eq!(info.metadata.as_ref().unwrap().beacon_id, "kairos-test");
    let text = serde_json::to_vec(&info).unwrap();
    let back = Chain::from_info(&ChainInfo::parse(&text).unwrap()).unwrap();
    assert_eq!(&back, tc.chain());
    assert!(back.is_test());
}
