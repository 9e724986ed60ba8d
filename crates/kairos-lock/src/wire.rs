//! drand's HTTP JSON (API v1), as served by `GET /{chain hash}/info` and
//! `GET /{chain hash}/public/{round}`, and the hex helpers they need.
//!
//! Invariants: parsing is total on any input (a typed [`LockError::Wire`], never a panic) and
//! refuses bodies over [`MAX_JSON_BYTES`]; parsing a beacon checks only its shape — trust comes
//! from [`crate::Chain::verify`] alone; unknown fields are ignored (drand adds fields over
//! time), and what we serialize is what drand serves, so any drand client can read our relays.

use crate::beacon::{randomness, Beacon, VerifiedBeacon};
use crate::bls;
use crate::chain::Scheme;
use crate::chain::{quicknet, Chain, TEST_BEACON_ID};
use crate::error::LockError;
pub use crate::hex::{hex, unhex, unhex32};
use serde::{Deserialize, Serialize};

/// Largest drand JSON body parsed (real ones are under 600 bytes).
pub const MAX_JSON_BYTES: usize = 4096;

/// `GET /{chain hash}/info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// Compressed public key, hex.
    pub public_key: String,
    pub period: u64,
    pub genesis_time: u64,
    /// Chain hash, hex.
    pub hash: String,
    #[serde(rename = "groupHash", default, skip_serializing_if = "Option::is_none")]
    pub group_hash: Option<String>,
    #[serde(rename = "schemeID")]
    pub scheme_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ChainMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainMetadata {
    #[serde(rename = "beaconID")]
    pub beacon_id: String,
}

/// `GET /{chain hash}/public/{round}` (unchained: no `previous_signature`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconJson {
    pub round: u64,
    /// `sha256(signature)`, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randomness: Option<String>,
    /// Compressed G1 signature, hex.
    pub signature: String,
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, LockError> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(LockError::Wire(format!(
            "{what} is over {MAX_JSON_BYTES} bytes"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| LockError::Wire(format!("{what}: {e}")))
}

impl ChainInfo {
    /// Parses a chain info body (then [`Chain::from_info`] validates it).
    pub fn parse(bytes: &[u8]) -> Result<ChainInfo, LockError> {
        parse_json(bytes, "chain info")
    }

    /// The chain info a drand node would serve for `chain`.
    pub fn of(chain: &Chain) -> ChainInfo {
        let quick = chain.hash_hex() == quicknet::HASH_HEX && !chain.is_test();
        ChainInfo {
            public_key: hex(chain.public_key()),
            period: chain.period(),
            genesis_time: chain.genesis(),
            hash: chain.hash_hex(),
            group_hash: quick.then(|| quicknet::GROUP_HASH_HEX.to_owned()),
            scheme_id: chain.scheme().id().to_owned(),
            metadata: Some(ChainMetadata {
                beacon_id: if quick {
                    quicknet::BEACON_ID
                } else {
                    TEST_BEACON_ID
                }
                .to_owned(),
            }),
        }
    }
}

impl Chain {
    /// The chain described by drand chain info (`GET /{chain hash}/info`), validated: the
    /// scheme must be supported and the key valid; a chain with quicknet's hash must have
    /// exactly the pinned quicknet parameters; any other chain must be a kairos test chain
    /// (its hash is [`crate::test_chain_hash`] of its parameters). Other drand chains are refused.
    pub fn from_info(info: &ChainInfo) -> Result<Chain, LockError> {
        let scheme = Scheme::from_id(&info.scheme_id)?;
        let pk = unhex(&info.public_key, bls::PUBLIC_KEY_LEN, "public key")?;
        let hash = unhex32(&info.hash, "chain hash")?;
        let quick = Chain::quicknet();
        if &hash == quick.hash() {
            let same = pk.as_slice() == quick.public_key().as_slice()
                && (info.genesis_time, info.period) == (quick.genesis(), quick.period())
                && scheme == quick.scheme();
            return if same {
                Ok(quick)
            } else {
                Err(LockError::NotPinnedQuicknet {
                    got: info.hash.chars().take(64).collect(),
                    want: quicknet::HASH_HEX.into(),
                })
            };
        }
        let chain = Chain::test(&pk, info.genesis_time, info.period)?;
        if chain.hash() != &hash {
            return Err(LockError::BadChain(format!(
                "chain {} is neither quicknet nor a kairos test chain (its hash does not commit to its parameters)",
                hex(&hash)
            )));
        }
        Ok(chain)
    }
}

impl BeaconJson {
    /// Parses a beacon body into an unverified [`Beacon`]. A `randomness` field, if present,
    /// must be `sha256(signature)`.
    pub fn parse(bytes: &[u8]) -> Result<Beacon, LockError> {
        let json: BeaconJson = parse_json(bytes, "beacon")?;
        json.beacon()
    }

    /// The unverified beacon this JSON describes.
    pub fn beacon(&self) -> Result<Beacon, LockError> {
        let sig = unhex(&self.signature, bls::SIGNATURE_LEN, "signature")?;
        let signature: [u8; bls::SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| LockError::Wire("signature is not 48 bytes".into()))?;
        if let Some(r) = &self.randomness {
            if unhex(r, 32, "randomness")? != randomness(&signature) {
                return Err(LockError::Wire(
                    "randomness is not sha256(signature)".into(),
                ));
            }
        }
        Ok(Beacon {
            round: self.round,
            signature,
        })
    }

    /// The JSON drand serves for a beacon.
    pub fn of(beacon: &VerifiedBeacon) -> BeaconJson {
        Self::unverified(&beacon.beacon())
    }

    /// The JSON of a beacon that was verified earlier (a relay serving what it stored after
    /// verifying). The JSON claims nothing: its reader verifies it.
    pub fn unverified(beacon: &Beacon) -> BeaconJson {
        BeaconJson {
            round: beacon.round,
            randomness: Some(hex(&randomness(&beacon.signature))),
            signature: hex(&beacon.signature),
        }
    }
}
