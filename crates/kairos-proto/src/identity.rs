//! Identities: an Ed25519 key pair that is at the same time a node's signing key and its Tor v3
//! onion-service key.
//!
//! Invariant: a node's `.onion` address is a pure function of its public key
//! ([`onion_address`]), so whoever can sign for a key is the only one who can publish, or claim,
//! the matching address. [`Identity`] keeps the 32-byte seed; it is zeroized on drop and never
//! printed by `Debug`.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};
use std::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

/// Length of a v3 onion address without the `.onion` suffix.
pub const ONION_HOST_LEN: usize = 56;
const ONION_VERSION: u8 = 3;

/// An Ed25519 public key: identifies a node, a directory or an uploader.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

/// Why a key, signature or address was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    #[error("not a valid Ed25519 public key")]
    BadKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("not a valid v3 onion address: {0}")]
    BadOnion(&'static str),
    #[error("malformed key text: {0}")]
    BadText(&'static str),
}

impl PublicKey {
    /// The dalek key, checking that the bytes are a valid curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadKey)
    }

    /// Verifies `signature` over `message` (strict verification: rejects small-order keys and
    /// non-canonical signatures, so one message has one valid signature per key).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), IdentityError> {
        let key = self.verifying_key()?;
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &sig)
            .map_err(|_| IdentityError::BadSignature)
    }

    /// Lower-case base32 (RFC 4648, no padding) text, as used in URLs and logs.
    pub fn to_text(&self) -> String {
        crate::text::encode(&self.0)
    }

    /// Parses [`PublicKey::to_text`] output.
    pub fn from_text(s: &str) -> Result<Self, IdentityError> {
        let bytes = crate::text::decode::<32>(s).map_err(IdentityError::BadText)?;
        Ok(PublicKey(bytes))
    }

    /// The v3 onion host (`<56 chars>.onion`) this key publishes.
    pub fn onion_address(&self) -> String {
        onion_address(self)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn onion_checksum(key: &[u8; 32]) -> [u8; 2] {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(key);
    h.update([ONION_VERSION]);
    let d = h.finalize();
    [d[0], d[1]]
}

/// `base32(pubkey || checksum || version) + ".onion"`, as in Tor's rend-spec-v3 §6.
pub fn onion_address(key: &PublicKey) -> String {
    let mut raw = [0u8; 35];
    raw[..32].copy_from_slice(&key.0);
    raw[32..34].copy_from_slice(&onion_checksum(&key.0));
    raw[34] = ONION_VERSION;
    format!("{}.onion", crate::text::encode(&raw))
}

/// Parses a v3 onion host (with or without the `.onion` suffix, any case) back to its key,
/// checking version and checksum.
pub fn parse_onion_address(host: &str) -> Result<PublicKey, IdentityError> {
    let lower = host.to_ascii_lowercase();
    let label = lower.strip_suffix(".onion").unwrap_or(&lower);
    if label.len() != ONION_HOST_LEN {
        return Err(IdentityError::BadOnion("wrong length"));
    }
    let raw = crate::text::decode::<35>(label).map_err(IdentityError::BadOnion)?;
    if raw[34] != ONION_VERSION {
        return Err(IdentityError::BadOnion("unknown version"));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[..32]);
    if raw[32..34] != onion_checksum(&key) {
        return Err(IdentityError::BadOnion("bad checksum"));
    }
    let key = PublicKey(key);
    key.verifying_key()
        .map_err(|_| IdentityError::BadOnion("not a valid Ed25519 key"))?;
    Ok(key)
}

/// A secret Ed25519 identity.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// A fresh random identity from the OS RNG.
    pub fn generate() -> Self {
        Identity {
            key: SigningKey::generate(&mut OsRng),
        }
    }

    /// Rebuilds an identity from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Identity {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte seed, for storing in a 0600 key file. Zeroized when dropped.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The 64-byte expanded secret key (clamped scalar || hash prefix) that Tor's
    /// `ADD_ONION ED25519-V3:<base64>` expects. Zeroized when dropped.
    pub fn tor_expanded_key(&self) -> Zeroizing<[u8; 64]> {
        let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&self.key.to_bytes());
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(expanded.scalar.as_bytes());
        out[32..].copy_from_slice(&expanded.hash_prefix);
        out
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, secret hidden)", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onion_address_round_trips_and_checks_checksum() {
        let id = Identity::generate();
        let addr = id.public().onion_address();
        assert_eq!(addr.len(), ONION_HOST_LEN + ".onion".len());
        assert_eq!(parse_onion_address(&addr).unwrap(), id.public());
        assert_eq!(
            parse_onion_address(&addr.to_ascii_uppercase()).unwrap(),
            id.public()
        );
        let mut bad = addr.into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert!(parse_onion_address(std::str::from_utf8(&bad).unwrap()).is_err());
    }

    #[test]
    fn known_onion_address() {
        // A v3 address published by Tor (rend-spec-v3 examples); its checksum must verify and
        // re-encoding its key must give the same text.
        let addr = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion";
        let key = parse_onion_address(addr).unwrap();
        assert_eq!(onion_address(&key), addr);
    }

    #[test]
    fn signatures_verify_and_reject_tampering() {
        let id = Identity::generate();
        let sig = id.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            id.public().verify(b"hellp", &sig),
            Err(IdentityError::BadSignature)
        );
        let seed = id.seed();
        assert_eq!(Identity::from_seed(&seed).public(), id.public());
    }
}
