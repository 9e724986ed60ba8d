//! The placement record: where the pieces of a version 2 file live, by holder identity. Mutable
//! (the newest `seq` wins), signed by the file's per-file key, so a repair or a moved holder
//! republishes it without changing the file id. Design: `docs/manifest-v2.md`.
//!
//! # Canonical encoding, version 1
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KRSP` |
//! | 1 | version = 1 |
//! | 32 | file id (of the content manifest) |
//! | 8 | seq (u64; strictly increasing per file, the highest valid one wins) |
//! | 8 | created, Unix seconds (u64) |
//! | 2 | holder count H (u16, ≥ n) |
//! | H × 32 | holder Ed25519 public keys (their onion identities), distinct |
//! | 1 | n, pieces per block (3..=[`MAX_PIECES_PER_BLOCK`]) |
//! | 4 | block count B (u32, ≥ 1) |
//! | B × n × 2 | per block, in shard order: the index (u16) into the holders of piece `i`'s holder |
//! | 64 | Ed25519 signature by the per-file key over [`SIGNING_CONTEXT`] ‖ all bytes above |
//!
//! The record carries no key of its own: its signer is the content manifest's `uploader`, so
//! verifying needs that key ([`SignedPlacement::verify`] with the manifest, or
//! [`SignedPlacement::from_bytes`] with the key). Decoding is total and canonical (no trailing
//! bytes, counts bounded by the input, at most [`MAX_MANIFEST_BYTES`]). Invariants of a decoded
//! record: holders distinct, every index in range, the `n` pieces of one block on `n` distinct
//! holders. [`PlacementRecord::check_against`] adds: same file id, same `n` and block count as
//! the manifest. Choosing among records (highest `seq`) is the holder of the records' policy.

use crate::codec::{signed_message, split_signed, DecodeError, Reader, Writer, SIGNATURE_LEN};
use crate::identity::{Identity, PublicKey};
use crate::manifest::{FileId, SignedContentManifest, MAX_MANIFEST_BYTES, MAX_PIECES_PER_BLOCK};
use std::collections::HashSet;
use thiserror::Error;

const MAGIC: &[u8; 4] = b"KRSP";
/// Version byte of a placement record.
pub const PLACEMENT_VERSION: u8 = 1;
/// Signing context of a placement record.
pub const SIGNING_CONTEXT: &[u8] = b"kairos placement v1\0";
/// Fewest pieces per block (`k ≥ 2`, `m ≥ 1`).
const MIN_PIECES_PER_BLOCK: usize = 3;

/// Why a placement record was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlacementError {
    #[error("malformed placement record: {0}")]
    Decode(#[from] DecodeError),
    #[error("placement record is {0} bytes; the limit is {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    #[error("inconsistent placement record: {0}")]
    Inconsistent(String),
    #[error("placement record signature does not verify against the file's per-file key")]
    BadSignature,
    #[error("placement record does not fit its manifest: {0}")]
    Mismatch(String),
}

fn inconsistent(msg: impl Into<String>) -> PlacementError {
    PlacementError::Inconsistent(msg.into())
}

/// Where every piece of a file lives (unsigned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementRecord {
    pub file_id: FileId,
    pub seq: u64,
    pub created: u64,
    /// Holder identity keys, distinct.
    pub holders: Vec<PublicKey>,
    /// Per block, the `n` holder indices (into `holders`) of its pieces in shard order.
    pub blocks: Vec<Vec<u16>>,
}

impl PlacementRecord {
    /// Pieces per block (`n`), from the first block (all have the same count once checked).
    pub fn pieces_per_block(&self) -> usize {
        self.blocks.first().map_or(0, Vec::len)
    }

    /// The holder of piece `piece` of block `block`.
    pub fn holder_of(&self, block: usize, piece: usize) -> Option<&PublicKey> {
        let index = *self.blocks.get(block)?.get(piece)?;
        self.holders.get(usize::from(index))
    }

    /// Checks the invariants of the module docs that need no manifest.
    pub fn check(&self) -> Result<(), PlacementError> {
        let n = self.pieces_per_block();
        if !(MIN_PIECES_PER_BLOCK..=MAX_PIECES_PER_BLOCK).contains(&n) {
            return Err(inconsistent(format!(
                "{n} pieces per block; need {MIN_PIECES_PER_BLOCK}..={MAX_PIECES_PER_BLOCK}"
            )));
        }
        if self.holders.len() < n || self.holders.len() > usize::from(u16::MAX) {
            return Err(inconsistent(format!(
                "{} holders for {n} pieces per block; need n..=65535",
                self.holders.len()
            )));
        }
        if self.blocks.len() > u32::MAX as usize {
            return Err(inconsistent("more than 2^32 - 1 blocks"));
        }
        let mut keys = HashSet::with_capacity(self.holders.len());
        if !self.holders.iter().all(|h| keys.insert(*h)) {
            return Err(inconsistent("the same holder is listed twice"));
        }
        let mut seen = HashSet::with_capacity(n);
        for (i, block) in self.blocks.iter().enumerate() {
            if block.len() != n {
                return Err(inconsistent(format!(
                    "block {i} has {} pieces, expected {n}",
                    block.len()
                )));
            }
            seen.clear();
            for &h in block {
                if usize::from(h) >= self.holders.len() {
                    return Err(inconsistent(format!(
                        "block {i} names holder {h} of {}",
                        self.holders.len()
                    )));
                }
                if !seen.insert(h) {
                    return Err(inconsistent(format!(
                        "block {i} puts two pieces on one holder"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that this record places the file of `manifest`: same file id, same pieces per
    /// block, same block count.
    pub fn check_against(&self, manifest: &SignedContentManifest) -> Result<(), PlacementError> {
        let mismatch = |m: String| Err(PlacementError::Mismatch(m));
        if self.file_id != manifest.id() {
            return mismatch(format!(
                "it places file {}, not {}",
                self.file_id,
                manifest.id()
            ));
        }
        let m = manifest.manifest();
        let n = m.params.total_shards();
        if self.pieces_per_block() != n {
            return mismatch(format!(
                "{} pieces per block, the manifest has {n}",
                self.pieces_per_block()
            ));
        }
        if self.blocks.len() != m.blocks.len() {
            return mismatch(format!(
                "{} blocks, the manifest has {}",
                self.blocks.len(),
                m.blocks.len()
            ));
        }
        Ok(())
    }

    /// The canonical unsigned bytes. Call [`PlacementRecord::check`] first (signing does).
    fn encode(&self) -> Vec<u8> {
        let n = self.pieces_per_block();
        let mut w = Writer::default();
        w.buf
            .reserve(64 + self.holders.len() * 32 + self.blocks.len() * n * 2);
        w.bytes(MAGIC);
        w.u8(PLACEMENT_VERSION);
        w.bytes(&self.file_id.0);
        w.u64(self.seq);
        w.u64(self.created);
        w.u16(self.holders.len() as u16);
        for h in &self.holders {
            w.bytes(&h.0);
        }
        w.u8(n as u8);
        w.u32(self.blocks.len() as u32);
        for block in &self.blocks {
            for &h in block {
                w.u16(h);
            }
        }
        w.buf
    }

    fn decode(body: &[u8]) -> Result<PlacementRecord, PlacementError> {
        let mut r = Reader::new(body);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::Magic("kairos placement record").into());
        }
        let version = r.u8("version")?;
        if version != PLACEMENT_VERSION {
            return Err(DecodeError::Version {
                what: "placement record",
                version,
            }
            .into());
        }
        let file_id = FileId(r.array("file id")?);
        let seq = r.u64("seq")?;
        let created = r.u64("created")?;
        let holders = decode_holders(&mut r)?;
        let blocks = decode_blocks(&mut r)?;
        r.finish()?;
        let record = PlacementRecord {
            file_id,
            seq,
            created,
            holders,
            blocks,
        };
        record.check()?;
        Ok(record)
    }

    /// Decodes the structure **without checking the signature**: only to learn which file a
    /// record claims to place (to look up its manifest) before [`SignedPlacement::verify`].
    /// Never act on the result otherwise.
    pub fn decode_unverified(bytes: &[u8]) -> Result<PlacementRecord, PlacementError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(PlacementError::TooLarge(bytes.len()));
        }
        let (body, _) = split_signed(bytes)?;
        Self::decode(body)
    }

    /// Checks and signs the record with the file's per-file identity.
    pub fn sign(self, identity: &Identity) -> Result<SignedPlacement, PlacementError> {
        self.check()?;
        let mut bytes = self.encode();
        if bytes.len() + SIGNATURE_LEN > MAX_MANIFEST_BYTES {
            return Err(PlacementError::TooLarge(bytes.len() + SIGNATURE_LEN));
        }
        let sig = identity.sign(&signed_message(SIGNING_CONTEXT, &bytes));
        bytes.extend_from_slice(&sig);
        Ok(SignedPlacement {
            bytes,
            record: self,
            signer: identity.public(),
        })
    }
}

fn decode_holders(r: &mut Reader<'_>) -> Result<Vec<PublicKey>, PlacementError> {
    let count = usize::from(r.u16("holder count")?);
    // Refuse counts the input cannot hold before allocating.
    if count * 32 > r.remaining() {
        return Err(DecodeError::Truncated {
            field: "holders",
            needed: count * 32 - r.remaining(),
        }
        .into());
    }
    (0..count)
        .map(|_| Ok(PublicKey(r.array("holder key")?)))
        .collect()
}

/// The piece table: its length must be exactly what the rest of the input holds.
fn decode_blocks(r: &mut Reader<'_>) -> Result<Vec<Vec<u16>>, PlacementError> {
    let n = usize::from(r.u8("pieces per block")?);
    if !(MIN_PIECES_PER_BLOCK..=MAX_PIECES_PER_BLOCK).contains(&n) {
        return Err(DecodeError::Invalid {
            field: "pieces per block",
            reason: "must be 3 to 32",
        }
        .into());
    }
    let count = r.u32("block count")? as usize;
    if count == 0 || count.checked_mul(n * 2) != Some(r.remaining()) {
        return Err(DecodeError::Invalid {
            field: "block count",
            reason: "zero or does not match the record length",
        }
        .into());
    }
    let mut blocks = Vec::with_capacity(count);
    for _ in 0..count {
        let block = (0..n)
            .map(|_| r.u16("holder index"))
            .collect::<Result<Vec<u16>, _>>()?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// A placement record with its exact signed bytes and the key that signed it. Only
/// constructible through signing or verification, so holding one means it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPlacement {
    bytes: Vec<u8>,
    record: PlacementRecord,
    signer: PublicKey,
}

impl SignedPlacement {
    /// Decodes and verifies signed placement bytes against `signer` (the file's per-file key,
    /// as a holder stores it with its pieces). Does not compare with the manifest: see
    /// [`SignedPlacement::verify`].
    pub fn from_bytes(bytes: Vec<u8>, signer: &PublicKey) -> Result<Self, PlacementError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(PlacementError::TooLarge(bytes.len()));
        }
        let (body, sig) = split_signed(&bytes)?;
        let record = PlacementRecord::decode(body)?;
        signer
            .verify(&signed_message(SIGNING_CONTEXT, body), &sig)
            .map_err(|_| PlacementError::BadSignature)?;
        Ok(SignedPlacement {
            bytes,
            record,
            signer: *signer,
        })
    }

    /// Decodes and verifies signed placement bytes for the file of `manifest`: signed by its
    /// uploader key, and [`PlacementRecord::check_against`] the manifest.
    pub fn verify(
        bytes: Vec<u8>,
        manifest: &SignedContentManifest,
    ) -> Result<Self, PlacementError> {
        let placement = Self::from_bytes(bytes, &manifest.manifest().uploader)?;
        placement.record.check_against(manifest)?;
        Ok(placement)
    }

    pub fn record(&self) -> &PlacementRecord {
        &self.record
    }
    /// The key the signature verified against.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }
    pub fn file_id(&self) -> FileId {
        self.record.file_id
    }
    pub fn seq(&self) -> u64 {
        self.record.seq
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
