//! The signed file manifest, version 1: content and placement in one object, signed by the
//! uploading node's key. Still what put writes; stays readable after version 2.
//!
//! The manifest is the clear-text half of a sealed file: who uploaded it, when it opens, how it
//! was coded, and for every block which peer holds which piece under which hash. It never holds
//! the file name, exact size or any key material (those travel inside the encrypted stream or
//! with the pieces).
//!
//! # Canonical encoding, version 1
//!
//! All integers little-endian. `n = k + m`.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KRSM` |
//! | 1 | format version = 1 |
//! | 32 | uploader Ed25519 public key |
//! | 8 | created, Unix seconds (u64) |
//! | 8 | release, Unix seconds (u64) |
//! | 32 | per-file salt (feeds the block-key derivation) |
//! | 1 | k (data shards) |
//! | 1 | m (parity shards) |
//! | 4 | shard size (u32) |
//! | 1 | lock section: 0 = none (reserved for a timelock section in a later version) |
//! | 2 | peer count P (u16, ≥ 1) |
//! | P × (32 + 1 + len) | peer: public key, address length (u8), address (`host:port`, UTF-8) |
//! | 4 | block count B (u32, ≥ 1) |
//! | B × (4 + n × 34) | block: ciphertext length (u32), then n × (peer index u16, piece hash 32) |
//! | 64 | Ed25519 signature by the uploader over `"kairos manifest v1\0" ‖ all bytes above` |
//!
//! The **file id** is `BLAKE3(all bytes including the signature)`: the directory cannot swap a
//! manifest under an id, and nobody can re-sign a manifest under an existing id.
//!
//! Invariants enforced by [`SignedManifest::from_bytes`] (never a panic, whatever the input):
//! exact length (no trailing bytes), valid [`Params`], `created <= release`, distinct peers with
//! valid addresses, every piece index in range, the `n` pieces of one block on `n` distinct
//! peers, every block but the last full (`cipher_len == k * shard_size`), the last one between
//! `TAG_LEN` and full, and a valid signature.

use super::error::{inconsistent, ManifestError};
use super::{FileId, MAGIC, MAX_MANIFEST_BYTES, SIGNATURE_LEN};
use crate::addr;
use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::{Identity, PublicKey};
use kairos_seal::{Params, TAG_LEN};
use std::collections::HashSet;

/// Version byte of this format (the version every put writes today).
pub const MANIFEST_VERSION: u8 = 1;
/// Signing context of a version 1 manifest.
pub const SIGNING_CONTEXT: &[u8] = b"kairos manifest v1\0";
const PIECE_ENTRY_LEN: usize = 2 + 32;

/// One peer a manifest places pieces on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub key: PublicKey,
    /// `host:port` where its peer API is reachable (an onion address in Tor mode).
    pub addr: String,
}

/// Where one piece of a block lives and what it must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PieceEntry {
    /// Index into [`Manifest::peers`].
    pub peer: u16,
    /// `kairos_seal::piece_hash(share, shard)`: also the piece's id on the peer.
    pub hash: [u8; 32],
}

/// One block: its ciphertext length and its `n` pieces in shard order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub cipher_len: u32,
    pub pieces: Vec<PieceEntry>,
}

/// The manifest contents (unsigned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub uploader: PublicKey,
    pub created: u64,
    pub release: u64,
    pub salt: [u8; 32],
    pub params: Params,
    pub peers: Vec<Peer>,
    pub blocks: Vec<BlockEntry>,
}

impl Manifest {
    /// Checks every invariant of the module docs except the signature.
    pub fn check(&self) -> Result<(), ManifestError> {
        self.params.validate()?;
        if self.created > self.release {
            return Err(inconsistent("release time is before creation time"));
        }
        if self.peers.is_empty() || self.peers.len() > u16::MAX as usize {
            return Err(inconsistent("peer count must be 1..=65535"));
        }
        let mut keys = HashSet::new();
        for p in &self.peers {
            addr::validate(&p.addr).map_err(|e| inconsistent(format!("peer address: {e}")))?;
            if !keys.insert(p.key) {
                return Err(inconsistent("the same peer is listed twice"));
            }
        }
        if self.blocks.is_empty() {
            return Err(inconsistent("a manifest has at least one block"));
        }
        let n = self.params.total_shards();
        let full = self.params.block_cipher_size();
        let last = self.blocks.len() - 1;
        let mut seen = HashSet::with_capacity(n);
        for (i, b) in self.blocks.iter().enumerate() {
            if b.pieces.len() != n {
                return Err(inconsistent(format!(
                    "block {i} has {} pieces, expected {n}",
                    b.pieces.len()
                )));
            }
            let len = b.cipher_len as usize;
            if (i < last && len != full) || len < TAG_LEN || len > full {
                return Err(inconsistent(format!(
                    "block {i} has an impossible ciphertext length {len}"
                )));
            }
            seen.clear();
            for p in &b.pieces {
                if p.peer as usize >= self.peers.len() {
                    return Err(inconsistent(format!(
                        "block {i} names peer {} of {}",
                        p.peer,
                        self.peers.len()
                    )));
                }
                if !seen.insert(p.peer) {
                    return Err(inconsistent(format!(
                        "block {i} puts two pieces on one peer"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The canonical unsigned bytes. Call [`Manifest::check`] first (signing does).
    fn encode(&self) -> Vec<u8> {
        let n = self.params.total_shards();
        let mut w = Writer::default();
        w.buf
            .reserve(128 + self.peers.len() * 100 + self.blocks.len() * (4 + n * PIECE_ENTRY_LEN));
        w.bytes(MAGIC);
        w.u8(MANIFEST_VERSION);
        w.bytes(&self.uploader.0);
        w.u64(self.created);
        w.u64(self.release);
        w.bytes(&self.salt);
        w.u8(self.params.data_shards);
        w.u8(self.params.parity_shards);
        w.u32(self.params.shard_size);
        w.u8(0); // no lock section in version 1
        w.u16(self.peers.len() as u16);
        for p in &self.peers {
            w.bytes(&p.key.0);
            w.short_str(&p.addr);
        }
        w.u32(self.blocks.len() as u32);
        for b in &self.blocks {
            w.u32(b.cipher_len);
            for p in &b.pieces {
                w.u16(p.peer);
                w.bytes(&p.hash);
            }
        }
        w.buf
    }

    fn decode(body: &[u8]) -> Result<Manifest, ManifestError> {
        let mut r = Reader::new(body);
        let (uploader, created, release, salt, params) = decode_header(&mut r)?;
        let peers = decode_peers(&mut r)?;
        let blocks = decode_blocks(&mut r, params.total_shards())?;
        r.finish()?;
        let m = Manifest {
            uploader,
            created,
            release,
            salt,
            params,
            peers,
            blocks,
        };
        m.check()?;
        Ok(m)
    }

    /// Checks and signs the manifest with the uploader's identity.
    ///
    /// Fails if the manifest is inconsistent or `identity` is not `self.uploader`.
    pub fn sign(self, identity: &Identity) -> Result<SignedManifest, ManifestError> {
        if identity.public() != self.uploader {
            return Err(inconsistent(
                "signing identity is not the manifest's uploader",
            ));
        }
        self.check()?;
        let mut bytes = self.encode();
        if bytes.len() + SIGNATURE_LEN > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len() + SIGNATURE_LEN));
        }
        let sig = identity.sign(&signing_message(&bytes));
        bytes.extend_from_slice(&sig);
        let id = FileId::of(&bytes);
        Ok(SignedManifest {
            bytes,
            manifest: self,
            id,
        })
    }
}

fn signing_message(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(body);
    msg
}

/// A manifest together with its exact signed bytes and its id. Only constructible through
/// signing or full verification, so holding one means it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    bytes: Vec<u8>,
    manifest: Manifest,
    id: FileId,
}

impl SignedManifest {
    /// Decodes and fully verifies signed manifest bytes (structure, consistency, signature).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        if bytes.len() < SIGNATURE_LEN {
            return Err(DecodeError::Truncated {
                field: "signature",
                needed: SIGNATURE_LEN - bytes.len(),
            }
            .into());
        }
        let (body, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let manifest = Manifest::decode(body)?;
        let sig: [u8; 64] = sig.try_into().expect("split at SIGNATURE_LEN");
        manifest
            .uploader
            .verify(&signing_message(body), &sig)
            .map_err(|_| ManifestError::BadSignature)?;
        let id = FileId::of(&bytes);
        Ok(SignedManifest {
            bytes,
            manifest,
            id,
        })
    }

    /// [`SignedManifest::from_bytes`] plus a check that the bytes hash to `expected`.
    pub fn verify(bytes: Vec<u8>, expected: &FileId) -> Result<Self, ManifestError> {
        expected.check(&bytes)?;
        Self::from_bytes(bytes)
    }

    pub fn id(&self) -> FileId {
        self.id
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The fixed part: magic, version, uploader, times, salt, coding, lock section.
fn decode_header(
    r: &mut Reader<'_>,
) -> Result<(PublicKey, u64, u64, [u8; 32], Params), ManifestError> {
    if r.take(4, "magic")? != MAGIC {
        return Err(DecodeError::Magic("kairos manifest").into());
    }
    let version = r.u8("version")?;
    if version != MANIFEST_VERSION {
        return Err(DecodeError::Version {
            what: "manifest",
            version,
        }
        .into());
    }
    let uploader = PublicKey(r.array("uploader")?);
    let created = r.u64("created")?;
    let release = r.u64("release")?;
    let salt = r.array("salt")?;
    let params = Params {
        data_shards: r.u8("k")?,
        parity_shards: r.u8("m")?,
        shard_size: r.u32("shard size")?,
    };
    params.validate()?;
    if r.u8("lock section")? != 0 {
        return Err(DecodeError::Invalid {
            field: "lock section",
            reason: "unknown lock kind",
        }
        .into());
    }
    Ok((uploader, created, release, salt, params))
}

fn decode_peers(r: &mut Reader<'_>) -> Result<Vec<Peer>, ManifestError> {
    let peer_count = r.u16("peer count")? as usize;
    // Each peer needs at least 33 bytes: refuse counts the input cannot hold before allocating.
    if peer_count * 33 > r.remaining() {
        return Err(DecodeError::Truncated {
            field: "peers",
            needed: peer_count * 33 - r.remaining(),
        }
        .into());
    }
    let mut peers = Vec::with_capacity(peer_count);
    for _ in 0..peer_count {
        let key = PublicKey(r.array("peer key")?);
        let addr = r.short_str("peer address")?.to_owned();
        peers.push(Peer { key, addr });
    }
    Ok(peers)
}

/// The block table: its length must be exactly what the rest of the input holds.
fn decode_blocks(r: &mut Reader<'_>, n: usize) -> Result<Vec<BlockEntry>, ManifestError> {
    let block_count = r.u32("block count")? as usize;
    let block_len = 4 + n * PIECE_ENTRY_LEN;
    if block_count.saturating_mul(block_len) != r.remaining() {
        return Err(DecodeError::Invalid {
            field: "block count",
            reason: "does not match the manifest length",
        }
        .into());
    }
    let mut blocks = Vec::with_capacity(block_count);
    for _ in 0..block_count {
        let cipher_len = r.u32("cipher length")?;
        let mut pieces = Vec::with_capacity(n);
        for _ in 0..n {
            pieces.push(PieceEntry {
                peer: r.u16("peer index")?,
                hash: r.array("piece hash")?,
            });
        }
        blocks.push(BlockEntry { cipher_len, pieces });
    }
    Ok(blocks)
}
