//! [`Chain`]: one drand chain the lock can use (its hash, public key, genesis, period and
//! scheme), the pinned quicknet chain, and the round arithmetic.
//!
//! Invariants: a `Chain` exists only with a validated public key (a canonical, non-identity G2
//! point of the prime-order subgroup: `tlock_age::encrypt` would accept anything and produce a
//! ciphertext nobody can ever open) and a period of at least one second; a chain that calls
//! itself quicknet has exactly the pinned parameters; the round arithmetic is checked and never
//! panics on any `u64`.
//!
//! Round schedule (drand's): round `r ≥ 1` is published at `genesis + (r − 1) × period`;
//! there is no round 0.

use crate::bls;
use crate::error::LockError;
use ark_bls12_381::G2Affine;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::OnceLock;

/// The only drand scheme the lock supports: unchained beacons, signatures on G1, RFC 9380
/// hash-to-curve (quicknet's; what `tlock_age` with its default `rfc9380` feature expects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    UnchainedG1Rfc9380,
}

impl Scheme {
    /// drand's name of the scheme (`schemeID` in chain info).
    pub const fn id(self) -> &'static str {
        match self {
            Scheme::UnchainedG1Rfc9380 => "bls-unchained-g1-rfc9380",
        }
    }

    pub fn from_id(id: &str) -> Result<Scheme, LockError> {
        match id {
            "bls-unchained-g1-rfc9380" => Ok(Scheme::UnchainedG1Rfc9380),
            other => Err(LockError::UnsupportedScheme(
                other.chars().take(64).collect(),
            )),
        }
    }
}

/// drand quicknet (League of Entropy mainnet, 3 s rounds). The public key and group hash are
/// those published in drand's chain info
/// (`drand/go-clients`, `client/lp2p/example_test.go`, `jsonQuicknetInfo`; the same key is in
/// `thibmeu/tlock-rs`, `tlock/src/lib.rs`, test `test_pk_g2_sig_g1`).
pub mod quicknet {
    pub const HASH_HEX: &str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
    pub const PUBLIC_KEY_HEX: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
    pub const GROUP_HASH_HEX: &str =
        "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e";
    pub const GENESIS: u64 = 1_692_803_367;
    pub const PERIOD: u64 = 3;
    pub const BEACON_ID: &str = "quicknet";
}

/// `beaconID` that kairos test chains carry in their chain info.
pub const TEST_BEACON_ID: &str = "kairos-test";

/// Domain separation of a test chain's hash (see [`test_chain_hash`]).
const TEST_CHAIN_DOMAIN: &[u8] = b"kairos test chain v1\0";

/// A drand chain: what sealing to a round and verifying its beacon need.
#[derive(Clone)]
pub struct Chain {
    hash: [u8; 32],
    public_key: [u8; bls::PUBLIC_KEY_LEN],
    point: G2Affine,
    genesis: u64,
    period: u64,
    scheme: Scheme,
    is_test: bool,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("hash", &self.hash_hex())
            .field("genesis", &self.genesis)
            .field("period", &self.period)
            .field("scheme", &self.scheme.id())
            .field("is_test", &self.is_test)
            .finish()
    }
}

impl PartialEq for Chain {
    fn eq(&self, other: &Self) -> bool {
        // Every other field is a function of these (the hash of a test chain commits to all).
        (
            self.hash,
            self.public_key,
            self.genesis,
            self.period,
            self.scheme,
            self.is_test,
        ) == (
            other.hash,
            other.public_key,
            other.genesis,
            other.period,
            other.scheme,
            other.is_test,
        )
    }
}
impl Eq for Chain {}

/// The hash of a kairos test chain:
/// `sha256("kairos test chain v1\0" ‖ u8 len(scheme id) ‖ scheme id ‖ public key (96 B) ‖
/// genesis (u64 BE) ‖ period (u64 BE))`. It commits to every parameter, so two test chains
/// with the same hash are the same chain, and it cannot collide with a drand chain hash
/// (which hashes other inputs without this prefix).
pub fn test_chain_hash(
    scheme: Scheme,
    public_key: &[u8; bls::PUBLIC_KEY_LEN],
    genesis: u64,
    period: u64,
) -> [u8; 32] {
    let id = scheme.id().as_bytes();
    let mut h = Sha256::new();
    h.update(TEST_CHAIN_DOMAIN);
    // Scheme ids are short constants (< 256 bytes).
    h.update([u8::try_from(id.len()).unwrap_or(u8::MAX)]);
    h.update(id);
    h.update(public_key);
    h.update(genesis.to_be_bytes());
    h.update(period.to_be_bytes());
    h.finalize().into()
}

impl Chain {
    /// drand quicknet, pinned in the binary (parameters in [`quicknet`]). Validated once, on
    /// first use, like any other chain.
    pub fn quicknet() -> Chain {
        static QUICKNET: OnceLock<Chain> = OnceLock::new();
        QUICKNET
            .get_or_init(|| {
                // The pinned constants are checked by the test `quicknet_pinned_key_validates`;
                // failing here means the binary itself was built wrong.
                Self::pinned_quicknet().expect("the pinned quicknet parameters are valid")
            })
            .clone()
    }

    fn pinned_quicknet() -> Result<Chain, LockError> {
        let pk = crate::hex::unhex(quicknet::PUBLIC_KEY_HEX, bls::PUBLIC_KEY_LEN, "public key")?;
        let hash = crate::hex::unhex32(quicknet::HASH_HEX, "chain hash")?;
        Self::build(hash, &pk, quicknet::GENESIS, quicknet::PERIOD, false)
    }

    /// Validates every parameter and builds the chain.
    fn build(
        hash: [u8; 32],
        public_key: &[u8],
        genesis: u64,
        period: u64,
        is_test: bool,
    ) -> Result<Chain, LockError> {
        let point = bls::parse_public_key(public_key)?;
        if period == 0 {
            return Err(LockError::BadChain(
                "the period must be at least one second".into(),
            ));
        }
        Ok(Chain {
            hash,
            public_key: bls::compress_g2(&point),
            point,
            genesis,
            period,
            scheme: Scheme::UnchainedG1Rfc9380,
            is_test,
        })
    }

    /// A kairos test chain with this key, genesis and period (its hash is
    /// [`test_chain_hash`]). Only [`crate::TestChain`] and [`Chain::from_info`] make one.
    pub(crate) fn test(public_key: &[u8], genesis: u64, period: u64) -> Result<Chain, LockError> {
        let point = bls::parse_public_key(public_key)?;
        let pk = bls::compress_g2(&point);
        let hash = test_chain_hash(Scheme::UnchainedG1Rfc9380, &pk, genesis, period);
        Self::build(hash, &pk, genesis, period, true)
    }

    /// The chain hash (drand's id of the chain).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The chain hash in lower-case hex, as drand URLs write it.
    pub fn hash_hex(&self) -> String {
        crate::hex::hex(&self.hash)
    }

    /// The compressed G2 public key.
    pub fn public_key(&self) -> &[u8; bls::PUBLIC_KEY_LEN] {
        &self.public_key
    }

    pub(crate) fn point(&self) -> &G2Affine {
        &self.point
    }

    /// Unix time of round 1.
    pub fn genesis(&self) -> u64 {
        self.genesis
    }

    /// Seconds between rounds (at least 1).
    pub fn period(&self) -> u64 {
        self.period
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether this is a local kairos test chain (devnet, demo, tests) — never a real drand
    /// network; callers say so on every start, like the direct transport.
    pub fn is_test(&self) -> bool {
        self.is_test
    }

    /// Unix time at which round `round` is published: `genesis + (round − 1) × period`.
    /// Round 0 and rounds whose time overflows `u64` are [`LockError::BadRound`].
    pub fn round_time(&self, round: u64) -> Result<u64, LockError> {
        round
            .checked_sub(1)
            .and_then(|r| r.checked_mul(self.period))
            .and_then(|d| d.checked_add(self.genesis))
            .ok_or(LockError::BadRound(round))
    }

    /// The first round whose time is at or after `t` (round 1 for any `t` up to genesis):
    /// the round a file released at `t` is locked to. [`LockError::BadRound`] if that round's
    /// number or time does not fit in a `u64`.
    pub fn round_at_or_after(&self, t: u64) -> Result<u64, LockError> {
        let Some(since) = t.checked_sub(self.genesis) else {
            return Ok(1);
        };
        let mut steps = since / self.period;
        if since % self.period != 0 {
            steps += 1; // cannot overflow: since / period < u64::MAX when period ≥ 2 or rem ≠ 0
        }
        let round = steps.checked_add(1).ok_or(LockError::BadRound(u64::MAX))?;
        // The round's time must itself be representable, so round_time(round) ≥ t holds.
        self.round_time(round)?;
        Ok(round)
    }

    /// The newest round published at `now` (`round_time(r) ≤ now`), or 0 before genesis.
    pub fn round_at(&self, now: u64) -> u64 {
        match now.checked_sub(self.genesis) {
            // (since / period) + 1 overflows only for period 1 and since = u64::MAX, where
            // the saturated answer is still the newest representable round.
            Some(since) => (since / self.period).saturating_add(1),
            None => 0,
        }
    }

    /// Whether round `round` has been published by `now` (its time has come).
    pub fn is_published(&self, round: u64, now: u64) -> bool {
        self.round_time(round).is_ok_and(|t| t <= now)
    }
}
