//! Signed node records: what a node sends a directory to subscribe and to heartbeat, and what
//! directories relay to each other.
//!
//! # Canonical encoding, version 1
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KRNR` |
//! | 1 | version = 1 |
//! | 32 | node Ed25519 public key |
//! | 1 + len | address (`host:port`, u8 length prefix) |
//! | 8 | capacity offered, bytes (u64 LE) |
//! | 8 | timestamp, Unix seconds (u64 LE) |
//! | 16 | random nonce |
//! | 64 | signature over `"kairos node record v1\0" ‖ all bytes above` |
//!
//! A record is self-certifying: any directory can re-verify a relayed record, so a directory
//! cannot forge or alter one. Freshness (timestamp skew, replays, "newer than what I have") is
//! the receiver's policy, decided with its own clock.

use crate::addr;
use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{Identity, PublicKey};
use rand::RngCore;
use thiserror::Error;

const MAGIC: &[u8; 4] = b"KRNR";
const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"kairos node record v1\0";
/// Largest possible encoded record.
pub const MAX_RECORD_BYTES: usize = 4 + 1 + 32 + 1 + 255 + 8 + 8 + 16 + 64;

/// The contents of a node record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub key: PublicKey,
    /// `host:port` of the node's peer API.
    pub addr: String,
    /// Bytes of shard storage the node offers.
    pub capacity: u64,
    /// Unix seconds at signing.
    pub timestamp: u64,
    pub nonce: [u8; 16],
}

/// Why a record was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("malformed node record: {0}")]
    Decode(#[from] DecodeError),
    #[error("node record address is invalid: {0}")]
    Addr(&'static str),
    #[error("node record signature does not verify")]
    BadSignature,
}

/// A node record with its exact signed bytes; holding one means the signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNodeRecord {
    bytes: Vec<u8>,
    record: NodeRecord,
}

impl NodeRecord {
    /// A record for `identity` at `addr`, stamped `now` with a fresh nonce.
    pub fn new(identity: &Identity, addr: String, capacity: u64, now: u64) -> Self {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        NodeRecord {
            key: identity.public(),
            addr,
            capacity,
            timestamp: now,
            nonce,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u8(VERSION);
        w.bytes(&self.key.0);
        w.short_str(&self.addr);
        w.u64(self.capacity);
        w.u64(self.timestamp);
        w.bytes(&self.nonce);
        w.buf
    }

    /// Signs the record. Fails if the address is invalid or `identity` is not the record's key.
    pub fn sign(self, identity: &Identity) -> Result<SignedNodeRecord, RecordError> {
        addr::validate(&self.addr).map_err(RecordError::Addr)?;
        if identity.public() != self.key {
            return Err(RecordError::BadSignature);
        }
        let mut bytes = self.encode();
        let sig = identity.sign(&[CONTEXT, &bytes].concat());
        bytes.extend_from_slice(&sig);
        Ok(SignedNodeRecord {
            bytes,
            record: self,
        })
    }
}

impl SignedNodeRecord {
    /// Decodes and verifies a signed record.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::Trailing(bytes.len() - MAX_RECORD_BYTES).into());
        }
        let mut r = Reader::new(&bytes);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::Magic("kairos node record").into());
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::Version {
                what: "node record",
                version,
            }
            .into());
        }
        let key = PublicKey(r.array("key")?);
        let addr = r.short_str("address")?.to_owned();
        addr::validate(&addr).map_err(RecordError::Addr)?;
        let capacity = r.u64("capacity")?;
        let timestamp = r.u64("timestamp")?;
        let nonce = r.array("nonce")?;
        let body_len = bytes.len() - r.remaining();
        let sig: [u8; 64] = r.array("signature")?;
        r.finish()?;
        key.verify(&[CONTEXT, &bytes[..body_len]].concat(), &sig)
            .map_err(|_| RecordError::BadSignature)?;
        let record = NodeRecord {
            key,
            addr,
            capacity,
            timestamp,
            nonce,
        };
        Ok(SignedNodeRecord { bytes, record })
    }

    pub fn record(&self) -> &NodeRecord {
        &self.record
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether the address is one this key may claim: an onion address must be the key's own;
    /// a loopback address is accepted only when `allow_loopback` (development networks).
    pub fn address_is_bound(&self, allow_loopback: bool) -> bool {
        match addr::kind(&self.record.addr) {
            addr::AddrKind::Onion(k) => k == self.record.key,
            addr::AddrKind::Loopback => allow_loopback,
            addr::AddrKind::Other => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let id = Identity::generate();
        let addr = format!("{}:80", id.public().onion_address());
        let signed = NodeRecord::new(&id, addr, 1 << 30, 1_700_000_000)
            .sign(&id)
            .unwrap();
        let back = SignedNodeRecord::from_bytes(signed.as_bytes().to_vec()).unwrap();
        assert_eq!(back, signed);
        assert!(back.address_is_bound(false));
        for i in 0..signed.as_bytes().len() {
            let mut b = signed.as_bytes().to_vec();
            b[i] ^= 0x01;
            assert!(
                SignedNodeRecord::from_bytes(b).is_err(),
                "flip at {i} accepted"
            );
        }
        let mut long = signed.as_bytes().to_vec();
        long.push(0);
        assert!(SignedNodeRecord::from_bytes(long).is_err());
    }

    #[test]
    fn address_binding() {
        let id = Identity::generate();
        let other = Identity::generate();
        let stolen = format!("{}:80", other.public().onion_address());
        let rec = NodeRecord::new(&id, stolen, 0, 1).sign(&id).unwrap();
        assert!(!rec.address_is_bound(true));
        let local = NodeRecord::new(&id, "127.0.0.1:9".into(), 0, 1)
            .sign(&id)
            .unwrap();
        assert!(local.address_is_bound(true));
        assert!(!local.address_is_bound(false));
    }
}
