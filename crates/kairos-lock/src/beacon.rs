//! Beacons: [`Beacon`] is what any relay may hand us (a round and a signature, unverified);
//! [`VerifiedBeacon`] is one that [`Chain::verify`] checked against the chain's public key.
//!
//! Invariant: a `VerifiedBeacon` can only be made by verifying (its fields are private and
//! this module is the only constructor outside tests), and it remembers the chain it was
//! verified for, so it cannot be used with another chain's lock.

use crate::bls;
use crate::chain::Chain;
use crate::error::LockError;
use sha2::{Digest, Sha256};
use std::fmt;

/// drand's `randomness` of a signature: `sha256(signature)`.
pub fn randomness(signature: &[u8]) -> [u8; 32] {
    Sha256::digest(signature).into()
}

/// A beacon as received: not yet trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Beacon {
    pub round: u64,
    /// The compressed G1 BLS signature of `sha256(round as u64 BE)`.
    pub signature: [u8; bls::SIGNATURE_LEN],
}

impl fmt::Debug for Beacon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Beacon(round {}, {})",
            self.round,
            crate::hex::hex(&self.signature)
        )
    }
}

/// A beacon whose signature verified against `chain_hash`'s public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedBeacon {
    chain_hash: [u8; 32],
    beacon: Beacon,
}

impl fmt::Debug for VerifiedBeacon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiedBeacon(chain {}, {:?})",
            crate::hex::hex(&self.chain_hash),
            self.beacon
        )
    }
}

impl VerifiedBeacon {
    pub fn round(&self) -> u64 {
        self.beacon.round
    }

    pub fn signature(&self) -> &[u8; bls::SIGNATURE_LEN] {
        &self.beacon.signature
    }

    /// The chain it verified against.
    pub fn chain_hash(&self) -> &[u8; 32] {
        &self.chain_hash
    }

    /// The plain beacon (to relay it: anyone receiving it verifies it again).
    pub fn beacon(&self) -> Beacon {
        self.beacon
    }

    /// drand's `randomness` of the round: `sha256(signature)`.
    pub fn randomness(&self) -> [u8; 32] {
        randomness(&self.beacon.signature)
    }

    /// Test-only: a "verified" beacon that was never verified, to exercise the guards behind
    /// verification (a valid signature presented as another round's).
    #[cfg(test)]
    pub(crate) fn unchecked(chain_hash: [u8; 32], beacon: Beacon) -> VerifiedBeacon {
        VerifiedBeacon { chain_hash, beacon }
    }
}

impl Chain {
    /// Verifies `beacon` against this chain's public key: round ≥ 1, signature a canonical
    /// non-identity point of G1's prime-order subgroup, and `e(sig, g2) = e(H(round), pk)`.
    /// About 2 ms.
    pub fn verify(&self, beacon: &Beacon) -> Result<VerifiedBeacon, LockError> {
        if beacon.round == 0 {
            return Err(LockError::BadRound(0));
        }
        let sig = bls::parse_signature(&beacon.signature)?;
        if !bls::verify(self.point(), beacon.round, &sig)? {
            return Err(LockError::Forged {
                round: beacon.round,
                chain: self.hash_hex(),
            });
        }
        Ok(VerifiedBeacon {
            chain_hash: *self.hash(),
            beacon: *beacon,
        })
    }
}
