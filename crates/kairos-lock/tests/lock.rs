//! The lock end to end with a local test chain: seal, verify, open, and every refusal the
//! brief of the lock names (wrong round, forged beacon, R − 1, tampered ciphertext).

use kairos_lock::{
    check_ciphertext, open_secret, seal_secret, Beacon, Chain, LockError, LockSecret, TestChain,
    MAX_CIPHERTEXT,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn test_chain(seed: u64) -> TestChain {
    TestChain::generate(&mut StdRng::seed_from_u64(seed), 1_700_000_000, 3).unwrap()
}

fn secret(seed: u64) -> LockSecret {
    LockSecret::random(&mut StdRng::seed_from_u64(seed))
}

#[test]
fn seal_then_open_with_the_rounds_beacon() {
    let tc = test_chain(1);
    let chain = tc.chain();
    assert!(chain.is_test());
    let t = secret(2);
    let round = chain.round_at_or_after(1_700_000_100).unwrap();
    let ct = seal_secret(chain, round, t.expose()).unwrap();
    assert!(
        ct.len() <= MAX_CIPHERTEXT,
        "ciphertext is {} bytes",
        ct.len()
    );
    check_ciphertext(chain, round, &ct).unwrap();
    let beacon = chain.verify(&tc.sign(round).unwrap()).unwrap();
    assert_eq!(beacon.round(), round);
    let opened = open_secret(chain, &beacon, round, &ct).unwrap();
    assert_eq!(opened.expose(), t.expose());
}

#[test]
fn secrets_ending_in_zeros_survive() {
    // Raw tlock strips trailing zero bytes; tlock_age must not.
    let tc = test_chain(3);
    let chain = tc.chain();
    for t in [[0u8; 32], {
        let mut t = [0u8; 32];
        t[0] = 7;
        t
    }] {
        let ct = seal_secret(chain, 5, &t).unwrap();
        let beacon = chain.verify(&tc.sign(5).unwrap()).unwrap();
        assert_eq!(open_secret(chain, &beacon, 5, &ct).unwrap().expose(), &t);
    }
}

#[test]
fn a_beacon_of_another_round_is_refused_before_decrypting() {
    let tc = test_chain(4);
    let chain = tc.chain();
    let round = 1000;
    let ct = seal_secret(chain, round, secret(5).expose()).unwrap();
    for other in [1, round - 1, round + 1, u64::MAX / 4] {
        let beacon = chain.verify(&tc.sign(other).unwrap()).unwrap();
        // The beacon is valid, only for another round: tlock_age would panic on it.
        assert_eq!(
            open_secret(chain, &beacon, round, &ct).unwrap_err(),
            LockError::WrongRound {
                beacon: other,
                lock: round
            }
        );
        // Claiming the beacon's round as the lock's round: the header says otherwise.
        assert!(matches!(
            open_secret(chain, &beacon, other, &ct),
            Err(LockError::Malformed(_))
        ));
    }
}

#[test]
fn the_beacon_before_the_lock_round_cannot_open_it() {
    // `T` cannot be recovered with R − 1 (the newest beacon before release).
    let tc = test_chain(6);
    let chain = tc.chain();
    let release = 1_700_003_000;
    let r = chain.round_at_or_after(release).unwrap();
    assert!(chain.round_time(r).unwrap() >= release);
    assert!(chain.round_time(r - 1).unwrap() < release);
    let ct = seal_secret(chain, r, secret(7).expose()).unwrap();
    let early = chain.verify(&tc.sign(r - 1).unwrap()).unwrap();
    assert!(matches!(
        open_secret(chain, &early, r, &ct),
        Err(LockError::WrongRound { .. })
    ));
}

#[test]
fn a_forged_beacon_does_not_verify() {
    let tc = test_chain(8);
    let other = test_chain(9);
    let forged = other.sign(10).unwrap();
    assert!(matches!(
        tc.chain().verify(&forged),
        Err(LockError::Forged { round: 10, .. })
    ));
    // A real signature moved to another round.
    let mut moved = tc.sign(10).unwrap();
    moved.round = 11;
    assert!(matches!(
        tc.chain().verify(&moved),
        Err(LockError::Forged { .. })
    ));
    // Round 0, garbage bytes, the identity point.
    let good = tc.sign(10).unwrap();
    assert_eq!(
        tc.chain().verify(&Beacon { round: 0, ..good }).unwrap_err(),
        LockError::BadRound(0)
    );
    let mut garbage = good;
    garbage.signature = [0x55; 48];
    assert!(matches!(
        tc.chain().verify(&garbage),
        Err(LockError::BadSignature(_))
    ));
    let mut identity = good;
    identity.signature = [0; 48];
    identity.signature[0] = 0xc0;
    assert!(matches!(
        tc.chain().verify(&identity),
        Err(LockError::BadSignature(_))
    ));
}

#[test]
fn a_beacon_verified_for_another_chain_is_refused() {
    let a = test_chain(10);
    let b = test_chain(11);
    let ct = seal_secret(a.chain(), 3, secret(12).expose()).unwrap();
    let b_beacon = b.chain().verify(&b.sign(3).unwrap()).unwrap();
    assert!(matches!(
        open_secret(a.chain(), &b_beacon, 3, &ct),
        Err(LockError::WrongChain { .. })
    ));
    // The ciphertext names chain a: checking it against chain b fails.
    assert!(matches!(
        check_ciphertext(b.chain(), 3, &ct),
        Err(LockError::Malformed(_))
    ));
}

#[test]
fn tampered_ciphertexts_fail_cleanly() {
    let tc = test_chain(13);
    let chain = tc.chain();
    let ct = seal_secret(chain, 42, secret(14).expose()).unwrap();
    let beacon = chain.verify(&tc.sign(42).unwrap()).unwrap();
    // Every byte position flipped (a hostile uploader could sign anything): an error, no panic.
    for i in 0..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 0x01;
        assert!(
            open_secret(chain, &beacon, 42, &bad).is_err(),
            "flipping byte {i} still opened"
        );
    }
    assert!(open_secret(chain, &beacon, 42, &ct[..ct.len() - 1]).is_err());
    assert!(open_secret(chain, &beacon, 42, &[]).is_err());
    let huge = vec![0u8; MAX_CIPHERTEXT + 1];
    assert!(matches!(
        open_secret(chain, &beacon, 42, &huge),
        Err(LockError::TooLarge { .. })
    ));
}

#[test]
fn sealing_refuses_round_zero_and_unrepresentable_rounds() {
    let tc = test_chain(15);
    let t = [1u8; 32];
    assert_eq!(
        seal_secret(tc.chain(), 0, &t).unwrap_err(),
        LockError::BadRound(0)
    );
    assert!(seal_secret(tc.chain(), u64::MAX, &t).is_err());
    assert!(tc.sign(0).is_err());
}

#[test]
fn test_chain_secret_round_trips_and_garbage_is_refused() {
    let tc = test_chain(16);
    let bytes = tc.to_secret_bytes();
    assert_eq!(bytes.len(), kairos_lock::TEST_SECRET_LEN);
    let back = TestChain::from_secret_bytes(&bytes).unwrap();
    assert_eq!(back.chain(), tc.chain());
    assert_eq!(back.sign(9).unwrap(), tc.sign(9).unwrap());
    assert!(TestChain::from_secret_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut bad = bytes.to_vec();
    bad[0] = b'X';
    assert!(TestChain::from_secret_bytes(&bad).is_err());
    let mut zero = bytes.to_vec();
    zero[21..].fill(0);
    assert!(TestChain::from_secret_bytes(&zero).is_err());
    let mut over = bytes.to_vec();
    over[21..].fill(0xff); // ≥ the group order: not canonical
    assert!(TestChain::from_secret_bytes(&over).is_err());
    let mut period0 = bytes.to_vec();
    period0[13..21].fill(0);
    assert!(TestChain::from_secret_bytes(&period0).is_err());
}

#[test]
fn secrets_are_never_debug_printed() {
    let t = LockSecret::new([0xab; 32]);
    let shown = format!("{t:?}");
    assert!(!shown.contains("ab, ") && !shown.contains("171"), "{shown}");
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    let tc = test_chain(17);
    let secret = tc.to_secret_bytes();
    let scalar_hex = kairos_lock::wire::hex(&secret[21..]);
    let shown = format!("{tc:?}");
    assert!(!shown.contains(&scalar_hex), "{shown}");
    assert!(
        !shown.contains(&format!("{:?}", &secret[21..25])),
        "{shown}"
    );
    assert!(shown.contains("redacted"));
}

#[test]
fn the_pinned_chain_is_not_a_test_chain() {
    let q = Chain::quicknet();
    assert!(!q.is_test());
    assert_eq!(q.hash_hex(), kairos_lock::chain::quicknet::HASH_HEX);
    assert_ne!(q, *test_chain(18).chain());
}
