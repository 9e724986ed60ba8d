//! [`TestChain`]: a local drand-like chain for the devnet, the demo and tests. Any BLS12-381
//! key can play drand; this one signs whatever round its owner asks for — the caller decides
//! when a round may be signed (the beacon server signs only rounds whose time has passed).
//!
//! Invariants: the secret scalar is never printed (`Debug` shows the public chain only) and is
//! zeroized on drop; its serialized form is returned in a zeroizing buffer; the public
//! [`Chain`] is marked `is_test` and its hash commits to all its parameters
//! ([`crate::test_chain_hash`]).
//!
//! Secret file format (53 bytes; the caller writes it with mode 0600):
//! `"KRTC"` ‖ version `1` ‖ genesis (u64 BE) ‖ period (u64 BE) ‖ secret scalar (32 bytes,
//! little-endian, canonical, non-zero).

use crate::beacon::Beacon;
use crate::bls;
use crate::chain::Chain;
use crate::error::LockError;
use ark_bls12_381::Fr;
use ark_ff::{PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 4] = b"KRTC";
const VERSION: u8 = 1;
/// Bytes of a test chain's secret file.
pub const TEST_SECRET_LEN: usize = 4 + 1 + 8 + 8 + 32;

/// A test chain: its secret key and its public [`Chain`].
pub struct TestChain {
    secret: Fr,
    chain: Chain,
}

impl fmt::Debug for TestChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestChain")
            .field("chain", &self.chain)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Drop for TestChain {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl TestChain {
    /// A new test chain with a fresh key, round 1 at `genesis`, a round every `period` seconds.
    pub fn generate<R: rand::RngCore + rand::CryptoRng>(
        rng: &mut R,
        genesis: u64,
        period: u64,
    ) -> Result<TestChain, LockError> {
        loop {
            let mut wide = Zeroizing::new([0u8; 64]);
            rng.fill_bytes(&mut wide[..]);
            // 512 uniform bits reduced mod r (255 bits): statistically uniform.
            let secret = Fr::from_le_bytes_mod_order(&wide[..]);
            if !secret.is_zero() {
                return Self::from_scalar(secret, genesis, period);
            }
        }
    }

    fn from_scalar(mut secret: Fr, genesis: u64, period: u64) -> Result<TestChain, LockError> {
        let pk = bls::compress_g2(&bls::public_key_of(&secret));
        match Chain::test(&pk, genesis, period) {
            Ok(chain) => Ok(TestChain { secret, chain }),
            Err(e) => {
                secret.zeroize();
                Err(e)
            }
        }
    }

    /// The public chain (what nodes and directories are configured with).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The beacon of `round` (round ≥ 1 whose time fits in a `u64`). Signing does not look at
    /// any clock: the caller decides whether the round's time has come.
    pub fn sign(&self, round: u64) -> Result<Beacon, LockError> {
        self.chain.round_time(round)?;
        Ok(Beacon {
            round,
            signature: bls::sign(&self.secret, round)?,
        })
    }

    /// The secret file's bytes (format in the module docs).
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(TEST_SECRET_LEN));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.chain.genesis().to_be_bytes());
        out.extend_from_slice(&self.chain.period().to_be_bytes());
        let mut scalar = Zeroizing::new([0u8; 32]);
        // A scalar serializes to exactly 32 bytes.
        let _ = self.secret.serialize_compressed(&mut scalar[..]);
        out.extend_from_slice(&scalar[..]);
        out
    }

    /// Reads a secret file written by [`TestChain::to_secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<TestChain, LockError> {
        if bytes.len() != TEST_SECRET_LEN {
            return Err(LockError::BadTestSecret("wrong length"));
        }
        let (head, rest) = bytes.split_at(5);
        if &head[..4] != MAGIC || head[4] != VERSION {
            return Err(LockError::BadTestSecret(
                "not a kairos test chain secret (v1)",
            ));
        }
        let (genesis, rest) = rest.split_at(8);
        let (period, scalar) = rest.split_at(8);
        let num = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        let secret = Fr::deserialize_compressed(scalar)
            .map_err(|_| LockError::BadTestSecret("the key is not a canonical scalar"))?;
        if secret.is_zero() {
            return Err(LockError::BadTestSecret("the key is zero"));
        }
        Self::from_scalar(secret, num(genesis), num(period))
    }
}
