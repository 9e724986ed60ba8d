//! Properties over hostile input: the round arithmetic over the whole `u64` range, and the
//! drand JSON decoders over arbitrary bytes. Nothing may panic.

use kairos_lock::{BeaconJson, Chain, ChainInfo, TestChain};
use proptest::prelude::*;
use rand::SeedableRng;
use std::sync::OnceLock;

/// Test chains with arbitrary genesis and period, sharing one key (only the schedule matters).
fn chain(genesis: u64, period: u64) -> Chain {
    static SECRET: OnceLock<Vec<u8>> = OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let tc = TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(7), 0, 1).unwrap();
        tc.to_secret_bytes().to_vec()
    });
    let mut bytes = secret.clone();
    bytes[5..13].copy_from_slice(&genesis.to_be_bytes());
    bytes[13..21].copy_from_slice(&period.to_be_bytes());
    TestChain::from_secret_bytes(&bytes)
        .unwrap()
        .chain()
        .clone()
}

fn any_period() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=10,
        Just(1u64),
        Just(u64::MAX),
        any::<u64>().prop_map(|p| p.max(1))
    ]
}

fn any_time() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), Just(0u64), Just(u64::MAX), Just(u64::MAX - 1)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_at_or_after_is_the_first_round_at_or_after(
        genesis in any_time(), period in any_period(), t in any_time()
    ) {
        let c = chain(genesis, period);
        if let Ok(r) = c.round_at_or_after(t) {
            prop_assert!(r >= 1);
            let time = c.round_time(r).unwrap();
            prop_assert!(time >= t);
            if r > 1 {
                prop_assert!(c.round_time(r - 1).unwrap() < t);
            }
        } else {
            // Only when no representable round is at or after t.
            prop_assert!(t > genesis);
        }
    }

    #[test]
    fn round_time_and_back(genesis in any_time(), period in any_period(), r in any_time()) {
        let c = chain(genesis, period);
        match c.round_time(r) {
            Ok(t) => {
                prop_assert!(r >= 1);
                prop_assert_eq!(c.round_at_or_after(t).unwrap(), r);
                prop_assert_eq!(c.round_at(t), r);
                prop_assert!(c.is_published(r, t));
                prop_assert!(t == 0 || !c.is_published(r, t - 1));
            }
            Err(_) => prop_assert!(r == 0 || r - 1 > (u64::MAX - genesis) / period),
        }
    }

    #[test]
    fn round_at_is_the_newest_published(genesis in any_time(), period in any_period(), now in any_time()) {
        let c = chain(genesis, period);
        let r = c.round_at(now);
        if r == 0 {
            prop_assert!(now < genesis);
        } else {
            prop_assert!(c.round_time(r).unwrap() <= now);
            if let Ok(next) = c.round_time(r.saturating_add(1)) {
                prop_assert!(next > now || r == u64::MAX);
            }
        }
    }

    #[test]
    fn beacon_json_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = BeaconJson::parse(&bytes);
        let _ = ChainInfo::parse(&bytes);
    }

    #[test]
    fn beacon_json_fields_are_checked(round in any::<u64>(), sig in "[0-9a-fA-Fg]{0,100}", rnd in proptest::option::of("[0-9a-f]{0,70}")) {
        let json = serde_json::json!({"round": round, "signature": sig, "randomness": rnd});
        if let Ok(b) = BeaconJson::parse(json.to_string().as_bytes()) {
            prop_assert_eq!(b.round, round);
            prop_assert_eq!(sig.len(), 96);
        }
        // Whatever parsed, verification is the only trust: a random signature never verifies.
        if let Ok(b) = BeaconJson::parse(json.to_string().as_bytes()) {
            prop_assert!(Chain::quicknet().verify(&b).is_err());
        }
    }
}

#[test]
fn oversized_and_odd_json_is_refused() {
    let big = format!(r#"{{"round":1,"signature":"{}"}}"#, "a".repeat(5000));
    assert!(BeaconJson::parse(big.as_bytes()).is_err());
    assert!(BeaconJson::parse(br#"{"round":-1,"signature":"00"}"#).is_err());
    assert!(BeaconJson::parse(br#"{"round":1}"#).is_err());
    assert!(BeaconJson::parse(b"null").is_err());
    let sig = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";
    let wrong_rnd = format!(
        r#"{{"round":1000,"signature":"{sig}","randomness":"{}"}}"#,
        "00".repeat(32)
    );
    assert!(BeaconJson::parse(wrong_rnd.as_bytes()).is_err());
    let extra =
        format!(r#"{{"round":1000,"signature":"{sig}","previous_signature":"","x":[1,2]}}"#);
    assert!(
        BeaconJson::parse(extra.as_bytes()).is_ok(),
        "unknown fields are ignored"
    );
}
